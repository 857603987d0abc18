"""Slow, obvious versions of preprocessing steps, which the service's fast path is tested against.

to_ink and is_blank convert the whole image to ink first; service/preprocessing.py converts only the digit's
region. pillow_resize and morph are the resize and the dilation/erosion as Pillow and numpy loops do them;
service/preprocessing.py does them in OpenCV and small matrix products.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

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


def pillow_resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pillow's anti-aliased BILINEAR resize of a float image to (height, width)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    image = Image.frombuffer("F", (a.shape[1], a.shape[0]), a, "raw", "F", 0, 1)
    return np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


def morph(a: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    """dilate (grow=True) or erode: `radius` rounds of a 3x3 max (min) filter, square on even rounds, cross on odd
    ones, on the image padded once with `radius` pixels of background; pixels beyond the padding count for nothing.
    """
    op = np.maximum if grow else np.minimum
    p = np.pad(a.astype(np.float32), radius)
    for i in range(radius):
        src = p.copy()
        h, w = p.shape
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                if i % 2 and dy and dx:  # a cross: no diagonal neighbours
                    continue
                dst = p[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)]
                op(dst, src[max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)], out=dst)
    return p if grow or radius == 0 else p[radius:-radius, radius:-radius]
