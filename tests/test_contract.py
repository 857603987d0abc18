"""service/contract.py: the version layout, the validating metadata reader, and the steps it promises."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from service.contract import (
    BOX,
    METADATA_FILE,
    PREPROCESSING_STEPS,
    SAVED_MODEL_FILE,
    VARIABLES_DIR,
    ModelLoadError,
    complete_versions,
    latest_version,
    next_version,
    read_metadata,
    write_metadata,
)
from tests.conftest import FIXTURE_MNIST, MODELS, ROOT


def make_layout(base, complete=(), partial=(), other=()):
    """Version directories under `base`: finished exports, unfinished ones, and names that are no version."""
    for version in complete:
        (base / str(version)).mkdir(parents=True)
        (base / str(version) / METADATA_FILE).write_text("{}")
    for version in partial:
        (base / str(version) / VARIABLES_DIR).mkdir(parents=True)  # an export still writing, or killed
    for name in other:
        (base / name).mkdir(parents=True)


@pytest.mark.parametrize(
    ("complete", "partial", "other", "latest", "following"),
    [
        ((1, 2), (3,), (), 2, 4),  # an unfinished export is skipped, and its number is not given out again
        ((2, 10), (), (), 10, 11),  # numeric order, not string order
        ((1,), (), ("tmp", ".staging", "\u00b2", "7x"), 1, 2),  # names that are not versions are ignored
        ((), (1,), (), None, 2),
    ],
)
def test_version_helpers(tmp_path, complete, partial, other, latest, following):
    base = tmp_path / "cnn"
    make_layout(base, complete, partial, other)
    (base / "99").write_text("a file, not a version")
    assert [p.name for p in complete_versions(base)] == [str(v) for v in sorted(complete)]
    if latest is None:
        with pytest.raises(FileNotFoundError, match="no complete version"):
            latest_version(base)
    else:
        assert latest_version(base) == base / str(latest)
    assert next_version(base) == following


def test_version_helpers_on_a_missing_directory(tmp_path):
    assert complete_versions(tmp_path / "nothing") == []
    assert next_version(tmp_path / "nothing") == 1
    with pytest.raises(FileNotFoundError, match="does not exist"):
        latest_version(tmp_path / "nothing")


@pytest.mark.parametrize("name", ["softmax", "mlp", "cnn"])
def test_shipped_metadata_is_accepted_and_lists_every_step(name):
    """/v1/models shows each model's preprocessing from its metadata: it must be what the service does."""
    meta = read_metadata(latest_version(MODELS / name))
    assert meta["contract"]["preprocessing"]["steps"] == list(PREPROCESSING_STEPS)


def _break(meta: dict, how: str) -> object:
    contract = meta["contract"]
    if how == "no-contract":
        del meta["contract"]
    elif how == "contract-not-object":
        meta["contract"] = ["float32"]
    elif how == "input-not-object":
        contract["input"] = "float32"
    elif how == "shape":
        contract["input"]["shape"] = [None, 32, 32]
    elif how == "dtype":
        contract["input"]["dtype"] = "uint8"
    elif how == "range":
        contract["input"]["range"] = [0.0, 1.0]
    elif how == "recipe":
        contract["preprocessing"]["recipe"] = "emnist"
    elif how == "no-preprocessing":
        del contract["preprocessing"]
    elif how == "list":
        return [meta]
    return meta


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("no-contract", "input contract"),
        ("contract-not-object", "input contract"),
        ("input-not-object", "input contract"),
        ("shape", "not float32 \\[N, 28, 28\\]"),
        ("dtype", "input contract"),
        ("range", "in 0..255"),
        ("recipe", "unknown preprocessing recipe"),
        ("no-preprocessing", "unknown preprocessing recipe"),
        ("list", "not a JSON object"),
    ],
)
def test_read_metadata_rejects_a_broken_contract(tmp_path, how, message):
    meta = json.loads((MODELS / "softmax" / "1" / METADATA_FILE).read_text())
    (tmp_path / METADATA_FILE).write_text(json.dumps(_break(meta, how)))
    with pytest.raises(ModelLoadError, match=message):
        read_metadata(tmp_path)


def test_read_metadata_rejects_missing_and_unreadable_files(tmp_path):
    with pytest.raises(ModelLoadError, match="is missing: not an exported digits model"):
        read_metadata(tmp_path)
    (tmp_path / METADATA_FILE).write_text('{"name": "cnn",')
    with pytest.raises(ModelLoadError, match="is unreadable"):
        read_metadata(tmp_path)


def test_write_metadata_round_trips_with_ordinary_permissions(tmp_path):
    meta = json.loads((MODELS / "mlp" / "1" / METADATA_FILE).read_text())
    old = os.umask(0o022)
    try:
        path = write_metadata(tmp_path, meta)
    finally:
        os.umask(old)
    assert read_metadata(tmp_path) == meta
    assert path.read_text() == (MODELS / "mlp" / "1" / METADATA_FILE).read_text()  # the shipped files' format
    assert stat.S_IMODE(path.stat().st_mode) == 0o644  # readable by a server running as another user
    assert sorted(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_a_failed_metadata_write_leaves_no_file(tmp_path):
    (tmp_path / METADATA_FILE).mkdir()  # the final rename fails
    with pytest.raises(OSError):
        write_metadata(tmp_path, {"name": "cnn"})
    assert sorted(tmp_path.iterdir()) == [tmp_path / METADATA_FILE]


# preprocess()'s own calls, in order, each with a phrase from every contract step it performs (step 1,
# decoding, happens before, in service/decoding.py). A call added to preprocess() fails this until the
# contract's steps say what it does.
PREPROCESS_CALLS = {
    "digit_region": ("white on black", "bounding box"),
    "normalize_stroke": ("stroke width",),
    "crop_to_ink": ("bounding box again",),
    "fit_to_box": (f"{BOX}x{BOX} box",),
    "center_by_mass": ("centre of mass",),
}


def traced_calls(function, *args) -> list[str]:
    """The names of the service/preprocessing.py functions that `function` itself calls, in order."""
    calls = []

    def profile(frame, event, _arg):
        caller = frame.f_back.f_code if event == "call" and frame.f_back is not None else None
        if caller is function.__code__ and frame.f_code.co_filename == caller.co_filename:
            calls.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        function(*args)
    finally:
        sys.setprofile(None)
    return calls


def test_preprocessing_steps_are_what_preprocess_does(fixture_data):
    from service.preprocessing import preprocess

    gray = 1.0 - np.kron(fixture_data.x_test[0], np.ones((10, 10))).astype(np.float32) / 255  # dark ink on white
    calls = traced_calls(preprocess, gray)
    assert calls == list(PREPROCESS_CALLS)
    steps = iter(PREPROCESSING_STEPS[1:])
    for name in calls:
        for phrase in PREPROCESS_CALLS[name]:
            step = next(steps, "")
            assert phrase in step, (name, step)
    assert next(steps, None) is None, "a contract step that preprocess() does not perform"


@pytest.mark.slow
def test_a_killed_export_is_never_served(tmp_path, fake_predictor):
    """SIGKILL a real export once its SavedModel is on disk: the version before it is still the one served."""
    from service import create_app
    from service.config import Settings
    from service.predictor import ModelRegistry

    shutil.copytree(MODELS / "softmax" / "1", tmp_path / "softmax" / "1")
    half = tmp_path / "softmax" / "2"
    args = ["--arch", "softmax", "--data-dir", str(FIXTURE_MNIST), "--epochs", "1", "--max-train", "200"]
    args += ["--validation-size", "100", "--no-report", "--quiet", "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    export = subprocess.Popen([sys.executable, "-m", "train", *args], cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (half / SAVED_MODEL_FILE).exists():
            assert export.poll() is None, "the export ended before its SavedModel was written"
            assert time.monotonic() < deadline, "no SavedModel after 300 s"
            time.sleep(0.005)
    finally:
        export.kill()  # SIGKILL: no clean-up runs
        export.wait()
    # evaluation and the LiteRT conversion (seconds) come between the SavedModel and metadata.json
    assert not (half / METADATA_FILE).exists()

    assert latest_version(tmp_path / "softmax") == tmp_path / "softmax" / "1"
    assert next_version(tmp_path / "softmax") == 3  # the next export does not write into the broken one
    assert Settings(model_dir=str(tmp_path / "softmax")).resolved_model_dir() == tmp_path / "softmax" / "1"
    assert ModelRegistry(fake_predictor, tmp_path).get("softmax").info.version == 1  # loaded on first use
    app = create_app({"model_dir": str(tmp_path / "softmax"), "models_root": str(tmp_path)})
    client = app.test_client()
    assert client.get("/readyz").json["model"] == {"name": "softmax", "version": 1}
    assert [m["version"] for m in client.get("/v1/models").json["models"]] == [1]
    one = {"pixels": [[0] * 10 + [255] * 4 + [0] * 14] * 28}  # a vertical bar
    assert client.post("/predict", json=one).json["model"] == {"name": "softmax", "version": 1}
