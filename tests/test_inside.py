"""Looking inside the network (?include=activations,saliency and /v1/models/<name>/templates) on the shipped models,
checked against references computed here: the layers recomputed from the SavedModel's weights with TensorFlow, and
occlusion done the slow way, one window and one model call at a time."""

from __future__ import annotations

import base64
import io
import json
import shutil
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from service import create_app, inside
from service.predictor import Predictor
from tests.conftest import MODELS
from tests.images import encode, mnist_as_image

LAYERS = {
    "softmax": [("output", "dense", 10)],
    "mlp": [("hidden1", "dense", 512), ("hidden2", "dense", 512), ("output", "dense", 10)],
    "cnn": [
        ("conv1a", "conv", [26, 26, 32]),
        ("conv1b", "conv", [24, 24, 32]),
        ("conv1c", "conv", [12, 12, 32]),
        ("conv2a", "conv", [10, 10, 64]),
        ("conv2b", "conv", [8, 8, 64]),
        ("conv2c", "conv", [4, 4, 64]),
        ("conv3", "dense", 128),
        ("output", "dense", 10),
    ],
}
BOTH = "/predict?include=input,activations,saliency&model="


def png_of(data_url: str) -> np.ndarray:
    prefix = "data:image/png;base64,"
    assert data_url.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(prefix) :])))
    assert image.format == "PNG" and image.mode == "L"
    return np.asarray(image)


def tiles(entry: dict) -> np.ndarray:
    """A conv layer's atlas -> its maps float [H, W, C] back in activation units (to within max / 255)."""
    h, w, c = entry["shape"]
    rows, cols = entry["grid"]
    atlas = png_of(entry["atlas"])
    assert atlas.shape == (rows * h, cols * w) and rows * cols >= c
    maps = atlas.reshape(rows, h, cols, w).transpose(1, 3, 0, 2).reshape(h, w, rows * cols)
    return maps[..., :c] / 255.0 * entry["max"]


@pytest.fixture(scope="module")
def weights(require) -> dict[str, dict[str, np.ndarray]]:
    """Every shipped model's variables, read from its SavedModel with TensorFlow: independent of the LiteRT file."""
    try:
        import tensorflow as tf
    except ImportError:
        require(False, "TensorFlow is not installed: the references read the SavedModels with it")
    out = {}
    for name in LAYERS:
        loaded = tf.saved_model.load(str(MODELS / name / "1"))
        out[name] = {v.name.removesuffix(":0"): v.numpy() for v in loaded.variables}
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def mlp_reference(w: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """The perceptron in numpy: relu(x / 255 @ W1 + b1), and so on."""
    h1 = np.maximum(x.reshape(-1) / 255.0 @ w["hidden1/kernel"] + w["hidden1/bias"], 0)
    h2 = np.maximum(h1 @ w["hidden2/kernel"] + w["hidden2/bias"], 0)
    return {"hidden1": h1, "hidden2": h2, "output": softmax(h2 @ w["probabilities/kernel"] + w["probabilities/bias"])}


def cnn_reference(w: dict, x: np.ndarray) -> dict[str, np.ndarray]:
    """The cnn layer by layer with tf.nn.conv2d: conv (no bias) -> batch norm (Keras' epsilon 1e-3) -> ReLU."""
    import tensorflow as tf

    out, a = {}, tf.constant(x.reshape(1, 28, 28, 1) / 255.0, tf.float32)
    blocks = [("conv1a", 1, "VALID"), ("conv1b", 1, "VALID"), ("conv1c", 2, "SAME")]
    blocks += [("conv2a", 1, "VALID"), ("conv2b", 1, "VALID"), ("conv2c", 2, "SAME"), ("conv3", 1, "VALID")]
    for name, stride, padding in blocks:
        a = tf.nn.conv2d(a, w[f"{name}/kernel"], stride, padding)
        bn = {k: w[f"{name}_bn/{k}"] for k in ("gamma", "beta", "moving_mean", "moving_variance")}
        a = (a - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) * bn["gamma"] + bn["beta"]
        a = tf.nn.relu(a)
        out[name] = a.numpy()[0]
    logits = out["conv3"].reshape(-1) @ w["probabilities/kernel"] + w["probabilities/bias"]
    out["output"] = softmax(logits)
    return out


@pytest.fixture(scope="module")
def predictors() -> dict[str, Predictor]:
    return {name: Predictor(MODELS / name / "1") for name in LAYERS}


@pytest.fixture(scope="module")
def client():
    """The app as production builds it, with the bundled models (not $TEST_MODEL_DIR: these are about them)."""
    return create_app({"model_dir": str(MODELS / "cnn"), "models_root": str(MODELS)}).test_client()


@pytest.fixture(scope="module")
def digits(fixture_data) -> list[np.ndarray]:
    """MNIST test digits: already model inputs (28x28, 0..255, centred by mass)."""
    return [fixture_data.x_test[i].astype(np.float32) for i in range(5)]


# ---- over HTTP -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(LAYERS))
def test_every_layer_in_forward_order_with_its_shape(client, fixture_data, name):
    body = client.post(BOTH + name, data=encode(mnist_as_image(fixture_data.x_test[0])), content_type="image/png").json
    layers = body["activations"]
    assert [(a["name"], a["kind"], a.get("shape", a.get("units"))) for a in layers] == LAYERS[name]
    for layer in layers:
        if layer["kind"] == "dense":
            assert len(layer["values"]) == layer["units"]
        else:
            maps = tiles(layer)  # the atlas decodes to grid x shape
            assert maps.max() == pytest.approx(layer["max"]) and layer["max"] > 0
    assert layers[-1]["values"] == body["probabilities"]  # the output layer is the answer
    assert body["digits"][0]["activations"] == layers and body["digits"][0]["saliency"] == body["saliency"]


@pytest.mark.parametrize("name", list(LAYERS))
def test_activations_of_one_digit_stay_under_the_size_bound(client, fixture_data, name):
    for digit in fixture_data.x_test[:8]:
        body = client.post(BOTH + name, data=encode(mnist_as_image(digit)), content_type="image/png").json
        assert len(json.dumps(body["activations"]).encode()) < inside.MAX_ACTIVATIONS_JSON


def test_the_size_bound_holds_even_for_noise(predictors):
    """Noise is the least compressible input the atlases can get: still under the bound."""
    x = np.random.default_rng(0).uniform(0, 255, (28, 28)).astype(np.float32)
    layers = inside.Inside(MODELS / "cnn" / "1").activations(x, predictors["cnn"].predict(x[None])[0])
    assert 20_000 < len(json.dumps(layers).encode()) < inside.MAX_ACTIVATIONS_JSON


@pytest.mark.parametrize("name", list(LAYERS))
def test_saliency_is_28x28_zero_away_from_ink_and_largest_on_it(client, fixture_data, name):
    body = client.post(BOTH + name, data=encode(mnist_as_image(fixture_data.x_test[1])), content_type="image/png").json
    found = body["saliency"]
    values = np.array(found["values"])
    assert values.shape == (28, 28) and found["method"] == "occlusion" and found["digit"] == body["digit"]
    ink = png_of(body["input"]) > 0
    near = np.zeros_like(ink)  # pixels in a window that may hold ink (the PNG rounds the faintest ink to 0)
    for r, c in inside.windows(28, found["patch"], found["stride"]):
        if ink[max(r - 1, 0) : r + found["patch"] + 1, max(c - 1, 0) : c + found["patch"] + 1].any():
            near[r : r + found["patch"], c : c + found["patch"]] = True
    assert not values[~near].any()
    assert values.max() > 1.0 and values[ink].mean() > 2 * max(values[~ink].mean(), 0)
    top = np.unravel_index(values.argmax(), values.shape)
    assert ink[max(top[0] - 2, 0) : top[0] + 3, max(top[1] - 2, 0) : top[1] + 3].any()


def test_every_digit_of_a_number_and_of_a_batch_is_looked_inside(client, fixture_data):
    wide = np.concatenate([fixture_data.x_test[i] for i in (0, 1, 2)], axis=1)  # three digits side by side
    body = client.post(BOTH + "cnn", data=encode(mnist_as_image(wide)), content_type="image/png").json
    assert len(body["digits"]) == 3
    for d in body["digits"]:
        assert d["activations"][-1]["values"] == d["probabilities"] and d["saliency"]["digit"] == d["digit"]
    assert body["saliency"] == body["digits"][0]["saliency"]
    images = [base64.b64encode(encode(mnist_as_image(fixture_data.x_test[i]))).decode() for i in (3, 4)]
    batch = client.post("/predict?include=saliency&model=mlp", json={"images": images}).json
    assert [p["digits"][0]["saliency"]["digit"] for p in batch["predictions"]] == [
        p["digit"] for p in batch["predictions"]
    ]
    assert all("activations" not in p for p in batch["predictions"])


def test_without_include_nothing_is_added(client, fixture_data):
    png = encode(mnist_as_image(fixture_data.x_test[0]))
    body = client.post("/predict?model=cnn", data=png, content_type="image/png").json
    assert not {"activations", "saliency", "input"} & (set(body) | set(body["digits"][0]))


@pytest.mark.parametrize("include", ["activation", "input,,saliency", "saliency,gradients", "INPUT", " input"])
def test_an_unknown_include_is_a_400(client, fixture_data, include):
    png = encode(mnist_as_image(fixture_data.x_test[0]))
    response = client.post(f"/predict?model=cnn&include={include}", data=png, content_type="image/png")
    assert response.status_code == 400 and response.json["error"]["code"] == "bad_include"


def test_templates_are_the_softmax_kernel(client, weights):
    body = client.get("/v1/models/softmax/templates").json
    assert body["model"]["name"] == "softmax"  # the served version: v2 has v1's kernel, plus a detector
    kernel, bias = weights["softmax"]["probabilities/kernel"], weights["softmax"]["probabilities/bias"]
    assert [t["digit"] for t in body["templates"]] == list(range(10))
    for t in body["templates"]:
        assert np.abs(np.array(t["weights"]) - kernel[:, t["digit"]].reshape(28, 28)).max() <= 5.1e-5
        assert t["bias"] == pytest.approx(bias[t["digit"]], abs=5.1e-5)


@pytest.mark.parametrize(("path", "status", "code"), [("mlp", 404, "no_templates"), ("cnn", 404, "no_templates")])
def test_only_softmax_regression_has_templates(client, path, status, code):
    response = client.get(f"/v1/models/{path}/templates")
    assert response.status_code == status and response.json["error"]["code"] == code


def test_templates_of_an_unknown_model_is_the_usual_404(client):
    response = client.get("/v1/models/nosuch/templates")
    assert response.status_code == 404 and response.json["error"]["code"] == "unknown_model"


def test_without_litert_activations_are_a_503_and_saliency_still_works(tmp_path, fixture_data, weights):
    """RUNTIME=savedmodel on an export without model.tflite: the SavedModel answers, nothing can look inside it.
    (`weights`: TensorFlow, which this runtime needs, is there.)"""
    version = tmp_path / "softmax" / "1"
    shutil.copytree(MODELS / "softmax" / "1", version, ignore=shutil.ignore_patterns("model.tflite"))
    app = create_app({"model_dir": str(version), "models_root": str(tmp_path), "runtime": "savedmodel"})
    png = encode(mnist_as_image(fixture_data.x_test[0]))
    response = app.test_client().post("/predict?include=activations", data=png, content_type="image/png")
    assert response.status_code == 503 and response.json["error"]["code"] == "inside_unavailable"
    response = app.test_client().get("/v1/models/softmax/templates")
    assert response.status_code == 503 and response.json["error"]["code"] == "inside_unavailable"
    response = app.test_client().post("/predict?include=saliency", data=png, content_type="image/png")
    assert response.status_code == 200 and np.array(response.json["saliency"]["values"]).max() > 0


def test_a_savedmodel_runtime_looks_inside_through_the_litert_file_beside_it(tmp_path, fixture_data, weights):
    """RUNTIME=savedmodel answers with TensorFlow; the activations still come from model.tflite, and agree."""
    for name in ("mlp", "softmax"):
        shutil.copytree(MODELS / name / "1", tmp_path / name / "1")
    app = create_app({"model_dir": str(tmp_path / "mlp"), "models_root": str(tmp_path), "runtime": "savedmodel"})
    png = encode(mnist_as_image(fixture_data.x_test[0]))
    response = app.test_client().post("/predict?include=activations", data=png, content_type="image/png")
    assert app.extensions["digits"].default.runtime.name == "savedmodel" and response.status_code == 200
    assert [a["name"] for a in response.json["activations"]] == ["hidden1", "hidden2", "output"]
    assert response.json["activations"][-1]["values"] == response.json["probabilities"]
    assert len(app.test_client().get("/v1/models/softmax/templates").json["templates"]) == 10


# ---- against references ----------------------------------------------------------------------------


def test_mlp_hidden_layers_are_relu_of_the_savedmodel_weights(predictors, weights, digits):
    looking = inside.Inside(MODELS / "mlp" / "1")
    for x in digits:
        found = {
            a["name"]: np.array(a["values"]) for a in looking.activations(x, predictors["mlp"].predict(x[None])[0])
        }
        reference = mlp_reference(weights["mlp"], x)
        for name in ("hidden1", "hidden2"):
            assert np.abs(found[name] - reference[name]).max() < 1e-3, name  # rounded to 3 decimals
            assert (found[name] > 0).mean() > 0.05  # not a layer of zeros
        assert np.abs(found["output"] - reference["output"]).max() < 1e-4


def test_cnn_feature_maps_are_the_savedmodel_layers(predictors, weights, digits):
    looking = inside.Inside(MODELS / "cnn" / "1")
    for x in digits[:3]:
        found = {a["name"]: a for a in looking.activations(x, predictors["cnn"].predict(x[None])[0])}
        reference = cnn_reference(weights["cnn"], x)
        for name in ("conv1a", "conv1b", "conv1c", "conv2a", "conv2b", "conv2c"):
            top = reference[name].max()
            assert found[name]["max"] == pytest.approx(top, abs=1e-3)
            assert np.abs(tiles(found[name]) - reference[name]).max() <= top / 255 * 0.51 + 1e-3, name
        assert np.abs(np.array(found["conv3"]["values"]) - reference["conv3"].reshape(-1)).max() < 1e-3
        assert np.abs(np.array(found["output"]["values"]) - reference["output"]).max() < 1e-4


def slow_occlusion(predict, x: np.ndarray, patch: int, stride: int) -> np.ndarray:
    """Every window, ink or not, blanked and read on its own; each pixel the mean log-odds drop of its windows."""

    def log_odds(p: np.ndarray, d: int) -> float:
        return float(np.log(max(p[d], 1e-30)) - np.log(max(sum(p[j] for j in range(10) if j != d), 1e-30)))

    base = predict(x[None])[0]
    d = int(base.argmax())
    total, count = np.zeros((28, 28)), np.zeros((28, 28))
    starts = sorted(set(range(0, 28 - patch + 1, stride)) | {28 - patch})
    for r in starts:
        for c in starts:
            blanked = x.copy()
            blanked[r : r + patch, c : c + patch] = 0
            total[r : r + patch, c : c + patch] += log_odds(base, d) - log_odds(predict(blanked[None])[0], d)
            count[r : r + patch, c : c + patch] += 1
    return total / count


@pytest.mark.parametrize("name", list(LAYERS))
def test_saliency_equals_occlusion_done_the_slow_way(predictors, digits, name):
    predict, x = predictors[name].predict, digits[2]
    [found] = inside.saliency([x], [predict(x[None])[0]], predict)
    reference = slow_occlusion(predict, x, found["patch"], found["stride"])
    assert np.abs(np.array(found["values"]) - reference).max() < 2e-3
    assert np.abs(reference).max() > 1.0  # a map with something in it


def test_only_windows_that_touch_ink_are_run(predictors, digits):
    """The windows without ink are not sent to the model: they would blank nothing. Those of both digits go in
    calls of inside.CHUNK images, which the runtime runs without padding."""
    calls = []

    def predict(images):
        calls.append(len(images))
        return predictors["cnn"].predict(images)

    x = digits[0]
    inside.saliency([x, x], [predict(x[None])[0]] * 2, predict)
    corners = inside.windows()
    touching = sum(x[r : r + inside.PATCH, c : c + inside.PATCH].any() for r, c in corners)
    assert sum(calls[1:]) == 2 * touching and touching < len(corners)
    assert calls[1:-1] == [inside.CHUNK] * (len(calls) - 2) and 0 < calls[-1] <= inside.CHUNK


# ---- a real server -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_server_looks_inside(fixture_data):
    from bench.server import running_server

    png = encode(mnist_as_image(fixture_data.x_test[0]))
    with running_server({"WEB_CONCURRENCY": "1", "MODEL_DIR": str(MODELS / "cnn")}) as (url, _):
        request = urllib.request.Request(
            f"{url}/predict?include=activations,saliency", data=png, headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert [a["name"] for a in body["activations"]] == [name for name, _, _ in LAYERS["cnn"]]
        assert np.array(body["saliency"]["values"]).shape == (28, 28)
        with urllib.request.urlopen(f"{url}/v1/models/softmax/templates", timeout=30) as response:
            assert len(json.load(response)["templates"]) == 10
        bad = urllib.request.Request(f"{url}/predict?include=nope", data=png, headers={"Content-Type": "image/png"})
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(bad, timeout=30)
        assert error.value.code == 400 and json.load(error.value)["error"]["code"] == "bad_include"
