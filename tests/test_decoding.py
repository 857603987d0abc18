"""Decoding: every supported format and mode, recognised from the bytes, and clean failures."""

from __future__ import annotations

import ast
import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin, TiffImagePlugin

from service import decoding
from service.decoding import (
    REDUCED_SIDE,
    STORED_FROM,
    STORED_UP_TO,
    _load_png,
    _shrink,
    decode,
    decode_sized,
    flatten_alpha,
    load_first_frame,
    open_image,
    plain_png,
    plain_png_header,
    to_gray,
)
from service.errors import ApiError, InvalidImage, TooLarge, UnsupportedMediaType
from tests.conftest import ROOT
from tests.images import drawn_one, encode


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return decode(encode(drawn_one()))


@pytest.mark.parametrize(
    ("fmt", "tolerance"),
    [("PNG", 0), ("JPEG", 0.02), ("GIF", 0), ("BMP", 0), ("WEBP", 0.02), ("TIFF", 0)],
)
def test_every_format_decodes_to_the_same_image(reference, fmt, tolerance):
    gray = decode(encode(drawn_one(), fmt))
    assert gray.shape == reference.shape and gray.dtype == np.float32
    assert np.abs(gray - reference).mean() <= tolerance + 1e-6


@pytest.mark.parametrize(
    ("mode", "fmt"),
    [
        ("RGB", "PNG"),
        ("RGBA", "PNG"),
        ("LA", "PNG"),
        ("P", "PNG"),
        ("P", "GIF"),
        ("CMYK", "JPEG"),
        ("CMYK", "TIFF"),
        ("1", "PNG"),
        ("I;16", "PNG"),
        ("I", "TIFF"),
        ("F", "TIFF"),
    ],
)
def test_every_mode_decodes_to_grayscale(reference, mode, fmt):
    image = drawn_one()
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image, np.uint16) * 257)
        assert image.mode == "I;16"
    elif mode in ("I", "F"):
        image = Image.fromarray(np.asarray(image, np.int32 if mode == "I" else np.float32))
        assert image.mode == mode
    else:
        image = image.convert(mode)
    gray = decode(encode(image, fmt))
    assert gray.shape == reference.shape
    assert np.abs(gray - reference).mean() < 0.03


def test_format_is_read_from_the_bytes_not_the_name(reference):
    # JPEG bytes whatever the caller calls them: decode() never sees a file name or type
    assert np.abs(decode(encode(drawn_one(), "JPEG")) - reference).mean() < 0.02


def test_exif_orientation_is_applied():
    image = Image.new("L", (300, 100), 255)  # stored landscape...
    image.paste(0, (0, 0, 60, 100))  # ...with a dark block at the left
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display": portrait, block on top
    gray = decode(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    height, width = gray.shape
    assert height == 3 * width  # portrait (at whatever working resolution)
    assert gray[: height // 6].mean() < 0.2 and gray[-height // 3 :].mean() > 0.8


def test_animated_gif_uses_the_first_frame(reference):
    frames = [drawn_one().convert("P"), Image.new("L", (280, 280), 0).convert("P")]
    blob = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert Image.open(__import__("io").BytesIO(blob)).n_frames == 2
    assert np.abs(decode(blob) - reference).mean() < 0.01


@pytest.mark.parametrize("stroke", [0, 255])
def test_transparent_canvas_gets_a_contrasting_background(stroke):
    rgba = np.zeros((100, 100, 4), np.uint8)
    rgba[20:80, 45:55] = (stroke, stroke, stroke, 255)
    gray = decode(encode(Image.fromarray(rgba, "RGBA")))
    ink = gray[50, 50]
    paper = gray[5, 5]
    assert abs(ink - paper) > 0.9  # strokes stand out, whatever their colour
    assert ink == pytest.approx(stroke / 255)


def test_mostly_opaque_image_keeps_white_paper():
    image = Image.new("LA", (10, 10), (230, 255))
    image.putpixel((0, 0), (0, 0))  # one transparent pixel: white paper shows through
    flat = flatten_alpha(image)
    assert flat.mode == "L" and flat.getpixel((0, 0)) == 255 and flat.getpixel((5, 5)) == 230


def test_large_images_are_shrunk_before_work():
    gray = decode(encode(drawn_one(size=3000, width=150)))
    assert REDUCED_SIDE <= max(gray.shape) < 2 * REDUCED_SIDE


@pytest.mark.parametrize("size", [139, 140, 280, 420, 1000])
def test_images_are_reduced_by_a_whole_factor_towards_the_working_side(size):
    gray = decode(encode(drawn_one(size=size, width=size // 14)))
    factor = max(1, size // REDUCED_SIDE)
    assert gray.shape == (-(-size // factor),) * 2  # ceil: Pillow's reduce() keeps the partial edge


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (6000, 6000)))  # 36 Mpx in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(TooLarge, match="pixels"):
        decode(bomb, max_pixels=25_000_000)


def _png_with_size(width: int, height: int) -> bytes:
    """A PNG whose header claims the given size (its data is a tiny 1x1 image)."""
    blob = bytearray(encode(Image.new("L", (1, 1), 0)))
    ihdr = struct.pack(">II", width, height) + bytes(blob[24:29])
    blob[16:29] = ihdr
    blob[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(blob)


def test_huge_declared_dimensions_are_refused():
    with pytest.raises(TooLarge):
        decode(_png_with_size(100_000, 100_000))


def test_zero_size_image_is_invalid():
    with pytest.raises((InvalidImage, UnsupportedMediaType)):
        decode(_png_with_size(0, 0))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_invalid(fmt):
    blob = encode(drawn_one(), fmt)
    with pytest.raises(InvalidImage):
        decode(blob[: len(blob) // 2])


def test_corrupt_png_data_is_invalid():
    blob = bytearray(encode(drawn_one()))
    blob[60:200] = bytes(140)  # inside the compressed pixel data
    with pytest.raises(InvalidImage):
        decode(bytes(blob))


@pytest.mark.parametrize(
    "blob",
    [
        b"hello world",
        b"<svg xmlns='http://www.w3.org/2000/svg'></svg>",
        b"%PDF-1.4\n%\xe2\xe3",
        b"<!doctype html><html></html>",
        bytes(range(256)) * 4,
    ],
    ids=["text", "svg", "pdf", "html", "binary-noise"],
)
def test_non_images_are_unsupported(blob):
    with pytest.raises(UnsupportedMediaType):
        decode(blob)


def test_only_the_accepted_formats_decoders_are_ever_loaded():
    """An unidentified upload must not make Pillow import all of its plugins (PDF, PSD...) into the worker."""
    code = (
        "import sys\n"
        "from service.decoding import decode\n"
        "from service.errors import UnsupportedMediaType\n"
        "try:\n"
        "    decode(b'%PDF-1.4 not an image we accept')\n"
        "except UnsupportedMediaType:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith('PIL.') and m.endswith('ImagePlugin')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    loaded = {name.removeprefix("PIL.").removesuffix("ImagePlugin") for name in ast.literal_eval(out.stdout)}
    assert {"Pdf", "Psd", "Eps"}.isdisjoint(loaded)
    assert {"Png", "Jpeg", "Gif", "Bmp", "WebP", "Tiff"} <= loaded


def test_empty_bytes_are_invalid():
    with pytest.raises(InvalidImage, match="empty"):
        decode(b"")


# ---- hostile files: the few other types Pillow raises on them are caught where it reads pixels ----


def _retag(tiff: bytes, tag: int, kind: int, value: bytes) -> bytes:
    """A little-endian TIFF whose first IFD's `tag` entry gets another type and 4-byte value (count 1)."""
    out = bytearray(tiff)
    (ifd,) = struct.unpack_from("<I", out, 4)
    (count,) = struct.unpack_from("<H", out, ifd)
    entry = next(ifd + 2 + 12 * i for i in range(count) if struct.unpack_from("<H", out, ifd + 2 + 12 * i)[0] == tag)
    struct.pack_into("<HHI4s", out, entry, tag, kind, 1, value)
    return bytes(out)


def _exif(*entries: tuple[int, int, int, bytes]) -> bytes:
    """Raw EXIF: a little-endian TIFF header and one IFD of (tag, type, count, 4-byte value) entries."""
    ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHI4s", *e) for e in entries) + bytes(4)
    return b"Exif\x00\x00II*\x00" + struct.pack("<I", 8) + ifd


ASCII, SHORT, SSHORT, FLOAT, LONG8 = 2, 3, 8, 11, 16  # TIFF field types
STRIP_OFFSETS, COLOR_MAP, EXTRA_SAMPLES = 273, 320, 338
ORIENTATION, X_RESOLUTION, RESOLUTION_UNIT = 0x0112, 0x011A, 0x0128  # a short, a rational, a short
TIFF = encode(drawn_one(), "TIFF")
TURNED = (ORIENTATION, SHORT, 1, struct.pack("<HH", 6, 0))  # so that exif_transpose writes the EXIF back
HOSTILE = [  # (case, bytes, the type Pillow raises on them, as InvalidImage's message names it)
    ("strip-offsets-float", _retag(TIFF, STRIP_OFFSETS, FLOAT, struct.pack("<f", 8.5)), "TypeError"),
    (
        "strip-offsets-over-int64",
        _retag(TIFF, STRIP_OFFSETS, LONG8, struct.pack("<I", len(TIFF))) + b"\xff" * 8,  # the value is at the end
        "OverflowError",
    ),
    (
        "colour-map-negative",
        _retag(encode(drawn_one().convert("P"), "TIFF"), COLOR_MAP, SSHORT, struct.pack("<hh", -32768, 0)),
        "OverflowError",
    ),
    (
        "exif-rational-as-text",
        encode(drawn_one(), "JPEG", exif=_exif(TURNED, (X_RESOLUTION, ASCII, 4, b"abc\x00"))),
        "TypeError",
    ),
    (
        "exif-short-as-text",
        encode(drawn_one(), "JPEG", exif=_exif(TURNED, (RESOLUTION_UNIT, ASCII, 4, b"abc\x00"))),
        "error",  # struct.error
    ),
]


@pytest.mark.parametrize(("blob", "raised"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_what_pillow_raises_on_hostile_files_is_an_invalid_image(blob, raised):
    with pytest.raises(InvalidImage, match=rf"\({raised}: "):
        decode(blob)


# ---- every mode a decoder can produce is ours to convert: a failure there is a bug, not bad input --


@pytest.mark.parametrize("mode", sorted({mode for mode, _ in TiffImagePlugin.OPEN_INFO.values()}))
def test_every_mode_the_decoders_open_becomes_gray(mode):
    # TIFF's modes include those of every other format served (PNG, JPEG, GIF, BMP, WebP)
    gray = to_gray(Image.new(mode, (300, 420)))  # reduced by its shorter side: 300 // REDUCED_SIDE = 2
    assert gray.dtype == np.float32 and gray.shape == (210, 150) and np.isfinite(gray).all()


def test_premultiplied_grey_alpha_decodes_like_straight_alpha():
    image = Image.new("LA", (60, 60), (255, 0))
    image.paste((0, 255), (25, 5, 35, 55))
    straight = encode(image, "TIFF")
    premultiplied = _retag(straight, EXTRA_SAMPLES, SHORT, struct.pack("<HH", 1, 0))  # 1: associated alpha
    assert Image.open(io.BytesIO(premultiplied)).mode == "La"
    assert np.array_equal(decode(premultiplied), decode(straight))


def test_a_long_thin_16_bit_image_is_shrunk():
    pixels = np.full((4000, 64), 65535, np.uint16)
    pixels[1000:3000, 16:48] = 0  # a stroke down the middle half
    gray = decode(encode(Image.fromarray(pixels)))  # shrunk 4x by thumbnail(): Pillow's reduce() cannot take I;16
    assert gray.shape == (1024, 16) and gray[:200].min() == 1.0 and gray[300:700].min() < 0.5


# ---- the libspng path for plain PNGs must decode exactly as Pillow does --------------------------


def _pillow_pixels(blob: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as image:
        return np.asarray(image)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
@pytest.mark.parametrize("optimize", [False, True])  # different zlib settings and filters
def test_plain_png_fast_path_matches_pillow_pixel_for_pixel(mode, optimize):
    rng = np.random.default_rng(len(mode) + optimize)
    channels = len(mode)
    for size in [(1, 1), (37, 280), (280, 280), (500, 123)]:
        shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
        noise = rng.integers(0, 256, shape, dtype=np.uint8)
        noise[: size[1] // 2] //= 64  # smooth rows, so that every PNG filter type gets picked
        blob = encode(Image.fromarray(noise, mode), optimize=optimize)
        image = open_image(blob, 10**8)
        assert plain_png(image, blob)
        assert np.array_equal(np.asarray(_load_png(blob, image.mode)), _pillow_pixels(blob))


def _orientation(value: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


@pytest.mark.parametrize(
    "image, kw",
    [
        (Image.new("RGB", (20, 20), "white"), {"transparency": (255, 255, 255)}),  # tRNS
        (Image.new("I;16", (20, 20), 300), {}),  # 16 bits
        (Image.new("1", (20, 20), 1), {}),  # 1 bit
        (Image.new("P", (20, 20), 3), {}),  # palette
        (Image.new("LA", (20, 20), (9, 255)), {}),  # grey + alpha
        (Image.new("L", (20, 20), 9), {"exif": _orientation(1)}),  # eXIf
    ],
)
def test_other_pngs_take_pillows_path(image, kw):
    blob = encode(image, **kw)
    assert not plain_png(open_image(blob, 10**8), blob)
    assert decode(blob).shape == (20, 20)


def test_corrupt_plain_png_is_a_clear_error():
    blob = bytearray(encode(drawn_one()))
    idat = blob.index(b"IDAT")
    blob[idat + 8 : idat + 40] = bytes(32)  # garbage in the compressed stream
    with pytest.raises(InvalidImage):
        decode(bytes(blob))


@pytest.mark.parametrize("factor", [2, 3, 7])
@pytest.mark.parametrize("seed", range(4))
def test_flattening_a_box_then_reducing_equals_reducing_the_whole_composite(factor, seed):
    rng = np.random.default_rng(seed)
    width, height = rng.integers(factor, 300, 2)
    rgba = np.zeros((height, width, 4), np.uint8)
    top, left = rng.integers(0, height), rng.integers(0, width)  # a random patch, maybe at an edge
    patch = rgba[top : top + rng.integers(1, 80), left : left + rng.integers(1, 80)]
    patch[...] = rng.integers(0, 256, patch.shape, dtype=np.uint8)
    image = Image.fromarray(rgba, "RGBA")
    expected = np.asarray(flatten_alpha(image).reduce(factor))
    assert np.array_equal(np.asarray(flatten_alpha(image, factor)), expected)


def test_decode_gives_the_same_gray_whichever_png_decoder():
    from bench.payloads import canvas_png

    small = encode(drawn_one(size=28, width=3))  # a small grey PNG: its pixels go to numpy without Pillow
    for blob in (canvas_png(), canvas_png(140), encode(drawn_one()), encode(drawn_one(dark_on_light=False)), small):
        assert np.array_equal(decode(blob), decode(blob, fast_png=False))


# ---- plain PNGs' headers are read without Pillow: only where Pillow's reading gives the same ----------


def _pillows_header_path(blob: bytes, max_pixels: int = 25_000_000) -> np.ndarray:
    """decode() with Pillow reading every header, as it did before plain_png_header()."""
    image = open_image(blob, max_pixels)
    if plain_png(image, blob):
        return to_gray(_shrink(_load_png(blob, image.mode)))
    return to_gray(_shrink(load_first_frame(image)))


def _outcome(read, blob: bytes):
    try:
        return read(blob)
    except ApiError as e:
        return e.status


PLAIN = [
    encode(drawn_one(size=28, width=3)),
    encode(drawn_one(size=300, width=20).convert("RGB"), dpi=(72, 72)),  # with a pHYs chunk
    encode(drawn_one(size=60, width=6).convert("RGBA"), optimize=True),
]


@pytest.mark.parametrize("blob", PLAIN, ids=["L", "RGB-pHYs", "RGBA"])
def test_plain_png_header_reads_what_pillow_reads(blob):
    image = open_image(blob, 10**8)
    assert plain_png_header(blob, 10**8) == (image.mode, image.size) and plain_png(image, blob)
    assert np.array_equal(decode(blob), _pillows_header_path(blob))


@pytest.mark.parametrize(
    "image, kw",
    [
        (Image.new("RGB", (20, 20), "white"), {"transparency": (255, 255, 255)}),  # tRNS
        (Image.new("I;16", (20, 20), 300), {}),
        (Image.new("P", (20, 20), 3), {}),
        (Image.new("LA", (20, 20), (9, 255)), {}),
        (Image.new("L", (20, 20), 9), {"exif": _orientation(1)}),
        (Image.new("L", (20, 20), 9), {"pnginfo": PngImagePlugin.PngInfo()}),  # a tEXt chunk, added below
    ],
)
def test_other_pngs_are_left_to_pillows_header_parser(image, kw):
    if "pnginfo" in kw:
        kw["pnginfo"].add_text("Comment", "a text chunk")
    assert plain_png_header(encode(image, **kw), 10**8) is None


def test_plain_png_header_leaves_size_limits_to_pillow():
    blob = PLAIN[1]  # 300 x 300
    assert plain_png_header(blob, 300 * 300) is not None and plain_png_header(blob, 300 * 300 - 1) is None
    with pytest.raises(TooLarge):
        decode(blob, max_pixels=300 * 300 - 1)
    assert plain_png_header(_png_with_size(0, 0), 10**8) is None
    assert plain_png_header(_png_with_size(100_000, 100_000), 10**12) is None  # Pillow's bomb limit


@pytest.mark.parametrize("seed", range(3))
def test_damaged_plain_pngs_decode_or_fail_as_with_pillows_header_parser(seed):
    """Byte flips near the header and cuts anywhere: the same image, or an error with the same status."""
    rng = np.random.default_rng(seed)
    for _ in range(150):
        blob = bytearray(PLAIN[int(rng.integers(len(PLAIN)))])
        for _ in range(int(rng.integers(0, 3))):
            blob[int(rng.integers(0, min(len(blob), 80)))] = int(rng.integers(0, 256))
        blob = bytes(blob[: int(rng.integers(1, len(blob) + 1))] if rng.random() < 0.5 else blob)
        fast, pillow = _outcome(decode, blob), _outcome(_pillows_header_path, blob)
        assert type(fast) is type(pillow)
        assert np.array_equal(fast, pillow) if isinstance(fast, np.ndarray) else fast == pillow


def _interlaced_gray_png(value: int = 200, side: int = 8) -> bytes:
    """An Adam7-interlaced 8-bit grey PNG, built by hand (Pillow cannot write one)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    passes = [(1, 1), (1, 1), (2, 1), (2, 2), (4, 2), (4, 4), (8, 4)]  # Adam7 pass sizes for 8x8
    raw = b"".join((b"\x00" + bytes([value] * w)) * h for w, h in passes)
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 1)  # 8-bit grey, interlace method 1
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def test_interlaced_png_takes_pillows_path():
    blob = _interlaced_gray_png()
    assert not plain_png(open_image(blob, 10**8), blob)
    assert np.allclose(decode(blob), 200 / 255)


def test_a_wide_image_is_reduced_by_its_shorter_side():
    """A wide image holds a number: its digits are about as tall as the image, so its height sets the reduction."""
    assert decode(encode(Image.new("L", (1000, 280), 255))).shape == (140, 500)


@pytest.mark.parametrize(("orientation", "shown"), [(1, (300, 500)), (6, (500, 300)), (8, (500, 300))])
@pytest.mark.parametrize("scale", [1, 8])  # 8: large enough for the JPEG's DCT-domain shrink and thumbnail()
def test_decode_sized_gives_the_size_of_the_image_as_shown(orientation, shown, scale):
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6 and 8: stored on its side, shown turned a quarter
    image = Image.new("L", (500 * scale, 300 * scale), 255)
    image.paste(0, (100 * scale, 50 * scale, 130 * scale, 250 * scale))
    gray, size = decode_sized(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    assert size == (shown[0] * scale, shown[1] * scale)
    assert gray.shape[0] / gray.shape[1] == pytest.approx(shown[0] / shown[1], rel=0.02)


# ---- large plain PNGs: inflated by zlib-ng, unfiltered by libspng ---------------------------------------------------


def _noisy_png(mode: str, size: tuple[int, int] = (400, 300)) -> bytes:
    """A plain PNG of noise and smooth rows, too large for classic zlib's inflate (STORED_FROM), in many IDAT chunks."""
    rng = np.random.default_rng(len(mode))
    shape = (size[1], size[0], len(mode)) if len(mode) > 1 else (size[1], size[0])
    noise = rng.integers(0, 256, shape, dtype=np.uint8)
    noise[: size[1] // 2] //= 64  # smooth rows, so that every PNG filter type gets picked
    blob = encode(Image.fromarray(noise, mode))
    return blob


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_large_plain_pngs_decode_pixel_for_pixel_as_pillow_does(mode):
    blob = _noisy_png(mode)
    assert blob.count(b"IDAT") > 1 and STORED_FROM <= 300 * (1 + 400 * len(mode)) <= STORED_UP_TO
    assert np.array_equal(np.asarray(_load_png(blob, mode)), _pillow_pixels(blob))
    assert np.array_equal(decode(blob), decode(blob, fast_png=False))


@pytest.mark.parametrize("damage", ["bad CRC", "data flipped", "cut short", "no image data"])
def test_damaged_image_data_of_a_large_png_is_a_clear_error(damage):
    blob = bytearray(_noisy_png("RGB"))
    second = blob.index(b"IDAT", blob.index(b"IDAT") + 4)  # the second IDAT chunk's type
    if damage == "bad CRC":
        blob[second + 100] ^= 1
    elif damage == "data flipped":  # with a CRC that matches: the zlib stream itself is corrupt
        length = int.from_bytes(blob[second - 4 : second])
        blob[second + 4 : second + 4 + length] = bytes(length)
        blob[second + 4 + length : second + 8 + length] = zlib.crc32(blob[second : second + 4 + length]).to_bytes(4)
    elif damage == "cut short":
        blob = blob[: second + 1000]
    else:
        blob = blob[:33] + encode(Image.new("L", (1, 1)))[-12:]  # the header, then IEND
    with pytest.raises(InvalidImage):
        decode(bytes(blob))


@pytest.mark.parametrize("limits", [(0, 10**9), (10**9, 10**9), (0, 1000)], ids=["always", "never", "too big"])
def test_plain_pngs_decode_alike_whether_or_not_zlib_ng_inflates_them(monkeypatch, limits):
    """Below STORED_FROM and above STORED_UP_TO libspng inflates the data itself: the same pixels either way."""
    monkeypatch.setattr(decoding, "STORED_FROM", limits[0])
    monkeypatch.setattr(decoding, "STORED_UP_TO", limits[1])
    for blob in (_noisy_png("RGBA", (60, 40)), encode(drawn_one(size=28, width=3)), _noisy_png("RGB")):
        mode = Image.open(io.BytesIO(blob)).mode
        assert np.array_equal(np.asarray(_load_png(blob, mode)), _pillow_pixels(blob))


@pytest.mark.parametrize("size", [0, 1, 65534, 65535, 65536, 3 * 65535 + 7])
def test_stored_zlib_inflates_to_its_input(size):
    """The stored-blocks stream libspng is given: Python's own zlib (the reference) inflates it to the bytes, around
    the 65,535-byte block edges, and checks its Adler-32."""
    import zlib

    from service.decoding import stored_zlib

    raw = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    stream = stored_zlib(raw)
    assert zlib.decompress(stream) == raw
    assert len(stream) == len(raw) + 2 + 5 * max(1, -(-size // 65535)) + 4  # header, block headers, checksum
    broken = stream[:-1] + bytes([stream[-1] ^ 1])
    with pytest.raises(zlib.error):
        zlib.decompress(broken)
