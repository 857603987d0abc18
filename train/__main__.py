"""`digits-train` / `python -m train`: train one of the course's models and export it."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from train.config import ARCH_DEFAULTS, ARCHS, SCHEDULES, TrainConfig


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="digits-train",
        description="Train a digit classifier on MNIST and export it as a TensorFlow SavedModel "
        "(models/<name>/<version>/) with metadata.json and an evaluation report.",
        epilog="Per-architecture defaults: "
        + "; ".join(f"{a}: " + ", ".join(f"{k}={v}" for k, v in ARCH_DEFAULTS[a].items()) for a in ARCHS),
    )
    p.add_argument("--arch", choices=ARCHS, default=d.arch, help="model to train (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: per arch)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument("--learning-rate", "--lr", type=float, help="initial Adam learning rate (default: per arch)")
    p.add_argument(
        "--schedule", choices=SCHEDULES, default=d.schedule, help="learning-rate schedule (default: %(default)s)"
    )
    p.add_argument("--l1", type=float, default=d.l1, help="L1 regularisation rate on kernels (default: %(default)s)")
    p.add_argument("--l2", type=float, default=d.l2, help="L2 regularisation rate on kernels (default: %(default)s)")
    p.add_argument("--dropout", type=float, help="dropout rate (default: per arch)")
    p.add_argument("--activation", choices=("relu", "sigmoid"), default=d.activation, help="mlp hidden activation")
    p.add_argument("--initializer", default=d.initializer, help="kernel initializer (default: %(default)s, Xavier)")
    p.add_argument("--augment", type=_bool, help="canvas-style data augmentation, true/false (default: per arch)")
    p.add_argument(
        "--validation-size",
        type=int,
        default=d.validation_size,
        help="validation images taken from the end of the training set (default: %(default)s)",
    )
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience in epochs")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    p.add_argument(
        "--data-dir", help="directory with the four MNIST IDX .gz files (default: $MNIST_DIR, else Keras's download)"
    )
    p.add_argument("--out", default=d.out, help="export root (default: %(default)s)")
    p.add_argument("--name", help="export name (default: the arch)")
    p.add_argument("--version", type=int, help="export version (default: next free)")
    p.add_argument("--max-train", type=int, help="use only the first N training images (quick runs)")
    p.add_argument(
        "--extra-data",
        help="extra examples mixed into training: the .npz (or IDX folder) of `digits-corrections export`",
    )
    p.add_argument(
        "--extra-weight", type=float, default=d.extra_weight, help="weight of each extra example (default: %(default)s)"
    )
    p.add_argument(
        "--init-from",
        help="fine-tune: start from this exported model version's weights (e.g. models/cnn/1; same --arch), "
        "usually with a few --epochs and a small --learning-rate",
    )
    p.add_argument(
        "--trainable-from",
        help="with --init-from: the first layer that trains (e.g. conv2a); the layers before it keep their weights",
    )
    p.add_argument(
        "--outliers",
        type=int,
        default=d.outliers,
        help="add N synthetic non-digits (letters, symbols, shapes, overlaid digits) taught as 'none of the ten', "
        "so that the model can say 'not a digit' (outlier exposure; default: %(default)s)",
    )
    p.add_argument(
        "--outlier-weight",
        type=float,
        default=d.outlier_weight,
        help="a non-digit's weight in the loss (default: %(default)s)",
    )
    p.add_argument("--no-report", dest="report", action="store_false", help="skip the PNG/Markdown report")
    p.add_argument(
        "--quiet", dest="verbose", action="store_const", const=0, default=d.verbose, help="no per-epoch progress"
    )
    return p


def config_from_args(argv: list[str] | None = None) -> TrainConfig:
    args = vars(build_parser().parse_args(argv))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in args.items() if k in fields})


def main(argv: list[str] | None = None) -> int:
    from train.data import MnistError
    from train.trainer import run  # deferred: TensorFlow loads only when training

    try:
        config = config_from_args(argv)
        run(config)
    except (MnistError, ValueError) as e:
        print(f"digits-train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
