"""The MNIST recipe as pure functions: numpy in, numpy out.

Input everywhere is a grayscale image as float32 [H, W] in 0..1 (1 = white), already decoded
and alpha-flattened (see decoding.py). Output is what the model's contract asks for:
float32 [28, 28], 0..255, white ink on black, the digit scaled into a 20x20 box and centred
by its centre of mass, like the original MNIST digits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import cv2
import numpy as np

from service.contract import BOX  # MNIST digits were scaled to fit 20x20
from service.contract import SIDE as SIZE  # the model's input side, 28
from service.errors import NoDigit

WORK = 4 * BOX  # working resolution for stroke-width normalisation (80 px long side)
INK = 0.3  # a pixel is ink above this fraction of the ink's contrast
MIN_CONTRAST = 0.15  # below this (0..1) the image is blank
MIN_EXTENT = 0.04  # ink spanning less than this fraction of the image is a speck, not a digit
# Mean stroke width of MNIST digits in 20-px-box pixels, as stroke_width() measures it at WORK
# resolution: 2.05 on the first 5,000 training digits (tests/test_preprocessing.py re-measures it).
MNIST_STROKE = 2.0
STROKE_RANGE = (0.7, 1.45)  # widths within this factor are left alone: 80% of MNIST digits
# MNIST's mean centre of mass is (14.0, 14.0) in row/column pixel indices.
CENTRE = 14.0


def ink_levels(gray: np.ndarray) -> tuple[bool, float, float]:
    """(dark_ink, background, contrast) of a gray image [H, W] in 0..1, all in ink units (1 = full ink).

    Polarity is read off the border, the paper: dark ink on light paper when the border is light.
    """
    border = np.sort(np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]]))
    paper = float(border[(len(border) - 1) // 2] + border[len(border) // 2]) / 2  # the median, without its overhead
    dark = paper > 0.5
    background = 1.0 - paper if dark else paper
    peak = 1.0 - float(gray.min()) if dark else float(gray.max())
    return dark, background, max(0.0, peak - background)


def ink_of(gray: np.ndarray, levels: tuple[bool, float, float]) -> np.ndarray:
    """Gray [H, W] 0..1 -> ink [H, W] float32 0..1 (1 = ink), given the image's ink_levels()."""
    dark, background, contrast = levels
    if contrast <= 0:
        return np.zeros(gray.shape, np.float32)
    # in place after one copy, as this can run on a full image
    ink = np.subtract(np.float32(1), gray, dtype=np.float32) if dark else gray.astype(np.float32, copy=True)
    ink -= np.float32(background)
    ink *= np.float32(1 / contrast)
    return np.minimum(np.maximum(ink, 0, out=ink), 1, out=ink)  # np.clip's result, without its overhead


def ink_region(gray: np.ndarray, levels: tuple[bool, float, float], threshold: float = INK) -> np.ndarray:
    """crop_to_ink(ink_of(gray)), exactly, without converting the whole image: [h, w] float32 ink.

    The bounding box is first found on the raw gray with a slightly looser threshold (so it holds the
    exact box), then only that region is converted and cropped exactly. Empty [0, 0] if there is no ink.
    """
    dark, background, contrast = levels
    loose = background + (threshold - 1e-3) * contrast  # in ink units
    box = mask_bbox(gray < (1.0 - loose) if dark else gray > loose) if contrast > 0 else None
    if box is None:
        return np.zeros((0, 0), np.float32)
    region = ink_of(gray[box[0] : box[1], box[2] : box[3]], levels)
    box = ink_bbox(region, threshold)
    if box is None:
        return np.zeros((0, 0), np.float32)
    return region[box[0] : box[1], box[2] : box[3]]


def mask_bbox(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right), exclusive ends, of the True pixels; None if none."""
    if mask.size == 0:
        return None
    mask = np.asarray(mask, dtype=bool).view(np.uint8)  # the same bytes, as OpenCV's 8-bit image
    left, top, width, height = cv2.boundingRect(mask)  # of the non-zero pixels, in C
    return (top, top + height, left, left + width) if width else None


def ink_bbox(ink: np.ndarray, threshold: float = INK) -> tuple[int, int, int, int] | None:
    """The bounding box (mask_bbox) of the pixels above `threshold`; None if none."""
    return mask_bbox(ink > threshold)


def is_speck(ink_shape: tuple[int, int], image_shape: tuple[int, ...]) -> bool:
    """Ink spanning less than MIN_EXTENT of the image (and at least 2 px) is a speck, not a digit."""
    return max(ink_shape) < max(2, MIN_EXTENT * max(image_shape))


def digit_region(gray: np.ndarray) -> np.ndarray:
    """The digit's ink, cropped: crop_to_ink(ink_of(gray)) converting only that region; NoDigit for an
    empty, nearly uniform (under MIN_CONTRAST) or speck-only image."""
    levels = ink_levels(gray)
    crop = ink_region(gray, levels) if levels[2] >= MIN_CONTRAST else np.zeros((0, 0), np.float32)
    if crop.size == 0 or is_speck(crop.shape, gray.shape):
        raise NoDigit("no digit found: the image is blank or nearly blank")
    return crop


def crop_to_ink(ink: np.ndarray, threshold: float = INK) -> np.ndarray:
    box = ink_bbox(ink, threshold)
    if box is None:
        raise NoDigit("no digit found: the image is blank")
    top, bottom, left, right = box
    return ink[top:bottom, left:right]


# Weights are cached per (size, new size) pair: a few hundred pairs recur (digit crops are at most 279 px a side,
# as decoding reduces images towards 140 px); 128 of them take at most 12 MB, typically well under 1 MB.
@functools.lru_cache(maxsize=128)
def _bilinear_weights(size: int, new_size: int) -> np.ndarray:
    """Pillow's BILINEAR resampling weights from `size` samples to `new_size`: float32 [new_size, size].

    Pillow's triangle filter widens its support when shrinking, so downscaling is anti-aliased; the weights
    are computed as its Resample.c does: in double, over [low, high) taps, each row divided by its sum.
    """
    scale = size / new_size
    support = max(scale, 1.0)
    centre = (np.arange(new_size) + 0.5) * scale  # [new_size]
    low = np.maximum(0, (centre - support + 0.5).astype(int))  # C's (int) truncates, as astype does
    high = np.minimum(size, (centre + support + 0.5).astype(int))
    taps = np.arange(size)[None, :]  # [1, size]
    weights = np.maximum(0.0, 1.0 - np.abs((taps - centre[:, None] + 0.5) * (1.0 / support)))
    weights *= (taps >= low[:, None]) & (taps < high[:, None])
    total = np.cumsum(weights, axis=1)[:, -1:]  # summed in order, as Pillow does (adding zeros changes nothing)
    weights = np.divide(weights, total, out=weights, where=total != 0).astype(np.float32)
    weights.setflags(write=False)  # shared by every call through the cache
    return weights


def resize(a: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Anti-aliased resize of a float image to (height, width): Pillow's BILINEAR, without an image per call.

    Shrinking: two small float32 matrix products with Pillow's weights, along rows first, then along columns, as
    Pillow's two passes are (which sum in double): Pillow's result within 2e-7.
    """
    if a.shape == shape:
        return a.astype(np.float32, copy=False)
    out = np.asarray(a, dtype=np.float32)
    if shape[0] >= out.shape[0] and shape[1] >= out.shape[1]:
        # Enlarging, Pillow's filter is plain bilinear interpolation between pixel centres, edges repeated:
        # OpenCV's INTER_LINEAR, in C (with float32 weights: within 1e-6 of Pillow's)
        return cv2.resize(out, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    if shape[1] != out.shape[1]:
        out = out @ _bilinear_weights(out.shape[1], shape[1]).T  # [h, new_w]
    if shape[0] != out.shape[0]:
        out = _bilinear_weights(out.shape[0], shape[0]) @ out  # [new_h, new_w]
    return out


def fit_to_box(a: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is `box` pixels, keeping the aspect ratio; peak renormalised to 1."""
    h, w = a.shape
    scale = box / max(h, w)
    out = resize(a, (max(1, round(h * scale)), max(1, round(w * scale))))
    # np.clip(out, 0, None) without its overhead; in place when resize() made a new array (it returns `a` unscaled)
    out = np.maximum(out, 0, out=None if out is a else out)
    peak = cv2.minMaxLoc(out)[1]  # out.max(), in C without numpy's reduction set-up (out is 2-D float32)
    return out / np.float32(peak) if peak > 0 else out


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width of a binary drawing: 2 x area / perimeter (a long stroke's perimeter is ~2x its length)."""
    mask = np.ascontiguousarray(mask, dtype=bool).view(np.uint8)  # the same bytes, as OpenCV's 8-bit image
    area = cv2.countNonZero(mask)
    if area == 0:
        return 0.0
    # perimeter: edges between ink and background, counted on the mask framed by one pixel of background (the
    # image's border counts as background), as the pixels that differ from their neighbour below, then right
    framed = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
    down = cv2.countNonZero(cv2.bitwise_xor(framed[1:], framed[:-1]))
    across = cv2.countNonZero(cv2.bitwise_xor(framed[:, 1:], framed[:, :-1]))
    return 2.0 * area / (down + across)


_SQUARE = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 3))
_CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))


def _morph(a: np.ndarray, radius: int, op: Callable[..., np.ndarray], grow: bool) -> np.ndarray:
    """`radius` rounds of a 3x3 max (or min) filter, alternating square and cross to stay roughly round.

    The image is padded with background once; with `grow` the result keeps that margin (a dilated
    stroke is never clipped), otherwise it is cropped back to the input's shape. `op` is cv2.dilate or
    cv2.erode: flat max/min filters compose, so the rounds are one square of side 2 * ceil(radius / 2) + 1
    (separable, in C) and floor(radius / 2) crosses; OpenCV ignores pixels beyond the padded image, as the
    rounds did, so the result is exactly theirs.
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    p = cv2.copyMakeBorder(a, radius, radius, radius, radius, cv2.BORDER_CONSTANT, value=0)
    squares, crosses = (radius + 1) // 2, radius // 2
    if squares:
        p = op(p, _SQUARE, iterations=squares)
    if crosses:
        p = op(p, _CROSS, iterations=crosses)
    return p if grow or radius == 0 else p[radius:-radius, radius:-radius]


def dilate(a: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation; the canvas grows by `radius` on every side so no stroke is clipped."""
    return _morph(a, radius, cv2.dilate, grow=True)


def erode(a: np.ndarray, radius: int) -> np.ndarray:
    """Grey erosion; the image's border counts as background."""
    return _morph(a, radius, cv2.erode, grow=False)


def normalize_stroke(crop: np.ndarray) -> np.ndarray:
    """Thicken thin strokes and thin thick ones towards MNIST's pen width (at WORK resolution)."""
    work = fit_to_box(crop, WORK)
    width = stroke_width(work > 0.5)
    target = MNIST_STROKE * WORK / BOX
    low, high = STROKE_RANGE
    if width < target * low:
        work = dilate(work, round((target - width) / 2))
    elif width > target * high:
        # never erode more than a stroke can lose and still be there
        work = erode(work, min(round((width - target) / 2), max(0, int(width / 2) - 2)))
    return work


def center_by_mass(box: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Place `box` in a size x size field so that its centre of mass is at the field's centre."""
    moments = cv2.moments(box)  # in C, in double: the sum of mass (m00) and its first moments about x and y
    total = moments["m00"]
    h, w = box.shape
    if total <= 0:
        cy, cx = (h - 1) / 2, (w - 1) / 2
    else:
        cy, cx = moments["m01"] / total, moments["m10"] / total
    top, left = round(CENTRE * size / SIZE - cy), round(CENTRE * size / SIZE - cx)
    field = np.zeros((size + 2 * size, size + 2 * size), np.float32)  # room for any offset
    field[size + top : size + top + h, size + left : size + left + w] = box
    return field[size : 2 * size, size : 2 * size]


def image_ink(gray: np.ndarray) -> np.ndarray:
    """The whole image's stage: gray [H, W] 0..1 -> ink [H, W] float32 0..1 (1 = ink, polarity read off the
    border); NoDigit where digit_region() finds none (too little contrast, no ink, or only a speck)."""
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    levels = ink_levels(gray)
    ink = ink_of(gray, levels) if levels[2] >= MIN_CONTRAST else None
    box = ink_bbox(ink) if ink is not None else None
    if box is None or is_speck((box[1] - box[0], box[3] - box[2]), gray.shape):
        raise NoDigit("no digit found: the image is blank or nearly blank")
    return ink


def digit_input(crop: np.ndarray) -> np.ndarray:
    """One digit's stage: its ink cropped to its box (float32 [h, w] 0..1) -> model input [28, 28] float32 0..255.

    preprocess(gray) is digit_input(digit_region(gray)), step for step (tests/test_preprocessing.py checks it).
    """
    work = normalize_stroke(crop)
    digit = fit_to_box(crop_to_ink(work, 0.05), BOX)
    return center_by_mass(digit) * 255.0


def preprocess(gray: np.ndarray) -> np.ndarray:
    """Grayscale [H, W] 0..1 -> model input [28, 28] float32 0..255 (white ink on black)."""
    if gray.ndim != 2 or gray.size == 0:
        raise ValueError(f"expected a non-empty 2-D grayscale array, got shape {gray.shape}")
    work = normalize_stroke(digit_region(gray))
    digit = fit_to_box(crop_to_ink(work, 0.05), BOX)
    return center_by_mass(digit) * 255.0
