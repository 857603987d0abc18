"""Evaluation of an exported model on MNIST test images: accuracy, per-class metrics, confusion."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # float32 [N, 28, 28] -> probabilities [N, 10]


def predict_in_batches(predict: Predict, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Probabilities [N, 10] for uint8 or float images [N, 28, 28]."""
    out = [predict(images[i : i + batch_size].astype(np.float32)) for i in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, 10), np.float32)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int = 10) -> np.ndarray:
    """[true, predicted] counts."""
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def metrics_from_confusion(matrix: np.ndarray) -> dict:
    """Accuracy, and per-class precision and recall (recall = that class's accuracy)."""
    correct = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    recall = np.divide(correct, support, out=np.zeros_like(correct), where=support > 0)
    precision = np.divide(correct, predicted, out=np.zeros_like(correct), where=predicted > 0)
    return {
        "accuracy": float(correct.sum() / max(matrix.sum(), 1)),
        "errors": int(matrix.sum() - correct.sum()),
        "count": int(matrix.sum()),
        "per_class_accuracy": {str(d): round(float(r), 6) for d, r in enumerate(recall)},
        "per_class_precision": {str(d): round(float(p), 6) for d, p in enumerate(precision)},
        "confusion_matrix": matrix.tolist(),
    }


def evaluate(predict: Predict, images: np.ndarray, labels: np.ndarray) -> tuple[dict, np.ndarray]:
    """(metrics, probabilities [N, 10]) of `predict` on the given images."""
    probs = predict_in_batches(predict, images)
    matrix = confusion_matrix(labels, probs.argmax(axis=1))
    return metrics_from_confusion(matrix), probs


def savedmodel_predict(model_dir: str) -> Predict:
    """A `Predict` backed by the exported serving signature."""
    from service.contract import INPUT_NAME, OUTPUT_NAME
    from train.export import load_serving_fn

    fn = load_serving_fn(model_dir)
    return lambda x: fn(**{INPUT_NAME: x})[OUTPUT_NAME].numpy()


def main(argv: list[str] | None = None) -> int:
    """`python -m train.evaluate MODEL_DIR`: test accuracy of an exported model, as JSON."""
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=main.__doc__)
    parser.add_argument("model_dir", help="models/<name>/<version>")
    parser.add_argument("--data-dir", help="directory of the MNIST IDX files (default: $MNIST_DIR)")
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    metrics, _ = evaluate(savedmodel_predict(args.model_dir), data.x_test, data.y_test)
    metrics.pop("confusion_matrix")
    json.dump(metrics, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
