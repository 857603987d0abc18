"""Model loading: a Predictor per exported model, loaded once, checked against its metadata, warmed up."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service import reader
from service.calibration import classifier_part, is_digit, temper
from service.contract import (
    DETECTOR_METHOD,
    ModelLoadError,
    classifier_parameters,
    complete_versions,
    latest_version,
    read_metadata,
    rejection_method,
)
from service.errors import UnknownModel
from service.runtimes import RUNTIMES, load_runtime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: int
    path: str
    metadata: dict


class Predictor:
    """One exported model (its LiteRT file or its SavedModel): float32 [N, 28, 28] 0..255 -> probabilities [N, 10]."""

    def __init__(self, model_dir: str | Path, runtime: str = "auto"):
        model_dir = Path(model_dir)
        metadata = read_metadata(model_dir)
        started = time.perf_counter()
        if runtime not in RUNTIMES:
            raise ModelLoadError(f"RUNTIME must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        try:
            self.runtime = load_runtime(model_dir, runtime)
        except Exception as e:  # noqa: BLE001 - TensorFlow and LiteRT raise their own types; start-up stops here
            raise ModelLoadError(f"cannot load the model in {model_dir}: {type(e).__name__}: {e}") from e
        self.info = ModelInfo(metadata["name"], int(metadata["version"]), str(model_dir), metadata)
        # Calibration and "not a digit" (service/calibration.py): a model exported without them is taken as it is,
        # uncalibrated, refusing nothing.
        self.temperature = float(metadata.get("calibration", {}).get("temperature", 1.0))
        self.threshold = float(metadata.get("rejection", {}).get("threshold", 0.0))
        # a position of a number: lower (train/calibration.py's REFUSE_IN_NUMBER); a model without one uses the above
        self.threshold_in_number = float(metadata.get("rejection", {}).get("threshold_in_number", self.threshold))
        self.mixed = rejection_method(metadata) == DETECTOR_METHOD  # a detector's export answers s*p + (1 - s)/10
        self.warm_up()
        log.info(
            "loaded %s v%s (%s) from %s in %.2fs",
            self.info.name,
            self.info.version,
            self.runtime.name,
            model_dir,
            time.perf_counter() - started,
        )

    def warm_up(self) -> None:
        """First calls build kernels; pay that at start-up, not on a user's request. Checks the output is a softmax."""
        for n in (1, 8):
            raw = self.runtime.predict(np.zeros((n, 28, 28), np.float32))  # before predict() renormalises it
            if raw.shape != (n, 10) or not np.allclose(raw.sum(axis=1), 1.0, atol=1e-3):
                raise ModelLoadError(f"{self.info.path}: warm-up output {raw.shape} is not softmax [N, 10]")

    def predict(self, images: np.ndarray) -> np.ndarray:
        """float32 [N, 28, 28] in 0..255 (white on black) -> calibrated probabilities float64 [N, 10], each row
        summing to 1 (the runtime's float32 softmax sums to 1 only within float32 rounding)."""
        return temper(self.runtime.predict(images), self.temperature)

    def predict_parts(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """float32 [N, 28, 28] -> (predict()'s probabilities, the classifier's own [N, 10]). The two differ for an
        export with a "not a digit" detector: segmentation weighs where digits are by the classifier's own
        confidence, which a piece less digit-like than its whole should not sway."""
        raw = self.runtime.predict(images)
        answer = temper(raw, self.temperature)
        return answer, (classifier_part(raw) if self.mixed else answer)

    def is_digit(self, probabilities: np.ndarray, in_number: bool = False) -> np.ndarray:
        """Calibrated probabilities [N, 10] -> bool [N]: confident enough to be read as a digit at all; `in_number`:
        as the positions of one number (several digits read in one image)."""
        return is_digit(probabilities, self.threshold_in_number if in_number else self.threshold)


class ModelRegistry:
    """The default model, loaded at start-up, and the other bundled models, each loaded on first use."""

    def __init__(self, default: Predictor, models_root: str | Path | None = None, loader=Predictor):
        self.default = default
        self._root = Path(models_root) if models_root else None
        self._loader = loader
        self._loaded: dict[str, Predictor] = {default.info.name: default}
        self._lock = threading.Lock()

    def available(self) -> list[str]:
        names = set(self._loaded)
        if self._root and self._root.is_dir():
            names |= {p.name for p in self._root.iterdir() if complete_versions(p) and p.name != reader.NAME}
        return sorted(names)

    def get(self, name: str | None) -> Predictor:
        if not name or name == self.default.info.name:
            return self.default
        loaded = self._loaded.get(name)
        if loaded is not None:  # the usual case: no directory listing on the request path
            return loaded
        if name not in self.available():
            raise UnknownModel(f"unknown model {name!r}; available: {', '.join(self.available())}")
        with self._lock:  # load once, even when many requests ask at the same moment
            if name not in self._loaded:
                self._loaded[name] = self._loader(latest_version(self._root / name))
            return self._loaded[name]

    def preload(self) -> None:
        """Load every available model now, so no user request pays for a first load."""
        for name in self.available():
            self.get(name)

    def describe(self) -> list[dict]:
        """What /v1/models lists: every available model, from its metadata (no loading)."""
        out = []
        for name in self.available():
            if name in self._loaded:
                info = self._loaded[name].info
                meta, path = info.metadata, info.path
            else:
                path = str(latest_version(self._root / name))
                meta = read_metadata(Path(path))
            out.append(
                {
                    "name": meta["name"],
                    "version": meta["version"],
                    "default": name == self.default.info.name,
                    "loaded": name in self._loaded,
                    "runtime": self._loaded[name].runtime.name if name in self._loaded else None,
                    "architecture": meta.get("architecture"),
                    "parameters": meta.get("parameters"),
                    "classifier_parameters": classifier_parameters(meta) if "parameters" in meta else None,
                    "test_accuracy": meta.get("metrics", {}).get("test_accuracy"),
                    "input": meta.get("contract", {}).get("input"),
                    "preprocessing": meta.get("contract", {}).get("preprocessing"),
                    "calibration": meta.get("calibration"),
                    "rejection": meta.get("rejection"),
                }
            )
        return out
