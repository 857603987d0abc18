"""`digits-train` / `python -m train`: train one of the course's models and export it."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from train.config import (
    ACTIVATIONS,
    ARCH_DEFAULTS,
    ARCHS,
    INITIALIZERS,
    LOSSES,
    NORMAL_STDDEV,
    OPTIMIZERS,
    SCHEDULES,
    SGD_LR_FACTOR,
    SGD_MOMENTUM,
    TrainConfig,
)

# The course's choices, one sentence each: what it is, and when the course uses it (argparse rewraps the lines).
ACTIVATION_HELP = (
    "hidden-layer activation of the mlp, the only model it changes (softmax regression has no hidden layer; "
    "the cnn keeps ReLU after batch norm). relu: max(0, x), trains fastest, the default; sigmoid: 1/(1+e^-x), "
    "the course's original neuron, which saturates and learns slower; tanh: a sigmoid stretched to -1..1 and "
    "centred on 0, the course's other smooth activation"
)
INITIALIZER_HELP = (
    "how every Dense and Conv2D kernel starts (biases start at 0). glorot_uniform (Xavier, the default): "
    "uniform within +-sqrt(6/(fan_in+fan_out)), which keeps the signal's variance from layer to layer; "
    "glorot_normal: the same variance from a (truncated) normal distribution; "
    f"normal: small random normal N(0, {NORMAL_STDDEV}^2), stddev {NORMAL_STDDEV}, the practice before Glorot: "
    "it breaks the symmetry but the signal shrinks layer after layer; zeros: every unit of a layer starts "
    "identical and gets identical updates, so hidden units never differ (bar dropout's random masks), shown in "
    "the course as what not to do; harmless only for softmax regression, which has no hidden units"
)
OPTIMIZER_HELP = (
    "adam: adaptive per-weight steps, the default, which trained the shipped models; sgd: stochastic gradient "
    "descent, the course's algorithm, with --momentum. Both follow --schedule"
)
LOSS_HELP = (
    "crossentropy: categorical cross-entropy between the one-hot target and the softmax output, the default; "
    "quadratic: mean squared error between them, the cost the course compares cross-entropy with (under it a "
    "saturated output learns slowly). --extra-weight and --outlier-weight apply to both"
)


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
        + "; ".join(f"{a}: " + ", ".join(f"{k}={v}" for k, v in ARCH_DEFAULTS[a].items()) for a in ARCHS)
        + f". With --optimizer sgd: learning_rate x{SGD_LR_FACTOR}, momentum={SGD_MOMENTUM}, unless given.",
    )
    p.add_argument("--arch", choices=ARCHS, default=d.arch, help="model to train (default: %(default)s)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default: per arch)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default: %(default)s")
    p.add_argument(
        "--learning-rate",
        "--lr",
        type=float,
        help=f"initial learning rate (default: per arch, x{SGD_LR_FACTOR} with sgd)",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer, help=OPTIMIZER_HELP)
    p.add_argument(
        "--momentum",
        type=float,
        help=f"sgd only: the share of the last step carried into the next, in [0, 1) (default with sgd: "
        f"{SGD_MOMENTUM}; 0: plain SGD)",
    )
    p.add_argument("--loss", choices=LOSSES, default=d.loss, help=LOSS_HELP)
    p.add_argument(
        "--schedule", choices=SCHEDULES, default=d.schedule, help="learning-rate schedule (default: %(default)s)"
    )
    p.add_argument("--l1", type=float, default=d.l1, help="L1 regularisation rate on kernels (default: %(default)s)")
    p.add_argument("--l2", type=float, default=d.l2, help="L2 regularisation rate on kernels (default: %(default)s)")
    p.add_argument("--dropout", type=float, help="dropout rate (default: per arch)")
    p.add_argument("--activation", choices=ACTIVATIONS, default=d.activation, help=ACTIVATION_HELP)
    p.add_argument("--initializer", choices=INITIALIZERS, default=d.initializer, help=INITIALIZER_HELP)
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

    try:
        config = config_from_args(argv)  # --help and bad options answer before TensorFlow loads
        from train.trainer import run  # deferred: TensorFlow loads only when training

        run(config)
    except (MnistError, ValueError) as e:
        print(f"digits-train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
