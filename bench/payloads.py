"""Realistic request bodies: a drawn canvas, a small upload, batches."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image, ImageDraw


def canvas_png(size: int = 280) -> bytes:
    """A 280x280 transparent canvas with a hand-drawn-looking '7', as the page's canvas.toDataURL() makes it."""
    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    s = size / 280
    points = [(70, 60), (120, 58), (170, 57), (210, 60), (190, 110), (165, 160), (145, 215), (135, 240)]
    draw.line([(x * s, y * s) for x, y in points], fill=(17, 17, 17, 255), width=int(18 * s), joint="curve")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def canvas_json(size: int = 280) -> bytes:
    """The page's request: {"image": "data:image/png;base64,..."}."""
    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(canvas_png(size)).decode()}).encode()


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
