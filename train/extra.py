"""Extra training data (`digits-train --extra-data`): the accepted corrections `digits-corrections export` writes,
as .npz (x, y) or as a folder with its two IDX files; mixed into the training set with a weight per example.
And `--init-from`: start from an exported model's weights, to fine-tune it rather than train from scratch."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.contract import SIDE, VARIABLES_DIR, read_metadata
from service.dbcli import IDX_IMAGES, IDX_LABELS
from train.data import IMAGE_MAGIC, LABEL_MAGIC, MnistError, read_idx, sha256


@dataclass
class ExtraData:
    """Extra examples: images uint8 [N, 28, 28] (white on black, as the model's input), labels uint8 [N]."""

    x: np.ndarray
    y: np.ndarray
    sha256: str
    source: str

    def record(self, weight: float) -> dict:
        """What metadata.json says about it (service/contract.py's EXTRA_DATA)."""
        return {"source": self.source, "count": int(len(self.y)), "sha256": self.sha256, "weight": weight}


def _arrays(path: Path) -> tuple[np.ndarray, np.ndarray, str]:
    if path.is_dir():
        files = [path / IDX_IMAGES, path / IDX_LABELS]
        digest = hashlib.sha256("".join(sha256(f) for f in files).encode()).hexdigest()
        return read_idx(files[0], IMAGE_MAGIC), read_idx(files[1], LABEL_MAGIC), digest
    try:
        with np.load(path, allow_pickle=False) as data:
            return data["x"], data["y"], sha256(path)
    except (OSError, ValueError, KeyError) as e:
        raise MnistError(f"{path}: not a corrections export (.npz with x and y, or its IDX folder): {e}") from e


def load_extra(path: str | Path) -> ExtraData:
    """Read and check an export: 28x28 uint8 images, as many labels, each 0-9."""
    path = Path(path)
    if not path.exists():
        raise MnistError(f"{path} does not exist")
    x, y, digest = _arrays(path)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (SIDE, SIDE) or y.shape != (len(x),):
        raise MnistError(f"{path}: expected uint8 images [N, {SIDE}, {SIDE}] and N labels, got {x.shape}, {y.shape}")
    if len(y) and (y.min() < 0 or y.max() > 9):
        raise MnistError(f"{path}: labels must be digits 0-9")
    return ExtraData(x, y.astype(np.uint8), digest, path.name)


def mix(x: np.ndarray, y: np.ndarray, extra: ExtraData | None, weight: float) -> tuple[np.ndarray, ...]:
    """(x, y, sample weights): MNIST's examples weigh 1, each extra example `weight`."""
    w = np.ones(len(y), np.float32)
    if extra is None or not len(extra.y):
        return x, y, w
    return (
        np.concatenate([x, extra.x]),
        np.concatenate([y, extra.y]),
        np.concatenate([w, np.full(len(extra.y), weight, np.float32)]),
    )


def load_weights(model, model_dir: str | Path) -> dict:
    """Copy an exported model's weights into `model` (same architecture), by variable name; what metadata records."""
    import keras
    import tensorflow as tf

    metadata = read_metadata(model_dir)
    loaded = {v.name.removesuffix(":0"): v for v in tf.saved_model.load(str(model_dir)).variables}
    mine = {v.path: v for v in model.weights}
    if not set(mine) <= set(loaded) or any(tuple(loaded[k].shape) != tuple(mine[k].shape) for k in mine):
        raise ValueError(f"{model_dir} is a {metadata.get('architecture')} model, not this {model.name}")
    for name, variable in mine.items():
        variable.assign(loaded[name])
    # Dropout's random-seed states are variables too, named by a process-wide counter (seed_generator_3/... when a
    # model was built before in this process): matched in creation order, not by name.
    seeds = [v for v in model.variables if v.path not in mine]
    saved = sorted((k for k in loaded if k not in mine), key=_counter)
    for variable, name in zip(seeds, saved, strict=True):
        variable.assign(loaded[name])
    for layer in model.layers:  # fine-tuning: batch norm keeps the statistics it learnt on all of MNIST (Keras's
        if isinstance(layer, keras.layers.BatchNormalization):  # advice); a few small batches would skew them
            layer.trainable = False
    data = Path(model_dir) / VARIABLES_DIR / "variables.data-00000-of-00001"  # one shard: these models are small
    return {"name": metadata["name"], "version": metadata["version"], "sha256": sha256(data) if data.exists() else None}


def _counter(path: str) -> int:
    """seed_generator_3/seed_generator_state -> 3; seed_generator/... -> 0."""
    found = re.search(r"_(\d+)$", path.split("/")[0])
    return int(found.group(1)) if found else 0


def freeze_before(model, layer_name: str) -> None:
    """Fine-tuning: layers before `layer_name` keep their weights (the features learnt on all of MNIST)."""
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        raise ValueError(f"no layer {layer_name!r} in {model.name}; its layers: {', '.join(names)}")
    for layer in model.layers[: names.index(layer_name)]:
        layer.trainable = False
