"""Training package: each architecture trains on the fixture, exports the documented contract, reports."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from train.__main__ import build_parser, config_from_args
from train.config import TrainConfig
from train.export import INPUT_CONTRACT, load_serving_fn, next_version, read_metadata
from train.models import StrokeWidth, build_augmenter, build_model
from train.trainer import run

ARCHS = ["softmax", "mlp", "cnn"]


def quick_config(tmp_path, arch, **kw) -> TrainConfig:
    defaults = dict(arch=arch, epochs=1, batch_size=64, validation_size=100, out=str(tmp_path), report=False, verbose=0)
    return TrainConfig(**{**defaults, **kw})


@pytest.fixture(scope="module", params=ARCHS)
def exported(request, tmp_path_factory, fixture_data):
    """One quick training run per architecture, exported to a temporary models/ tree."""
    out = tmp_path_factory.mktemp(f"models-{request.param}")
    result = run(quick_config(out, request.param, report=True), data=fixture_data)
    return request.param, result


def test_export_layout_is_tensorflow_serving(exported):
    arch, result = exported
    assert result.path.parts[-2:] == (arch, "1")
    assert (result.path / "saved_model.pb").is_file()
    assert (result.path / "variables" / "variables.index").is_file()
    assert (result.path / "metadata.json").is_file()


def test_export_has_no_optimizer_state(exported):
    _, result = exported
    names = [name for name, _ in tf.train.list_variables(str(result.path / "variables" / "variables"))]
    assert names, "no variables saved"
    assert not [n for n in names if "optimizer" in n.lower() or "iteration" in n.lower()]


def test_signature_contract(exported):
    _, result = exported
    fn = load_serving_fn(result.path)
    (args, kwargs) = fn.structured_input_signature
    assert not args and list(kwargs) == ["images"]
    spec = kwargs["images"]
    assert spec.dtype == tf.float32 and spec.shape.as_list() == [None, 28, 28]
    out = fn.structured_outputs["probabilities"]
    assert out.dtype == tf.float32 and out.shape.as_list() == [None, 10]


def test_probabilities_are_softmax_and_batch_independent(exported, fixture_data):
    _, result = exported
    fn = load_serving_fn(result.path)
    batch = np.resize(fixture_data.x_test, (1000, 28, 28)).astype(np.float32)
    together = fn(images=tf.constant(batch))["probabilities"].numpy()
    np.testing.assert_allclose(together.sum(axis=1), 1.0, atol=1e-5)
    assert (together >= 0).all()
    for i in (0, 1, 537, 999):
        alone = fn(images=tf.constant(batch[i : i + 1]))["probabilities"].numpy()
        np.testing.assert_allclose(alone[0], together[i], atol=1e-4)


def test_inference_is_deterministic(exported, fixture_data):
    """No dropout or augmentation leaks into the exported signature."""
    _, result = exported
    fn = load_serving_fn(result.path)
    x = tf.constant(fixture_data.x_test[:50].astype(np.float32))
    first = fn(images=x)["probabilities"].numpy()
    for _ in range(3):
        np.testing.assert_array_equal(fn(images=x)["probabilities"].numpy(), first)


def test_metadata_schema(exported):
    arch, result = exported
    meta = read_metadata(result.path)
    assert json.loads(json.dumps(meta)) == meta  # plain JSON
    assert meta["name"] == arch and meta["version"] == 1 and meta["architecture"] == arch
    assert isinstance(meta["created_at"], str) and meta["created_at"].endswith("+00:00")
    assert meta["parameters"] == build_model(TrainConfig(arch=arch)).count_params()
    assert meta["size_bytes"] > meta["parameters"] * 4  # float32 weights at least
    hp = meta["hyperparameters"]
    for key in ("epochs", "batch_size", "learning_rate", "schedule", "l1", "l2", "dropout", "seed", "initializer"):
        assert key in hp
    assert hp["initializer"] == "glorot_uniform"
    training = meta["training"]
    assert training["time_s"] > 0 and training["epochs_run"] >= 1 and training["train_images"] == 400
    assert len(training["history"]["loss"]) == training["epochs_run"]
    assert set(meta["data"]["sha256"]) == {
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    }
    metrics = meta["metrics"]
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["test_images"] == 200
    assert set(metrics["per_class_accuracy"]) == {str(d) for d in range(10)}
    assert meta["contract"] == json.loads(json.dumps(INPUT_CONTRACT))


def test_metadata_accuracy_matches_the_artifact(exported, fixture_data):
    _, result = exported
    fn = load_serving_fn(result.path)
    probs = fn(images=tf.constant(fixture_data.x_test.astype(np.float32)))["probabilities"].numpy()
    accuracy = float((probs.argmax(1) == fixture_data.y_test).mean())
    assert accuracy == pytest.approx(result.metadata["metrics"]["test_accuracy"], abs=1e-6)


def test_report_files(exported):
    _, result = exported
    report = result.path / "report"
    for name in ("confusion.png", "curves.png", "misclassified.png"):
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((report / "metrics.json").read_text())
    assert np.asarray(metrics["confusion_matrix"]).sum() == 200
    assert "Test accuracy" in (report / "README.md").read_text()


@pytest.mark.parametrize(("arch", "epochs", "floor"), [("softmax", 10, 0.70), ("mlp", 8, 0.75)])
def test_training_learns(tmp_path, fixture_data, arch, epochs, floor):
    """On 400 digits, a few epochs already beat chance (10%) by far on unseen test digits."""
    result = run(quick_config(tmp_path, arch, epochs=epochs, learning_rate=3e-3), data=fixture_data)
    assert result.metadata["metrics"]["test_accuracy"] >= floor


def test_same_seed_same_accuracy(tmp_path, fixture_data):
    a = run(quick_config(tmp_path / "a", "mlp", epochs=2), data=fixture_data).metadata
    b = run(quick_config(tmp_path / "b", "mlp", epochs=2), data=fixture_data).metadata
    assert abs(a["metrics"]["test_accuracy"] - b["metrics"]["test_accuracy"]) <= 0.001
    assert a["training"]["history"]["loss"] == pytest.approx(b["training"]["history"]["loss"], abs=1e-4)


def test_versions_increment(tmp_path, fixture_data):
    cfg = quick_config(tmp_path, "softmax")
    assert run(cfg, data=fixture_data).path.name == "1"
    assert run(quick_config(tmp_path, "softmax"), data=fixture_data).path.name == "2"
    assert next_version(tmp_path / "softmax") == 3


@pytest.mark.parametrize(
    ("arch", "params"),
    [("softmax", 784 * 10 + 10), ("mlp", 784 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10)],
)
def test_course_architectures_have_textbook_sizes(arch, params):
    assert build_model(TrainConfig(arch=arch)).count_params() == params


def test_mlp_activation_and_regularisation_options():
    model = build_model(TrainConfig(arch="mlp", activation="sigmoid", l1=1e-5, l2=1e-4))
    hidden = model.get_layer("hidden1")
    assert hidden.activation.__name__ == "sigmoid"
    assert hidden.kernel_regularizer.get_config() == pytest.approx({"l1": 1e-5, "l2": 1e-4})


def test_cnn_has_batch_norm_and_dropout():
    kinds = {type(layer).__name__ for layer in build_model(TrainConfig(arch="cnn")).layers}
    assert {"Conv2D", "BatchNormalization", "Dropout", "Rescaling"} <= kinds


def test_stroke_width_thickens_and_thins(fixture_data):
    x = tf.constant(fixture_data.x_test[:8, :, :, None].astype(np.float32))
    ink = lambda t: float(tf.reduce_sum(tf.cast(t > 128, tf.float32)))  # noqa: E731
    assert ink(StrokeWidth(p_thick=1.0, p_thin=0.0, seed=1)(x)) > 1.3 * ink(x)
    assert ink(StrokeWidth(p_thick=0.0, p_thin=1.0, seed=1)(x)) < 0.8 * ink(x)


def test_augmenter_is_identity_at_inference_and_random_in_training(fixture_data):
    aug = build_augmenter(seed=3)
    x = tf.constant(fixture_data.x_test[:16, :, :, None].astype(np.float32))
    np.testing.assert_array_equal(aug(x, training=False).numpy(), x.numpy())
    assert not np.allclose(aug(x, training=True).numpy(), x.numpy())


def test_cli_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    for option in (
        "--arch",
        "--epochs",
        "--batch-size",
        "--learning-rate",
        "--schedule",
        "--l1",
        "--l2",
        "--dropout",
        "--activation",
        "--initializer",
        "--augment",
        "--validation-size",
        "--patience",
        "--seed",
        "--data-dir",
        "--out",
        "--version",
        "--max-train",
    ):
        assert option in text


def test_cli_maps_to_config():
    cfg = config_from_args(
        [
            "--arch",
            "mlp",
            "--epochs",
            "3",
            "--lr",
            "0.01",
            "--augment",
            "true",
            "--activation",
            "sigmoid",
            "--data-dir",
            "/d",
        ]
    )
    assert (cfg.arch, cfg.epochs, cfg.learning_rate, cfg.augment, cfg.activation, cfg.data_dir) == (
        "mlp",
        3,
        0.01,
        True,
        "sigmoid",
        "/d",
    )
    assert cfg.dropout == 0.2  # the mlp's own default fills what was not given


def test_cli_reports_missing_data_clearly(tmp_path, capsys):
    from train.__main__ import main

    assert main(["--arch", "softmax", "--data-dir", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "MNIST files missing" in capsys.readouterr().err


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="unknown arch"):
        TrainConfig(arch="resnet")


def test_litert_export_matches(exported, fixture_data):
    _, result = exported
    entry = read_metadata(result.path)["runtimes"]["litert"]
    assert (result.path / entry["file"]).stat().st_size == entry["bytes"]
    assert entry["max_abs_diff"] <= 1e-4 and entry["checked_images"] == 200
