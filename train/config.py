"""Training configuration: one dataclass, shared by the CLI, `run()` and the exported metadata."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

ARCHS = ("softmax", "mlp", "cnn")
SCHEDULES = ("constant", "cosine", "exponential")
ACTIVATIONS = ("relu", "sigmoid", "tanh")  # the mlp's hidden layers
OPTIMIZERS = ("adam", "sgd")
LOSSES = ("crossentropy", "quadratic")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "normal", "zeros")  # kernels of every Dense and Conv2D layer
NORMAL_STDDEV = 0.01  # "normal": the small random weights N(0, 0.01^2) that Glorot initialisation replaced
SGD_MOMENTUM = 0.9  # with optimizer "sgd" when momentum is unset
SGD_LR_FACTOR = 10  # with "sgd" when the learning rate is unset: the arch's Adam rate times this (0.01 for most)

# Per-architecture defaults, applied where the user left an option unset (None).
ARCH_DEFAULTS: dict[str, dict] = {
    "softmax": {"epochs": 15, "learning_rate": 1e-3, "dropout": 0.0, "augment": False},
    "mlp": {"epochs": 40, "learning_rate": 1e-3, "dropout": 0.2, "augment": False},
    "cnn": {"epochs": 30, "learning_rate": 2e-3, "dropout": 0.4, "augment": True},
}


@dataclass
class TrainConfig:
    """Everything that decides a training run; recorded verbatim in metadata.json."""

    arch: str = "cnn"
    epochs: int | None = None
    batch_size: int = 128
    learning_rate: float | None = None
    schedule: str = "cosine"
    l1: float = 0.0
    l2: float = 0.0
    dropout: float | None = None
    activation: str = "relu"  # mlp only: ACTIVATIONS ("sigmoid" is the course's original)
    initializer: str = "glorot_uniform"  # Glorot/Xavier by default; INITIALIZERS
    optimizer: str = "adam"  # OPTIMIZERS
    momentum: float | None = None  # sgd only: SGD_MOMENTUM when unset, 0 for plain SGD
    loss: str = "crossentropy"  # LOSSES: categorical cross-entropy, or quadratic (mean squared error)
    augment: bool | None = None
    validation_size: int = 5000  # taken from the END of the 60k training images
    patience: int = 8  # early stopping on validation accuracy
    seed: int = 42
    data_dir: str | None = None
    out: str = "models"
    name: str | None = None  # export name; defaults to arch
    version: int | None = None  # default: next free version under out/name
    max_train: int | None = None  # cap on training images, for quick runs
    extra_data: str | None = None  # accepted corrections (.npz or IDX folder from `digits-corrections export`)
    extra_weight: float = 5.0  # each extra example counts this many MNIST examples
    init_from: str | None = None  # an exported model version to fine-tune instead of training from scratch
    trainable_from: str | None = None  # with init_from: layers before this one stay frozen (None: all train)
    report: bool = True
    outliers: int = 0  # synthetic non-digits (train/nondigits.py) added to the training set, taught as "none of ten"
    outlier_weight: float = 0.5  # their share of the loss, per image, against a digit's 1
    verbose: int = 2
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._validate()
        if self.optimizer == "sgd" and self.learning_rate is None:
            self.learning_rate = ARCH_DEFAULTS[self.arch]["learning_rate"] * SGD_LR_FACTOR
        if self.optimizer == "sgd" and self.momentum is None:
            self.momentum = SGD_MOMENTUM
        for key, value in ARCH_DEFAULTS[self.arch].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.name is None:
            self.name = self.arch

    def _validate(self) -> None:
        """ValueError, with the choices, for an option the trainer cannot honour."""
        for option, choices in (
            ("arch", ARCHS),
            ("schedule", SCHEDULES),
            ("activation", ACTIVATIONS),
            ("optimizer", OPTIMIZERS),
            ("loss", LOSSES),
            ("initializer", INITIALIZERS),
        ):
            if getattr(self, option) not in choices:
                raise ValueError(f"unknown {option} {getattr(self, option)!r}; choose one of {', '.join(choices)}")
        if self.trainable_from and not self.init_from:
            raise ValueError("--trainable-from needs --init-from: only a trained model's layers can be kept")
        if self.momentum is not None and self.optimizer != "sgd":
            raise ValueError("--momentum applies to --optimizer sgd only (Adam keeps its own moving averages)")
        if self.momentum is not None and not 0 <= self.momentum < 1:
            raise ValueError(f"--momentum must be in [0, 1), got {self.momentum}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def config_of(metadata: dict) -> TrainConfig:
    """The TrainConfig an export was trained with (its metadata.json's hyperparameters; unknown ones ignored)."""
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in metadata["hyperparameters"].items() if k in known})
