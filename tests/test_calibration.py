"""Temperature scaling and "not a digit" thresholds (service/calibration.py, train/calibration.py), checked against
what they mean: a fitted temperature undoes a known miscalibration, a threshold refuses the share it was set for."""

from __future__ import annotations

import numpy as np
import pytest

from service.calibration import classifier_part, expected_calibration_error, is_digit, temper
from train.calibration import REFUSE_DIGITS, REFUSE_IN_NUMBER, calibrate, fit_temperature, rejection_threshold


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sampled(temperature: float, n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Softmax outputs whose labels are drawn from softmax(logits / temperature): calibrated at that temperature."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 3, (n, 10))
    truth = softmax(logits / temperature)
    labels = (truth.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return softmax(logits), labels


def test_temperature_one_changes_nothing_and_others_keep_the_order():
    probs, _ = sampled(1.0, 200)
    np.testing.assert_allclose(temper(probs, 1.0), probs)
    for t in (0.5, 2.0):
        tempered = temper(probs, t)
        np.testing.assert_allclose(tempered.sum(axis=1), 1.0)
        assert (tempered.argmax(axis=1) == probs.argmax(axis=1)).all()
        assert (tempered.max(axis=1) < probs.max(axis=1)).all() == (t > 1)


@pytest.mark.parametrize("likeness", [1.0, 0.9, 0.3, 1e-3])
def test_classifier_part_undoes_the_detector_mix(likeness):
    """s*p + (1 - s)/10 -> p, exactly where p's smallest entry is 0, else p less its smallest, renormalised."""
    p = softmax(np.random.default_rng(1).normal(0, 4, (500, 10)))
    smallest = p.min(axis=1, keepdims=True)
    expected = (p - smallest) / (1 - 10 * smallest)
    got = classifier_part(likeness * p + (1 - likeness) / 10)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    assert (got.argmax(axis=1) == p.argmax(axis=1)).all() and np.allclose(got.sum(axis=1), 1)
    one_hot = np.eye(10)[[3, 7]]  # a softmax that is sure: recovered exactly
    np.testing.assert_allclose(classifier_part(likeness * one_hot + (1 - likeness) / 10), one_hot, atol=1e-9)


def test_classifier_part_of_nothing_digit_like_is_uniform():
    np.testing.assert_allclose(classifier_part(np.full((2, 10), 0.1)), np.full((2, 10), 0.1))


def test_temper_matches_dividing_the_logits():
    logits = np.random.default_rng(1).normal(0, 4, (50, 10))
    np.testing.assert_allclose(temper(softmax(logits), 1.7), softmax(logits / 1.7), atol=1e-12)


@pytest.mark.parametrize("true_temperature", [0.6, 1.0, 2.5])
def test_the_fitted_temperature_undoes_a_known_miscalibration(true_temperature):
    probs, labels = sampled(true_temperature)
    fitted = fit_temperature(probs, labels)
    assert abs(np.log(fitted / true_temperature)) < 0.08
    calibrated = temper(probs, fitted)
    assert expected_calibration_error(calibrated, labels) < 0.015
    if true_temperature != 1.0:
        assert expected_calibration_error(probs, labels) > 2 * expected_calibration_error(calibrated, labels)


def test_ece_is_the_gap_between_confidence_and_accuracy():
    probs = np.full((100, 10), 0.1 / 9)
    probs[:, 0] = 0.9  # always 90% sure of class 0
    labels = np.r_[np.zeros(60, int), np.ones(40, int)]  # right 60% of the time
    assert expected_calibration_error(probs, labels) == pytest.approx(0.3)


def test_the_threshold_refuses_the_share_it_was_chosen_for():
    probs, labels = sampled(1.0)
    threshold = rejection_threshold(probs, 0.01)
    assert 1 - is_digit(probs, threshold).mean() == pytest.approx(0.01, abs=0.002)


def test_calibrate_records_what_it_fitted_and_what_it_refuses():
    probs, labels = sampled(2.0)
    others = softmax(np.random.default_rng(3).normal(0, 0.5, (1000, 10)))  # flat: nothing stands out
    fitted = calibrate(probs, labels, others)
    assert fitted["calibration"]["temperature"] == pytest.approx(2.0, rel=0.1)
    rejection = fitted["rejection"]
    assert rejection["validation"]["digits_refused"] == pytest.approx(REFUSE_DIGITS, abs=0.002)
    assert rejection["validation"]["digits_refused_in_number"] == pytest.approx(REFUSE_IN_NUMBER, abs=0.001)
    assert rejection["threshold_in_number"] < rejection["threshold"]
    assert rejection["validation"]["nondigits_refused"] > 0.9
    assert 0 < rejection["threshold"] < rejection["unsure_below"] <= 1
