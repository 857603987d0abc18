"""Canvas-style evaluation: MNIST test digits re-drawn as big web-canvas drawings.

Each digit is cut out, scaled up to a random size, turned into solid brush strokes of a random
width (thin pen to fat marker), placed at a random spot of a 280x280 (or wider) canvas, drawn
dark-on-white, dark-on-transparent or light-on-dark, PNG-encoded, and then sent through the
service's own reading (decoding, segmentation, preprocessing) and the model: a drawing counts as
right when it is read as exactly its one digit. This is what a canvas user produces,
and the digits are ones the model never trained on.

    python -m bench.canvas_eval --data-dir ../shared/data/mnist [--limit N] [--model-dir DIR] [--save]
"""

from __future__ import annotations

import argparse
import io
import sys
import time

import numpy as np
from PIL import Image

from bench.results import emit
from service.preprocessing import resize
from train.numbers import solid_strokes

STYLES = ("dark-on-white", "dark-on-transparent", "light-on-dark")


def render_canvas(
    digit: np.ndarray, rng: np.random.Generator, style: str | None = None, size: tuple[int, int] = (280, 280)
) -> bytes:
    """PNG bytes of `digit` drawn as a canvas user would draw it."""
    h_canvas, w_canvas = size
    height = int(rng.integers(int(0.35 * h_canvas), int(0.85 * h_canvas)))
    mask = solid_strokes(digit, height, int(rng.integers(-3, 9)))
    mask = mask[:h_canvas, :w_canvas]
    top = int(rng.integers(0, h_canvas - mask.shape[0] + 1))
    left = int(rng.integers(0, w_canvas - mask.shape[1] + 1))
    ink = np.zeros(size, np.float32)
    ink[top : top + mask.shape[0], left : left + mask.shape[1]] = mask
    # soft edges, like an anti-aliased canvas stroke: 2x supersample
    ink = resize(resize(ink, (2 * h_canvas, 2 * w_canvas)), size)
    style = style or STYLES[int(rng.integers(len(STYLES)))]
    return encode(ink, style)


def encode(ink: np.ndarray, style: str) -> bytes:
    """ink [H, W] in 0..1 -> PNG bytes in one of the STYLES."""
    level = (np.clip(ink, 0, 1) * 255).round().astype(np.uint8)
    if style == "dark-on-white":
        image = Image.fromarray(255 - level, mode="L")
    elif style == "light-on-dark":
        image = Image.fromarray(level, mode="L")
    else:  # black strokes whose alpha is the ink, on a fully transparent canvas
        rgba = np.zeros(ink.shape + (4,), np.uint8)
        rgba[..., 3] = level
        image = Image.fromarray(rgba, mode="RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def evaluate(predictor, images: np.ndarray, labels: np.ndarray, seed: int = 0, reader=None) -> dict:
    """Accuracy of the service's reading (decode -> segment -> preprocess -> model) on canvas renderings of
    `images`: a drawing is right when it reads as exactly its one digit."""
    from service.config import Settings
    from service.decoding import decode_sized
    from service.reading import read

    rng = np.random.default_rng(seed)
    correct = {s: [0, 0] for s in STYLES}
    single = 0
    started = time.perf_counter()
    for start in range(0, len(images), 256):
        batch, styles = [], []
        for digit in images[start : start + 256]:
            style = STYLES[int(rng.integers(len(STYLES)))]
            batch.append(decode_sized(render_canvas(digit, rng, style)))
            styles.append(style)
        pages = read(batch, predictor, Settings.max_digits, batch=True, reader=reader)
        for style, page, y in zip(styles, pages, labels[start : start + 256], strict=True):
            correct[style][0] += int(len(page) == 1 and page[0].digit == y)
            correct[style][1] += 1
            single += len(page) == 1
    hits = sum(c for c, _ in correct.values())
    return {
        "images": int(len(images)),
        "accuracy": round(hits / max(len(images), 1), 4),
        "by_style": {s: round(c / n, 4) for s, (c, n) in correct.items() if n},
        "read_as_one_digit": round(single / max(len(images), 1), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from service.config import Settings
    from service.predictor import Predictor
    from service.reader import bundled
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m bench.canvas_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR)")
    parser.add_argument("--model-dir", help="SavedModel directory (default: the bundled cnn)")
    parser.add_argument("--limit", type=int, default=10000, help="test digits to draw (default: all 10,000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", action="store_true", help="record the result in bench/results/canvas_eval.json")
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    settings = Settings(model_dir=args.model_dir or "")
    predictor = Predictor(settings.resolved_model_dir())
    reader = bundled(settings)  # as the service reads: the line reader counts the digits of wide groups
    result = evaluate(predictor, data.x_test[: args.limit], data.y_test[: args.limit], args.seed, reader)
    result["model"] = {"name": predictor.info.name, "version": predictor.info.version}
    emit(result, "canvas_eval" if args.save else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
