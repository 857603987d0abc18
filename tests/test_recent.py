"""service/recent.py: the readings a worker keeps for corrections, bounded in bytes."""

from __future__ import annotations

import numpy as np
import pytest

from service.reading import Reading
from service.recent import LARGEST, Recent
from service.segmentation import Box

MODEL = ("cnn", 3)


def reading(digit: int) -> Reading:
    probabilities = np.full(10, 0.01)
    probabilities[digit] = 0.91
    return Reading(Box(0, 0, 10, 10), np.full((28, 28), float(digit)), probabilities)


def gray(side: int, level: float = 0.5) -> np.ndarray:
    return np.full((side, side), level, np.float32)


def test_a_reading_is_recalled_by_its_bytes_and_model_only():
    recent = Recent()
    recent.remember(b"drawing", MODEL, gray(20, 0.2), reading(4))
    seen = recent.recall(b"drawing", MODEL)
    assert seen is not None and seen.probabilities.argmax() == 4 and seen.input[0, 0] == 4
    assert seen.gray.dtype == np.uint8 and (seen.gray == 51).all()  # 0.2 x 255, as stored
    assert recent.recall(b"drawing", ("cnn", 4)) is None  # another version of the model reads it anew
    assert recent.recall(b"drawinG", MODEL) is None


@pytest.mark.parametrize("kept", [2, 3, 6])
def test_the_least_recently_used_go_first_and_memory_stays_bounded(kept):
    recent = Recent(budget=kept * 100)  # room for `kept` images of 10x10 uint8
    for n in range(10):
        recent.remember(bytes([n]), MODEL, gray(10), reading(n % 10))
        recent.recall(b"\x00", MODEL)  # the first, used again and again, stays
        assert recent.used <= recent.budget
    alive = [n for n in range(10) if recent.recall(bytes([n]), MODEL) is not None]
    assert alive == [0, *range(11 - kept, 10)]


def test_a_large_image_is_not_kept_and_a_repeat_is_counted_once():
    recent = Recent()
    side = int(LARGEST**0.5) + 1
    recent.remember(b"photo", MODEL, gray(side), reading(1))
    assert recent.recall(b"photo", MODEL) is None and recent.used == 0
    for _ in range(3):
        recent.remember(b"drawing", MODEL, gray(30), reading(2))
    assert recent.used == 900
