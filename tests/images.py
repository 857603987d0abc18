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


def triangle(size: int = 280, width: int = 18) -> Image.Image:
    """A triangle's outline, dark on white: a shape, not a digit (the browser test draws the same)."""
    image = Image.new("L", (size, size), 255)
    corners = [(0.5, 0.2), (0.78, 0.78), (0.22, 0.78), (0.5, 0.2)]
    ImageDraw.Draw(image).line([(x * size, y * size) for x, y in corners], fill=0, width=width, joint="curve")
    return image


def mnist_as_image(digit: np.ndarray, scale: int = 10, invert: bool = True) -> Image.Image:
    """A 28x28 MNIST digit enlarged `scale` times; inverted means dark ink on white paper."""
    image = Image.fromarray(255 - digit if invert else digit, mode="L")
    return image.resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)


def number_image(
    inks: list[np.ndarray], gaps: list[int | None], slope: float = 0.0, dark_on_light: bool = True, cross: int = 0
) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """train.numbers.compose() as an 8-bit image, dark ink on light paper (or light on dark): (image, digit boxes).
    `cross`: px by which touching digits' strokes cross."""
    from train.numbers import compose

    ink, boxes = compose(inks, gaps, slope, cross=cross)
    level = (np.clip(ink, 0, 1) * 255).round().astype(np.uint8)
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
