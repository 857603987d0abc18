"""LiteRT (TensorFlow Lite) export beside a SavedModel, checked against it.

    python -m train.litert models/cnn/1 [--data-dir DIR]

Writes models/<name>/<version>/model.tflite, converted from the SavedModel's serving signature,
and records in metadata.json its size and its largest difference from the SavedModel on real
digits. The SavedModel stays the contract; the LiteRT file is a faster runtime for the same math.
A training run calls export_litert() itself and puts its entry into the one metadata.json it writes.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from service.contract import (
    INPUT_NAME,
    LITERT_FILE,
    OUTPUT_NAME,
    SIGNATURE,
    read_metadata,
    write_atomic,
    write_metadata,
)
from train.export import load_serving_fn

TOLERANCE = 1e-4  # the largest probability difference allowed between the two runtimes


def convert(model_dir: Path) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(model_dir), signature_keys=[SIGNATURE])
    return converter.convert()  # float32: no quantisation, so the numbers stay the SavedModel's


def litert_predict(blob: bytes, images: np.ndarray) -> np.ndarray:
    """Probabilities [N, 10] from a LiteRT model for float32 images [N, 28, 28]."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=blob, num_threads=1)
    runner = interpreter.get_signature_runner(SIGNATURE)
    chunks = [runner(**{INPUT_NAME: images[i : i + 100]})[OUTPUT_NAME] for i in range(0, len(images), 100)]
    return np.concatenate(chunks)


def export_litert(model_dir: str | Path, images: np.ndarray) -> dict:
    """Convert, compare with the SavedModel on `images`, write model.tflite; -> its metadata entry."""
    model_dir = Path(model_dir)
    blob = convert(model_dir)
    x = images.astype(np.float32)
    reference = load_serving_fn(model_dir)(**{INPUT_NAME: x})[OUTPUT_NAME].numpy()
    diff = float(np.abs(litert_predict(blob, x) - reference).max())
    if diff > TOLERANCE:
        raise ValueError(f"LiteRT differs from the SavedModel by {diff:.2e} > {TOLERANCE}")
    write_atomic(model_dir / LITERT_FILE, blob)  # a re-export never leaves a served file half-written
    return {"file": LITERT_FILE, "bytes": len(blob), "max_abs_diff": diff, "checked_images": int(len(x))}


def reexport(model_dir: str | Path, images: np.ndarray) -> dict:
    """export_litert() for an existing version, its entry recorded in its metadata.json (rewritten atomically)."""
    metadata = read_metadata(model_dir)  # before converting: only a complete, valid version is re-exported
    entry = export_litert(model_dir, images)
    metadata.setdefault("runtimes", {})["litert"] = entry
    write_metadata(model_dir, metadata)
    return entry


def main(argv: list[str] | None = None) -> int:
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m train.litert", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="models/<name>/<version>")
    parser.add_argument("--data-dir", help="MNIST directory (default: $MNIST_DIR); its test digits check the export")
    args = parser.parse_args(argv)
    entry = reexport(args.model_dir, load_mnist(args.data_dir).x_test[:1000])
    print(f"wrote {Path(args.model_dir) / LITERT_FILE}: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
