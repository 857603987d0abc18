"""Image bytes -> grayscale float32 [H, W] in 0..1 (1 = white), with Pillow (libspng for plain PNGs).

The format is recognised from the bytes, never from a declared type or a file name.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import numpy as np
from PIL import (
    BmpImagePlugin,
    GifImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    UnidentifiedImageError,
    WebPImagePlugin,
)
from zlib_ng import zlib_ng

from service.errors import InvalidImage, TooLarge, UnsupportedMediaType

try:  # optional: no wheels for macOS; Pillow decodes everything without it
    import pyspng
except ImportError:  # pragma: no cover
    pyspng = None

FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
# The decoders of exactly these formats, registered up front. Otherwise the first upload in a format that Pillow's
# preinit() does not load (WebP, TIFF, or anything unidentified) makes Pillow import all of its ~40 plugins (PDF,
# PSD, FITS...): about 1 MB more in each worker, first allocated in the middle of whatever load is running.
_DECODERS = (BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin, TiffImagePlugin, WebPImagePlugin)
WORKING_SIDE = 1024  # larger images are shrunk first: the digit ends up 20 px tall anyway
# 8-bit images are then box-reduced by a whole factor towards this short side (a 280 px canvas to 140):
# the stroke is normalised at 80 px and the digit ends at 20, so nothing is lost, and every later
# step has a quarter of the pixels to touch.
REDUCED_SIDE = 140
# What Pillow raises on corrupt, truncated or hostile bytes (UnidentifiedImageError is an OSError). Its
# plugins' own IndexError, TypeError and struct.error are turned by Pillow into SyntaxError while the image
# is identified (then UnidentifiedImageError) and into OSError ("image file is truncated") while pixels are
# read. Anything else is a bug of ours: a logged 500, not a 400 "corrupt image".
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError)
# Reading pixels still lets a few other types out on hostile files (Pillow 13, found by fuzzing), so they are
# caught around those Pillow calls only: TypeError and OverflowError from a TIFF whose StripOffsets hold a
# float, bytes, a rational or a huge number (ImageFile.load seeks there); OverflowError from a TIFF colour
# map with values out of 0..255; TypeError and struct.error from EXIF fields of the wrong type, which
# exif_transpose writes back.
_LOAD_ERRORS = (*_DECODE_ERRORS, TypeError, OverflowError, struct.error)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# After the signature: IHDR's length and type, width, height, bit depth, colour type, compression, filter,
# interlace, and the chunk's CRC
_IHDR = struct.Struct(">I4sIIBBBBBI")
_CHUNK = struct.Struct(">I4s")  # a chunk's length and type
_PLAIN_MODES = {0: "L", 2: "RGB", 6: "RGBA"}  # 8-bit colour types that libspng and Pillow decode alike
# Ancillary chunks a canvas or image editor writes before the pixels, at the lengths Pillow's handlers read
# (shorter ones raise there): a PNG with any other chunk before IDAT is read by Pillow's own header parser.
_PLAIN_CHUNKS = {b"sRGB": 1, b"gAMA": 4, b"pHYs": 9, b"cHRM": 32}
# Filtered rows of at least this many bytes are inflated by zlib-ng before libspng sees them (_stored_png()): below
# it, the copies cost more than classic zlib's inflating does (a 28x28 upload's 812 bytes take it 1 us). Above
# STORED_UP_TO (a 2,000 x 2,000 RGBA canvas) libspng inflates them itself: the inflated and stored copies would
# triple a big photo's memory while it is decoded.
STORED_FROM, STORED_UP_TO = 64 * 1024, 16 << 20
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_STORED_BLOCK = 65535  # the most a stored deflate block holds
_STORED_HEADER = struct.Struct("<BHH")  # BFINAL (BTYPE 00: stored), LEN, NLEN, byte-aligned


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


def flatten_alpha(image: Image.Image, factor: int = 1) -> Image.Image:
    """An image with transparency -> "L", composited onto a background that contrasts with the strokes,
    then box-reduced by `factor` (exactly as reduce() would do to the whole composite).

    A mostly opaque image keeps white paper. A mostly transparent one (a canvas) gets white paper under
    dark strokes and black paper under light ones, so the strokes always stand out.
    """
    if image.mode not in ("LA", "RGBA"):  # premultiplied grey (a TIFF may be) converts to LA only
        image = image.convert("LA" if image.mode == "La" else "RGBA")
    size = (-(-image.width // factor), -(-image.height // factor))  # reduce() keeps partial edge blocks
    alpha = image.getchannel("A")
    box = alpha.getbbox()  # the pixels that are not fully transparent: outside it, only paper
    if box is None:
        return Image.new("L", size, 255)
    box = _aligned(box, factor, image.size)
    alpha = alpha.crop(box)
    gray = image.crop(box).convert("L")  # luminance; the alpha band is dropped here and applied below
    background = 255
    if np.count_nonzero(np.asarray(alpha) >= 128) <= image.width * image.height / 2:  # mostly transparent
        background = 255 if ink_level(gray, alpha) < 128 else 0
    # composite in C, on the box only: gray * alpha + background * (1 - alpha), in uint8
    patch = Image.composite(gray, Image.new("L", gray.size, background), alpha)
    flat = Image.new("L", size, background)
    flat.paste(patch.reduce(factor) if factor > 1 else patch, (box[0] // factor, box[1] // factor))
    return flat


def _aligned(box: tuple[int, int, int, int], factor: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """`box` grown to whole `factor` x `factor` blocks (clipped to the image), so each block is all in or all out."""
    left, top, right, bottom = box
    return (
        left // factor * factor,
        top // factor * factor,
        min(size[0], -(-right // factor) * factor),
        min(size[1], -(-bottom // factor) * factor),
    )


def ink_level(gray: Image.Image, alpha: Image.Image) -> float:
    """Mean grey (0..255) of the strokes: of the pixels that are not fully transparent."""
    histogram = np.asarray(gray.histogram(mask=alpha), np.float64)  # in C; the mask selects alpha > 0
    count = histogram.sum()
    return float(histogram @ np.arange(256)) / count if count else 0.0


def to_gray(image: Image.Image) -> np.ndarray:
    """Any Pillow mode -> float32 [H, W] in 0..1 (1 = white), transparency flattened, reduced (REDUCED_SIDE)."""
    if image.mode.startswith("I;16"):
        return _reduce_float(np.asarray(image, dtype=np.float32) / 65535.0)
    if image.mode in ("I", "F"):
        a = np.asarray(image, dtype=np.float32)
        top = 65535.0 if a.max() > 255 else (255.0 if a.max() > 1 else 1.0)
        return _reduce_float(np.clip(a / top, 0, 1))
    factor = _reduction(image.size)
    if has_alpha(image):
        image, factor = flatten_alpha(image, factor), 1  # reduced already, on the strokes' box only
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")  # CMYK, YCbCr, 1-bit, palette...
    if image.mode != "L":
        image = image.convert("L")
    if factor > 1:
        image = image.reduce(factor)  # box filter, in C, on 8 bits
    return np.asarray(image, dtype=np.float32) * np.float32(1 / 255)


def _reduction(size: tuple[int, int]) -> int:
    # by the shorter side: a wide image holds a number, whose digits are about as tall as the image
    return max(1, min(size) // REDUCED_SIDE)


def _reduce_float(a: np.ndarray) -> np.ndarray:
    factor = _reduction(a.shape)
    return a if factor == 1 else np.asarray(Image.fromarray(a, mode="F").reduce(factor), dtype=np.float32)


def _shrink(image: Image.Image) -> Image.Image:
    if max(image.size) > WORKING_SIDE:
        # Pillow's reduce() refuses 16-bit images; thumbnail() calls it where a side shrinks 4x or more
        gap = None if image.mode.startswith("I;16") else 2.0
        image.thumbnail((WORKING_SIDE, WORKING_SIDE), Image.Resampling.BILINEAR, reducing_gap=gap)
    return image


def plain_png(image: Image.Image, data: bytes) -> bool:
    """An 8-bit L/RGB/RGBA PNG with no tRNS, EXIF or animation: what a canvas makes. libspng decodes
    these pixel for pixel as Pillow does, only faster (bench/request_parts.py)."""
    _, _, _, rawmode = image.tile[0] if len(image.tile) == 1 else (None, None, None, None)
    return (
        pyspng is not None
        and image.format == "PNG"
        and image.mode in ("L", "RGB", "RGBA")  # libspng has no grey+alpha output for grey+alpha input
        and rawmode == image.mode  # 8 bits per sample: other depths are unpacked differently
        and "transparency" not in image.info
        and not image.info.get("interlace")  # Adam7: rare, and Pillow cannot write one to test against
        and b"eXIf" not in data  # orientation: Pillow's path applies it
        and b"acTL" not in data  # APNG: Pillow's path picks the first frame
    )


def plain_png_header(data: bytes, max_pixels: int) -> tuple[str, tuple[int, int]] | None:
    """(mode, (width, height)) of a PNG that open_image() accepts and plain_png() passes, read off its first
    chunks without Pillow; None for anything else, which then takes Pillow's header parser (and its errors).

    It accepts only a 13-byte IHDR with a valid CRC for 8-bit L, RGB or RGBA, not interlaced, within
    max_pixels (and Pillow's bomb limit), then only _PLAIN_CHUNKS before the first IDAT, and no tRNS, eXIf
    or acTL anywhere: what Pillow opens as a plain PNG of that size.
    """
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    if len(data) < 41 or not data.startswith(PNG_SIGNATURE):  # 41: the signature, IHDR and the next chunk's head
        return None
    length, kind, width, height, depth, colour, compression, filtering, interlace, crc = _IHDR.unpack_from(data, 8)
    mode = _PLAIN_MODES.get(colour) if depth == 8 else None
    plain = (
        length == 13
        and kind == b"IHDR"
        and mode is not None
        and not (compression or filtering or interlace)
        and 0 < width * height <= limit
        and zlib.crc32(data[12:29]) == crc
        and not any(chunk in data for chunk in (b"tRNS", b"eXIf", b"acTL"))
    )
    return (mode, (width, height)) if plain and _plain_chunks_to_idat(data, 33) else None


def _plain_chunks_to_idat(data: bytes, position: int) -> bool:
    """Whether the chunks from `position` to the first IDAT are all _PLAIN_CHUNKS, whole, with valid CRCs."""
    while position + 8 <= len(data):
        length, kind = _CHUNK.unpack_from(data, position)
        if kind == b"IDAT":
            return True
        end = position + 8 + length
        if _PLAIN_CHUNKS.get(kind) != length or end + 4 > len(data):
            return False
        if zlib.crc32(data[position + 4 : end]) != int.from_bytes(data[end : end + 4], "big"):
            return False
        position = end + 4
    return False


def _load_png(data: bytes, mode: str) -> Image.Image:
    return Image.fromarray(_png_pixels(data, mode), mode=mode)


def _png_pixels(data: bytes, mode: str) -> np.ndarray:
    """A plain PNG's pixels, decoded by libspng: uint8 [H, W] (L) or [H, W, C] (RGB, RGBA)."""
    try:
        return pyspng.load(_stored_png(data, mode), format=mode)
    except RuntimeError as e:  # pyspng's only error type: a corrupt or truncated stream
        raise InvalidImage(f"corrupt or truncated PNG ({e})"[:200]) from e


def _stored_png(data: bytes, mode: str) -> bytes:
    """A plain PNG (plain_png_header()) with its image data inflated by zlib-ng and kept in deflate's stored
    blocks, which libspng only copies; `data` itself when the image is small or big (STORED_FROM, STORED_UP_TO).

    libspng inflates with classic zlib, which copies the long runs of a canvas's transparent pixels a byte at a
    time: 1.6 ms of a 952x280 canvas's 1.7 ms, against 0.2 ms for zlib-ng's inflate (SIMD copies and checksums),
    and libspng has no way to be given another inflater. The rows' filters are left for libspng to undo, so the
    pixels are the same. Image data cut short or with a bad CRC raises InvalidImage, as libspng does.
    """
    width, height = _IHDR.unpack_from(data, 8)[2:4]
    size = height * (1 + width * len(mode))  # the filtered rows: a filter byte, then the row's samples
    if not STORED_FROM <= size <= STORED_UP_TO:
        return data
    try:
        rows = zlib_ng.decompress(b"".join(_idat_chunks(data)), bufsize=size)
    except zlib_ng.error as e:
        raise InvalidImage(f"corrupt or truncated PNG ({e})"[:200]) from e
    if len(rows) != size:
        raise InvalidImage(f"corrupt PNG: {len(rows)} bytes of image data, not {size}")
    stored = stored_zlib(rows)
    crc = zlib_ng.crc32(stored, zlib_ng.crc32(b"IDAT"))
    return b"".join((data[:33], len(stored).to_bytes(4, "big"), b"IDAT", stored, crc.to_bytes(4, "big"), _IEND))


def stored_zlib(raw: bytes) -> bytes:
    """`raw` as a zlib stream of deflate's stored blocks (RFC 1950, 1951 3.2.4): a header, blocks of at most 65,535
    bytes each behind its length and that length's complement, then the Adler-32 of `raw`.

    Written out rather than zlib_ng.compress(raw, 0), which takes 0.79 ms for a 5-digit canvas's 1 MB of rows against
    0.06 ms for this: a copy and a SIMD checksum."""
    view, parts = memoryview(raw), [b"\x78\x01"]  # deflate, 32K window, no dictionary, fastest
    starts = range(0, len(raw), _STORED_BLOCK) or [0]  # an empty stream still has one (final, empty) block
    for start in starts:
        block = view[start : start + _STORED_BLOCK]
        final = start + _STORED_BLOCK >= len(raw)
        parts.append(_STORED_HEADER.pack(final, len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    parts.append(zlib_ng.adler32(raw).to_bytes(4, "big"))
    return b"".join(parts)


def _idat_chunks(data: bytes) -> list[bytes]:
    """The data of a PNG's IDAT chunks, checked whole and by CRC; InvalidImage if there are none or one is bad."""
    parts, position = [], 33  # after the signature and IHDR
    while position + 8 <= len(data):
        length, kind = _CHUNK.unpack_from(data, position)
        end = position + 8 + length
        if kind == b"IDAT":
            if end + 4 > len(data) or zlib_ng.crc32(data[position + 4 : end]) != int.from_bytes(data[end : end + 4]):
                raise InvalidImage("corrupt or truncated PNG (IDAT chunk cut short or with a bad CRC)")
            parts.append(data[position + 8 : end])
        elif parts:  # the image data is one run of IDAT chunks
            break
        position = end + 4
    if not parts:
        raise InvalidImage("corrupt or truncated PNG (no image data)")
    return parts


def load_first_frame(image: Image.Image) -> Image.Image:
    """Pillow decodes the first frame, turned by its EXIF orientation, a palette expanded."""
    try:
        if image.format == "JPEG":
            image.draft("L" if image.mode == "L" else "RGB", (WORKING_SIDE, WORKING_SIDE))  # DCT-domain shrink
        image.seek(0)
        image.load()
        ImageOps.exif_transpose(image, in_place=True)  # in place: no copy when there is nothing to turn
    except _LOAD_ERRORS as e:
        raise InvalidImage(f"corrupt or truncated image ({type(e).__name__}: {e})"[:200]) from e
    if image.mode == "P":
        return image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image


def decode(data: bytes, max_pixels: int = 25_000_000, fast_png: bool = True) -> np.ndarray:
    """Decode the first frame, apply EXIF orientation, flatten alpha; -> gray float32 [H, W].

    `fast_png=False` decodes plain PNGs with Pillow too (for comparisons; the result is the same).
    """
    return decode_sized(data, max_pixels, fast_png)[0]


def decode_sized(
    data: bytes, max_pixels: int = 25_000_000, fast_png: bool = True
) -> tuple[np.ndarray, tuple[int, int]]:
    """decode(), and the (height, width) of the image as submitted and shown (EXIF orientation applied): the gray
    may be shrunk for speed, and the digits' boxes are given in the submitted image's pixels."""
    header = plain_png_header(data, max_pixels) if fast_png and pyspng is not None else None
    if header is not None:  # a plain PNG: its header read without Pillow's parser, its pixels by libspng
        mode, (width, height) = header
        if mode == "L" and max(width, height) <= WORKING_SIDE and _reduction((width, height)) == 1:
            # a small grey upload (a batch's 28x28 digits): to_gray()'s result without an image object's copies
            return _png_pixels(data, mode).astype(np.float32) * np.float32(1 / 255), (height, width)
        return to_gray(_shrink(_load_png(data, mode))), (height, width)
    image = open_image(data, max_pixels)
    if fast_png and plain_png(image, data):
        return to_gray(_shrink(_load_png(data, image.mode))), (image.height, image.width)
    stored = image.size  # before a JPEG's DCT-domain shrink and the EXIF turn, which both change it
    gray = to_gray(_shrink(load_first_frame(image)))
    return gray, shown_size(stored, gray.shape)


def shown_size(stored: tuple[int, int], shape: tuple[int, ...]) -> tuple[int, int]:
    """(height, width) of an image stored as `stored` (width, height) once shown: turned a quarter when the decoded
    `shape` (height, width) has the turned proportions (EXIF orientations 5 to 8)."""
    width, height = stored
    turned = width != height and shape[0] != shape[1] and (shape[0] > shape[1]) != (height > width)
    return (width, height) if turned else (height, width)
