"""Training configuration: one dataclass, shared by the CLI, `run()` and the exported metadata."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

ARCHS = ("softmax", "mlp", "cnn")
SCHEDULES = ("constant", "cosine", "exponential")

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
    activation: str = "relu"  # mlp only: "relu" or "sigmoid" (the course's original)
    initializer: str = "glorot_uniform"  # Glorot/Xavier by default
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
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if self.trainable_from and not self.init_from:
            raise ValueError("--trainable-from needs --init-from: only a trained model's layers can be kept")
        if self.activation not in ("relu", "sigmoid"):
            raise ValueError("activation must be 'relu' or 'sigmoid'")
        for key, value in ARCH_DEFAULTS[self.arch].items():
            if getattr(self, key) is None:
                setattr(self, key, value)
        if self.name is None:
            self.name = self.arch

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
