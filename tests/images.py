"""Helpers that make test images."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def drawn_one(size: int = 280, width: int = 18, dark_on_light: bool = True) -> Image.Image:
    """A plain vertical stroke, the simplest '1'."""
    bg, ink = (255, 0) if dark_on_light else (0, 255)
    image = Image.new("L", (size, size), bg)
    ImageDraw.Draw(image).line([(size // 2, size // 5), (size // 2, size * 4 // 5)], fill=ink, width=width)
    return image


def mnist_as_image(digit: np.ndarray, scale: int = 10, invert: bool = True) -> Image.Image:
    """A 28x28 MNIST digit enlarged `scale` times; inverted means dark ink on white paper."""
    image = Image.fromarray(255 - digit if invert else digit, mode="L")
    return image.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)


def digit_strokes(digit: np.ndarray, height: int, brush: int = 2) -> np.ndarray:
    """A 28x28 MNIST digit as solid canvas strokes (bench/canvas_eval.py's), cropped: ink [h, w] in {0, 1}."""
    from bench.canvas_eval import strokes
    from service.preprocessing import crop_to_ink

    return crop_to_ink(strokes(digit, height, brush), 0.5)


def touching_left(canvas: np.ndarray, ink: np.ndarray, top: int, left: int) -> int:
    """The largest left edge, at most `left`, at which `ink` [h, w] (its top at row `top`) touches the ink already
    on `canvas` (8-connected): slid leftwards a column at a time; `left` if it never does."""
    import cv2

    h, w = ink.shape
    grown = cv2.dilate(np.pad(ink > 0.5, 1).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # [h + 2, w + 2]
    for x in range(left, max(left - w, 1) - 1, -1):
        if (grown & (canvas[top - 1 : top + h + 1, x - 1 : x + w + 1] > 0.5)).any():
            return x
    return left


def number_image(
    inks: list[np.ndarray], gaps: list[int | None], slope: float = 0.0, margin: int = 30, dark_on_light: bool = True
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Digit inks [h, w] (1 = ink) written left to right, bottoms on a line rising `slope` px per px: gaps[i] px
    between digit i's and digit i+1's boxes (negative: boxes overlap; None: the two touch). -> (image, the
    (x, y, width, height) box of each digit in it)."""
    height = max(ink.shape[0] for ink in inks)
    width = sum(ink.shape[1] for ink in inks) + sum(abs(g or 0) for g in gaps) + 2 * margin
    rise = int(abs(slope) * width) + 1
    canvas = np.zeros((height + rise + 2 * margin, width), np.float32)
    boxes, left = [], margin
    for i, ink in enumerate(inks):
        h, w = ink.shape
        top = margin + height - h + round(rise / 2 - slope * (left - width / 2))
        if i and gaps[i - 1] is None:
            left = touching_left(canvas, ink, top, left)
        region = canvas[top : top + h, left : left + w]
        np.maximum(region, ink, out=region)
        boxes.append((left, top, w, h))
        left += w + (gaps[i] if i < len(gaps) and gaps[i] is not None else 0)
    level = (np.clip(canvas, 0, 1) * 255).round().astype(np.uint8)
    return Image.fromarray(255 - level if dark_on_light else level, mode="L"), boxes


# Digits drawn as a person draws them, stroke by stroke: polylines in a unit box (x right, y down).
PEN_STROKES = {
    "1": [[(0.5, 0.0), (0.5, 1.0)]],
    "4": [[(0.55, 0.0), (0.05, 0.62), (0.95, 0.62)], [(0.7, 0.3), (0.7, 1.0)]],  # the second crosses the bar
    "5": [
        [(0.2, 0.0), (0.95, 0.0)],
        [(0.2, 0.1), (0.15, 0.45), (0.55, 0.38), (0.9, 0.55), (0.9, 0.8), (0.6, 1.0), (0.05, 0.92)],
    ],  # the bar drawn apart: it does not touch the stem
    "7": [[(0.0, 0.0), (1.0, 0.0)], [(0.97, 0.06), (0.35, 1.0)]],  # the stem drawn apart from the bar
}


def pen_digit(digit: str, height: int, width: int, pen: int) -> np.ndarray:
    """PEN_STROKES[digit] drawn with a round pen `pen` px wide in a `width` x `height` box: ink [h, w] in 0..1."""
    pad = pen
    image = Image.new("L", (width + 2 * pad, height + 2 * pad), 0)
    draw = ImageDraw.Draw(image)
    for stroke in PEN_STROKES[digit]:
        points = [(pad + x * width, pad + y * height) for x, y in stroke]
        draw.line(points, fill=255, width=pen, joint="curve")
        for x, y in points[:: len(points) - 1]:  # round ends
            draw.ellipse((x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2), fill=255)
    return np.asarray(image, np.float32) / 255
