"""The models that ship in models/: complete, on target, and as accurate as their metadata says."""

from __future__ import annotations

import numpy as np
import pytest

from service.contract import latest_version, read_metadata
from tests.conftest import MODELS
from train.evaluate import evaluate, savedmodel_predict

# Accuracy on MNIST's 10,000 test images each shipped architecture is held to: targets fixed when the models
# first shipped (commit 22a9d78; the repository records no derivation). v1 of each, measured by digits-train's
# export (metadata.json) and re-measured by test_reaches_the_accuracy_its_metadata_records on $MNIST_DIR:
# cnn 0.9970 (30 errors: no margin, a 31st fails), mlp 0.9855 (145 errors: 35 to spare), softmax 0.9252
# (748 errors: 52 to spare).
TARGETS = {"cnn": 0.9970, "mlp": 0.982, "softmax": 0.92}


@pytest.fixture(scope="module", params=sorted(TARGETS))
def shipped(request, require):
    base = MODELS / request.param
    require(base.is_dir(), f"models/{request.param} is missing")
    return request.param, latest_version(base)


def test_layout_metadata_and_report(shipped):
    name, path = shipped
    assert (path / "saved_model.pb").is_file() and (path / "variables" / "variables.index").is_file()
    meta = read_metadata(path)
    assert meta["name"] == name and meta["architecture"] == name and str(meta["version"]) == path.name
    assert meta["training"]["train_images"] == 55_000 and meta["training"]["validation_images"] == 5_000
    assert meta["metrics"]["test_images"] == 10_000
    for png in ("confusion.png", "curves.png", "misclassified.png"):
        assert (path / "report" / png).stat().st_size > 1000


def test_meets_its_accuracy_target(shipped):
    name, path = shipped
    assert read_metadata(path)["metrics"]["test_accuracy"] >= TARGETS[name]


@pytest.mark.slow
def test_reaches_the_accuracy_its_metadata_records(shipped, full_mnist):
    """Re-evaluates the exported model on the full MNIST test set (MNIST_DIR; always in CI)."""
    _, path = shipped
    meta = read_metadata(path)
    assert meta["data"]["sha256"]["t10k-images-idx3-ubyte.gz"] == full_mnist.checksums["t10k-images-idx3-ubyte.gz"]
    metrics, _ = evaluate(savedmodel_predict(str(path)), full_mnist.x_test, full_mnist.y_test)
    assert metrics["accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"], abs=1e-4)  # 1 image in 10,000
    assert metrics["per_class_accuracy"] == pytest.approx(meta["metrics"]["per_class_accuracy"], abs=1e-4)


def test_cnn_is_the_default(real_app):
    assert real_app.extensions["digits"].default.info.name == "cnn"


def test_litert_runtime_matches_the_savedmodel(shipped, fixture_data):
    """Both runtimes give the same probabilities within 1e-4 (SavedModel stays the contract)."""
    from service.runtimes import LiteRTRuntime, SavedModelRuntime

    _, path = shipped
    assert read_metadata(path)["runtimes"]["litert"]["max_abs_diff"] <= 1e-4
    x = fixture_data.x_test.astype("float32")
    reference = SavedModelRuntime(path).predict(x)
    litert = LiteRTRuntime(path)
    assert abs(litert.predict(x) - reference).max() <= 1e-4
    for n in (1, 3, 17):  # padded batch buckets give the same answers
        assert abs(litert.predict(x[:n]) - reference[:n]).max() <= 1e-4


# "Not a digit" (train/detector.py): the share of held-out non-digits (train/nondigits.py's "heldout" split, 100 per
# source) each shipped model refuses at its own threshold, at least: a few points under what the v2 models refused
# when first measured with this test's data (2026-12-07: cnn 81.4%, mlp 78.0%, softmax 75.6%; MNIST test
# refused 0.49%, 0.50%, 0.55%). bench/ood_eval.py measures 600 per source.
REFUSES = {"cnn": 0.76, "mlp": 0.72, "softmax": 0.70}


@pytest.mark.slow
def test_refuses_held_out_non_digits_and_few_mnist_digits(shipped, full_mnist):
    from service.predictor import Predictor
    from train.nondigits import dataset

    name, path = shipped
    model = Predictor(path)
    others = np.concatenate(list(dataset("heldout", 100, full_mnist.x_test, seed=11).values()))
    refused = 1 - model.is_digit(model.predict(others)).mean()
    digits_refused = 1 - model.is_digit(model.predict(full_mnist.x_test.astype(np.float32))).mean()
    assert refused >= REFUSES[name] and digits_refused <= 0.01  # 0.5% of validation digits, and some slack


def test_a_detector_export_gives_back_its_classifiers_own_probabilities(shipped, fixture_data):
    """Segmentation weighs the classifier's own probabilities (Predictor.predict_parts()): for an export with a
    "not a digit" detector they are those of the model it was built from (its metadata's detector.from), the
    trusted reference, to within the classifier's smallest probability."""
    from service.predictor import Predictor

    name, path = shipped
    source = read_metadata(path).get("detector", {}).get("from")
    if source is None:  # a model without a detector: its own probabilities are its answers
        model = Predictor(path)
        answers, own = model.predict_parts(fixture_data.x_test.astype(np.float32))
        np.testing.assert_array_equal(answers, own)
        return
    x = fixture_data.x_test.astype(np.float32)
    _, own = Predictor(path).predict_parts(x)
    reference = Predictor(MODELS / name / str(source["version"])).predict(x)
    assert (own.argmax(axis=1) == reference.argmax(axis=1)).all()
    assert abs(own - reference).max() <= 0.01
