"""Image bytes -> grayscale float32 [H, W] in 0..1 (1 = white), with Pillow.

The format is recognised from the bytes, never from a declared type or a file name.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from service.errors import InvalidImage, TooLarge, UnsupportedMediaType

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
WORKING_SIDE = 1024  # larger images are shrunk first: the digit ends up 20 px tall anyway
# 8-bit images are then box-reduced by a whole factor towards this long side (a 280 px canvas to 140):
# the stroke is normalised at 80 px and the digit ends at 20, so nothing is lost, and every later
# step has a quarter of the pixels to touch.
REDUCED_SIDE = 140
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, ZeroDivisionError)


def open_image(data: bytes, max_pixels: int) -> Image.Image:
    """Identify the image and check its size before any pixel is decoded."""
    if not data:
        raise InvalidImage("empty image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as e:
        raise UnsupportedMediaType("not a PNG, JPEG, GIF, BMP, WebP or TIFF image") from e
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise TooLarge(f"image dimensions exceed the limit of {max_pixels} pixels") from e
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"corrupt image header ({type(e).__name__})") from e
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidImage("image has zero width or height")
    if width * height > max_pixels:
        raise TooLarge(f"image is {width}x{height} = {width * height} pixels; the limit is {max_pixels}")
    return image


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info


def flatten_alpha(image: Image.Image) -> Image.Image:
    """An image with transparency -> "L", composited onto a background that contrasts with the strokes.

    A mostly opaque image keeps white paper. A mostly transparent one (a canvas) gets white paper under
    dark strokes and black paper under light ones, so the strokes always stand out.
    """
    if image.mode not in ("LA", "RGBA"):
        image = image.convert("RGBA")
    alpha = image.getchannel("A")
    box = alpha.getbbox()  # the pixels that are not fully transparent: outside it, only paper
    if box is None:
        return Image.new("L", image.size, 255)
    alpha = alpha.crop(box)
    gray = image.crop(box).convert("L")  # luminance; the alpha band is dropped here and applied below
    a = np.asarray(alpha)
    background = 255
    if np.count_nonzero(a >= 128) <= image.width * image.height / 2:  # mostly transparent: a canvas
        background = 255 if ink_level(gray, alpha) < 128 else 0
    # composite in C, on the box only: gray * alpha + background * (1 - alpha), in uint8
    flat = Image.new("L", image.size, background)
    flat.paste(Image.composite(gray, Image.new("L", gray.size, background), alpha), box)
    return flat


def ink_level(gray: Image.Image, alpha: Image.Image) -> float:
    """Alpha-weighted mean grey (0..255) of the strokes; a large area is measured on a reduced copy."""
    area = gray.width * gray.height
    factor = 4 if area > 256 * 256 else 2 if area > 64 * 64 else 1  # reduce() is a box filter, in C
    if factor > 1:
        gray, alpha = gray.reduce(factor), alpha.reduce(factor)
    g, a = np.asarray(gray, np.float32), np.asarray(alpha, np.float32)
    weight = float(a.sum())
    return float((g * a).sum()) / weight if weight else 0.0


def to_gray(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 [H, W] in 0..1 (1 = white), transparency flattened, reduced (REDUCED_SIDE)."""
    if image.mode.startswith("I;16"):
        return _reduce_float(np.asarray(image, dtype=np.float32) / 65535.0)
    if image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float32)
        top = 65535.0 if a.max() > 255 else (255.0 if a.max() > 1 else 1.0)
        return _reduce_float(np.clip(a / top, 0, 1))
    if has_alpha(image):
        image = flatten_alpha(image)
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1-bit, palette...
    if image.mode != "L":
        image = image.convert("L")
    factor = _reduction(image.size)
    if factor > 1:
        image = image.reduce(factor)  # box filter, in C, on 8 bits
    return np.asarray(image, dtype=np.float32) * np.float32(1 / 255)


def _reduction(size: tuple[int, int]) -> int:
    return max(1, max(size) // REDUCED_SIDE)


def _reduce_float(a: np.ndarray) -> np.ndarray:
    factor = _reduction(a.shape)
    return a if factor == 1 else np.asarray(Image.fromarray(a, mode="F").reduce(factor), dtype=np.float32)


def _shrink(image: Image.Image) -> Image.Image:
    if max(image.size) > WORKING_SIDE:
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR)
    return image


def decode(data: bytes, max_pixels: int = 25_000_000) -> np.ndarray:
    """Decode the first frame, apply EXIF orientation, flatten alpha; -> gray float32 [H, W]."""
    image = open_image(data, max_pixels)
    try:
        if image.format == "JPEG":
            image.draft("L" if image.mode == "L" else "RGB", (WORKING_SIDE, WORKING_SIDE))  # DCT-domain shrink
        image.seek(0)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy when there is nothing to turn
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        return to_gray(_shrink(image))
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"corrupt or truncated image ({type(e).__name__}: {e})"[:200]) from e
