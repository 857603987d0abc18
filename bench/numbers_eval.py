"""Whole-number evaluation: numbers of 2 to 6 MNIST test digits, drawn on a canvas or scanned on paper, read by the
service.

Each number is made of randomly chosen MNIST *test* digits (never trained on) laid out as people write numbers: one
gap kind per number (wide, normal, narrow, or touching: neighbours' ink meets or overlaps a little, one number in
five), each digit's height jittered by up to 15%, and the baseline sloping by up to 4 degrees. It is rendered in one
of two media:
- canvas: solid brush strokes as bench/canvas_eval.py draws single digits, on a 280-px-high canvas as wide as the
  number needs (transparent, white or dark), sent as the page sends its drawing: a PNG data URL in JSON;
- paper: grey ink on light, slightly uneven paper (a lighting gradient, grain, a tint), one scan in four light ink
  on dark, sent as the page sends an upload: a JPEG in a multipart form.
Every number goes through the real service in process (the Flask test client of `service.create_app()`, default
model), and the answer's `number` is compared with the truth. Each of its digits is also drawn alone (same medium)
and read as one image: how the numbers would fare if every digit were found exactly, the classifier's share of the
errors.

    python -m bench.numbers_eval --data-dir ../shared/data/mnist [--count N | --quick] [--save] [--failures DIR]
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import math
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from bench.canvas_eval import STYLES as CANVAS_STYLES
from bench.canvas_eval import encode
from bench.results import ROOT, emit
from service.preprocessing import crop_to_ink, dilate, resize
from train import numbers as drawn

LENGTHS = (2, 3, 4, 5, 6)
# gap kind -> space between neighbours, in units of the number's digit height: between their ink boxes, or for
# "touching" beyond the point where their ink first meets (0: adjacent pixels; negative: strokes cross by that much)
GAPS = {"wide": (0.45, 0.9), "normal": (0.15, 0.4), "narrow": (0.03, 0.12), "touching": (-0.06, 0.0)}
TOUCHING_SHARE = 0.2
MEDIA = ("canvas", "paper")
PAPER_STYLES = ("dark-on-light", "dark-on-light", "dark-on-light", "light-on-dark")  # one scan in four inverted
HEIGHT = {"canvas": (80, 150), "paper": (32, 96)}  # the number's digit height in px, before jitter
BRUSH = {"canvas": (-2, 7), "paper": (0, 2)}  # stroke widening in px (canvas_eval's width_change), [low, high)
JITTER = 0.15  # each digit's height within +-15% of the number's
MAX_SLOPE = 4.0  # degrees
CANVAS_HEIGHT = 280  # the page's canvas; its width is what the number needs
CANVAS_MARGIN = 12
GROUPS = ("length", "gap", "medium")
TRUTH_COLOUR, ANSWER_COLOUR = (0, 160, 0), (220, 0, 0)


@dataclass(frozen=True)
class Spec:
    """What one number is to be: its count of digits, gap kind and medium."""

    length: int
    gap: str
    medium: str


@dataclass
class Number:
    """One generated number: its truth, how it was laid out, and the encoded image the service is sent."""

    truth: str
    spec: Spec
    style: str
    slope_deg: float
    height: int  # the number's digit height before jitter, in layout px
    heights: list[int]  # each digit's height, jittered, before the brush widens its strokes
    inks: list[np.ndarray]  # each digit's ink [h, w] 0..1 (1 = ink), as laid out
    places: list[tuple[int, int]]  # (top, left) of each ink in the layout
    boxes: list[tuple[int, int, int, int]]  # each digit's (x, y, width, height) in the image's pixels
    image: bytes
    mime: str


def plan(count: int, seed: int) -> list[Spec]:
    """`count` numbers spread evenly over LENGTHS and MEDIA; one in five touching, the rest over the other gaps."""
    rng = np.random.default_rng(seed)
    touching = round(count * TOUCHING_SHARE)
    spaced = [g for g in GAPS if g != "touching"]
    gaps = ["touching"] * touching + [spaced[i % len(spaced)] for i in range(count - touching)]
    media = [MEDIA[i % len(MEDIA)] for i in range(count)]
    gaps, media = list(rng.permutation(gaps)), list(rng.permutation(media))
    return [Spec(LENGTHS[i % len(LENGTHS)], str(g), str(m)) for i, (g, m) in enumerate(zip(gaps, media, strict=True))]


def numbers(images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0) -> Iterator[Number]:
    """The evaluation's numbers, made from `images` [N, 28, 28] uint8; number i depends only on (seed, i, count)."""
    for i, spec in enumerate(plan(count, seed)):
        yield make_number(images, labels, spec, np.random.default_rng([seed, i]))


def make_number(images: np.ndarray, labels: np.ndarray, spec: Spec, rng: np.random.Generator) -> Number:
    """A number as `spec` says, of random digits of `images` [N, 28, 28] uint8, laid out and rendered."""
    picks = rng.integers(0, len(images), spec.length)
    height = int(rng.integers(HEIGHT[spec.medium][0], HEIGHT[spec.medium][1] + 1))
    brush = int(rng.integers(*BRUSH[spec.medium]))
    heights = [round(height * rng.uniform(1 - JITTER, 1 + JITTER)) for _ in picks]
    inks = [digit_ink(images[i], spec.medium, h, brush) for i, h in zip(picks, heights, strict=True)]
    slope = float(rng.uniform(-MAX_SLOPE, MAX_SLOPE))
    layout, places = compose(inks, arrange(inks, spec.gap, height, slope, rng))
    style, image, mime, scale, (dy, dx) = render(layout, spec.medium, height, rng)
    boxes = [
        (round(left * scale) + dx, round(top * scale) + dy, round(ink.shape[1] * scale), round(ink.shape[0] * scale))
        for ink, (top, left) in zip(inks, places, strict=True)
    ]
    truth = "".join(str(int(labels[i])) for i in picks)
    return Number(truth, spec, style, slope, height, heights, inks, places, boxes, image, mime)


def digit_ink(digit: np.ndarray, medium: str, height: int, brush: int) -> np.ndarray:
    """A 28x28 uint8 MNIST digit -> its ink [h, w] 0..1 cropped, `height` px tall before the brush widens it."""
    if medium == "canvas":
        return drawn.digit_ink(digit, height, brush)  # solid strokes, as canvas_eval draws them
    crop = crop_to_ink(digit.astype(np.float32) / 255.0, 0.2)
    grey = np.clip(resize(crop, (height, max(1, round(crop.shape[1] * height / crop.shape[0])))), 0, 1)
    return crop_to_ink(dilate(grey, brush) if brush > 0 else grey, 0.1)  # pen ink keeps its soft edges


def row_extents(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ink [h, w]: its first and last ink column (> 0.5), -1 where the row has none. -> two int [h]."""
    mask = ink > 0.5
    has = mask.any(axis=1)
    first = np.where(has, mask.argmax(axis=1), -1)
    last = np.where(has, mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1), -1)
    return first, last


def contact(placed: list[tuple[np.ndarray, tuple[int, int]]], top: int, ink: np.ndarray) -> int | None:
    """The left edge at which `ink` (its top at `top`) first meets the placed inks from the right: in some row its
    first ink pixel is next to their last one. None if no row has ink in both."""
    first, _ = row_extents(ink)
    lefts = []
    for p_ink, (p_top, p_left) in placed:
        _, last = row_extents(p_ink)
        low, high = max(top, p_top), min(top + ink.shape[0], p_top + p_ink.shape[0])
        if high <= low:
            continue
        a, b = last[low - p_top : high - p_top], first[low - top : high - top]
        both = (a >= 0) & (b >= 0)
        if both.any():
            lefts.append(p_left + int((a[both] - b[both]).max()) + 1)
    return max(lefts) if lefts else None


def arrange(inks: list[np.ndarray], gap: str, height: int, slope_deg: float, rng: np.random.Generator) -> list:
    """(top, left) of each ink: neighbours `gap` apart, their bottoms on a line rising `slope_deg` to the right."""
    rise = math.tan(math.radians(slope_deg))
    placed: list[tuple[np.ndarray, tuple[int, int]]] = []
    for ink in inks:
        h, w = ink.shape
        cursor = max((left + p.shape[1] for p, (_, left) in placed), default=0)
        space = round(rng.uniform(*GAPS[gap]) * height)
        top = round(-rise * (cursor + max(space, 0) + w / 2)) - h  # image rows grow downwards
        touch = contact(placed, top, ink) if gap == "touching" and placed else None
        placed.append((ink, (top, (cursor if touch is None else touch) + space)))
    return [place for _, place in placed]


def compose(inks: list[np.ndarray], places: list[tuple[int, int]]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The inks drawn together: (layout [H, W] 0..1, places shifted so the layout starts at (0, 0))."""
    top0, left0 = min(t for t, _ in places), min(left for _, left in places)
    places = [(t - top0, left - left0) for t, left in places]
    h = max(t + ink.shape[0] for ink, (t, _) in zip(inks, places, strict=True))
    w = max(left + ink.shape[1] for ink, (_, left) in zip(inks, places, strict=True))
    layout = np.zeros((h, w), np.float32)
    for ink, (t, left) in zip(inks, places, strict=True):
        region = layout[t : t + ink.shape[0], left : left + ink.shape[1]]
        np.maximum(region, ink, out=region)
    return layout, places


def render(layout: np.ndarray, medium: str, height: int, rng: np.random.Generator) -> tuple:
    """(style, encoded image, its MIME type, the layout's scale in it, (top, left) of the layout in it)."""
    if medium == "canvas":
        style = CANVAS_STYLES[int(rng.integers(len(CANVAS_STYLES)))]
        ink, scale, offset = on_canvas(layout, rng)
        return style, encode(ink, style), "image/png", scale, offset
    style = PAPER_STYLES[int(rng.integers(len(PAPER_STYLES)))]
    image, offset = on_paper(layout, style, height, rng)
    return style, image, "image/jpeg", 1.0, offset


def on_canvas(layout: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The layout on a CANVAS_HEIGHT-px-high canvas (shrunk to fit if it must): (ink [280, W], scale, (top, left))."""
    scale = min(1.0, (CANVAS_HEIGHT - 2 * CANVAS_MARGIN) / layout.shape[0])
    if scale < 1:
        layout = resize(layout, (max(1, round(layout.shape[0] * scale)), max(1, round(layout.shape[1] * scale))))
    h, w = layout.shape
    width = max(CANVAS_HEIGHT, w + int(rng.integers(2 * CANVAS_MARGIN, 10 * CANVAS_MARGIN)))
    top = int(rng.integers(CANVAS_MARGIN, CANVAS_HEIGHT - CANVAS_MARGIN - h + 1))
    left = int(rng.integers(CANVAS_MARGIN, width - CANVAS_MARGIN - w + 1))
    ink = np.zeros((CANVAS_HEIGHT, width), np.float32)
    ink[top : top + h, left : left + w] = layout
    # soft edges, like an anti-aliased canvas stroke, as canvas_eval's render_canvas makes them
    return resize(resize(ink, (2 * CANVAS_HEIGHT, 2 * width)), ink.shape), scale, (top, left)


def on_paper(layout: np.ndarray, style: str, height: int, rng: np.random.Generator) -> tuple[bytes, tuple[int, int]]:
    """The layout written on paper and scanned: (JPEG bytes, (top, left) of the layout in the image)."""
    top, bottom, left, right = (round(m * height) for m in rng.uniform(0.3, 1.0, 4))
    ink = np.pad(layout, ((top, bottom), (left, right)))
    gray = paper(ink.shape, rng) * (1 - rng.uniform(0.55, 0.9) * ink)
    if style == "light-on-dark":
        gray = 1 - gray
    tint = np.array([1.0, rng.uniform(0.95, 1.0), rng.uniform(0.88, 1.0)], np.float32)  # warm paper, a colour scan
    rgb = (np.clip(gray[..., None] * tint, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buffer, format="JPEG", quality=int(rng.integers(60, 93)))
    return buffer.getvalue(), (top, left)


def paper(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Light, slightly uneven paper [H, W] in 0..1: a level, a linear lighting gradient and grain."""
    h, w = shape
    gy, gx = rng.uniform(-0.04, 0.04, 2)  # each at most 0.08 across the page
    ramp = rng.uniform(0.8, 0.95) + gy * np.linspace(-1, 1, h)[:, None] + gx * np.linspace(-1, 1, w)[None, :]
    return (ramp + rng.normal(0, rng.uniform(0.005, 0.025), shape)).astype(np.float32)


# ---- reading the numbers through the service ---------------------------------------------------------------------


def post(client, image: bytes, mime: str) -> tuple[int, dict]:
    """An image sent as the page sends it: a canvas as a JSON data URL, a scan as a multipart upload."""
    if mime == "image/png":
        url = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
        response = client.post("/predict", json={"image": url})
    else:
        form = {"image": (io.BytesIO(image), "scan.jpg", mime)}
        response = client.post("/predict", data=form, content_type="multipart/form-data")
    return response.status_code, response.get_json()


def read_alone(client, number: Number, rng: np.random.Generator) -> str:
    """Each digit of `number` drawn alone in the number's medium (its style drawn afresh) and read as one image;
    the digits read, "?" for each that got no reading. What a perfect segmentation would leave the classifier."""
    read = ""
    for ink in number.inks:
        _, image, mime, _, _ = render(ink, number.spec.medium, number.height, rng)
        one = number_read(*post(client, image, mime))
        read += one if one is not None and len(one) == 1 else "?"
    return read


def number_read(status: int, answer: dict) -> str | None:
    """The number an answer reads; a service that reads one digit (no `number`) reads that digit. None: no reading."""
    if status != 200:
        return None
    return answer["number"] if "number" in answer else str(answer["digit"])


def score(truth: str, read: str | None) -> int:
    """Digits of `truth` read right, position by position; 0 when the count of digits read is wrong."""
    if read is None or len(read) != len(truth):
        return 0
    return sum(a == b for a, b in zip(truth, read, strict=True))


@dataclass
class Tally:
    """Whole-number and per-digit counts for a group of numbers."""

    numbers: int = 0
    whole: int = 0
    digits: int = 0
    digits_right: int = 0
    wrong_count: int = 0
    alone_whole: int = 0  # the same, each digit drawn and read alone
    alone_right: int = 0

    def add(self, truth: str, read: str | None, alone: str) -> None:
        self.numbers += 1
        self.whole += read == truth
        self.digits += len(truth)
        self.digits_right += score(truth, read)
        self.wrong_count += read is None or len(read) != len(truth)
        self.alone_whole += alone == truth
        self.alone_right += score(truth, alone)

    def summary(self) -> dict:
        def share(n: int, of: int) -> float:
            return round(n / max(of, 1), 4)

        return {
            "numbers": self.numbers,
            "number_accuracy": share(self.whole, self.numbers),
            "digit_accuracy": share(self.digits_right, self.digits),
            "wrong_count": self.wrong_count,
            "alone_number_accuracy": share(self.alone_whole, self.numbers),
            "alone_digit_accuracy": share(self.alone_right, self.digits),
        }


@dataclass
class Report:
    """Tallies overall and by group, the answers' error codes, and a few failures kept as examples (at most 2 per
    medium and gap kind, `examples` in all), saved as PNGs in `folder` unless it is None."""

    folder: Path | None = None
    examples: int = 16
    overall: Tally = field(default_factory=Tally)
    groups: dict[str, dict[str, Tally]] = field(default_factory=lambda: {g: {} for g in GROUPS})
    errors: Counter = field(default_factory=Counter)
    with_number: int = 0
    records: list[dict] = field(default_factory=list)  # one per number: what it was and what was read
    failures: list[dict] = field(default_factory=list)

    def add(self, index: int, number: Number, answered: tuple[int, dict], alone: str) -> None:
        """Number `index`, the service's answer (status, JSON) and its digits read alone."""
        status, answer = answered
        read = number_read(status, answer)
        self.records.append(record(index, number, status, read) | {"alone": alone})
        self.overall.add(number.truth, read, alone)
        keys = {"length": str(number.spec.length), "gap": number.spec.gap, "medium": number.spec.medium}
        for group, key in keys.items():
            self.groups[group].setdefault(key, Tally()).add(number.truth, read, alone)
        self.with_number += status == 200 and "number" in answer
        if status != 200:
            self.errors[f"{status} {answer['error']['code']}"] += 1
        if read != number.truth:
            self.keep_failure(index, number, read, answer)

    def keep_failure(self, index: int, number: Number, read: str | None, answer: dict) -> None:
        kind = (number.spec.medium, number.spec.gap)
        if len(self.failures) >= self.examples or sum((f["medium"], f["gap"]) == kind for f in self.failures) >= 2:
            return
        example = dict(self.records[-1])
        if self.folder is not None:
            example["file"] = save_failure(self.folder, index, number, read, answer)
        self.failures.append(example)

    def summary(self) -> dict:
        order = {"length": [str(n) for n in LENGTHS], "gap": list(GAPS), "medium": list(MEDIA)}
        by = {f"by_{g}": {k: self.groups[g][k].summary() for k in order[g] if k in self.groups[g]} for g in GROUPS}
        return {
            **self.overall.summary(),
            "digits": self.overall.digits,
            **by,
            "answers_with_number": self.with_number,
            "errors": dict(self.errors),
            "failure_examples": self.failures,
        }


def evaluate(
    client, images: np.ndarray, labels: np.ndarray, count: int, seed: int = 0, folder: Path | None = None
) -> dict:
    """Whole-number and per-digit accuracy of the service behind `client` (a Flask test client) on `count` numbers
    made from `images` [N, 28, 28] uint8 and their `labels`, and the same with each digit drawn alone; failure
    examples saved in `folder` unless None."""
    tally, started = Report(folder), time.perf_counter()
    for index, number in enumerate(numbers(images, labels, count, seed)):
        alone = read_alone(client, number, np.random.default_rng([seed, index, 1]))
        tally.add(index, number, post(client, number.image, number.mime), alone)
    seconds = round(time.perf_counter() - started, 1)
    if folder is not None:  # every number, for a closer look: one JSON object a line
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "numbers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tally.records))
    return {**tally.summary(), "seed": seed, "seconds": seconds}


def record(index: int, number: Number, status: int, read: str | None) -> dict:
    """What number `index` was, and what the service read (None: no reading, see status)."""
    return {
        "index": index,
        "truth": number.truth,
        "read": read,
        "status": status,
        "length": number.spec.length,
        "gap": number.spec.gap,
        "medium": number.spec.medium,
        "style": number.style,
        "slope_deg": round(number.slope_deg, 1),
        "height": number.height,
    }


def save_failure(folder: Path, index: int, number: Number, read: str | None, answer: dict) -> str:
    """The image as sent, with the true digit boxes (green) and the answer's (red), as a PNG; -> its path."""
    image = Image.open(io.BytesIO(number.image))
    if image.mode in ("RGBA", "LA"):  # a transparent canvas: shown on white, as the page shows it
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image.convert("RGBA"))
    image = image.convert("RGB")
    draw = ImageDraw.Draw(image)
    boxes = [(b["x"], b["y"], b["width"], b["height"]) for b in (d["box"] for d in (answer or {}).get("digits", []))]
    for colour, (x, y, w, h) in [(TRUTH_COLOUR, b) for b in number.boxes] + [(ANSWER_COLOUR, b) for b in boxes]:
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=2)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{index:04d}-{number.spec.medium}-{number.spec.gap}-{number.truth}-read-{read or 'none'}.png"
    image.save(path)
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def main(argv: list[str] | None = None) -> int:
    from service import create_app
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m bench.numbers_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR)")
    parser.add_argument("--model-dir", help="SavedModel directory (default: the bundled cnn)")
    parser.add_argument("--count", type=int, default=2000, help="numbers to read (default 2,000)")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 40 numbers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", default="out/numbers_eval", help="folder for failure PNGs (default: %(default)s)")
    parser.add_argument("--save", action="store_true", help="record the result in bench/results/numbers_eval.json")
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    app = create_app({"model_dir": args.model_dir} if args.model_dir else None)
    count = 40 if args.quick else args.count
    result = evaluate(app.test_client(), data.x_test, data.y_test, count, args.seed, folder=ROOT / args.failures)
    info = app.extensions["digits"].default.info
    result |= {"model": {"name": info.name, "version": info.version}, "quick": args.quick}
    emit(result, "numbers_eval" if args.save else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
