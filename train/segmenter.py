"""Fit how segmentation scores candidate digits (service/segmentation.py: SPAN_WEIGHTS, DIGIT_ASPECT, ONE_DIGIT)
on synthetic numbers of MNIST *training* digits whose digits touch, read by the served model.

    python -m train.segmenter --data-dir /path/to/mnist [--count 1500] [--seed 21]

Numbers of 1 to 6 touching digits (train/numbers.py: canvas strokes or pen ink on paper, heights within 15%, a
slight slope) go through the service's own decoding and segmentation; every candidate digit of every group is read
by the model. The score of a way to split a group is the sum of its candidate digits' SPAN_WEIGHTS @ span_features(): a
log-linear model over the splits, fitted (Newton's method, L2) to maximise the probability of the splits that
read the number right. ONE_DIGIT, the whole group's bonus as one digit, is then the smallest that keeps single
digits within 0.1% as right as the model reads them whole, on a held-out set (groups that
segmentation.worth_cutting() does not cut are read whole, as the service reads them). Prints the constants to paste
into service/segmentation.py, and the held-out accuracy by count of digits.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
from collections import Counter
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

KINDS = {1: 2.0, 2: 1.0, 3: 0.5, 4: 0.3, 5: 0.2, 6: 0.2}  # digits per number -> share of the numbers
MARGINS = (0.0, 1.0, 2.0, 3.0, 4.0, 6.0)


@dataclass
class Example:
    """One group of touching digits: the truth, and for each way to split it its features and reading."""

    truth: str
    features: np.ndarray  # float64 [splits, len(SPAN_WEIGHTS)]: the sum over the split's candidate digits
    whole: np.ndarray  # bool [splits]: the group read as one digit
    reads: list[str]
    cut: bool  # would the service read its pieces (segmentation.worth_cutting)?


def number_image(images: np.ndarray, picks: np.ndarray, rng: np.random.Generator, widen: float = 0.0) -> bytes:
    """The digits `picks` of `images` written touching (strokes crossing by up to 6% of their height): half as
    canvas strokes in a PNG, half as pen ink on paper in a JPEG. `widen`: each digit drawn up to 1 + widen times
    as wide (people's 0s, 2s, 4s and 7s are often wider than MNIST's)."""
    from train.numbers import compose, digit_ink, on_paper, soft_digit_ink

    canvas = rng.random() < 0.5
    height = int(rng.integers(60, 200) if canvas else rng.integers(32, 100))
    heights = [round(height * rng.uniform(0.85, 1.15)) for _ in picks]
    if canvas:
        inks = [digit_ink(images[i], h, int(rng.integers(-2, 7))) for i, h in zip(picks, heights, strict=True)]
    else:
        inks = [soft_digit_ink(images[i], h, int(rng.integers(0, 2))) for i, h in zip(picks, heights, strict=True)]
    if widen:
        inks = [cv2.resize(ink, (round(ink.shape[1] * rng.uniform(1, 1 + widen)), ink.shape[0])) for ink in inks]
    cross = int(rng.integers(0, round(0.06 * height) + 1))
    ink, _ = compose(inks, [None] * (len(picks) - 1), slope=float(rng.uniform(-0.07, 0.07)), cross=cross)
    gray = 1 - np.clip(ink, 0, 1) if canvas else on_paper(ink, rng)
    buffer = io.BytesIO()
    image = Image.fromarray((gray * 255).round().astype(np.uint8), mode="L")
    image.save(buffer, format="PNG") if canvas else image.save(buffer, format="JPEG", quality=int(rng.integers(60, 93)))
    return buffer.getvalue()


def splits(found, end: int, limit: int = 8) -> list[list[tuple[int, int]]]:
    """Every way to split a group into its candidate digits (keys of found.regions), at most `limit` digits."""
    out: list[list[tuple[int, int]]] = []

    def extend(i: int, so_far: list[tuple[int, int]]) -> None:
        if i == end:
            out.append(so_far)
        elif len(so_far) < limit:
            for j in range(i + 1, end + 1):
                if (i, j) in found.regions:
                    extend(j, [*so_far, (i, j)])

    extend(0, [])
    return out


def example(group, truth: str, predictor) -> Example:
    """A group's splits, each with its summed features and its reading."""
    from service import segmentation
    from service.preprocessing import INK, digit_input, stroke_width

    found = segmentation.candidates(group) if group.wide else segmentation.Candidates([], {(0, 1): group.region})
    keys = list(found.regions)
    # the classifier's own probabilities, as reading.read() weighs them
    _, read = predictor.predict_parts(np.stack([digit_input(found.regions[k].ink) for k in keys]))
    probabilities = dict(zip(keys, read, strict=True))
    lines = [None, *found.lines, None]
    end = len(lines) - 1
    stroke = max(stroke_width(group.ink > INK if group.mask is None else group.mask), 1.0)
    span = {
        (i, j): segmentation.span_features(region, lines[i], lines[j], group.box.height, stroke, probabilities[(i, j)])
        for (i, j), region in found.regions.items()
    }
    ways = splits(found, end)
    return Example(
        truth,
        np.array([sum(span[k] for k in way) for way in ways]),
        np.array([way == [(0, end)] for way in ways]),
        ["".join(str(int(probabilities[k].argmax())) for k in way) for way in ways],
        segmentation.worth_cutting(group, probabilities[(0, end)]),
    )


def examples(images: np.ndarray, labels: np.ndarray, predictor, count: int, seed: int) -> list[Example]:
    """`count` pairs' worth of touching numbers (KINDS) of `images`, each a one-group Example."""
    from service import segmentation
    from service.decoding import decode
    from service.preprocessing import image_ink

    rng = np.random.default_rng(seed)
    out = []
    for length, share in KINDS.items():
        for _ in range(round(count * share)):
            picks = rng.integers(0, len(images), length)
            groups = segmentation.layout(image_ink(decode(number_image(images, picks, rng))))
            if len(groups) == 1:  # touching digits that segmentation did not see as one group: not this fit's
                out.append(example(groups[0], "".join(str(int(labels[i])) for i in picks), predictor))
    return out


def objective(data: list[Example], w: np.ndarray, l2: float) -> tuple[float, np.ndarray, np.ndarray]:
    """-log P(a right split), summed, + L2; its gradient and Hessian."""
    d = len(w)
    loss, grad, hess = 0.5 * l2 * float(w @ w), l2 * w.copy(), l2 * np.eye(d)
    for ex in data:
        good = np.array([r == ex.truth for r in ex.reads])
        if not good.any():
            continue
        s = ex.features @ w
        e = np.exp(s - s.max())
        p_all, p_good = e / e.sum(), e[good] / e[good].sum()
        loss -= math.log(e[good].sum() / e.sum())
        m_all, m_good = p_all @ ex.features, p_good @ ex.features[good]
        grad += m_all - m_good
        hess += (ex.features * p_all[:, None]).T @ ex.features - np.outer(m_all, m_all)
        hess -= (ex.features[good] * p_good[:, None]).T @ ex.features[good] - np.outer(m_good, m_good)
    return loss, grad, hess


def fit(data: list[Example], l2: float = 1.0, steps: int = 40) -> np.ndarray:
    """The weights that maximise the probability of the right splits: damped Newton steps."""
    w = np.zeros(data[0].features.shape[1])
    loss, grad, hess = objective(data, w, l2)
    for _ in range(steps):
        damping = 1e-3
        while True:
            trial = w - np.linalg.solve(hess + damping * np.eye(len(w)), grad)
            result = objective(data, trial, l2)
            if result[0] <= loss or damping > 1e6:
                break
            damping *= 10
        converged = loss - result[0] < 1e-7 * max(1.0, abs(loss))
        w, (loss, grad, hess) = trial, result
        if converged:
            break
    return w


def accuracy(data: list[Example], w: np.ndarray, margin: float) -> dict[int, float]:
    """Numbers read right, by count of digits, when the whole group gets `margin` on top of its score."""
    right, total = Counter(), Counter()
    for ex in data:
        best = int(np.argmax(ex.features @ w + margin * ex.whole)) if ex.cut else int(np.flatnonzero(ex.whole)[0])
        total[len(ex.truth)] += 1
        right[len(ex.truth)] += ex.reads[best] == ex.truth
    return {n: round(right[n] / total[n], 4) for n in sorted(total)}


def digit_aspects(images: np.ndarray, labels: np.ndarray, count: int, seed: int) -> list[tuple[float, float]]:
    """Per digit, mean and spread of log(width / height) of `count` MNIST training digits drawn alone as strokes."""
    from train.numbers import digit_ink

    picks = np.random.default_rng(seed).integers(0, len(images), count)
    logs = np.array([math.log(ink.shape[1] / ink.shape[0]) for ink in (digit_ink(images[i], 100) for i in picks)])
    return [
        (round(float(logs[labels[picks] == d].mean()), 3), round(float(logs[labels[picks] == d].std()), 3))
        for d in range(10)
    ]


def main(argv: list[str] | None = None) -> int:
    from service import segmentation
    from service.config import Settings
    from service.predictor import Predictor
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m train.segmenter", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR)")
    parser.add_argument("--count", type=int, default=1500, help="pairs to fit on (and as many other numbers)")
    parser.add_argument("--seed", type=int, default=21)
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    aspects = digit_aspects(data.x_train, data.y_train, 20000, args.seed)
    segmentation.DIGIT_ASPECT = aspects  # span_features() reads it: the fit must see the constants it prints
    predictor = Predictor(Settings().resolved_model_dir())
    fitting = examples(data.x_train, data.y_train, predictor, args.count, args.seed)
    held_out = examples(data.x_train, data.y_train, predictor, args.count // 2, args.seed + 1)
    w = fit(fitting)
    alone = accuracy(held_out, w, 1e9)[1]  # single digits never cut: as right as the model reads them whole
    margin = None
    for m in MARGINS:
        right = accuracy(held_out, w, m)
        print(f"ONE_DIGIT {m}: held-out numbers read right, by digits: {right}")
        margin = m if margin is None and right[1] >= alone - 0.001 else margin
    print(f"SPAN_WEIGHTS = np.array({[round(float(v), 3) for v in w]})")
    print(f"DIGIT_ASPECT = {aspects}")
    print(f"ONE_DIGIT = {margin}  # the smallest that reads single digits within 0.1% as right as never cut ({alone})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
