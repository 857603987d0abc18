"""Non-digits for outlier exposure and for bench/ood_eval.py, made here without downloads: letters and symbols of
many scripts rendered from Debian's fonts and redrawn as pen strokes, stroke shapes from two unrelated generators,
and pairs of MNIST digits drawn over each other. Every image goes through the service's own MNIST recipe
(service.preprocessing.digit_input), so the model sees non-digits exactly as it would see them in a request.

Two disjoint splits: "train" (what training sees) and "heldout" (other font families, other scripts, another
stroke generator), so that the evaluation measures generalisation, not memory of the training sources.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont
from skimage.morphology import skeletonize

from service.preprocessing import crop_to_ink, digit_input
from train.numbers import digit_ink

FONT_DIRS = (Path("/usr/share/fonts/truetype"), Path("/usr/share/fonts/opentype"))
GLYPH_PX = 96  # rendering size before the strokes are redrawn and the recipe shrinks them to 20x20


def _chars(*ranges: tuple[int, int]) -> str:
    return "".join(chr(c) for lo, hi in ranges for c in range(lo, hi + 1))


# Characters that look like a digit when handwritten (O and 0, l and 1, Z and 2, З and 3, Ч and 4, S and 5, б and 6,
# g and 9, B and 8...) are neither non-digits nor digits: left out of both splits.
CONFUSABLE = set(
    "OoDQIlijJZzSsBbGgqT|/\\()[]{}!.,:;'\"`-_$§°Øø"
    "ΟοΘθΙιΖζΒβδσςΣ"
    "ОоЗзЭэбБЧчІіЅѕВЬьЪъТЈј"
    "\u0627\u0623\u0625\u0622\u0671"  # Arabic alef and its forms: a vertical stroke, a 1
    "\u05d5\u05df\u05d9\u05da"  # Hebrew vav, final nun, yod, final kaf: strokes like 1 and 7
    "\u0b20"  # Oriya tha: a ring, a 0
)
LATIN = _chars((0x41, 0x5A), (0x61, 0x7A))
GREEK = _chars((0x391, 0x3A1), (0x3A3, 0x3A9), (0x3B1, 0x3C9))
CYRILLIC = _chars((0x410, 0x44F))
SYMBOLS = "+×÷=≠<>≤≥?@#%&*~^∑√∞πΔΩ→←↔★☆♥♦♣♠☺✓✗¶€£¥¢©®™¿‰"
SCRIPTS = {
    "latin": LATIN,
    "greek": GREEK,
    "cyrillic": CYRILLIC,
    "symbols": SYMBOLS,
    "arabic": _chars((0x628, 0x64A)),
    "hebrew": _chars((0x5D0, 0x5EA)),
    "devanagari": _chars((0x905, 0x914), (0x915, 0x939)),
    "thai": _chars((0xE01, 0xE2E)),
    "georgian": _chars((0x10D0, 0x10F0)),
    "armenian": _chars((0x531, 0x556), (0x561, 0x586)),
    "tamil": _chars((0xB85, 0xB94), (0xB95, 0xBB9)),
    "ethiopic": _chars((0x1200, 0x1248)),
    # Training only: more scripts of curved, many-stroke letters (not those of simple strokes and circles, such as
    # Runic, Tifinagh or Myanmar, whose letters include a bar like a 1 and a ring like a 0)
    "bengali": _chars((0x985, 0x994), (0x995, 0x9B9)),
    "gujarati": _chars((0xA85, 0xA94), (0xA95, 0xAB9)),
    "gurmukhi": _chars((0xA05, 0xA14), (0xA15, 0xA39)),
    "kannada": _chars((0xC85, 0xC94), (0xC95, 0xCB9)),
    "telugu": _chars((0xC05, 0xC14), (0xC15, 0xC39)),
    "malayalam": _chars((0xD05, 0xD14), (0xD15, 0xD39)),
    "sinhala": _chars((0xD85, 0xD96), (0xD9A, 0xDC6)),
    "khmer": _chars((0x1780, 0x17A2)),
    "hangul": _chars((0xAC00, 0xAC00 + 399)),
    "cjk": _chars((0x4E00, 0x4E00 + 399)),
    # Training only, far from the Latin alphabet and from the held-out scripts: letters of many strokes, loops and
    # hooks (not the scripts whose letters are mostly rings, bars and hooks, such as Osage, Adlam, Lepcha or
    # Cherokee, which hold a 0, a 1, a 6 or a 7 in nearly every tenth letter); the large syllabaries cut to 80
    "javanese": _chars((0xA984, 0xA9B2)),
    "balinese": _chars((0x1B05, 0x1B33)),
    "tibetan": _chars((0xF40, 0xF6C)),
    "oriya": _chars((0xB05, 0xB14), (0xB15, 0xB39)),
    "glagolitic": _chars((0x2C00, 0x2C2E)),
    "vai": _chars((0xA500, 0xA54F)),
    "bamum": _chars((0xA6A0, 0xA6EF)),
    "cham": _chars((0xAA00, 0xAA28)),
    "sundanese": _chars((0x1B8A, 0x1BA0)),
    "canadian": _chars((0x1401, 0x1450)),
    "digits": "0123456789",  # for font_digits() only: never a non-digit source
}
FAR_SCRIPTS = (
    "javanese",
    "balinese",
    "tibetan",
    "oriya",
    "glagolitic",
    "vai",
    "bamum",
    "cham",
    "sundanese",
    "canadian",
)
FAR_FONTS = (
    "NotoSansJavanese-*.ttf",
    "NotoSansBalinese-*.ttf",
    "NotoSerifTibetan-*.ttf",
    "NotoSansOriya-*.ttf",
    "NotoSansGlagolitic-*.ttf",
    "NotoSansVai-*.ttf",
    "NotoSansBamum-*.ttf",
    "NotoSansCham-*.ttf",
    "NotoSansSundanese-*.ttf",
    "NotoSansCanadianAboriginal-*.ttf",
)
# Handwriting-style families (Debian's fonts-humor-sans, fonts-breip, fonts-femkeklaver, fonts-comic-neue,
# fonts-dkg-handwriting, fonts-bwht, fonts-kristi, fonts-dancingscript, fonts-tomsontalks): fonts made from people's
# handwriting, print and cursive, Latin only
HANDWRITING_FONTS = (
    "Humor-Sans.ttf",
    "Breip.ttf",
    "femkeklaver.ttf",
    "ComicNeue-*.otf",
    "dkg*.ttf",
    "BecauseWe*-Regular.otf",
    "Kristi.ttf",
    "DancingScript-*.otf",
    "TomsonTalks.ttf",
)


@dataclass(frozen=True)
class GlyphSource:
    """Characters of some scripts in some font files (glob patterns under FONT_DIRS)."""

    scripts: tuple[str, ...]
    fonts: tuple[str, ...]


# Training: DejaVu and FreeFont for Latin, Greek, Cyrillic and symbols; nine handwriting-style families for Latin;
# Noto for Arabic, Hebrew, Devanagari, eight more Indic and Southeast Asian scripts and ten scripts further away.
# Held out: other families (Liberation, Noto) for those scripts, and seven scripts training never sees.
GLYPHS = {
    "train": {
        "letters": GlyphSource(("latin", "greek", "cyrillic"), ("DejaVuSans*.ttf", "DejaVuSerif*.ttf", "Free*.ttf")),
        # Letters as people write them, so that the pen's own irregular shapes are in training
        "handwriting": GlyphSource(("latin",), HANDWRITING_FONTS),
        "symbols": GlyphSource(("symbols",), ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "FreeSerif.ttf")),
        "rtl_indic": GlyphSource(
            ("arabic", "hebrew", "devanagari"),
            ("NotoSansArabic-*.ttf", "NotoSansHebrew-*.ttf", "NotoSansDevanagari-*.ttf"),
        ),
        "more_scripts": GlyphSource(
            ("bengali", "gujarati", "gurmukhi", "kannada", "telugu", "malayalam", "sinhala", "khmer"),
            tuple(
                f"NotoSans{name}-*.ttf"
                for name in ("Bengali", "Gujarati", "Gurmukhi", "Kannada", "Telugu", "Malayalam", "Sinhala", "Khmer")
            ),
        ),
        "far_scripts": GlyphSource(FAR_SCRIPTS, FAR_FONTS),
    },
    "heldout": {
        "letters_other_fonts": GlyphSource(("latin", "greek", "cyrillic"), ("Liberation*.ttf", "NotoSerif-*.ttf")),
        "unseen_scripts": GlyphSource(
            ("thai", "georgian", "armenian", "tamil", "ethiopic"),
            (
                "NotoSansThai-*.ttf",
                "NotoSerifGeorgian-*.ttf",
                "NotoSansArmenian-*.ttf",
                "NotoSerifTamil-*.ttf",
                "NotoSansEthiopic-*.ttf",
            ),
        ),
        "cjk_hangul": GlyphSource(("cjk", "hangul"), ("NotoSansCJK-Regular.ttc",)),
    },
}


@functools.cache
def font_files(pattern: str) -> tuple[Path, ...]:
    return tuple(sorted(p for d in FONT_DIRS if d.is_dir() for p in d.rglob(pattern)))


@functools.cache
def _font(path: Path) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(path), GLYPH_PX)


def _draw(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    side = 2 * GLYPH_PX
    image = Image.new("L", (side, side), 0)
    ImageDraw.Draw(image).text((side // 2, side // 2), char, fill=255, font=font, anchor="mm")
    return np.asarray(image, np.float32) / 255.0


def render_glyph(char: str, font: ImageFont.FreeTypeFont) -> np.ndarray:
    """The glyph's ink, float32 [h, w] 0..1, cropped."""
    return crop_to_ink(_draw(char, font), 0.5)


@functools.cache
def _notdef(path: Path) -> bytes:
    return _draw("\U0010fffd", _font(path)).tobytes()  # a code point no font has: its .notdef box


def glyph_pairs(source: GlyphSource) -> list[tuple[str, Path]]:
    """Every (character, font file) of a source that the font can draw, minus the confusable characters."""
    chars = [c for s in source.scripts for c in SCRIPTS[s] if c not in CONFUSABLE]
    fonts = [f for pattern in source.fonts for f in font_files(pattern)]
    return [(c, f) for f in fonts for c in chars if font_has(f, c)]


@functools.cache
def font_has(path: Path, char: str) -> bool:
    drawn = _draw(char, _font(path))
    return drawn.max() > 0.5 and drawn.tobytes() != _notdef(path)


# ---- turning a typeset glyph into something a pen could have drawn ---------------------------------------------


def distort(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random slant, rotation, aspect change and smooth elastic wobble: ink [h, w] -> ink [H, W]."""
    h, w = ink.shape
    pad = max(h, w) // 2
    ink = cv2.copyMakeBorder(ink, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    centre = (ink.shape[1] / 2, ink.shape[0] / 2)
    m = cv2.getRotationMatrix2D(centre, rng.uniform(-15, 15), 1.0)
    m[0, 1] += rng.uniform(-0.3, 0.3)  # shear
    m[:, :2] *= np.array([[rng.uniform(0.75, 1.25)], [1.0]])  # aspect
    ink = cv2.warpAffine(ink, m, ink.shape[::-1], flags=cv2.INTER_LINEAR)
    return elastic(ink, rng, alpha=rng.uniform(0, 4), sigma=8)


def elastic(ink: np.ndarray, rng: np.random.Generator, alpha: float, sigma: float) -> np.ndarray:
    """Elastic distortion (Simard et al., 2003): a smooth random displacement field of `alpha` px."""
    if alpha <= 0:
        return ink
    field = [cv2.GaussianBlur(rng.uniform(-1, 1, ink.shape).astype(np.float32), (0, 0), sigma) for _ in range(2)]
    field = [f * (alpha / (np.abs(f).max() + 1e-6)) for f in field]
    ys, xs = np.indices(ink.shape, dtype=np.float32)
    return cv2.remap(ink, xs + field[0], ys + field[1], cv2.INTER_LINEAR)


def pen_strokes(ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Redraw ink as strokes of one width, as a pen or a canvas brush would: skeleton, then a round brush."""
    skeleton = skeletonize(ink > 0.5).astype(np.uint8)
    radius = int(rng.integers(2, 6))
    brush = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(skeleton, brush).astype(np.float32)


def pick_glyphs(source: GlyphSource, count: int, rng: np.random.Generator) -> list[tuple[str, Path]]:
    """`count` (character, font file) pairs of a source, drawn at random."""
    pairs = glyph_pairs(source)
    if not pairs:
        raise FileNotFoundError(f"no font found for {source.fonts} (install Debian's fonts-dejavu, fonts-noto...)")
    return [pairs[i] for i in rng.integers(0, len(pairs), count)]


def pen_glyph(char: str, path: Path, rng: np.random.Generator) -> np.ndarray:
    """One character typeset in a font, distorted and redrawn as pen strokes: ink [h, w]."""
    return pen_strokes(distort(render_glyph(char, _font(path)), rng), rng)


def glyph_images(source: GlyphSource, count: int, rng: np.random.Generator) -> Iterable[np.ndarray]:
    """`count` pen-drawn glyphs of a source, as ink [h, w]."""
    for char, path in pick_glyphs(source, count, rng):
        yield pen_glyph(char, path, rng)


# ---- stroke shapes from two unrelated generators ----------------------------------------------------------------


def _canvas() -> np.ndarray:
    return np.zeros((160, 160), np.uint8)


def _polyline(canvas: np.ndarray, points: np.ndarray, rng: np.random.Generator, closed: bool = False) -> None:
    cv2.polylines(canvas, [points.astype(np.int32)], closed, 1, int(rng.integers(3, 10)), cv2.LINE_AA)


def bezier(p: np.ndarray, n: int = 40) -> np.ndarray:
    """Points on the Bezier curve with control points p [k, 2]."""
    t = np.linspace(0, 1, n)[:, None]
    k = len(p) - 1
    from math import comb

    return sum(comb(k, i) * (1 - t) ** (k - i) * t**i * p[i] for i in range(k + 1))


def shapes_train(rng: np.random.Generator) -> np.ndarray:
    """Training's generator: scribbles, crosses, polygons, stars, zigzags, hatching, arrows, waves, loop chains,
    doodles of a few separate strokes."""
    canvas, kind = _canvas(), rng.integers(0, 9)
    if kind == 0:  # a scribble: one long Bezier curve through many points
        _polyline(canvas, bezier(rng.uniform(10, 150, (int(rng.integers(6, 12)), 2)), 120), rng)
    elif kind == 1:  # a cross or a plus
        angle = rng.uniform(0, np.pi / 2)
        for a in (angle, angle + np.pi / 2):
            d = 60 * np.array([np.cos(a), np.sin(a)])
            _polyline(canvas, np.array([80 - d, 80 + d]), rng)
    elif kind == 2:  # a polygon or a star
        n = int(rng.integers(3, 7))
        step = 2 if rng.random() < 0.5 and n >= 5 else 1
        a = rng.uniform(0, 2 * np.pi) + 2 * np.pi * step * np.arange(n) / n
        _polyline(canvas, 80 + 60 * np.stack([np.cos(a), np.sin(a)], 1), rng, closed=True)
    elif kind == 3:  # a zigzag
        xs = np.linspace(15, 145, int(rng.integers(4, 9)))
        _polyline(canvas, np.stack([xs, 80 + rng.choice([-40, 40]) * (np.arange(len(xs)) % 2 * 2 - 1)], 1), rng)
    elif kind == 4:  # hatching
        for y in np.linspace(30, 130, int(rng.integers(3, 6))):
            _polyline(canvas, np.array([[20, y], [140, y + rng.uniform(-20, 20)]]), rng)
    elif kind == 5:  # an arrow
        _polyline(canvas, np.array([[20, 80], [140, 80], [110, 55], [140, 80], [110, 105]]), rng)
    elif kind == 6:  # a wave of a few periods
        xs = np.linspace(15, 145, 120)
        periods, height = rng.uniform(1.5, 4), rng.uniform(15, 50)
        _polyline(canvas, np.stack([xs, 80 + height * np.sin(xs / 130 * periods * 2 * np.pi)], 1), rng)
    elif kind == 8:  # a doodle: three to five short curves anywhere, crossing or apart (fewer could make a 4 or a 7)
        for _ in range(int(rng.integers(3, 6))):
            _polyline(canvas, bezier(rng.uniform(10, 150, (int(rng.integers(3, 5)), 2)), 40), rng)
    else:  # a chain of loops, as cursive e's or l's (a prolate cycloid)
        t = np.linspace(0, 2 * np.pi * rng.integers(3, 6), 300)
        r = rng.uniform(1.2, 2.5)
        points = np.stack([t - r * np.sin(t), -r * np.cos(t)], 1)
        _polyline(canvas, (points - points.min(0)) / np.ptp(points, 0).max() * 130 + 15, rng)
    return canvas.astype(np.float32)


def shapes_heldout(rng: np.random.Generator) -> np.ndarray:
    """Another generator, never trained on: random walks with momentum, spirals, hearts, grids, Lissajous curves."""
    canvas, kind, t = _canvas(), rng.integers(0, 5), np.linspace(0, 1, 200)
    if kind == 0:
        steps = np.cumsum(rng.normal(0, 0.6, 300)) + rng.uniform(0, 6.3)
        walk = np.cumsum(np.stack([np.cos(steps), np.sin(steps)], 1) * 3, 0)
        walk = (walk - walk.min(0)) / max(1e-6, np.ptp(walk, 0).max()) * 130 + 15
        _polyline(canvas, walk, rng)
    elif kind == 1:
        a = t * rng.uniform(3, 6) * np.pi
        _polyline(canvas, 80 + (10 + 60 * t)[:, None] * np.stack([np.cos(a), np.sin(a)], 1), rng)
    elif kind == 2:
        a = t * 2 * np.pi
        heart = np.stack([16 * np.sin(a) ** 3, -(13 * np.cos(a) - 5 * np.cos(2 * a) - 2 * np.cos(3 * a))], 1)
        _polyline(canvas, 80 + 4 * heart, rng, closed=True)
    elif kind == 3:
        for v in np.linspace(35, 125, int(rng.integers(3, 5))):
            _polyline(canvas, np.array([[v, 20], [v, 140]]), rng)
            _polyline(canvas, np.array([[20, v], [140, v]]), rng)
    else:
        a, b = rng.integers(1, 5, 2)
        a += a == b
        s = t * 2 * np.pi
        _polyline(canvas, 80 + 60 * np.stack([np.sin(a * s + 0.5), np.sin(b * s)], 1), rng)
    return canvas.astype(np.float32)


def overlaid_digits(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two MNIST digits drawn over each other, offset by up to half a digit: not one digit."""
    a, b = (digit_ink(images[i], 80, int(rng.integers(1, 4))) for i in rng.integers(0, len(images), 2))
    h, w = max(a.shape[0], b.shape[0]) + 40, max(a.shape[1], b.shape[1]) + 40
    canvas = np.zeros((h, w), np.float32)
    canvas[: a.shape[0], : a.shape[1]] = a
    # offset by at least a third of a digit one way or the other: two digits on top of each other read as one
    while True:
        dy, dx = int(rng.integers(0, h - b.shape[0] + 1)), int(rng.integers(0, w - b.shape[1] + 1))
        if dy > b.shape[0] / 3 or dx > b.shape[1] / 3:
            break
    window = canvas[dy : dy + b.shape[0], dx : dx + b.shape[1]]
    np.maximum(window, b, out=window)
    return canvas


# ---- the datasets ----------------------------------------------------------------------------------------------


def sources(split: str, digits: np.ndarray) -> dict[str, Callable[[int, np.random.Generator], Iterable[np.ndarray]]]:
    """Name -> generator of `count` ink images, for one split. `digits`: uint8 [N, 28, 28] MNIST digits to overlay
    (training digits for "train", test digits for "heldout")."""
    out: dict = {name: functools.partial(glyph_images, src) for name, src in GLYPHS[split].items()}
    shapes = shapes_train if split == "train" else shapes_heldout
    out["shapes"] = lambda count, rng: (shapes(rng) for _ in range(count))
    out["overlaid_digits"] = lambda count, rng: (overlaid_digits(digits, rng) for _ in range(count))
    return out


def dataset(split: str, per_source: int, digits: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """Source name -> model inputs float32 [n, 28, 28] 0..255, through the service's own recipe."""
    out = {}
    for i, (name, make) in enumerate(sorted(sources(split, digits).items())):
        rng = np.random.default_rng([seed, i])
        inputs = [digit_input(crop_to_ink(ink)) for ink in make(per_source, rng) if ink.max() > 0.5]
        out[name] = np.stack(inputs).astype(np.float32)
    return out


def training_set(count: int, digits: np.ndarray, seed: int) -> np.ndarray:
    """`count` training-split non-digits, float32 [count, 28, 28] 0..255, in equal shares per source, shuffled.

    `digits`: uint8 [N, 28, 28] MNIST training digits, for the overlaid pairs."""
    parts = dataset("train", -(-count // len(sources("train", digits))), digits, seed)
    images = np.concatenate(list(parts.values()))
    return images[np.random.default_rng(seed).permutation(len(images))[:count]]


def pen_digits(digits: np.ndarray, seed: int) -> np.ndarray:
    """MNIST digits uint8 [N, 28, 28] redrawn exactly as the non-digits' glyphs are (distorted, then pen strokes of
    one width), through the recipe: float32 [N, 28, 28] 0..255. Digits for a detector, so that the drawing style
    cannot tell it which is which: only the shape can."""
    rng = np.random.default_rng(seed)
    inks = (pen_strokes(distort(digit_ink(d, GLYPH_PX, 2), rng), rng) for d in digits)
    return np.stack([digit_input(crop_to_ink(ink)) for ink in inks]).astype(np.float32)


# Typeset digits: the handwriting families' are digits for the detector, so that digits as other people write them
# (a 1 with a flag, a closed 4, a 7 with a bar) are digits too, not only MNIST's American ones. Not the book faces
# (DejaVu, FreeFont): with their smooth, geometric 0, 6, 8 and 9 among the digits, the detector learnt to take rings,
# loops and spirals for digits (held-out shapes refused 70.5% instead of 84.8%). The held-out families' digits
# (Liberation, Noto Serif) measure in bench/ood_eval.py how digits in styles training never saw fare
DIGIT_FONTS = {
    "train": GlyphSource(("digits",), HANDWRITING_FONTS),
    "heldout": GlyphSource(("digits",), GLYPHS["heldout"]["letters_other_fonts"].fonts),
}


def typeset_digits(count: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """`count` digits typeset in a split's DIGIT_FONTS and redrawn exactly as the non-digits' glyphs are, through the
    recipe: (inputs float32 [count, 28, 28] 0..255, labels int64 [count])."""
    rng = np.random.default_rng([seed, 10])
    picks = pick_glyphs(DIGIT_FONTS[split], count, rng)
    x = [digit_input(crop_to_ink(pen_glyph(char, path, rng))) for char, path in picks]
    x = np.array(x, np.float32).reshape(-1, 28, 28)
    return x, np.array([int(char) for char, _ in picks], np.int64)


def font_digits(count: int, seed: int) -> np.ndarray:
    """The detector's typeset digits (typeset_digits() of the training families): what people write that MNIST
    lacks, as pen_digits() are MNIST's own, float32 [count, 28, 28] 0..255."""
    return typeset_digits(count, seed)[0]


def validation_set(count: int, digits: np.ndarray, seed: int) -> np.ndarray:
    """Non-digits from the training sources, other samples than training_set(): for choosing thresholds."""
    return training_set(count, digits, seed + 1_000_003)
