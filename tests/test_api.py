"""The HTTP API through Flask's test client: every input format, every error code."""

from __future__ import annotations

import base64
import io
import json
import logging

import numpy as np
import pytest
from PIL import Image

from service import create_app
from service.security import SECURITY_HEADERS, SecurityHeaders
from tests.conftest import MODELS as MODELS_DIR
from tests.images import drawn_one, encode, mnist_as_image

PNG = encode(drawn_one())
BLANK = encode(Image.new("L", (280, 280), 255))


def data_url(blob: bytes, media: str = "image/png") -> str:
    return f"data:{media};base64," + base64.b64encode(blob).decode()


def assert_prediction(body: dict, name: str = "fake") -> None:
    assert set(body) >= {"digit", "confidence", "probabilities", "model"}
    assert 0 <= body["digit"] <= 9 and len(body["probabilities"]) == 10
    assert sum(body["probabilities"]) == pytest.approx(1.0, abs=1e-9)
    assert body["confidence"] == max(body["probabilities"])
    assert body["probabilities"].index(body["confidence"]) == body["digit"]
    assert body["model"]["name"] == name and isinstance(body["model"]["version"], int)


# ---- accepted inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"data": {"image": (io.BytesIO(PNG), "one.png")}, "content_type": "multipart/form-data"},
        {"data": PNG, "content_type": "image/png"},
        {"data": encode(drawn_one(), "JPEG"), "content_type": "image/jpeg"},
        {"data": encode(drawn_one(), "JPEG"), "content_type": "image/png"},  # mislabelled: bytes win
        {"data": encode(drawn_one(), "WEBP"), "content_type": "application/octet-stream"},
        {"json": {"image": data_url(PNG)}},
        {"json": {"image": base64.b64encode(PNG).decode()}},
        {"data": json.dumps({"image": data_url(PNG)}), "content_type": "application/json; charset=utf-8"},
    ],
    ids=[
        "multipart",
        "raw-png",
        "raw-jpeg",
        "mislabelled-jpeg",
        "octet-stream-webp",
        "json-data-url",
        "json-base64",
        "json-charset",
    ],
)
def test_every_input_format_predicts(client, fake_predictor, request_kwargs):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == 200, response.json
    assert_prediction(response.json)
    (x,) = fake_predictor.calls
    assert x.shape == (1, 28, 28) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255


def test_pixels_in_0_255_and_0_1_are_the_same_image(client, fake_predictor, fixture_data):
    digit = fixture_data.x_test[3]
    a = client.post("/predict", json={"pixels": digit.tolist()})
    b = client.post("/predict", json={"pixels": (digit / 255.0).tolist()})
    assert a.status_code == b.status_code == 200
    np.testing.assert_allclose(fake_predictor.calls[0], fake_predictor.calls[1], atol=1e-3)
    assert a.json["digit"] == b.json["digit"]


def test_batch_predicts_each_image_in_order(client, fake_predictor, fixture_data):
    items = [{"pixels": d.tolist()} for d in fixture_data.x_test[:5]] + [data_url(PNG), {"image": data_url(PNG)}]
    response = client.post("/predict", json={"images": items})
    assert response.status_code == 200
    predictions = response.json["predictions"]
    assert len(predictions) == 7
    (x,) = fake_predictor.calls
    assert x.shape == (7, 28, 28)
    expected = (x > 128).sum(axis=(1, 2)) % 10  # the fake's rule, per image
    assert [p["digit"] for p in predictions] == expected.tolist()
    for p in predictions:
        assert_prediction(p)


def test_include_input_returns_the_28x28_model_input(client, fake_predictor):
    response = client.post("/predict?include=input", data=PNG, content_type="image/png")
    url = response.json["input"]
    assert url.startswith("data:image/png;base64,")
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.size == (28, 28) and image.mode == "L"
    np.testing.assert_allclose(np.asarray(image, np.float32), fake_predictor.calls[0][0], atol=0.51)
    assert "input" not in client.post("/predict", data=PNG, content_type="image/png").json


# ---- errors: one JSON shape, the documented status ------------------------------------------------


def nested(depth: int) -> dict:
    value: dict = {"image": "x"}
    for _ in range(depth):
        value = {"a": value}
    return value


BAD_REQUESTS = [
    ("empty-body", {"data": b"", "content_type": "image/png"}, 400),
    ("malformed-json", {"data": b"{'image':", "content_type": "application/json"}, 400),
    ("json-not-object", {"json": [1, 2, 3]}, 400),
    ("json-wrong-keys", {"json": {"picture": "x"}}, 400),
    ("json-deep", {"json": nested(50)}, 400),
    ("json-very-deep", {"data": b"[" * 100000 + b"]" * 100000, "content_type": "application/json"}, 400),
    ("image-not-string", {"json": {"image": 42}}, 400),
    ("bad-base64", {"json": {"image": "data:image/png;base64,@@@notbase64@@@"}}, 400),
    ("data-url-not-base64", {"json": {"image": "data:image/png,rawtext"}}, 400),
    ("pixels-wrong-rows", {"json": {"pixels": [[0] * 28] * 27}}, 400),
    ("pixels-wrong-cols", {"json": {"pixels": [[0] * 27] * 28}}, 400),
    ("pixels-flat", {"json": {"pixels": [0] * 784}}, 400),
    ("pixels-strings", {"json": {"pixels": [["1"] * 28] * 28}}, 400),
    ("pixels-negative", {"json": {"pixels": [[-1] * 28] * 28}}, 400),
    ("pixels-over-255", {"json": {"pixels": [[256] * 28] * 28}}, 400),
    (
        "pixels-nan",
        {
            "data": '{"pixels": [' + ",".join(["[" + ",".join(["NaN"] * 28) + "]"] * 28) + "]}",
            "content_type": "application/json",
        },
        400,
    ),
    (
        "pixels-infinity",
        {
            "data": '{"pixels": [' + ",".join(["[" + ",".join(["Infinity"] * 28) + "]"] * 28) + "]}",
            "content_type": "application/json",
        },
        400,
    ),
    ("pixels-bool", {"json": {"pixels": [[True] * 28] * 28}}, 400),
    ("images-empty", {"json": {"images": []}}, 400),
    ("images-not-list", {"json": {"images": "x"}}, 400),
    ("truncated-png", {"data": PNG[: len(PNG) // 2], "content_type": "image/png"}, 400),
    ("multipart-no-file", {"data": {"other": "x"}, "content_type": "multipart/form-data"}, 400),
    (
        "multipart-two-files",
        {
            "data": {"image": [(io.BytesIO(PNG), "a.png"), (io.BytesIO(PNG), "b.png")]},
            "content_type": "multipart/form-data",
        },
        400,
    ),
    ("text-plain", {"data": b"hello", "content_type": "text/plain"}, 415),
    ("no-content-type", {"data": b"hello"}, 415),
    ("form-urlencoded", {"data": {"image": "x"}, "content_type": "application/x-www-form-urlencoded"}, 415),
    ("svg-as-png", {"data": b"<svg xmlns='http://www.w3.org/2000/svg'/>", "content_type": "image/png"}, 415),
    ("pdf-as-image", {"data": b"%PDF-1.4 ...", "content_type": "image/jpeg"}, 415),
    ("html-as-image", {"data": b"<html><body>hi</body></html>", "content_type": "image/gif"}, 415),
    ("data-url-text", {"json": {"image": "data:text/plain;base64,aGVsbG8="}}, 415),
    ("bomb", {"data": encode(Image.new("1", (6000, 6000))), "content_type": "image/png"}, 413),
    ("blank-canvas", {"data": BLANK, "content_type": "image/png"}, 422),
    ("blank-pixels", {"json": {"pixels": [[0] * 28] * 28}}, 422),
    ("blank-transparent", {"json": {"image": data_url(encode(Image.new("RGBA", (280, 280), (0, 0, 0, 0))))}}, 422),
    ("one-by-one", {"data": encode(Image.new("L", (1, 1), 0)), "content_type": "image/png"}, 422),
]


@pytest.mark.parametrize(("case", "kwargs", "status"), BAD_REQUESTS, ids=[c[0] for c in BAD_REQUESTS])
def test_bad_input_gets_its_documented_json_error(client, fake_predictor, case, kwargs, status):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    assert response.is_json
    error = response.json["error"]
    assert set(error) == {"code", "message"} and error["code"] and error["message"]
    assert "Traceback" not in response.get_data(as_text=True)
    assert fake_predictor.calls == []  # the model never saw it


def test_body_over_the_limit_is_413(fake_predictor):
    app = create_app({"max_content_length": 1000}, predictor=fake_predictor)
    response = app.test_client().post("/predict", data=b"x" * 5000, content_type="image/png")
    assert response.status_code == 413 and response.json["error"]["code"] == "too_large"


def test_batch_over_the_limit_is_413(fake_predictor):
    app = create_app({"max_batch": 3}, predictor=fake_predictor)
    response = app.test_client().post("/predict", json={"images": [data_url(PNG)] * 4})
    assert response.status_code == 413 and "limit is 3" in response.json["error"]["message"]


def test_batch_decode_error_names_the_image(client):
    response = client.post("/predict", json={"images": [data_url(PNG), data_url(PNG[: len(PNG) // 2])]})
    assert response.status_code == 400
    assert response.json["error"]["message"].startswith("images[1]:")


def test_batch_error_names_the_image(client):
    response = client.post("/predict", json={"images": [data_url(PNG), data_url(BLANK)]})
    assert response.status_code == 422
    assert response.json["error"]["message"].startswith("images[1]:")


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("get", "/nope", 404, "not_found"),
        ("get", "/predict", 405, "method_not_allowed"),
        ("delete", "/v1/models", 405, "method_not_allowed"),
        ("post", "/predict?model=nope", 404, "unknown_model"),
    ],
)
def test_routing_errors_are_json(client, method, path, status, code):
    response = getattr(client, method)(path, data=PNG, content_type="image/png")
    assert response.status_code == status and response.json["error"]["code"] == code


def test_unexpected_failure_is_a_json_500_without_traceback(make_predictor):
    app = create_app(predictor=make_predictor(fail=RuntimeError("secret internal detail")))
    response = app.test_client().post("/predict", data=PNG, content_type="image/png")
    assert response.status_code == 500 and response.json["error"]["code"] == "internal_error"
    assert "secret" not in response.get_data(as_text=True) and "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("error", [TypeError, IndexError, ZeroDivisionError, ValueError])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])  # libspng's path and Pillow's
def test_a_bug_in_our_decoding_is_a_logged_500_not_a_corrupt_image(client, monkeypatch, caplog, error, fmt):
    from service import decoding

    def to_gray(image):
        raise error("a bug of ours")

    monkeypatch.setattr(decoding, "to_gray", to_gray)
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        response = client.post("/predict", data=encode(drawn_one(), fmt), content_type="image/png")
    assert response.status_code == 500 and response.json == {
        "error": {"code": "internal_error", "message": "internal server error"}
    }
    (record,) = [r for r in caplog.records if r.name == "service.errors"]
    assert record.exc_info[0] is error and str(record.exc_info[1]) == "a bug of ours"


@pytest.mark.parametrize("key", ["max_bach", "MAX_BACH", "TESTNG", "resolved_model_dir", 1])
def test_an_unknown_configuration_key_is_refused(fake_predictor, key):
    with pytest.raises(ValueError, match=rf"unknown configuration key {key!r}: a setting is one of .*max_batch"):
        create_app({key: 3}, predictor=fake_predictor)


@pytest.mark.parametrize("config", [{"max_batch": 3}, {"MAX_BATCH": 3}])
def test_settings_and_flask_keys_are_accepted(fake_predictor, config):
    app = create_app({**config, "TESTING": True}, predictor=fake_predictor)
    assert app.testing is True
    response = app.test_client().post("/predict", json={"images": [data_url(PNG)] * 4})
    assert response.status_code == 413 and "limit is 3" in response.json["error"]["message"]


def test_json_depth_limit_is_read_from_the_environment(fake_predictor, monkeypatch):
    body = {"images": [{"image": data_url(PNG)}]}  # 3 levels deep
    assert create_app(predictor=fake_predictor).test_client().post("/predict", json=body).status_code == 200
    monkeypatch.setenv("MAX_JSON_DEPTH", "2")
    response = create_app(predictor=fake_predictor).test_client().post("/predict", json=body)
    assert response.status_code == 400 and "deeper than 2 levels" in response.json["error"]["message"]


# ---- operational endpoints ----------------------------------------------------------------------


def test_health_and_readiness(client):
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["model"] == {"name": "fake", "version": 7}


def test_models_lists_bundled_models_without_loading_them(client):
    body = client.get("/v1/models").json
    names = {m["name"] for m in body["models"]}
    assert body["default"] == "fake" and {"fake", "softmax", "mlp"} <= names
    softmax = next(m for m in body["models"] if m["name"] == "softmax")
    meta = json.loads((MODELS_DIR / "softmax" / str(softmax["version"]) / "metadata.json").read_text())
    assert softmax["loaded"] is False and softmax["test_accuracy"] == meta["metrics"]["test_accuracy"]
    assert softmax["input"]["shape"] == [None, 28, 28]
    # softmax regression's own weights are 784 x 10 and 10 biases, however many its "not a digit" detector adds
    assert softmax["classifier_parameters"] == 784 * 10 + 10 <= softmax["parameters"]


def test_openapi_describes_the_api(client):
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    predict = spec["paths"]["/predict"]["post"]
    assert {"200", "400", "413", "415", "422"} <= set(predict["responses"])
    assert {"application/json", "multipart/form-data", "image/png"} <= set(predict["requestBody"]["content"])
    assert {"/healthz", "/readyz", "/v1/models"} <= set(spec["paths"])


@pytest.mark.parametrize("path", ["/", "/healthz", "/predict", "/no-such-page"])
def test_security_headers_everywhere(client, path):
    headers = client.get(path).headers
    csp = headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_security_headers_keep_a_response_s_own_value():
    def inner(environ, start_response):
        start_response("200 OK", [("content-security-policy", "default-src 'none'"), ("Content-Length", "0")])
        return [b""]

    seen = {}
    SecurityHeaders(inner)({}, lambda status, headers, exc_info=None: seen.update(status=status, headers=headers))
    names = [name.lower() for name, _ in seen["headers"]]
    assert names.count("content-security-policy") == 1 and ("content-security-policy", "default-src 'none'") in [
        (name.lower(), value) for name, value in seen["headers"]
    ]
    assert {name.lower() for name in SECURITY_HEADERS} <= set(names)


def test_flask_debug_left_in_the_environment_changes_nothing(monkeypatch, make_predictor):
    """FLASK_DEBUG=1 (as `flask run --debug` uses) still gives the bare JSON 500 and no debugger."""
    monkeypatch.setenv("FLASK_DEBUG", "1")
    client = create_app(predictor=make_predictor(fail=RuntimeError("secret internal detail"))).test_client()
    response = client.post("/predict", data=PNG, content_type="image/png")
    assert response.status_code == 500
    # compact, as in production: an app in debug mode indents its JSON
    expected = {"error": {"code": "internal_error", "message": "internal server error"}}
    assert response.get_data(as_text=True).strip() == json.dumps(expected, separators=(",", ":"))
    # werkzeug's debugger answers these URLs with its own files and console; here they are the app's
    assert client.get("/?__debugger__=yes&cmd=resource&f=debugger.js").get_data() == client.get("/").get_data()
    assert client.get("/console").status_code == 404


# ---- the real bundled model ---------------------------------------------------------------------


def test_real_model_recognises_a_drawn_one(real_client):
    response = real_client.post("/predict", data=PNG, content_type="image/png")
    assert response.status_code == 200
    assert_prediction(response.json, name="cnn")
    # measured 2026-11-23 by this request: cnn v1 answers 1 with confidence 0.9999997; 0.9 leaves 0.1 of slack
    assert response.json["digit"] == 1 and response.json["confidence"] > 0.9


@pytest.mark.parametrize("via", ["multipart", "raw", "data-url", "pixels"])
def test_real_model_recognises_mnist_digits_through_every_path(real_client, fixture_data, via):
    digits, labels = fixture_data.x_test[:40], fixture_data.y_test[:40]
    hits = 0
    for digit, label in zip(digits, labels, strict=True):
        blob = encode(mnist_as_image(digit))
        kwargs = {
            "multipart": {"data": {"image": (io.BytesIO(blob), "d.png")}, "content_type": "multipart/form-data"},
            "raw": {"data": blob, "content_type": "image/png"},
            "data-url": {"json": {"image": data_url(blob)}},
            "pixels": {"json": {"pixels": digit.tolist()}},
        }[via]
        hits += real_client.post("/predict", **kwargs).json.get("digit") == label  # a refusal (422) is a miss
    # measured 2026-11-23 with this loop: cnn v1 gets 40 of 40 on every path (and 500 of 500 on the first 500
    # test digits of the full MNIST in $MNIST_DIR); the floor leaves one miss (cnn misses 0.3% of MNIST's test set;
    # v2 refuses 1% as not digits)
    assert hits >= 39


def test_real_batch_matches_single_predictions(real_client, fixture_data):
    items = [{"pixels": d.tolist()} for d in fixture_data.x_test[:20]]
    batch = real_client.post("/predict", json={"images": items}).json["predictions"]
    for item, together in zip(items, batch, strict=True):
        alone = real_client.post("/predict", json=item).json
        np.testing.assert_allclose(alone["probabilities"], together["probabilities"], atol=1e-4)


@pytest.mark.parametrize("name", ["mlp", "softmax"])
def test_other_bundled_models_per_request(real_client, name):
    response = real_client.post(f"/predict?model={name}", data=PNG, content_type="image/png")
    assert response.status_code == 200 and response.json["model"]["name"] == name
    assert response.json["digit"] == 1


def test_rate_limit_is_optional_per_client_and_answers_429(fake_predictor):
    app = create_app({"rate_limit": 1, "rate_burst": 2}, predictor=fake_predictor)
    client = app.test_client()
    send = lambda addr: client.post(  # noqa: E731
        "/predict", data=PNG, content_type="image/png", environ_base={"REMOTE_ADDR": addr}
    )
    assert [send("10.0.0.1").status_code for _ in range(2)] == [200, 200]
    limited = send("10.0.0.1")
    assert limited.status_code == 429 and limited.json["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert send("10.0.0.2").status_code == 200  # another client has its own bucket
    assert client.get("/healthz").status_code == 200  # probes are never limited


def test_no_rate_limit_by_default(client):
    assert all(client.post("/predict", data=PNG, content_type="image/png").status_code == 200 for _ in range(30))


def test_token_bucket_refills_at_the_rate():
    from service.ratelimit import TokenBuckets

    buckets = TokenBuckets(rate=2, burst=1)
    assert buckets.take("a", now=0.0) == 0
    assert buckets.take("a", now=0.1) == pytest.approx(0.4)
    assert buckets.take("a", now=0.6) == 0  # 0.5 s later a token is back


def test_page_assets_are_versioned_and_cacheable(client):
    import re

    page = client.get("/")
    assert page.headers["Cache-Control"] == "no-cache"
    urls = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.get_data(as_text=True))
    assert any("app.js?v=" in u for u in urls) and any("style.css?v=" in u for u in urls)
    for url in urls:
        asset = client.get(url)
        assert asset.status_code == 200 and "max-age=31536000" in asset.headers["Cache-Control"]
    assert "Permissions-Policy" in page.headers


def test_half_written_version_is_not_served(tmp_path):
    import shutil

    from service.config import latest_version

    shutil.copytree(MODELS_DIR / "softmax" / "1", tmp_path / "softmax" / "1")
    (tmp_path / "softmax" / "2" / "variables").mkdir(parents=True)  # an export in progress
    assert latest_version(tmp_path / "softmax").name == "1"


def odd_image(digit: np.ndarray, kind: str) -> bytes:
    image = mnist_as_image(digit)  # dark digit on white, 280x280
    if kind == "animated-gif":
        blank = Image.new("L", image.size, 255).convert("P")
        return encode(image.convert("P"), "GIF", save_all=True, append_images=[blank], duration=50, loop=0)
    if kind == "png-16bit":
        return encode(Image.fromarray(np.asarray(image, np.uint16) * 257))
    if kind == "palette":
        return encode(image.convert("P", palette=Image.Palette.ADAPTIVE, colors=16))
    if kind == "cmyk-jpeg":
        return encode(image.convert("CMYK"), "JPEG", quality=95)
    if kind == "la":
        return encode(image.convert("LA"))
    if kind == "exif-rotated":
        exif = Image.Exif()
        exif[0x0112] = 8  # stored rotated: the viewer turns it 90 degrees back
        return encode(image.transpose(Image.Transpose.ROTATE_270), "JPEG", exif=exif.tobytes(), quality=95)
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["animated-gif", "png-16bit", "palette", "cmyk-jpeg", "la", "exif-rotated"])
def test_real_model_recognises_odd_but_valid_images(real_client, fixture_data, kind):
    hits = 0
    for digit, label in zip(fixture_data.x_test[:20], fixture_data.y_test[:20], strict=True):
        response = real_client.post("/predict", data=odd_image(digit, kind), content_type="application/octet-stream")
        refused = response.status_code == 422 and response.json["error"]["code"] == "not_a_digit"
        assert response.status_code == 200 or refused, response.json
        hits += response.json.get("digit") == label  # a refusal is a miss
    # measured 2026-11-23 with this loop: cnn v1 gets 20 of 20 for every kind (and 500 of 500 on the first 500
    # test digits of the full MNIST in $MNIST_DIR); the floor leaves one miss
    assert hits >= 19


# ---- numbers: every digit of an image, left to right ---------------------------------------------------------------


def ones(count: int, size: int = 60, spacing: int = 30) -> bytes:
    """A PNG of `count` vertical strokes side by side (dark on white): a number of 1s."""
    image = Image.new("L", (spacing * count + 2 * size, 3 * size), 255)
    for i in range(count):
        x = size + spacing * i
        image.paste(0, (x, size // 2, x + spacing // 3, 5 * size // 2))
    return encode(image)


def assert_number(body: dict, name: str = "fake") -> None:
    """A 200 answer as the API promises it: `number` and `digits`, and the first digit's fields at the top."""
    assert_prediction(body, name)
    digits = body["digits"]
    assert body["number"] == "".join(str(d["digit"]) for d in digits) and len(digits) >= 1
    for d in digits:
        assert_prediction({**d, "model": body["model"]}, name)
        assert set(d["box"]) == {"x", "y", "width", "height"} and all(isinstance(v, int) for v in d["box"].values())
        assert d["box"]["width"] >= 1 and d["box"]["height"] >= 1
    assert [body["digit"], body["confidence"], body["probabilities"]] == [
        digits[0]["digit"],
        digits[0]["confidence"],
        digits[0]["probabilities"],
    ]
    xs = [d["box"]["x"] for d in digits]
    assert xs == sorted(xs)  # left to right


@pytest.mark.parametrize(
    "request_kwargs",
    [
        {"data": {"image": (io.BytesIO(ones(3)), "n.png")}, "content_type": "multipart/form-data"},
        {"data": ones(3), "content_type": "image/png"},
        {"json": {"image": data_url(ones(3))}},
        {"json": {"images": [data_url(ones(3)), {"image": data_url(ones(3))}]}},
    ],
    ids=["multipart", "raw-png", "json-data-url", "batch"],
)
def test_every_input_form_reads_every_digit(client, fake_predictor, request_kwargs):
    response = client.post("/predict", **request_kwargs)
    assert response.status_code == 200, response.json
    for body in response.json.get("predictions", [response.json]):
        assert_number(body)
        assert len(body["digits"]) == 3
    assert len(fake_predictor.calls) == 1  # all digits of all images in one model call


def test_a_single_digit_answers_as_before_plus_number_and_digits(client):
    body = client.post("/predict", data=PNG, content_type="image/png").json
    assert_number(body)
    assert body["number"] == str(body["digit"]) and len(body["digits"]) == 1
    # drawn_one(): a stroke 18 px wide from y=56 to y=224 at x=140 of 280 (Pillow centres the line on x)
    box = body["digits"][0]["box"]
    assert abs(box["x"] - 131) <= 2 and abs(box["width"] - 18) <= 4
    assert abs(box["y"] - 56) <= 2 and abs(box["height"] - 168) <= 4


def test_boxes_are_in_the_submitted_image_s_pixels(client):
    """A 4200-px-wide image is shrunk before reading; the boxes still come in its own pixels."""
    image = Image.new("L", (4200, 600), 255)
    strokes = [(400, 100, 460, 500), (2000, 150, 2080, 550), (3700, 50, 3760, 450)]  # (left, top, right, bottom)
    for stroke in strokes:
        image.paste(0, stroke)
    body = client.post("/predict", data=encode(image), content_type="image/png").json
    boxes = [(d["box"]["x"], d["box"]["y"], d["box"]["width"], d["box"]["height"]) for d in body["digits"]]
    assert len(boxes) == 3
    for (x, y, w, h), (left, top, right, bottom) in zip(boxes, strokes, strict=True):
        # the image is read at 1/4 of its width (1024 px), so a box may be a few submitted pixels larger
        assert abs(x - left) <= 8 and abs(y - top) <= 8 and abs(x + w - right) <= 8 and abs(y + h - bottom) <= 8


def test_boxes_of_pixels_are_in_the_28x28_grid(client, fixture_data):
    digit = fixture_data.x_test[0]
    body = client.post("/predict", json={"pixels": digit.tolist()}).json
    rows, cols = np.flatnonzero((digit > 0.3 * digit.max()).any(1)), np.flatnonzero((digit > 0.3 * digit.max()).any(0))
    assert body["digits"][0]["box"] == {
        "x": int(cols[0]),
        "y": int(rows[0]),
        "width": int(cols[-1] - cols[0] + 1),
        "height": int(rows[-1] - rows[0] + 1),
    }


def test_include_input_gives_every_digit_its_model_input(client, fake_predictor):
    body = client.post("/predict?include=input", data=ones(3), content_type="image/png").json
    (x,) = fake_predictor.calls
    assert len(body["digits"]) == 3 and body["input"] == body["digits"][0]["input"]
    for d, expected in zip(body["digits"], x, strict=True):
        image = Image.open(io.BytesIO(base64.b64decode(d["input"].split(",", 1)[1])))
        np.testing.assert_allclose(np.asarray(image, np.float32), expected, atol=0.51)


@pytest.mark.parametrize(("count", "limit", "status"), [(20, None, 200), (21, None, 422), (4, 3, 422), (3, 3, 200)])
def test_more_digits_than_max_digits_is_422(fake_predictor, count, limit, status):
    app = create_app({} if limit is None else {"max_digits": limit}, predictor=fake_predictor)
    response = app.test_client().post("/predict", data=ones(count), content_type="image/png")
    assert response.status_code == status
    if status == 422:
        assert response.json["error"] == {
            "code": "too_many_digits",
            "message": f"found {count} digits; the limit is {limit or 20}",
        }
        assert fake_predictor.calls == []  # refused before the model
    else:
        assert len(response.json["digits"]) == count


def test_max_digits_is_read_from_the_environment(fake_predictor, monkeypatch):
    monkeypatch.setenv("MAX_DIGITS", "2")
    response = create_app(predictor=fake_predictor).test_client().post("/predict", json={"image": data_url(ones(3))})
    assert response.status_code == 422 and response.json["error"]["code"] == "too_many_digits"


def test_batch_too_many_digits_names_the_image(client):
    response = client.post("/predict", json={"images": [data_url(ones(2)), data_url(ones(25))]})
    assert response.status_code == 422
    assert response.json["error"]["message"] == "images[1]: found 25 digits; the limit is 20"


def test_real_model_reads_a_number_through_every_path(real_client, fixture_data):
    from tests.images import number_image
    from train.numbers import digit_ink

    picks = [0, 1, 2, 3, 4]  # 7, 2, 1, 0, 4
    inks = [digit_ink(fixture_data.x_test[i], 150) for i in picks]
    image, _ = number_image(inks, [40, 25, 60, 30])
    truth = "".join(str(fixture_data.y_test[i]) for i in picks)
    blob = encode(image)
    for kwargs in [
        {"data": {"image": (io.BytesIO(blob), "n.png")}, "content_type": "multipart/form-data"},
        {"data": encode(image, "JPEG", quality=90), "content_type": "image/jpeg"},
        {"json": {"image": data_url(blob)}},
        {"json": {"images": [data_url(blob), {"pixels": fixture_data.x_test[5].tolist()}]}},
    ]:
        response = real_client.post("/predict", **kwargs)
        assert response.status_code == 200, response.json
        bodies = response.json.get("predictions", [response.json])
        assert_number(bodies[0], "cnn")
        # no floor: cnn v1 reads this number right on every path (measured 2026-11-23 by this test)
        assert bodies[0]["number"] == truth
    assert bodies[1]["number"] == str(fixture_data.y_test[5])


# ---- not a digit: what the model refuses (its threshold; here the fake's `refuse`) --------------------------------


def fake_digits(client, blob: bytes) -> list[int]:
    """What the fake reads at each position of an image, when it refuses nothing."""
    return [d["digit"] for d in client.post("/predict", data=blob, content_type="image/png").json["digits"]]


def test_a_single_image_that_is_not_a_digit_is_422_with_the_guesses(make_predictor, client):
    (seen,) = fake_digits(client, PNG)
    app = create_app(predictor=make_predictor(refuse=frozenset({seen})))
    response = app.test_client().post("/predict", data=PNG, content_type="image/png")
    assert response.status_code == 422
    error = response.json["error"]
    assert error["code"] == "not_a_digit" and "not look like a digit" in error["message"]
    probabilities = error["details"]["probabilities"]
    assert len(probabilities) == 10 and abs(sum(probabilities) - 1) < 1e-9
    assert int(np.argmax(probabilities)) == seen and error["details"]["confidence"] == max(probabilities)
    assert error["details"]["digits"][0]["reason"] == "not_a_digit"


def test_a_number_with_a_position_that_is_not_a_digit_has_no_number(make_predictor, client):
    from tests.images import number_image, pen_digit

    image, _ = number_image([pen_digit(d, 200, 120, 14) for d in "147"], [60, 60])
    blob = encode(image)
    seen = fake_digits(client, blob)
    refused = seen[1]
    assert len(seen) == 3 and seen.count(refused) == 1
    body = create_app(predictor=make_predictor(refuse=frozenset({refused}))).test_client()
    body = body.post("/predict", data=blob, content_type="image/png").json
    assert body["number"] is None and len(body["digits"]) == 3
    for d, digit in zip(body["digits"], seen, strict=True):
        if digit == refused:
            assert d["digit"] is None and d["reason"] == "not_a_digit"
            assert int(np.argmax(d["probabilities"])) == refused  # the guess is still there, for the page
        else:
            assert d["digit"] == digit and "reason" not in d


def test_in_a_batch_a_non_digit_does_not_fail_the_others(make_predictor, client, fixture_data):
    (seen,) = fake_digits(client, PNG)
    other = {"pixels": fixture_data.x_test[0].tolist()}
    app = create_app(predictor=make_predictor(refuse=frozenset({seen})))
    response = app.test_client().post("/predict", json={"images": [data_url(PNG), other]})
    assert response.status_code == 200
    first, second = response.json["predictions"]
    assert first["number"] is None and first["digit"] is None and first["digits"][0]["reason"] == "not_a_digit"
    if second["digits"][0]["digit"] != seen:  # the fake may read the other image as the same digit
        assert second["number"] == str(second["digit"])


def test_blank_images_are_still_no_digit_not_not_a_digit(make_predictor):
    blank = encode(Image.new("L", (280, 280), 255))
    app = create_app(predictor=make_predictor(refuse=frozenset(range(10))))
    response = app.test_client().post("/predict", data=blank, content_type="image/png")
    assert response.status_code == 422 and response.json["error"]["code"] == "no_digit"


# Of these 100 drawings cnn v2 refused 65 (2026-12-07, by this test's loop): a whole image refused, or a number with
# a position refused. Per source: CJK/Hangul 18 of 20, letters 14, unseen scripts 14, shapes 11, overlaid digits 8
# (two digits offset by a third of a digit or more are, to the segmenter, a number with touching digits).
MIN_REFUSED = 0.55


def test_the_real_model_refuses_drawings_that_are_not_digits(real_client, fixture_data):
    """Held-out non-digits (train/nondigits.py: sources its training never saw), drawn dark on white paper: the
    shipped model answers most of them 422 not_a_digit, and still reads the fixture's digits drawn the same way."""
    from train.nondigits import sources

    rng, answers = np.random.default_rng(5), {}
    for name, make in sorted(sources("heldout", fixture_data.x_test).items()):
        for ink in make(20, rng):
            paper = Image.fromarray((255 - np.clip(ink, 0, 1) * 255).astype(np.uint8), mode="L")
            response = real_client.post("/predict", data=encode(paper), content_type="image/png")
            assert response.status_code in (200, 422)
            code = response.json["error"]["code"] if response.status_code == 422 else None
            answers.setdefault(name, []).append(code == "not_a_digit" or response.json.get("number") is None)
    refused = np.mean([r for rs in answers.values() for r in rs])
    assert refused >= MIN_REFUSED, {name: np.mean(rs) for name, rs in answers.items()}
    digits = [mnist_as_image(d) for d in fixture_data.x_test[:40]]
    read = [real_client.post("/predict", data=encode(d), content_type="image/png").json.get("digit") for d in digits]
    assert np.mean(np.array(read) == fixture_data.y_test[:40]) >= 0.975  # 39 of 40: one may be refused


def test_a_digit_doubtful_alone_is_read_inside_a_number(real_client, real_app, fixture_data):
    """A number is refused when any position is, so a position is held to a lower threshold than a digit alone
    (metadata's threshold_in_number): a fixture digit the model refuses drawn alone is read beside a clear 7."""
    from tests.images import number_image
    from train.numbers import digit_ink

    model = real_app.extensions["digits"].default
    assert model.threshold_in_number < model.threshold
    inks = [digit_ink(digit, 150) for digit in fixture_data.x_test]
    doubtful = []
    for index, ink in enumerate(inks):
        alone, _ = number_image([ink], [])
        response = real_client.post("/predict", data=encode(alone), content_type="image/png")
        if response.status_code == 422 and response.json["error"]["code"] == "not_a_digit":
            doubtful.append(index)
    # cnn v2 refuses 3 of the fixture's 200 digits drawn so (two 4s and a 9, 2026-12-07): one more may go; each is
    # read after a 7
    assert 1 <= len(doubtful) <= 4
    seven = int(np.flatnonzero(fixture_data.y_test == 7)[0])
    for index in doubtful:
        pair, _ = number_image([inks[seven], inks[index]], [40])
        body = real_client.post("/predict", data=encode(pair), content_type="image/png").json
        assert body["number"] == f"7{fixture_data.y_test[index]}", body
