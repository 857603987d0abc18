"""The model contract between `train/` (which exports models) and `service/` (which serves them).

One exported version is a TensorFlow Serving directory, models/<name>/<version>/:

    saved_model.pb, variables/   the SavedModel; its `serving_default` signature maps
                                 images float32 [N, 28, 28] -> probabilities float32 [N, 10]
    model.tflite                 the same function for LiteRT (checked against the SavedModel)
    report/                      the evaluation report
    metadata.json                written last, atomically: a version without it is incomplete

Standard library only, so that the service, the trainer and the benchmarks can all import it cheaply.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

# The artifact's file names
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
LITERT_FILE = "model.tflite"
METADATA_FILE = "metadata.json"
REPORT_DIR = "report"

# The serving signature and its tensors
SIGNATURE = "serving_default"
INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
SIDE = 28  # the model's input is SIDE x SIDE pixels, as MNIST's digits
BOX = 20  # MNIST's digits were scaled to fit BOX x BOX inside that field
CLASSES = 10

INPUT_SPEC = {
    "name": INPUT_NAME,
    "dtype": "float32",
    "shape": [None, SIDE, SIDE],
    "range": [0.0, 255.0],
    "polarity": "white ink on black background (MNIST): 0 = background, 255 = ink",
}
OUTPUT_SPEC = {"name": OUTPUT_NAME, "dtype": "float32", "shape": [None, CLASSES], "meaning": "softmax, index = digit"}

# What the service does to an image before the model sees it (service/decoding.py, then
# service/preprocessing.py's preprocess()), in order. tests/test_contract.py traces preprocess() against it.
PREPROCESSING_STEPS = (
    "decode the first frame, apply the EXIF orientation, flatten transparency onto paper that contrasts "
    "with the strokes, convert to grayscale",
    "make the ink white on black (the paper is told from the image's border) and stretch it to full contrast; "
    "an image with too little contrast, or only a speck of ink, has no digit",
    "crop to the ink's bounding box",
    "normalise the stroke width towards MNIST's pen: thicken much thinner strokes, thin much thicker ones",
    "crop to the ink's bounding box again",
    f"scale to fit a {BOX}x{BOX} box, keeping the aspect ratio, anti-aliased",
    f"paste into {SIDE}x{SIDE} so that the centre of mass sits at the centre ({SIDE // 2}, {SIDE // 2}); values 0..255",
)
PREPROCESSING = {"recipe": "mnist", "steps": list(PREPROCESSING_STEPS), "box": BOX, "canvas": SIDE}

# The contract as every metadata.json records it
CONTRACT = {"signature": SIGNATURE, "input": INPUT_SPEC, "output": OUTPUT_SPEC, "preprocessing": PREPROCESSING}


# metadata.json fields about where a model's training data came from, beside "data" (the MNIST files' checksums):
# EXTRA_DATA: extra examples mixed in (`digits-train --extra-data`, e.g. exported corrections):
#   {"source": file or folder name, "count": examples, "sha256": checksum of the file(s), "weight": per example}
# FINE_TUNED_FROM: the exported model whose weights training started from (`--init-from`):
#   {"name", "version", "sha256" of its variables' data}
EXTRA_DATA = "extra_data"
FINE_TUNED_FROM = "fine_tuned_from"
# A "not a digit" detector inside an export (train/detector.py): its layers' names start with this; they are not
# the classifier's, and the page that shows the network's layers leaves them out.
DETECTOR = "detector"
# Its export answers s*p + (1 - s)/10 (p: the classifier's softmax, s: how digit-like the image is), and its
# metadata's rejection method is this: the top of that mixed softmax, under a threshold, is "not a digit".
DETECTOR_METHOD = "detector_max_softmax"
MAX_SOFTMAX_METHOD = "max_softmax"  # any other export: the top of the classifier's own softmax


def rejection_method(metadata: dict) -> str:
    """The rejection method an export's threshold is fitted for: DETECTOR_METHOD if it has a detector."""
    return DETECTOR_METHOD if DETECTOR in metadata else MAX_SOFTMAX_METHOD


def classifier_parameters(metadata: dict) -> int:
    """The classifier's own weights: metadata's "parameters" less a "not a digit" detector's, if it has one."""
    return int(metadata.get("parameters", 0)) - int(metadata.get(DETECTOR, {}).get("parameters", 0))


class ModelLoadError(RuntimeError):
    """The model directory is missing, incomplete, or breaks the input contract."""


def _numbered(base: Path) -> list[tuple[int, Path]]:
    """Every version directory under `base` (named by a number), complete or not, lowest first."""
    if not base.is_dir():
        return []
    return sorted((int(p.name), p) for p in base.iterdir() if p.name.isascii() and p.name.isdigit() and p.is_dir())


def complete_versions(base: Path) -> list[Path]:
    """The version directories under `base` whose export finished (metadata.json is written last), lowest first."""
    return [path for _, path in _numbered(Path(base)) if (path / METADATA_FILE).is_file()]


def latest_version(base: Path) -> Path:
    """models/<name>/<highest complete version>/, as TensorFlow Serving picks it."""
    base = Path(base)
    if not base.is_dir():
        raise FileNotFoundError(f"model directory {base} does not exist")
    versions = complete_versions(base)
    if not versions:
        raise FileNotFoundError(f"no complete version directory (with {METADATA_FILE}) under {base}")
    return versions[-1]


def next_version(base: Path) -> int:
    """The next free version number under `base` (1 when empty); never one an unfinished export holds."""
    numbered = _numbered(Path(base))
    return numbered[-1][0] + 1 if numbered else 1


def _check_contract(contract: object, where: Path) -> None:
    """Raise ModelLoadError unless `contract` (metadata's "contract") promises the input the service sends."""
    contract = contract if isinstance(contract, dict) else {}
    spec = contract.get("input")
    spec = spec if isinstance(spec, dict) else {}
    if any(spec.get(key) != INPUT_SPEC[key] for key in ("shape", "dtype", "range")):
        raise ModelLoadError(f"{where}: input contract {spec} is not float32 [N, {SIDE}, {SIDE}] in 0..255")
    preprocessing = contract.get("preprocessing")
    if not isinstance(preprocessing, dict) or preprocessing.get("recipe") != PREPROCESSING["recipe"]:
        raise ModelLoadError(f"{where}: unknown preprocessing recipe")


def read_metadata(model_dir: str | Path) -> dict:
    """A version's metadata.json, checked against the contract; ModelLoadError if missing or incompatible."""
    path = Path(model_dir) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise ModelLoadError(f"{path} is missing: not an exported digits model") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is unreadable: {e}") from e
    if not isinstance(metadata, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    _check_contract(metadata.get("contract"), path)
    return metadata


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part."""
    # a hidden name beside the target (same file system, so the rename is atomic); created with the
    # umask's permissions, which mkstemp's 0600 would not give to a file others serve
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_metadata(model_dir: str | Path, metadata: dict) -> Path:
    """Write metadata.json atomically; an export calls this last, once everything else is in place."""
    path = Path(model_dir) / METADATA_FILE
    write_atomic(path, (json.dumps(metadata, indent=2) + "\n").encode())
    return path
