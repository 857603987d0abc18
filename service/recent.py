"""Readings just made, kept per worker, so that correcting a drawing costs its commit, not a second reading.

A user corrects what the service has just answered: the page posts the drawing that /predict decoded and read a
moment before, on the same keep-alive connection and so to the same worker. /predict keeps the last few readings of
single one-digit images, by a digest of the image's bytes and the model; a correction of the same bytes for the same
model reuses the decoded image, the model's input and its answer instead of decoding and reading them again. The
reading is the one the user saw, so what is stored is what was corrected. Anything not found (another worker, a
client that never asked for a prediction, an image read as several digits) is read again, exactly as before.

Bounded in bytes (BUDGET), so a worker's memory stays flat whatever it is sent.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from typing import NamedTuple

import cv2
import numpy as np

BUDGET = 1 << 20  # bytes of images kept per worker: about 50 of the page's drawings
LARGEST = BUDGET // 4  # an image of more pixels than this is not kept (a photo: rarely corrected, often large)


class Seen(NamedTuple):
    """One reading kept: the submitted image as decoded (uint8 [H, W], 255 = white), the model's input
    (float32 [28, 28], 0..255) and its answer (float [10])."""

    gray: np.ndarray
    input: np.ndarray
    probabilities: np.ndarray


def key(data: bytes, model: tuple[str, int]) -> tuple[bytes, str, int]:
    """The key of an image's reading by a model (name, version): a 128-bit digest of its bytes, and the model."""
    return hashlib.blake2b(data, digest_size=16).digest(), *model


class Recent:
    """The last readings kept, least recently used dropped first. Safe with threads (gthread workers)."""

    def __init__(self, budget: int = BUDGET) -> None:
        self.budget, self.used = budget, 0
        self._seen: OrderedDict[tuple, Seen] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, data: bytes, model: tuple[str, int], gray: np.ndarray, reading) -> None:
        """Keep a reading (reading.Reading) of the image `data` decoded to `gray` (float32 [H, W] 0..1)."""
        if gray.size > LARGEST:
            return
        # uint8, as stored: a quarter of the memory, and cv2 rounds and saturates in C
        seen = Seen(cv2.convertScaleAbs(gray, alpha=255.0), reading.input, reading.probabilities)
        found = key(data, model)
        with self._lock:
            old = self._seen.pop(found, None)
            self.used += seen.gray.nbytes - (old.gray.nbytes if old else 0)
            self._seen[found] = seen
            while self.used > self.budget:
                self.used -= self._seen.popitem(last=False)[1].gray.nbytes

    def recall(self, data: bytes, model: tuple[str, int]) -> Seen | None:
        """The reading kept for the image `data` by `model`, if it is still kept."""
        found = key(data, model)
        with self._lock:
            seen = self._seen.get(found)
            if seen is not None:
                self._seen.move_to_end(found)
            return seen
