"""The line reader: a group of ink that may hold digits that touch -> the digits it reads, left to right.

Cutting touching digits apart fails where their strokes cross: every cut line goes through a digit (see
segmentation.py). The reader reads the group whole instead: a small convolutional network, trained with CTC on
groups of touching MNIST training digits (train/reader.py), gives for every 4 columns of the group scaled to
HEIGHT pixels the probabilities of each digit and of "no new digit here" (BLANK). Its greedy path says how many
digits the group holds and roughly where each one is. This module is the contract both sides import: the input
recipe, the decoding and the model's runtime. Pure functions, numpy in and out.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

HEIGHT = 32  # the group scaled to this many rows, keeping its aspect
WIDTHS = (64, 128, 192, 256)  # inputs are padded to one of these widths (one interpreter each); wider is squeezed
STRIDE = 4  # input columns per output step
BLANK = 10  # the CTC blank: no new digit at this step
MARGIN = 2  # columns of background either side of the ink
MODEL_FILE = "model.tflite"
NAME = "reader"  # models/reader/<version>/: beside the digit models, not one of them (ModelRegistry skips it)


class Read(NamedTuple):
    """One digit read in a group: the digits' probabilities at its most certain step (float64 [10], the blank left
    out, summing to 1), and the columns of the group's ink (x from, x to) its steps cover."""

    probabilities: np.ndarray
    columns: tuple[int, int]

    @property
    def digit(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def confidence(self) -> float:
        return float(self.probabilities.max())


def line_input(ink: np.ndarray) -> tuple[np.ndarray, float]:
    """A group's ink (float32 [h, w] 0..1, 1 = ink) -> (the reader's input float32 [HEIGHT, width] 0..1, width one
    of WIDTHS; group columns per input column)."""
    h, w = ink.shape
    width = max(1, round(w * HEIGHT / h))
    room = WIDTHS[-1] - 2 * MARGIN
    width = min(width, room)  # a very long group is squeezed: still at most ~10 digits in view
    scaled = cv2.resize(ink.astype(np.float32), (width, HEIGHT), interpolation=cv2.INTER_AREA)
    size = next(s for s in WIDTHS if s >= width + 2 * MARGIN)
    out = np.zeros((HEIGHT, size), np.float32)
    out[:, MARGIN : MARGIN + width] = np.clip(scaled, 0, 1)
    return out, w / width


def greedy(probabilities: np.ndarray, scale: float, steps: int | None = None) -> list[Read]:
    """CTC best path: the steps' probabilities [T, 11] -> the digits read, merging repeats and dropping blanks.
    `scale`: group columns per input column (line_input()); `steps`: the steps that cover the input's ink."""
    best = probabilities[:steps].argmax(axis=1)
    reads, start = [], None
    for t, k in enumerate(best):
        if start is not None and k != best[start]:
            reads.append(_read(probabilities, best, start, t, scale))
            start = None
        if start is None and k != BLANK:
            start = t
    if start is not None:
        reads.append(_read(probabilities, best, start, len(best), scale))
    return reads


def _read(probabilities: np.ndarray, best: np.ndarray, start: int, end: int, scale: float) -> Read:
    digit = int(best[start])
    surest = start + int(probabilities[start:end, digit].argmax())
    digits = probabilities[surest, :BLANK].astype(np.float64)
    x0 = max(0.0, (start * STRIDE - MARGIN) * scale)
    x1 = max(x0 + 1, ((end * STRIDE) - MARGIN) * scale)
    return Read(digits / digits.sum(), (int(x0), int(np.ceil(x1))))


class Reader:
    """The exported line reader (models/reader/<version>/), loaded once at start-up; one LiteRT interpreter per
    input width. Safe with threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = json.loads((self.path / "metadata.json").read_text())
        self._blob = (self.path / MODEL_FILE).read_bytes()
        self._interpreters: dict[int, object] = {}
        self._lock = threading.Lock()
        for width in WIDTHS:  # each interpreter made and run once now, not on a user's request
            self.read(np.ones((HEIGHT, width - 2 * MARGIN), np.float32))

    def _interpreter(self, width: int):
        from ai_edge_litert.interpreter import Interpreter

        if width not in self._interpreters:
            interpreter = Interpreter(model_content=self._blob, num_threads=1)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, [1, HEIGHT, width, 1])
            interpreter.allocate_tensors()
            self._interpreters[width] = interpreter
        return self._interpreters[width]

    def read(self, ink: np.ndarray) -> list[Read]:
        """A group's ink (float32 [h, w] 0..1, 1 = ink) -> the digits it reads, left to right."""
        x, scale = line_input(ink)
        with self._lock:
            interpreter = self._interpreter(x.shape[1])
            interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x[None, :, :, None])
            interpreter.invoke()
            probabilities = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0]
        used = int(np.ceil((MARGIN + ink.shape[1] / scale + MARGIN) / STRIDE))
        return greedy(probabilities, scale, used)


def bundled(settings=None) -> Reader | None:
    """The reader the service loads with `settings` (default: from the environment); None when it is off."""
    from service.config import Settings

    path = (settings or Settings.from_env()).resolved_reader_dir()
    return Reader(path) if path else None
