"""train/detector.py: a "not a digit" detector added to a trained model keeps its classifier's answers exactly."""

from __future__ import annotations

import numpy as np
import pytest

from service.contract import read_metadata
from service.predictor import Predictor
from tests.test_train import quick_config
from train import detector
from train.calibrate import recalibrate
from train.nondigits import dataset
from train.trainer import run


@pytest.fixture(scope="module")
def source(tmp_path_factory, fixture_data):
    """A quickly trained mlp export (the fixture's 500 training digits, 100 of them for validation)."""
    return run(quick_config(tmp_path_factory.mktemp("source"), "mlp", epochs=3), data=fixture_data).path


@pytest.fixture(scope="module")
def with_detector(source, tmp_path_factory, fixture_data):
    out = tmp_path_factory.mktemp("detector")
    return detector.run(source, out, None, outliers=600, data=fixture_data, epochs=4, pen=200, verbose=0, typeset=100)


def raw(path) -> Predictor:
    return Predictor(path, runtime="savedmodel")


def test_the_classifier_answers_exactly_as_before(source, with_detector, fixture_data):
    x = fixture_data.x_test.astype(np.float32)
    before, after = raw(source).runtime.predict(x), raw(with_detector).runtime.predict(x)
    assert np.array_equal(before.argmax(1), after.argmax(1))  # mixing with the uniform keeps every argmax
    assert np.allclose(after.sum(1), 1, atol=1e-5) and after.min() >= 0
    meta, was = read_metadata(with_detector), read_metadata(source)
    assert meta["metrics"]["test_accuracy"] == was["metrics"]["test_accuracy"]
    assert meta["training"] == was["training"] and meta["hyperparameters"] == was["hyperparameters"]


def test_non_digits_score_lower_than_digits(with_detector, fixture_data):
    model = Predictor(with_detector)  # LiteRT, calibrated, as the service loads it
    digits = model.predict(fixture_data.x_test.astype(np.float32)).max(1)
    others = np.concatenate(list(dataset("heldout", 40, fixture_data.x_test, seed=3).values()))
    assert np.median(model.predict(others).max(1)) < np.median(digits)


def test_metadata_records_the_detector_and_its_threshold(source, with_detector):
    meta = read_metadata(with_detector)
    assert meta["detector"]["from"]["name"] == "mlp" and meta["detector"]["outliers"] == 600
    assert meta["detector"]["pen_digits"] == 200 and meta["detector"]["typeset_digits"] == 100
    assert meta["detector"]["features"] == "dropout2" and 0 < meta["detector"]["best_val_auc"] <= 1
    assert meta["rejection"]["method"] == "detector_max_softmax" and 0 < meta["rejection"]["threshold"] < 1
    assert meta["parameters"] > read_metadata(source)["parameters"]  # the detector's own weights
    assert (with_detector / "report" / "reliability.png").is_file()


def test_recalibrating_keeps_what_the_threshold_is_read_on(source, with_detector, mnist_fixture_dir):
    """train.calibrate refits an export's threshold for the softmax it answers: the detector-mixed one, or its own."""
    for path, method in ((with_detector, "detector_max_softmax"), (source, "max_softmax")):
        fitted = recalibrate(path, str(mnist_fixture_dir))
        assert fitted["rejection"]["method"] == method
        assert read_metadata(path)["rejection"] == fitted["rejection"]
