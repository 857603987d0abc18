"""Export: a TensorFlow Serving SavedModel (no optimizer state), with the signature service/contract.py names."""

from __future__ import annotations

from pathlib import Path

import keras
import tensorflow as tf

from service.contract import INPUT_NAME, OUTPUT_NAME, SIDE, SIGNATURE


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
        input_signature=[tf.TensorSpec(shape=(None, SIDE, SIDE), dtype=tf.float32, name=INPUT_NAME)],
    )
    archive.write_out(str(path), verbose=False)


def load_serving_fn(path: str | Path):
    """The exported signature, callable as fn(images=float32 [N, 28, 28]) -> {"probabilities": ...}."""
    return tf.saved_model.load(str(path)).signatures[SIGNATURE]
