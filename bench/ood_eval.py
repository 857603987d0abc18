"""Not-a-digit evaluation: how well each shipped model tells digits from things that are not digits.

Digits: the 10,000 MNIST test digits, MNIST test digits drawn as canvas strokes (bench/canvas_eval.py's
renderer) read through the service's own decoding and recipe, and digits typeset in the held-out font families
(Liberation, Noto Serif) redrawn as pen strokes (train/nondigits.py's typeset_digits()): digits in styles that
neither the classifier nor the detector trained on, a stand-in for other writers' habits. Non-digits:
train/nondigits.py's "heldout" split, made only from sources training never sees (other font families, scripts
training never sees, another stroke generator) plus pairs of overlaid MNIST test digits. The score is the
calibrated top probability, as the service uses it. Reported per model:
- AUROC, digits against all held-out non-digits;
- the share refused at the model's own threshold (metadata.json, chosen on validation data), per source;
- the share of non-digits refused when the threshold refuses 1% of MNIST test digits;
- expected calibration error on MNIST test and on the canvas digits.

    python -m bench.ood_eval --data-dir ../shared/data/mnist [--per-source N] [--model-dir DIR ...] [--save]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench.results import emit
from service.calibration import expected_calibration_error, is_digit

ROOT = Path(__file__).resolve().parent.parent


def auroc(positive: np.ndarray, negative: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count half): Mann-Whitney U."""
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([positive, negative]))  # ties get their average rank
    u = ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2
    return float(u / (len(positive) * len(negative)))


def canvas_digits(images: np.ndarray, seed: int) -> np.ndarray:
    """MNIST digits drawn as canvas strokes, through the service's decoding and recipe: inputs [N, 28, 28]."""
    from bench.canvas_eval import render_canvas
    from service.decoding import decode_sized
    from service.preprocessing import preprocess

    rng = np.random.default_rng(seed)
    return np.stack([preprocess(decode_sized(render_canvas(d, rng))[0]) for d in images])


def refused(probs: np.ndarray, threshold: float) -> float:
    return round(float(1 - is_digit(probs, threshold).mean()), 4)


def evaluate(predictor, digits: dict[str, tuple[np.ndarray, np.ndarray]], others: dict[str, np.ndarray]) -> dict:
    """One model's figures. digits: name -> (inputs, labels); others: source -> inputs."""
    threshold = predictor.threshold
    p_digits = {name: predictor.predict(x) for name, (x, _) in digits.items()}
    p_others = {name: predictor.predict(x) for name, x in others.items()}
    mnist, every_other = p_digits["mnist_test"].max(axis=1), np.concatenate([p.max(axis=1) for p in p_others.values()])
    at_one_percent = float(np.quantile(mnist, 0.01))
    return {
        "model": {"name": predictor.info.name, "version": predictor.info.version},
        "threshold": threshold,
        "temperature": predictor.temperature,
        "auroc": round(auroc(mnist, every_other), 4),
        "refused_at_threshold": {
            **{name: refused(p, threshold) for name, p in p_digits.items()},
            **{name: refused(p, threshold) for name, p in p_others.items()},
            "all_nondigits": round(float(np.mean(every_other < threshold)), 4),
        },
        "nondigits_refused_at_1pct_digits": round(float(np.mean(every_other < at_one_percent)), 4),
        # as a position of a number (Predictor.is_digit(in_number=True)): its own, lower threshold
        "refused_in_number": {
            **{name: refused(p, predictor.threshold_in_number) for name, p in p_digits.items()},
            "all_nondigits": round(float(np.mean(every_other < predictor.threshold_in_number)), 4),
        },
        "ece": {
            name: round(expected_calibration_error(p_digits[name], labels), 4) for name, (_, labels) in digits.items()
        },
        "accuracy_of_accepted": {
            name: round(float((p.argmax(1) == digits[name][1])[is_digit(p, threshold)].mean()), 4)
            for name, p in p_digits.items()
        },
    }


def shipped_models() -> list[Path]:
    from service.contract import latest_version

    return [latest_version(ROOT / "models" / name) for name in ("softmax", "mlp", "cnn")]


def main(argv: list[str] | None = None) -> int:
    from service.predictor import Predictor
    from train.data import load_mnist
    from train.nondigits import dataset, typeset_digits

    parser = argparse.ArgumentParser(prog="python -m bench.ood_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR)")
    parser.add_argument("--model-dir", action="append", type=Path, help="export directories (default: shipped)")
    parser.add_argument("--per-source", type=int, default=600, help="held-out non-digits per source")
    parser.add_argument("--canvas", type=int, default=2000, help="MNIST test digits drawn as canvas strokes")
    parser.add_argument("--save", action="store_true", help="record the result in bench/results/ood_eval.json")
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    digits = {
        "mnist_test": (data.x_test.astype(np.float32), data.y_test),
        "canvas": (canvas_digits(data.x_test[: args.canvas], 1), data.y_test[: args.canvas]),
        "unseen_fonts": typeset_digits(args.canvas, 5, "heldout"),
    }
    others = dataset("heldout", args.per_source, data.x_test, seed=7)
    models = [evaluate(Predictor(path), digits, others) for path in args.model_dir or shipped_models()]
    sizes = {name: len(x) for name, x in others.items()}
    emit({"nondigits_per_source": sizes, "models": models}, "ood_eval" if args.save else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
