"""Slow, obvious versions of preprocessing steps, which the service's fast path is tested against.

They convert the whole image to ink first; service/preprocessing.py converts only the digit's region.
"""

from __future__ import annotations

import numpy as np

from service.preprocessing import MIN_CONTRAST, ink_bbox, ink_levels, ink_of, is_speck


def to_ink(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """Gray [H, W] 0..1 -> (ink [H, W] in 0..1 with 1 = ink, contrast)."""
    levels = ink_levels(gray)
    return ink_of(gray, levels), levels[2]


def is_blank(ink: np.ndarray, contrast: float) -> bool:
    """True for an empty, nearly uniform or speck-only image."""
    box = ink_bbox(ink)
    if contrast < MIN_CONTRAST or box is None:
        return True
    return is_speck((box[1] - box[0], box[3] - box[2]), ink.shape)
