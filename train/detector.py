"""A "not a digit" detector for a trained model, without retraining its classifier.

Outlier exposure by fine-tuning the whole cnn cost MNIST accuracy (99.58% and 99.53% in the first tries; trained
from scratch with 20,000 non-digits, 99.63% on MNIST test). So the classifier keeps its weights, frozen, and a
detector learns how much an input looks like a digit at all, s in 0..1, from the classifier's last features and a
small conv branch of its own on the pixels: trained, with the classifier's augmentation, on MNIST training digits
(as they are, and some redrawn as pen strokes exactly as the non-digits are drawn, so that style cannot tell the
classes apart) against the synthetic non-digits of train/nondigits.py's training split. The export mixes the two:

    p' = s * p + (1 - s) / 10

which keeps the contract (a softmax [N, 10]) and the classifier's argmax, hence its MNIST accuracy, exactly, and
takes the top probability of what is not digit-like towards 1/10, where the max-softmax threshold fitted on
validation data (train/calibration.py) refuses it.

    python -m train.detector models/cnn/1 --data-dir ../shared/data/mnist [--outliers 80000] [--version 4]
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from service.contract import (
    CLASSES,
    DETECTOR,
    DETECTOR_METHOD,
    REPORT_DIR,
    SIDE,
    next_version,
    read_metadata,
    write_metadata,
)
from train.config import TrainConfig, config_of
from train.data import Mnist, load_mnist
from train.extra import load_weights
from train.models import build_augmenter, build_model
from train.trainer import dir_size, export_checked, metrics_block, write_reliability

FEATURES = {"softmax": "flatten", "mlp": "dropout2", "cnn": "dropout3"}  # the last layer before the output
HIDDEN = 128  # the head's one hidden layer, on the classifier's features and the branch's
PREFIX = DETECTOR  # the head's layer names start with it (service/inside.py leaves them out)


class MixWithUniform(keras.layers.Layer):
    """(probabilities [B, 10], digit-likeness [B, 1]) -> s * p + (1 - s) / 10: a softmax with p's argmax."""

    def call(self, inputs):
        probs, likeness = inputs
        return likeness * probs + (1.0 - likeness) / CLASSES


def load_classifier(model_dir: Path) -> tuple[keras.Model, TrainConfig, dict]:
    """The exported model rebuilt in Keras with its weights, its config and where it came from."""
    config = config_of(read_metadata(model_dir))
    model = build_model(config)
    origin = load_weights(model, model_dir)
    return model, config, origin


def branch(images: keras.KerasTensor) -> keras.KerasTensor:
    """The detector's own look at the pixels: images [B, 28, 28] 0..255 -> [B, 64]. Small (about 5% of the cnn's
    multiply-adds): the classifier's features carry most of what it needs."""
    x = keras.layers.Rescaling(1.0 / 255, name=f"{PREFIX}_rescale")(images)
    x = keras.layers.Reshape((SIDE, SIDE, 1), name=f"{PREFIX}_channels")(x)
    for i, filters in enumerate((16, 32, 64)):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"{PREFIX}_conv{i}")(x)  # 26, 11, 3
        x = keras.layers.MaxPooling2D(2, name=f"{PREFIX}_pool{i}")(x) if i < 2 else x  # 13, 5
    return keras.layers.GlobalMaxPooling2D(name=f"{PREFIX}_features")(x)


def head(features: keras.KerasTensor, pixels: keras.KerasTensor) -> keras.KerasTensor:
    """The classifier's features [B, F] and the branch's [B, 64] -> digit-likeness [B, 1] in 0..1."""
    x = keras.layers.Concatenate(name=f"{PREFIX}_both")([features, pixels])
    x = keras.layers.Dense(HIDDEN, activation="relu", name=f"{PREFIX}_hidden")(x)
    x = keras.layers.Dropout(0.2, name=f"{PREFIX}_dropout")(x)
    return keras.layers.Dense(1, activation="sigmoid", name=f"{PREFIX}_likeness")(x)


def likeness(classifier: keras.Model, arch: str) -> keras.Model:
    """images -> digit-likeness [B, 1], on the classifier's frozen features and the detector's own branch."""
    classifier.trainable = False  # its weights, batch norm statistics included, stay exactly as exported
    features = classifier.get_layer(FEATURES[arch]).output
    return keras.Model(classifier.input, head(features, branch(classifier.input)), name=PREFIX)


def examples(data: Mnist, config: TrainConfig, outliers: int, pen: int, typeset: int) -> tuple[tuple, tuple]:
    """(images float32 [N, 28, 28], is-a-digit [N], weights [N]) to train on, and to validate on: MNIST digits as
    they are, `pen` of them redrawn as the non-digits are drawn and `typeset` digits of the training fonts drawn the
    same way, against `outliers` training-split non-digits (validation: the held-back digits and non-digits made
    with another seed). Each class weighs half the loss."""
    from train.nondigits import font_digits, pen_digits, training_set, validation_set

    (x_train, _), (x_val, _) = data.split_validation(config.validation_size)
    train = [
        (x_train, 1),
        (pen_digits(x_train[:pen], config.seed), 1),
        (font_digits(typeset, config.seed), 1),
        (training_set(outliers, x_train, config.seed), 0),
    ]
    val = [(x_val, 1), (validation_set(min(2000, len(x_val)), x_train, config.seed), 0)]
    return _stack(train), _stack(val)


def _stack(parts: list[tuple[np.ndarray, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x = np.concatenate([images.astype(np.float32) for images, _ in parts])
    y = np.concatenate([np.full(len(images), label, np.float32) for images, label in parts])
    share = {label: sum(len(images) for images, lab in parts if lab == label) for label in (0, 1)}
    weights = np.where(y == 1, len(y) / (2 * share[1]), len(y) / (2 * max(share[0], 1))).astype(np.float32)
    return x, y, weights


def _dataset(split: tuple, seed: int | None, augment: bool) -> tf.data.Dataset:
    """Batches of (images, labels, weights), shuffled and augmented as the classifier was (training only)."""
    ds = tf.data.Dataset.from_tensor_slices(split)
    if seed is not None:
        ds = ds.shuffle(len(split[0]), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(256)
    if augment:
        augmenter = build_augmenter(seed)
        ds = ds.map(lambda x, y, w: (augmenter(x[..., None], training=True)[..., 0], y, w))
    return ds.prefetch(tf.data.AUTOTUNE)


def fit_detector(detector: keras.Model, train: tuple, val: tuple, seed: int, epochs: int, verbose: int) -> dict:
    """Train the detector's own layers; the best epoch by validation AUC."""
    keras.utils.set_random_seed(seed)
    detector.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["auc", "accuracy"])
    keep = keras.callbacks.EarlyStopping("val_auc", mode="max", patience=4, restore_best_weights=True)
    started = time.perf_counter()
    history = detector.fit(
        _dataset(train, seed, augment=True),
        validation_data=_dataset(val, None, augment=False),
        epochs=epochs,
        callbacks=[keep],
        verbose=verbose,
    )
    return {
        "time_s": round(time.perf_counter() - started, 1),
        "epochs_run": len(history.history["loss"]),
        "best_epoch": keep.best_epoch + 1,
        "best_val_auc": round(float(keep.best), 6),
        "train_images": int(len(train[0])),
        "history": {k: [round(float(v), 6) for v in vals] for k, vals in history.history.items()},
    }


def combine(classifier: keras.Model, detector: keras.Model) -> keras.Model:
    """One model: the classifier's softmax mixed with the uniform by the detector's digit-likeness."""
    mixed = MixWithUniform(name=f"{PREFIX}_mix")([classifier.output, detector.output])
    return keras.Model(classifier.input, mixed, name=classifier.name)


def metadata_for(source: dict, model: keras.Model, version: int, metrics: dict, detector: dict) -> dict:
    """The source's metadata (its classifier, its training, its data) with this export's own figures."""
    return {
        **source,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "parameters": int(model.count_params()),
        "metrics": metrics_block(metrics),
        "detector": detector,
    }


def run(
    source_dir: Path,
    out: Path,
    version: int | None,
    outliers: int,
    data: Mnist,
    epochs: int = 16,
    pen: int = 30_000,
    verbose: int = 2,
    typeset: int = 10_000,
) -> Path:
    """Train a detector for the model exported at `source_dir` and export the two as one model version."""
    from train.report import write_report  # matplotlib only here

    classifier, config, origin = load_classifier(source_dir)
    detector = likeness(classifier, config.arch)
    train, val = examples(data, config, outliers, pen, typeset)
    summary = fit_detector(detector, train, val, config.seed, epochs, verbose)
    model = combine(classifier, detector)
    source = read_metadata(source_dir)
    path = out / source["name"] / str(version or next_version(out / source["name"]))
    metrics, fitted, probs, litert = export_checked(model, config, data, path, DETECTOR_METHOD)
    write_report(path / REPORT_DIR, metrics, source["training"]["history"], data.x_test, data.y_test, probs)
    write_reliability(path / REPORT_DIR, probs, data.y_test)
    record = {
        "from": origin,
        "features": FEATURES[config.arch],
        "outliers": outliers,
        "pen_digits": pen,
        "typeset_digits": typeset,
        **summary,
    }
    record["parameters"] = int(model.count_params() - classifier.count_params())  # the detector's own
    meta = {**metadata_for(source, model, int(path.name), metrics, record), **fitted, "runtimes": {"litert": litert}}
    meta["size_bytes"] = dir_size(path)
    write_metadata(path, meta)
    print(f"exported {path}: test accuracy {metrics['accuracy']:.4%}, detector best val AUC {summary['best_val_auc']}")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.detector", description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="the exported model version to add a detector to")
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR, else Keras's download)")
    parser.add_argument("--out", type=Path, default=Path("models"), help="export root (default: %(default)s)")
    parser.add_argument("--version", type=int, help="export version (default: next free)")
    parser.add_argument("--outliers", type=int, default=80_000, help="synthetic non-digits (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=16, help="the detector's epochs at most (default: %(default)s)")
    parser.add_argument(
        "--pen", type=int, default=30_000, help="digits also drawn as pen strokes (default: %(default)s)"
    )
    parser.add_argument(
        "--typeset", type=int, default=10_000, help="digits of the training fonts (default: %(default)s)"
    )
    parser.add_argument("--quiet", dest="verbose", action="store_const", const=0, default=2)
    args = parser.parse_args(argv)
    data = load_mnist(args.data_dir)
    run(args.source, args.out, args.version, args.outliers, data, args.epochs, args.pen, args.verbose, args.typeset)
    return 0


if __name__ == "__main__":
    sys.exit(main())
