"""Training: `run(config, data=None)` fits a model, exports it, evaluates the export, writes the report."""

from __future__ import annotations

import copy
import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from service.calibration import expected_calibration_error, temper
from service.contract import (
    CLASSES,
    CONTRACT,
    EXTRA_DATA,
    FINE_TUNED_FROM,
    INPUT_NAME,
    MAX_SOFTMAX_METHOD,
    METADATA_FILE,
    REPORT_DIR,
    SAVED_MODEL_FILE,
    SIDE,
    VARIABLES_DIR,
    next_version,
    write_metadata,
)
from train.config import TrainConfig
from train.data import Mnist, load_mnist
from train.evaluate import evaluate, predict_in_batches, savedmodel_predict
from train.export import export_savedmodel
from train.extra import ExtraData, freeze_before, load_extra, load_weights, mix
from train.litert import export_litert
from train.models import build_augmenter, build_model


@dataclass
class RunResult:
    path: Path
    metadata: dict


def early_stopping(monitor: str, patience: int, verbose: int) -> keras.callbacks.EarlyStopping:
    """Stop after `patience` epochs without a new best `monitor`; the model ends with the best epoch's weights.

    Keras 3 restores the best weights at the end of training whether or not it stopped early.
    """
    return keras.callbacks.EarlyStopping(
        monitor=monitor, mode="max", patience=patience, restore_best_weights=True, verbose=min(verbose, 1)
    )


def _schedule(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.schedules.LearningRateSchedule | float:
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(config.learning_rate, config.epochs * steps_per_epoch, alpha=0.01)
    if config.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(config.learning_rate, steps_per_epoch, 0.9)
    return config.learning_rate


def make_optimizer(config: TrainConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """Adam, or SGD with config.momentum (0: plain SGD), on the learning-rate schedule."""
    rate = _schedule(config, steps_per_epoch)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(rate, momentum=config.momentum)
    return keras.optimizers.Adam(rate)


def make_loss(config: TrainConfig) -> keras.losses.Loss:
    """Softmax output [B, 10] against targets [B, 10] (one-hot; uniform for outliers), one value per image, which
    the sample weights scale. "quadratic" averages the ten squared errors: ||target - output||^2 / 10 an image."""
    if config.loss == "quadratic":
        return keras.losses.MeanSquaredError()
    return keras.losses.CategoricalCrossentropy()  # on one-hot targets, the same loss as the sparse form


def _trainer(model: keras.Model, config: TrainConfig) -> keras.Model:
    """`model` behind the augmentation layers; the exported model itself never contains them."""
    if not config.augment:
        return model
    inputs = keras.Input(shape=(SIDE, SIDE), dtype="float32", name=INPUT_NAME)
    x = keras.layers.Reshape((SIDE, SIDE, 1))(inputs)
    x = build_augmenter(config.seed)(x)  # identity unless training=True
    return keras.Model(inputs, model(keras.layers.Reshape((SIDE, SIDE))(x)), name=f"{model.name}_trainer")


def _dataset(
    x: np.ndarray, y: np.ndarray, batch_size: int, seed: int | None, weights: np.ndarray | None = None
) -> tf.data.Dataset:
    """Batches of (float32 [B, 28, 28] in 0-255, float32 [B, 10] targets[, float32 [B] weights]); shuffled each
    epoch when seeded."""
    parts = (x.astype(np.float32), y.astype(np.float32)) + (() if weights is None else (weights.astype(np.float32),))
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if seed is not None:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _splits(config: TrainConfig, data: Mnist) -> tuple[tuple, tuple]:
    (x_train, y_train), (x_val, y_val) = data.split_validation(config.validation_size)
    if config.max_train:
        x_train, y_train = x_train[: config.max_train], y_train[: config.max_train]
    return (x_train, y_train), (x_val, y_val)


def one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(CLASSES, dtype=np.float32)[labels]


def with_outliers(config: TrainConfig, x: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> tuple:
    """Plus config.outliers synthetic non-digits whose target is uniform over the ten classes (outlier exposure,
    Hendrycks et al. 2019), each weighing config.outlier_weight: (images, targets [N, 10], loss weights [N])."""
    if not config.outliers:
        return x, targets, weights
    from train.nondigits import training_set  # fonts and scikit-image only when asked for

    others = training_set(config.outliers, x, config.seed)  # float32 [M, 28, 28] 0..255
    uniform = np.full((len(others), CLASSES), 1 / CLASSES, np.float32)
    return (
        np.concatenate([x.astype(np.float32), others]),
        np.concatenate([targets, uniform]),
        np.concatenate([weights, np.full(len(others), config.outlier_weight, np.float32)]),
    )


def fit(config: TrainConfig, data: Mnist, extra: ExtraData | None = None) -> tuple[keras.Model, dict]:
    """Train (from an export's weights with config.init_from), MNIST with `extra` and config.outliers non-digits
    mixed in, weighted; returns the model at its best epoch and a training summary."""
    keras.utils.set_random_seed(config.seed)
    tf.config.experimental.enable_op_determinism()
    (x_train, y_train), (x_val, y_val) = _splits(config, data)
    x_train, y_train, weights = mix(x_train, y_train, extra, config.extra_weight)
    if extra is not None:  # too few to hold some out: the best epoch is the one that keeps MNIST and learns them
        x_val, y_val = np.concatenate([x_val, extra.x]), np.concatenate([y_val, extra.y])
    x_train, t_train, weights = with_outliers(config, x_train, one_hot(y_train), weights)
    model = build_model(config)
    started_from = load_weights(model, config.init_from) if config.init_from else None
    if config.trainable_from:
        freeze_before(model, config.trainable_from)
    trainer = _trainer(model, config)
    steps = int(np.ceil(len(x_train) / config.batch_size))
    trainer.compile(
        optimizer=make_optimizer(config, steps),
        loss=make_loss(config),
        metrics=["accuracy"],
    )
    has_val = len(x_val) > 0
    keep = early_stopping("val_accuracy" if has_val else "accuracy", config.patience, config.verbose)
    started = time.perf_counter()
    history = trainer.fit(
        _dataset(x_train, t_train, config.batch_size, config.seed, weights if extra or config.outliers else None),
        validation_data=_dataset(x_val, one_hot(y_val), 1000, None) if has_val else None,
        epochs=config.epochs,
        callbacks=[keep],
        verbose=config.verbose,
    )
    summary = {
        "time_s": round(time.perf_counter() - started, 1),
        "epochs_run": len(history.history["loss"]),
        "best_epoch": keep.best_epoch + 1,  # Keras counts epochs from 0
        "best_" + keep.monitor: round(float(keep.best), 6),
        "train_images": int(len(x_train) - config.outliers),
        "outlier_images": int(config.outliers),
        "validation_images": int(len(x_val)),
        "history": {k: [round(float(v), 6) for v in vals] for k, vals in history.history.items()},
    }
    if extra is not None:
        summary[EXTRA_DATA] = extra.record(config.extra_weight)
    if started_from is not None:
        summary[FINE_TUNED_FROM] = started_from
    return model, summary


LOCAL_PATHS = ("data_dir", "out", "verbose", "extra_data", "init_from")  # this machine's, not the model's


def dir_size(path: Path) -> int:
    files = [path / SAVED_MODEL_FILE, *(path / VARIABLES_DIR).glob("*")]
    return sum(p.stat().st_size for p in files if p.is_file())


def metrics_block(metrics: dict) -> dict:
    """metadata.json's "metrics": the export's own figures on the MNIST test set."""
    return {
        "test_accuracy": round(metrics["accuracy"], 6),
        "test_errors": metrics["errors"],
        "test_images": metrics["count"],
        "per_class_accuracy": metrics["per_class_accuracy"],
        "per_class_precision": metrics["per_class_precision"],
    }


def _metadata(
    config: TrainConfig, model: keras.Model, path: Path, version: int, training: dict, data: Mnist, metrics: dict
) -> dict:
    """Everything metadata.json records about one export."""
    sources = (EXTRA_DATA, FINE_TUNED_FROM)  # what else training learnt from, beside MNIST: recorded beside "data"
    return {
        "name": config.name,
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "architecture": config.arch,
        "parameters": int(model.count_params()),
        "size_bytes": dir_size(path),
        "hyperparameters": {k: v for k, v in config.to_dict().items() if k not in LOCAL_PATHS},
        "training": {k: v for k, v in training.items() if k not in sources},
        "data": {"source": Path(data.source).name if data.checksums else data.source, "sha256": data.checksums},
        **{k: v for k, v in training.items() if k in sources},
        "metrics": metrics_block(metrics),
        "contract": copy.deepcopy(CONTRACT),
        "framework": {"tensorflow": tf.__version__, "keras": keras.__version__},
    }


def fit_calibration(config: TrainConfig, data: Mnist, predict, method: str = MAX_SOFTMAX_METHOD) -> dict:
    """Temperature and "not a digit" threshold from the export's outputs on validation data (train/calibration.py).

    Without validation images (quick runs) the model is left as it is: temperature 1, nothing refused."""
    from train.calibration import calibrate
    from train.nondigits import validation_set

    _, (x_val, y_val) = _splits(config, data)
    if not len(x_val):
        return {}
    others = validation_set(min(2000, len(x_val)), data.x_train[: len(data.x_train) - len(x_val)], config.seed)
    return calibrate(predict_in_batches(predict, x_val), y_val, predict_in_batches(predict, others), method)


def calibrate_export(
    config: TrainConfig, data: Mnist, predict, test_probs: np.ndarray, method: str = MAX_SOFTMAX_METHOD
) -> tuple[dict, np.ndarray]:
    """fit_calibration()'s blocks, with the test set's ECE once calibrated, and the calibrated test probabilities
    ({} and the probabilities unchanged when there is nothing to fit on)."""
    fitted = fit_calibration(config, data, predict, method)
    if not fitted:
        return fitted, test_probs
    probs = temper(test_probs, fitted["calibration"]["temperature"])
    fitted["calibration"]["test_ece"] = round(expected_calibration_error(probs, data.y_test), 5)
    return fitted, probs


def write_reliability(report_dir: Path, probs: np.ndarray, labels: np.ndarray) -> None:
    from train.calibration import reliability_diagram  # matplotlib only when a report is wanted

    reliability_diagram(probs, labels, report_dir / "reliability.png", "MNIST test, calibrated")


def export_checked(
    model: keras.Model, config: TrainConfig, data: Mnist, path: Path, method: str = MAX_SOFTMAX_METHOD
) -> tuple:
    """SavedModel and LiteRT file at `path`, evaluated and calibrated as exported: (metrics, fitted calibration and
    rejection, calibrated test probabilities, the LiteRT file's record)."""
    (path / METADATA_FILE).unlink(missing_ok=True)  # re-exporting a version: it is incomplete until the end
    export_savedmodel(model, path)
    # Metrics come from the exported artifact, so they are what the service will get.
    predict = savedmodel_predict(str(path))
    metrics, probs = evaluate(predict, data.x_test, data.y_test)
    litert = export_litert(path, data.x_test[:1000])  # checked against the SavedModel
    fitted, probs = calibrate_export(config, data, predict, probs, method)
    return metrics, fitted, probs, litert


def run(config: TrainConfig, data: Mnist | None = None) -> RunResult:
    """Train, export to out/<name>/<version>/, evaluate the exported model on the test set, report.

    metadata.json is written last, once, atomically: a version directory without it is an export that
    has not finished (or was killed), and service/contract.py's latest_version() never picks it.
    """
    data = data if data is not None else load_mnist(config.data_dir)
    extra = load_extra(config.extra_data) if config.extra_data else None
    model, training = fit(config, data, extra)
    base = Path(config.out) / config.name
    version = config.version or next_version(base)
    path = base / str(version)
    metrics, fitted, probs, litert = export_checked(model, config, data, path)
    if config.report:
        from train.report import write_report  # matplotlib only when a report is wanted

        write_report(path / REPORT_DIR, metrics, training["history"], data.x_test, data.y_test, probs)
        if fitted:
            write_reliability(path / REPORT_DIR, probs, data.y_test)
    metadata = {
        **_metadata(config, model, path, version, training, data, metrics),
        **fitted,
        "runtimes": {"litert": litert},
    }
    write_metadata(path, metadata)
    print(f"exported {path}: test accuracy {metrics['accuracy']:.4%} ({metrics['errors']} errors)")
    return RunResult(path, metadata)
