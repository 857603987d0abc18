"""MNIST loading: the four standard IDX .gz files, checked, with a Keras-download fallback."""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
IMAGE_MAGIC = 2051  # 0x00000803: unsigned byte, 3 dimensions
LABEL_MAGIC = 2049  # 0x00000801: unsigned byte, 1 dimension


class MnistError(ValueError):
    """The MNIST files are missing, corrupt or inconsistent."""


@dataclass
class Mnist:
    """MNIST as uint8 arrays: images [N, 28, 28] (white ink on black), labels [N]."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    checksums: dict[str, str]
    source: str

    def split_validation(self, size: int) -> tuple[tuple, tuple]:
        """(train, validation) pairs; validation is the last `size` training images, never test."""
        if not 0 <= size < len(self.x_train):
            raise ValueError(f"validation_size {size} must be in [0, {len(self.x_train)})")
        cut = len(self.x_train) - size
        return (self.x_train[:cut], self.y_train[:cut]), (self.x_train[cut:], self.y_train[cut:])


def read_idx(path: Path, expected_magic: int) -> np.ndarray:
    """Parse one gzip'd IDX file into a uint8 array, checking magic number and size."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise MnistError(f"{path.name}: not a readable gzip file ({e})") from e
    ndim = expected_magic - 2048
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MnistError(f"{path.name}: file too short for an IDX header")
    magic = struct.unpack(">i", raw[:4])[0]
    if magic != expected_magic:
        raise MnistError(f"{path.name}: bad magic number {magic}, expected {expected_magic}")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    if len(raw) - header != int(np.prod(shape)):
        raise MnistError(f"{path.name}: header says {shape} but holds {len(raw) - header} bytes")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_checksums(data_dir: Path) -> dict[str, str]:
    """SHA-256 of each file; checked against SHA256SUMS when that file is present."""
    sums = {name: sha256(data_dir / name) for name in FILES.values()}
    listing = data_dir / "SHA256SUMS"
    if listing.exists():
        for line in listing.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[1].lstrip("*") in sums:
                name = parts[1].lstrip("*")
                if sums[name] != parts[0].lower():
                    raise MnistError(f"{name}: SHA-256 mismatch with SHA256SUMS (corrupt download?)")
    return sums


def load_idx_dir(data_dir: str | os.PathLike) -> Mnist:
    """Load and check the four IDX files in `data_dir`."""
    data_dir = Path(data_dir)
    missing = [n for n in FILES.values() if not (data_dir / n).is_file()]
    if missing:
        raise MnistError(f"MNIST files missing in {data_dir}: {', '.join(missing)}")
    checksums = verify_checksums(data_dir)
    arrays = {
        key: read_idx(data_dir / name, IMAGE_MAGIC if key.endswith("images") else LABEL_MAGIC)
        for key, name in FILES.items()
    }
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise MnistError(f"{split}: images {images.shape} do not match labels {labels.shape}")
        if labels.size and labels.max() > 9:
            raise MnistError(f"{split}: label {labels.max()} out of range 0-9")
    return Mnist(
        x_train=arrays["train_images"],
        y_train=arrays["train_labels"],
        x_test=arrays["test_images"],
        y_test=arrays["test_labels"],
        checksums=checksums,
        source=str(data_dir),
    )


def load_keras_download() -> Mnist:
    """Fallback for users with internet: Keras's own download of MNIST."""
    import keras  # deferred: a heavy import, and only this path needs it

    try:
        (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    except Exception as e:  # any network failure: say what to do instead
        raise MnistError(
            "no MNIST directory given (--data-dir or MNIST_DIR) and the Keras download failed: "
            f"{e}. Put the four IDX .gz files in a directory and pass it with --data-dir."
        ) from e
    return Mnist(x_train, y_train, x_test, y_test, checksums={}, source="keras.datasets.mnist")


def load_mnist(data_dir: str | os.PathLike | None = None) -> Mnist:
    """MNIST from `data_dir`, else env MNIST_DIR, else the Keras download."""
    data_dir = data_dir or os.environ.get("MNIST_DIR")
    if data_dir:
        return load_idx_dir(data_dir)
    return load_keras_download()
