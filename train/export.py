"""Export: a TensorFlow Serving SavedModel (no optimizer state) plus metadata.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import keras
import tensorflow as tf

SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"

# The input contract the service must honour; copied into every metadata.json.
INPUT_CONTRACT = {
    "signature": SIGNATURE,
    "input": {
        "name": INPUT_NAME,
        "dtype": "float32",
        "shape": [None, 28, 28],
        "range": [0.0, 255.0],
        "polarity": "white ink on black background (MNIST): 0 = background, 255 = ink",
    },
    "output": {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, 10], "meaning": "softmax, index = digit"},
    "preprocessing": {
        "recipe": "mnist",
        "steps": [
            "grayscale, ink made white on black",
            "crop to the ink's bounding box",
            "scale to fit a 20x20 box, keeping the aspect ratio, anti-aliased",
            "paste into 28x28 so that the centre of mass sits at the centre (14, 14)",
        ],
        "box": 20,
        "canvas": 28,
    },
}


def next_version(base: Path) -> int:
    """The next free TensorFlow Serving version number under `base` (1 when empty)."""
    versions = [int(p.name) for p in base.glob("*") if p.is_dir() and re.fullmatch(r"\d+", p.name)]
    return max(versions, default=0) + 1


def export_savedmodel(model: keras.Model, path: Path) -> None:
    """Write `serving_default`: images float32 [N, 28, 28] -> {"probabilities": [N, 10]}."""
    archive = keras.export.ExportArchive()
    archive.track(model)

    def serve(images: tf.Tensor) -> dict[str, tf.Tensor]:
        # training=False: dropout and batch norm in inference mode, so nothing random leaks in.
        return {OUTPUT_NAME: model(images, training=False)}

    archive.add_endpoint(
        name=SIGNATURE,
        fn=serve,
        input_signature=[tf.TensorSpec(shape=(None, 28, 28), dtype=tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def load_serving_fn(path: str | Path):
    """The exported signature, callable as fn(images=float32 [N, 28, 28]) -> {"probabilities": ...}."""
    return tf.saved_model.load(str(path)).signatures[SIGNATURE]


def write_metadata(path: Path, metadata: dict) -> None:
    (path / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=False) + "\n")


def read_metadata(path: str | Path) -> dict:
    return json.loads((Path(path) / "metadata.json").read_text())
