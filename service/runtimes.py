"""Two ways to run an exported model: its SavedModel signature, or the LiteRT file beside it.

Both take float32 [N, 28, 28] in 0..255 and return probabilities float32 [N, 10]; the export
checks that they agree within 1e-4. LiteRT needs no TensorFlow at serving time: it starts
faster, uses a fraction of the memory and has far less per-call overhead.
"""

from __future__ import annotations

import os
import queue
import threading
from pathlib import Path

import numpy as np

from service.contract import INPUT_NAME, LITERT_FILE, OUTPUT_NAME, SIDE, SIGNATURE

RUNTIMES = ("auto", "litert", "savedmodel")
MAX_CHUNK = 256  # LiteRT interpreters are sized per batch bucket up to this many images
# Up to this many images an interpreter is sized to the batch exactly: the digits of one number or of a small batch
# (a 5-digit number padded to 8 paid 3 images' worth, 0.4 ms); above it, to the next power of two (three more
# interpreters: 64, 128, 256), whose padding costs little against the batch.
EXACT_UP_TO = 32
# Two interpreter threads from this many images (python -m bench.runtime_batches). Below it, one: a number's few
# digits on two threads take half the time on an idle machine (5 images: 0.37 ms instead of 0.66), but when the
# other core is busy (the other worker, or anything else) the second thread's share waits for it: on a loaded
# machine, interleaved, 5 images' p90 was 4.0 ms on two threads and 0.71 ms on one.
TWO_THREADS_FROM = 16


class SavedModelRuntime:
    name = "savedmodel"

    def __init__(self, model_dir: Path):
        import tensorflow as tf  # deferred: heavy, and only this runtime needs it

        self._tf = tf
        self._loaded = tf.saved_model.load(str(model_dir))  # keeps the variables alive
        self._fn = self._loaded.signatures[SIGNATURE]

    def predict(self, images: np.ndarray) -> np.ndarray:
        # Concrete functions are thread-safe; a fixed signature means nothing is retraced.
        return self._fn(**{INPUT_NAME: self._tf.constant(images, dtype=self._tf.float32)})[OUTPUT_NAME].numpy()


class LiteRTRuntime:
    """A pool of interpreters per batch size (_bucket()); each is used by one thread at a time."""

    name = "litert"

    def __init__(self, model_dir: Path):
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter_class = Interpreter
        self._blob = (model_dir / LITERT_FILE).read_bytes()
        self._pools: dict[int, queue.SimpleQueue] = {1: queue.SimpleQueue()}
        self._pools[1].put(self._new(1))  # fails here, at load time, on a broken file
        self._lock = threading.Lock()

    def _bucket(self, n: int) -> int:
        return n if n <= EXACT_UP_TO else 1 << (n - 1).bit_length()

    def _new(self, batch: int):
        threads = min(2, os.cpu_count() or 1) if batch >= TWO_THREADS_FROM else 1
        interpreter = self._interpreter_class(model_content=self._blob, num_threads=threads)
        detail = interpreter.get_input_details()[0]
        interpreter.resize_tensor_input(detail["index"], [batch, SIDE, SIDE], strict=False)
        interpreter.allocate_tensors()
        return interpreter, detail["index"], interpreter.get_output_details()[0]["index"]

    def _run(self, images: np.ndarray) -> np.ndarray:
        n = len(images)
        batch = self._bucket(n)
        with self._lock:
            pool = self._pools.setdefault(batch, queue.SimpleQueue())
        try:
            entry = pool.get_nowait()
        except queue.Empty:
            entry = self._new(batch)
        interpreter, input_index, output_index = entry
        try:
            padded = np.zeros((batch, SIDE, SIDE), np.float32)
            padded[:n] = images
            interpreter.set_tensor(input_index, padded)
            interpreter.invoke()
            return interpreter.get_tensor(output_index)[:n].copy()
        finally:
            pool.put(entry)

    def predict(self, images: np.ndarray) -> np.ndarray:
        images = np.asarray(images, np.float32)
        chunks = [self._run(images[i : i + MAX_CHUNK]) for i in range(0, len(images), MAX_CHUNK)]
        return np.concatenate(chunks) if chunks else np.zeros((0, 10), np.float32)


def litert_available(model_dir: Path) -> bool:
    if not (model_dir / LITERT_FILE).is_file():
        return False
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def load_runtime(model_dir: Path, choice: str = "auto"):
    """`auto`: LiteRT when the model has a verified model.tflite and LiteRT is installed; else SavedModel."""
    if choice == "litert" or (choice == "auto" and litert_available(model_dir)):
        return LiteRTRuntime(model_dir)
    return SavedModelRuntime(model_dir)
