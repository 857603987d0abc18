"""Calibrated confidence and "not a digit": the two numbers a model's metadata.json carries for them, applied to
its softmax. Pure numpy; train/calibration.py fits them, the service applies them, both through these functions.

- temperature T (Guo et al., 2017): p_i ∝ p_i^(1/T), i.e. logits / T, fitted so that "90% confident" is right
  about 90% of the time;
- threshold: an image whose calibrated top probability is below it is not read as a digit (maximum-softmax
  rejection, Hendrycks and Gimpel, 2017, on a model trained with outlier exposure).
"""

from __future__ import annotations

import numpy as np

TINY = 1e-30  # a softmax output of exactly 0 has log -inf; this keeps the order of the others


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Probabilities [N, 10] -> the same scaled by a temperature, float64 rows summing to 1."""
    probs = np.asarray(probs, np.float64)
    if temperature == 1.0:
        return probs / probs.sum(axis=1, keepdims=True)
    logits = np.log(np.maximum(probs, TINY)) / temperature  # log p = logits + a constant per row
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def classifier_part(mixed: np.ndarray) -> np.ndarray:
    """A detector export's softmax s*p + (1 - s)/10 [N, 10] -> p, the classifier's own [N, 10] float64.

    Its smallest entry is s*min(p) + (1 - s)/10: taking min(p) as 0 (a softmax's smallest of ten is
    near it) and subtracting it leaves s*(p - min(p)), whatever s; normalised, that is p. A row with nothing left
    (s = 0) is uniform."""
    mixed = np.asarray(mixed, np.float64)
    spread = mixed - mixed.min(axis=1, keepdims=True)  # [N, 10], s*(p - min p)
    total = spread.sum(axis=1, keepdims=True)
    uniform = np.full_like(spread, 0.1)
    return np.divide(spread, total, out=uniform, where=total > 0)


def is_digit(probs: np.ndarray, threshold: float) -> np.ndarray:
    """Calibrated probabilities [N, 10] -> bool [N]: is the top probability at least the threshold."""
    return np.asarray(probs).max(axis=1) >= threshold


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE: the gap between confidence and accuracy, averaged over equal-width confidence bins, weighted by size."""
    confidence, right = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    gaps = [
        abs(confidence[which == b].mean() - right[which == b].mean()) * np.mean(which == b)
        for b in range(bins)
        if np.any(which == b)
    ]
    return float(sum(gaps))
