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
