"""Synthetic handwritten numbers made of MNIST digits, drawn as canvas strokes: what segmentation's scoring is
fitted on (train/segmenter.py) and what its tests read. Pure functions on numpy arrays.
"""

from __future__ import annotations

import cv2
import numpy as np

from service.preprocessing import crop_to_ink, dilate, erode, resize


def solid_strokes(digit: np.ndarray, height: int, brush: int = 2) -> np.ndarray:
    """A 28x28 uint8 MNIST digit as solid strokes `height` px tall, widened (or thinned) by `brush` px, as a canvas
    brush draws: ink [h, w] in {0, 1} (a widened digit keeps the margin dilation adds). bench/canvas_eval.py
    draws its digits with it too."""
    crop = crop_to_ink(digit.astype(np.float32) / 255.0, 0.2)
    scale = height / crop.shape[0]
    big = resize(crop, (height, max(1, round(crop.shape[1] * scale))))
    mask = (big > 0.45).astype(np.float32)  # canvas brushes are solid, not grey
    if brush > 0:
        mask = dilate(mask, brush)
    elif brush < 0:
        thinned = erode(mask, -brush)
        mask = thinned if thinned.sum() > 0.25 * mask.sum() else mask  # keep the digit drawable
    return mask


def digit_ink(digit: np.ndarray, height: int, brush: int = 2) -> np.ndarray:
    """solid_strokes(), cropped to its ink."""
    return crop_to_ink(solid_strokes(digit, height, brush), 0.5)


def touching_left(canvas: np.ndarray, ink: np.ndarray, top: int, left: int) -> int:
    """The largest left edge, at most `left`, at which `ink` [h, w] (its top at row `top`) touches the ink already
    on `canvas` (8-connected): slid leftwards a column at a time; `left` if it never does."""
    h, w = ink.shape
    grown = cv2.dilate(np.pad(ink > 0.5, 1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # [h + 2, w + 2]
    for x in range(left, max(left - w, 1) - 1, -1):
        if (grown & (canvas[top - 1 : top + h + 1, x - 1 : x + w + 1] > 0.5)).any():
            return x
    return left


def compose(
    inks: list[np.ndarray], gaps: list[int | None], slope: float = 0.0, margin: int = 30, cross: int = 0
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Digit inks [h, w] (1 = ink) written left to right, bottoms on a line rising `slope` px per px: gaps[i] px
    between digit i's and digit i+1's boxes (negative: the boxes overlap; None: the two digits touch, their strokes
    crossing by `cross` px). -> (ink [H, W] float32 0..1, the (x, y, width, height) box of each digit in it)."""
    height = max(ink.shape[0] for ink in inks)
    width = sum(ink.shape[1] for ink in inks) + sum(abs(g or 0) for g in gaps) + 2 * margin
    rise = int(abs(slope) * width) + 1
    canvas = np.zeros((height + rise + 2 * margin, width), np.float32)
    boxes, left = [], margin
    for i, ink in enumerate(inks):
        h, w = ink.shape
        top = margin + height - h + round(rise / 2 - slope * (left - width / 2))
        if i and gaps[i - 1] is None:
            left = touching_left(canvas, ink, top, left) - cross
        region = canvas[top : top + h, left : left + w]
        np.maximum(region, ink, out=region)
        boxes.append((left, top, w, h))
        left += w + (gaps[i] if i < len(gaps) and gaps[i] is not None else 0)
    return canvas, boxes


def soft_digit_ink(digit: np.ndarray, height: int, pen: int = 0) -> np.ndarray:
    """A 28x28 uint8 MNIST digit as pen ink on paper: grey, soft-edged, `height` px tall, thickened by `pen` px:
    ink [h, w] in 0..1, cropped."""
    crop = crop_to_ink(digit.astype(np.float32) / 255.0, 0.2)
    grey = np.clip(resize(crop, (height, max(1, round(crop.shape[1] * height / crop.shape[0])))), 0, 1)
    return crop_to_ink(dilate(grey, pen) if pen > 0 else grey, 0.1)


def on_paper(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ink [H, W] 0..1 written on light, unevenly lit, grainy paper: gray [H, W] float32 0..1 (1 = white)."""
    h, w = ink.shape
    gy, gx = rng.uniform(-0.08, 0.08, 2)
    paper = rng.uniform(0.8, 0.95) + gy * np.linspace(-1, 1, h)[:, None] + gx * np.linspace(-1, 1, w)[None, :]
    paper = paper + rng.normal(0, rng.uniform(0.005, 0.025), (h, w))
    return np.clip(paper * (1 - rng.uniform(0.55, 0.9) * ink), 0, 1).astype(np.float32)
