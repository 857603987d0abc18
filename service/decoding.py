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


def _gray_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(gray, alpha or None), both float32 in 0..1, for any Pillow mode."""
    if image.mode.startswith("I;16"):
        return np.asarray(image, dtype=np.float32) / 65535.0, None
    if image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float32)
        top = 65535.0 if a.max() > 255 else (255.0 if a.max() > 1 else 1.0)
        return np.clip(a / top, 0, 1), None
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        la = np.asarray(image.convert("RGBA").convert("LA"), dtype=np.float32) / 255.0
        return la[..., 0], la[..., 1]
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1-bit, palette...
    return np.asarray(image.convert("L"), dtype=np.float32) / 255.0, None


def flatten_alpha(gray: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite onto a background that contrasts with the strokes (dark strokes -> white paper)."""
    if alpha is None:
        return gray
    if (alpha < 0.5).mean() < 0.5:
        background = 1.0  # mostly opaque: ordinary paper
    else:
        weight = alpha.sum()
        ink_level = float((gray * alpha).sum() / weight) if weight > 0 else 0.0
        background = 1.0 if ink_level < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


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
        image = ImageOps.exif_transpose(image)
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        gray, alpha = _gray_alpha(_shrink(image))
    except _DECODE_ERRORS as e:
        raise InvalidImage(f"corrupt or truncated image ({type(e).__name__}: {e})"[:200]) from e
    return flatten_alpha(gray, alpha).astype(np.float32, copy=False)
