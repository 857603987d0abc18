"""Request bodies -> grayscale images. Plain functions: testable without HTTP.

Every way of sending an image ends as a Submitted: a float32 [H, W] array in 0..1 (1 = white), which
reading.py then reads digit by digit, and the size the image was sent at (digit boxes are given in its
pixels). One path, so canvas drawings, uploads and pixel arrays are all treated alike.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from typing import NamedTuple

import numpy as np

from service.decoding import decode_sized
from service.errors import BadRequest, TooLarge, UnsupportedMediaType, batch_item

DATA_URL = re.compile(
    r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,(?P<data>.*)$", re.DOTALL
)
IMAGE_TYPES = ("image/", "application/octet-stream")
ACCEPTED = "multipart/form-data (field 'image'), image/* bodies, or application/json"


class Submitted(NamedTuple):
    """One image of a request: gray float32 [H, W] in 0..1 (1 = white; shrunk for speed when large), and the
    (height, width) it was submitted at."""

    gray: np.ndarray
    size: tuple[int, int]
    data: bytes | None = None  # the image's bytes as sent (None for a pixel array): service/recent.py keys on them


def decode(data: bytes, max_pixels: int) -> Submitted:
    return Submitted(*decode_sized(data, max_pixels), data)


def json_depth(value, limit: int) -> int:
    """Nesting depth of a parsed JSON value; stops counting past `limit`."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(body: bytes, max_depth: int) -> dict:
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        raise BadRequest(f"malformed JSON: {str(e)[:120]}", code="malformed_json") from e
    if not isinstance(payload, dict):
        raise BadRequest("the JSON body must be an object with 'image', 'pixels' or 'images'")
    if json_depth(payload, max_depth + 1) > max_depth:
        raise BadRequest(f"JSON nested deeper than {max_depth} levels")
    return payload


def decode_base64_image(text: str) -> bytes:
    """A data URL (data:image/png;base64,...) or bare base64 -> image bytes."""
    if not isinstance(text, str):
        raise BadRequest("'image' must be a string: a data URL or base64")
    text = text.strip()
    if text.startswith("data:"):
        match = DATA_URL.match(text)
        if not match or not match["b64"]:
            raise BadRequest("malformed data URL: expected data:image/<type>;base64,<data>")
        media = (match["type"] or "").lower()
        if not media.startswith("image/"):
            raise UnsupportedMediaType(f"data URL media type {media or 'missing'!r} is not an image type")
        text = match["data"]
    try:
        # whitespace (line breaks in pasted base64) is dropped: str.split() splits on exactly what re's \s matches,
        # at a tenth of re.sub's cost
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest("invalid base64 image data", code="invalid_base64") from e


def pixels_to_gray(pixels) -> np.ndarray:
    """28 rows of 28 numbers, 0-255 or 0-1 -> gray [28, 28] in 0..1."""
    if not (
        isinstance(pixels, list)
        and len(pixels) == 28
        and all(isinstance(row, list) and len(row) == 28 for row in pixels)
    ):
        raise BadRequest("'pixels' must be 28 rows of 28 numbers")
    flat = [v for row in pixels for v in row]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat):
        raise BadRequest("'pixels' must hold numbers only")
    if not all(math.isfinite(v) for v in flat):
        raise BadRequest("'pixels' must be finite numbers")
    array = np.asarray(pixels, dtype=np.float32)
    if array.min() < 0 or array.max() > 255:
        raise BadRequest("pixel values must be within 0-255 (or 0-1)")
    return array if array.max() <= 1.0 else array / 255.0


def item_to_gray(item, max_pixels: int) -> Submitted:
    """One JSON item: a string (data URL/base64), or an object with 'image' or 'pixels'."""
    if isinstance(item, dict) and "pixels" in item:
        return Submitted(pixels_to_gray(item["pixels"]), (28, 28))
    return decode(item_bytes(item), max_pixels)


def item_bytes(item) -> bytes:
    """The image bytes of a JSON item that is a string (data URL/base64) or an object with 'image'."""
    if isinstance(item, str):
        return decode_base64_image(item)
    if isinstance(item, dict) and "image" in item:
        return decode_base64_image(item["image"])
    raise BadRequest(
        "expected an object with 'image' (data URL or base64) or 'pixels' (28x28), or 'images' (a list of those)"
    )


def json_to_grays(payload: dict, max_pixels: int, max_batch: int) -> tuple[list[Submitted], bool]:
    """(images, is_batch) from a parsed JSON body."""
    if "images" not in payload:
        return [item_to_gray(payload, max_pixels)], False
    items = payload["images"]
    if not isinstance(items, list) or not items:
        raise BadRequest("'images' must be a non-empty list")
    if len(items) > max_batch:
        raise TooLarge(f"batch of {len(items)} images; the limit is {max_batch}")
    grays = []
    for i, item in enumerate(items):
        with batch_item(i):
            grays.append(item_to_gray(item, max_pixels))
    return grays, True


def multipart_to_gray(files, max_pixels: int) -> Submitted:
    """The single file in field 'image' of a multipart form."""
    uploads = files.getlist("image")
    if not uploads:
        raise BadRequest("multipart form needs a file field named 'image'")
    if len(uploads) > 1:
        raise BadRequest(f"send one file in 'image' ({len(uploads)} were sent), or use JSON 'images'")
    return decode(uploads[0].read(), max_pixels)


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def is_json(kind: str) -> bool:
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def is_image(kind: str) -> bool:
    return kind.startswith(IMAGE_TYPES[0]) or kind == IMAGE_TYPES[1]
