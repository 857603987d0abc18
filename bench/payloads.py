"""Realistic request bodies: a drawn canvas, a small upload, batches."""

from __future__ import annotations

import base64
import io
import json
import math

import numpy as np
from PIL import Image, ImageDraw

# Strokes of hand-drawn-looking digits in a 280x280 cell (each digit about 140 px wide, 185 px tall), as polylines.
STROKES = {
    "7": [[(70, 60), (120, 58), (170, 57), (210, 60), (190, 110), (165, 160), (145, 215), (135, 240)]],
    "1": [[(110, 90), (140, 60), (142, 150), (140, 240)]],
    "4": [[(165, 60), (120, 120), (80, 175), (150, 176), (210, 172)], [(175, 110), (172, 175), (170, 240)]],
    "2": [[(85, 100), (110, 65), (150, 57), (190, 75), (195, 115), (170, 160), (120, 205), (80, 240), (210, 238)]],
    "0": [
        [(140 + 62 * math.sin(t / 12 * math.pi), 150 - 90 * math.cos(t / 12 * math.pi)) for t in range(25)],
    ],
}


def draw_digits(number: str, size: int = 280, pitch: int = 168) -> bytes:
    """PNG of a transparent canvas `size` px high with `number` drawn left to right, one digit every `pitch` px (in
    units of a 280-px-high canvas: about 30 px between neighbours' strokes), as the page's canvas.toDataURL() makes
    it. One digit: a square canvas."""
    s = size / 280
    image = Image.new("RGBA", (round((280 + pitch * (len(number) - 1)) * s), size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    for i, digit in enumerate(number):
        for points in STROKES[digit]:
            line = [((x + i * pitch) * s, y * s) for x, y in points]
            draw.line(line, fill=(17, 17, 17, 255), width=int(18 * s), joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_png(size: int = 280) -> bytes:
    """A 280x280 transparent canvas with a hand-drawn-looking '7', as the page's canvas.toDataURL() makes it."""
    return draw_digits("7", size)


def number_png(number: str = "42107") -> bytes:
    """A wide canvas (280 px high) with a hand-drawn-looking 5-digit number."""
    return draw_digits(number)


def data_url_json(png: bytes) -> bytes:
    """The page's request: {"image": "data:image/png;base64,..."}."""
    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode()}).encode()


def canvas_json(size: int = 280) -> bytes:
    """The page's request for a one-digit drawing."""
    return data_url_json(canvas_png(size))


def number_json(number: str = "42107") -> bytes:
    """The page's request for a drawing of a 5-digit number on a wide canvas."""
    return data_url_json(number_png(number))


def small_png() -> bytes:
    """A small upload: a 28x28 grayscale digit, white on black."""
    image = Image.fromarray(np.asarray(Image.open(io.BytesIO(canvas_png(56))).convert("LA"))[..., 1]).resize((28, 28))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def batch_json(count: int) -> bytes:
    """{"images": [count small PNG data URLs]}."""
    url = "data:image/png;base64," + base64.b64encode(small_png()).decode()
    return json.dumps({"images": [url] * count}).encode()
