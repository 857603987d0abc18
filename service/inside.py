"""Inside the network: each layer's activations, which input pixels drove the answer, and softmax regression's
weight templates, all from the shipped LiteRT file (no TensorFlow at serving time).

Activations: a LiteRT interpreter made with `experimental_preserve_all_tensors` keeps every intermediate tensor
after invoke(); the layers' activation outputs are found by the names the converter gives them
(`cnn_1/conv1a_relu_1/Relu;...`, `mlp_1/hidden1_1/MatMul;mlp_1/hidden1_1/Relu;...`). These interpreters are
separate from the serving runtime's, made on the first request that asks, so a plain /predict is untouched.

Saliency: occlusion. LiteRT computes no gradients, and the service has no TensorFlow; occlusion needs only forward
passes of the model as served, batched (all the digits' windows together, in calls of CHUNK images): each
PATCH x PATCH window (every STRIDE pixels) is blanked to the background, and a pixel's value is the mean drop, over
the windows that contain it, of the answer's evidence: the log-odds of the predicted digit against the nine others,
in nats. Not its probability: the shipped models are so sure (p = 0.999999 for a drawn 7) that blanking a few
pixels moves the probability by less than 0.001, and the map would be all zeros, while the log-odds still drop by
several nats. A window without ink blanks nothing, so only the windows that touch ink are run (a drawn digit
touches about a third to a half of them).
"""

from __future__ import annotations

import base64
import io
import math
import queue
import re
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from service.contract import CLASSES, DETECTOR, LITERT_FILE, SIDE
from service.errors import BadRequest, InsideUnavailable, NoTemplates
from service.runtimes import EXACT_UP_TO

INCLUDES = ("input", "activations", "saliency")
# 4x4 windows every 2 pixels: 13 x 13 windows, of which an MNIST digit touches about 75 (the cnn reads them in
# about 10 ms on one core); each pixel is in up to 4 windows. 6x6 windows give a blurrier map for 30% more windows.
PATCH, STRIDE = 4, 2
CHUNK = EXACT_UP_TO  # occluded images per model call
TINY = 1e-30  # probabilities are clipped here before their logarithm (float32 softmax underflows to 0)
MAX_ACTIVATIONS_JSON = 64 * 1024  # bytes of JSON, the `activations` field of one digit (tests/test_inside.py)
# An activation's output tensor, named "<model>_1/<layer>[_relu]_1/<Op>" by the converter: the layer's Keras name.
_ACTIVATION = re.compile(r"(?:^|/)(\w+?)(?:_relu)?(?:_\d+)?/(?:Relu|Relu6|Tanh|Sigmoid)$")


def parse_include(raw: str | None) -> frozenset[str]:
    """`?include=input,activations,saliency` -> those names; an unknown one is a 400 `bad_include`."""
    if not raw:
        return frozenset()
    names = raw.split(",")
    unknown = [name for name in names if name not in INCLUDES]
    if unknown:
        raise BadRequest(f"unknown include {unknown[0]!r}: use a comma list of {', '.join(INCLUDES)}", "bad_include")
    return frozenset(names)


def layer_name(tensor_name: str) -> str | None:
    """The Keras layer whose activation output a LiteRT tensor is, or None (weights, other ops' outputs)."""
    for piece in tensor_name.split(";"):  # the converter joins the names of the ops it fused
        match = _ACTIVATION.search(piece)
        if match:
            return match.group(1)
    return None


def png_data_url(gray: np.ndarray) -> str:
    """uint8 [H, W] -> a grayscale PNG data URL."""
    buffer = io.BytesIO()
    Image.fromarray(gray, mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def rounded(values: np.ndarray, decimals: int) -> list:
    """Floats rounded for JSON (nested lists for 2-D arrays); -0.0 becomes 0.0."""
    return (np.round(np.asarray(values, np.float64), decimals) + 0.0).tolist()


def grid(channels: int) -> tuple[int, int]:
    """(rows, cols) to tile `channels` maps: the smallest divisor of `channels` at least its square root as cols."""
    cols = next(d for d in range(math.isqrt(channels - 1) + 1, channels + 1) if channels % d == 0)
    return -(-channels // cols), cols


def atlas(maps: np.ndarray, rows: int, cols: int, top: float) -> np.ndarray:
    """Feature maps float [H, W, C] -> uint8 [rows * H, cols * W]: map k at tile (k // cols, k % cols), 255 = top."""
    h, w, c = maps.shape
    scaled = np.zeros((h, w, rows * cols), np.uint8)
    if top > 0:
        scaled[..., :c] = np.clip(maps / top * 255, 0, 255).round()
    # [H, W, rows*cols] -> [rows, H, cols, W]: one tile per map, no gaps
    return scaled.transpose(2, 0, 1).reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def layer_entry(name: str, values: np.ndarray) -> dict:
    """One layer's activations for one image: conv maps [H, W, C] as an atlas PNG; units [C] or [1, 1, C] as numbers."""
    if values.ndim == 3 and values.shape[0] * values.shape[1] > 1:
        h, w, c = values.shape
        top = float(values.max())
        rows, cols = grid(c)
        tiles = png_data_url(atlas(values, rows, cols, top))
        entry = {"name": name, "kind": "conv", "shape": [h, w, c], "max": round(top, 3)}
        return entry | {"atlas": tiles, "grid": [rows, cols]}
    units = values.reshape(-1)
    return {"name": name, "kind": "dense", "units": int(units.size), "values": rounded(units, 3)}


def output_entry(probabilities: np.ndarray) -> dict:
    """The output layer: the answer's own probabilities, so the picture and the answer agree."""
    return {"name": "output", "kind": "dense", "units": CLASSES, "values": np.asarray(probabilities).tolist()}


def windows(side: int = SIDE, patch: int = PATCH, stride: int = STRIDE) -> np.ndarray:
    """Top-left corners int [K, 2] of the occlusion windows; the last row and column end at the image's edge."""
    starts = list(range(0, side - patch + 1, stride))
    if starts[-1] != side - patch:
        starts.append(side - patch)
    return np.array([(r, c) for r in starts for c in starts], np.int64)


def coverage(corners: np.ndarray, side: int = SIDE, patch: int = PATCH) -> np.ndarray:
    """How many windows contain each pixel: int [side, side]."""
    count = np.zeros((side, side), np.int64)
    for r, c in corners:
        count[r : r + patch, c : c + patch] += 1
    return count


def inked(x: np.ndarray, corners: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """The windows of `corners` that contain ink in x [28, 28] (background is 0): bool [K]."""
    view = np.lib.stride_tricks.sliding_window_view(x > 0, (patch, patch))  # [29 - patch, 29 - patch, patch, patch]
    return view[corners[:, 0], corners[:, 1]].any(axis=(1, 2))


def occluded(x: np.ndarray, corners: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """x [28, 28] with each window of `corners` blanked in turn: float32 [K, 28, 28]."""
    out = np.repeat(x[None].astype(np.float32), len(corners), axis=0)
    for k, (r, c) in enumerate(corners):
        out[k, r : r + patch, c : c + patch] = 0
    return out


def saliency_map(drops: np.ndarray, corners: np.ndarray, count: np.ndarray, patch: int = PATCH) -> np.ndarray:
    """Each window's drop [K] spread over its pixels, averaged over all the windows (count [28, 28]) that contain
    each pixel; windows not run (no ink) dropped nothing. -> float [28, 28]."""
    total = np.zeros(count.shape, np.float64)
    for drop, (r, c) in zip(drops, corners, strict=True):
        total[r : r + patch, c : c + patch] += drop
    return total / np.maximum(count, 1)


def evidence(probabilities: np.ndarray, digit: int) -> np.ndarray:
    """Log-odds of `digit` against all the others, in nats: float [N] from probabilities [N, 10].

    The others' sum is added up from their own small values, not taken as 1 - p, so a confident answer
    (p = 1 - 1e-9) keeps its precision where p itself has none left to lose."""
    p = np.asarray(probabilities, np.float64)
    rest = np.delete(p, digit, axis=1).sum(axis=1)
    return np.log(np.maximum(p[:, digit], TINY)) - np.log(np.maximum(rest, TINY))


def saliency(
    inputs: list[np.ndarray],
    probabilities: list[np.ndarray],
    predict: Callable[[np.ndarray], np.ndarray],
    patch: int = PATCH,
    stride: int = STRIDE,
) -> list[dict]:
    """Occlusion maps of several digits (model inputs [28, 28] and their answers [10]): their windows that touch ink,
    all blanked and read together."""
    corners = windows(SIDE, patch, stride)
    count = coverage(corners, SIDE, patch)
    kept = [corners[inked(x, corners, patch)] for x in inputs]
    batch = [occluded(x, k, patch) for x, k in zip(inputs, kept, strict=True)]
    stacked = np.concatenate(batch) if batch else np.zeros((0, SIDE, SIDE), np.float32)
    # In calls of CHUNK: the runtime sizes its interpreters exactly up to that many images, and pads larger batches
    # to a power of two (75 windows would cost 128 images' time).
    parts = [predict(stacked[i : i + CHUNK]) for i in range(0, len(stacked), CHUNK)]
    answers = np.concatenate(parts) if parts else np.zeros((0, CLASSES))
    out, start = [], 0
    for k, p in zip(kept, probabilities, strict=True):
        digit = int(np.argmax(p))
        drops = evidence(np.asarray(p)[None], digit) - evidence(answers[start : start + len(k)], digit)
        start += len(k)
        values = rounded(saliency_map(drops, k, count, patch), 3)
        found = {"method": "occlusion", "measure": "log_odds", "patch": patch, "stride": stride, "digit": digit}
        out.append(found | {"values": values})
    return out


def find_layers(details: list[dict]) -> list[tuple[str, int]]:
    """(Keras layer name, tensor index) of each layer's activation output, in forward order (tensor order)."""
    layers = []
    for detail in sorted(details, key=lambda d: d["index"]):
        name = layer_name(detail["name"])
        if not name or name.startswith(DETECTOR):  # not an activation, or the "not a digit" detector's
            continue
        if len(detail["shape"]) >= 2 and detail["shape"][0] == 1:  # a batch of one: not a constant
            layers.append((name, detail["index"]))
    return layers


def find_templates(constants: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
    """The one dense layer from the 784 pixels to the 10 digits, among a LiteRT file's tensors by name:
    (kernel float [10, 784], bias [10]), or None when there is not exactly one."""
    kernels = [name for name, value in constants.items() if value.shape == (CLASSES, SIDE * SIDE)]
    if len(kernels) != 1:
        return None
    prefix = kernels[0].rsplit("/", 1)[0] + "/"  # "softmax_1/probabilities_1/": the bias is that layer's
    biases = [v for name, v in constants.items() if v.shape == (CLASSES,) and name.startswith(prefix)]
    return (constants[kernels[0]], biases[0]) if len(biases) == 1 else None


class Inside:
    """One model's LiteRT file, opened to look inside: its layers' activations and its weight templates."""

    def __init__(self, model_dir: str | Path):
        self._path = Path(model_dir) / LITERT_FILE
        self._pool: queue.SimpleQueue = queue.SimpleQueue()  # interpreters, each used by one thread at a time
        self._lock = threading.Lock()
        self._templates: list[dict] | None = None  # read once; [] for a model that has none

    def _interpreter_class(self):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise InsideUnavailable("looking inside the network needs ai_edge_litert, not installed here") from None
        if not self._path.is_file():
            raise InsideUnavailable(f"looking inside the network needs {LITERT_FILE}; this model has none")
        return Interpreter

    def _new(self, preserve: bool):
        interpreter_class = self._interpreter_class()
        with self._lock, warnings.catch_warnings():
            # LiteRT warns that keeping every tensor costs memory: here a few hundred KB for a batch of one
            warnings.simplefilter("ignore")
            interpreter = interpreter_class(
                model_path=str(self._path), num_threads=1, experimental_preserve_all_tensors=preserve
            )
        interpreter.allocate_tensors()
        return interpreter

    def activations(self, x: np.ndarray, probabilities: np.ndarray) -> list[dict]:
        """Model input float [28, 28] (0..255) and its answer [10] -> every layer's entry, in forward order."""
        try:
            interpreter, index, layers = self._pool.get_nowait()
        except queue.Empty:
            interpreter = self._new(preserve=True)
            index = interpreter.get_input_details()[0]["index"]
            layers = find_layers(interpreter.get_tensor_details())
        try:
            interpreter.set_tensor(index, np.asarray(x, np.float32)[None])
            interpreter.invoke()
            values = [(name, interpreter.get_tensor(i)[0]) for name, i in layers]  # copies
        finally:
            self._pool.put((interpreter, index, layers))
        return [layer_entry(name, v) for name, v in values] + [output_entry(probabilities)]

    def templates(self, parameters: object) -> list[dict]:
        """Softmax regression's ten templates; NoTemplates for a model with more than that one layer (`parameters`,
        from its metadata, counts its trainable weights)."""
        if self._templates is None:
            found = find_templates(self._constants())
            if found is None or parameters != found[0].size + found[1].size:
                self._templates = []
            else:
                kernel, bias = found  # [10, 784]: LiteRT keeps a dense kernel as [outputs, inputs]
                self._templates = [
                    {"digit": d, "weights": rounded(kernel[d].reshape(SIDE, SIDE), 4), "bias": round(float(bias[d]), 4)}
                    for d in range(CLASSES)
                ]
        if not self._templates:
            raise NoTemplates("only a model whose one layer maps the 784 pixels to the 10 digits has templates")
        return self._templates

    def _constants(self) -> dict[str, np.ndarray]:
        """The LiteRT file's float vectors and matrices that hold data before any invoke(): weights, biases."""
        interpreter = self._new(preserve=False)
        constants = {}
        for detail in interpreter.get_tensor_details():
            if len(detail["shape"]) in (1, 2) and detail["dtype"] == np.float32:
                try:
                    constants[detail["name"]] = interpreter.get_tensor(detail["index"])
                except ValueError:  # an intermediate tensor: no data until invoke()
                    continue
        return constants
