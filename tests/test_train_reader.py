"""train/reader.py end to end on the committed fixture: generate, train one epoch, export, check, load."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from service.reader import Reader
from tests.conftest import FIXTURE_MNIST
from train import reader as training


def test_a_short_training_run_exports_a_reader_the_service_loads(tmp_path):
    out = tmp_path / "reader" / "1"
    argv = ["--data-dir", str(FIXTURE_MNIST), "--count", "120", "--epochs", "1", "--out", str(out)]
    assert training.main([*argv, "--work", str(tmp_path)]) == 0
    metadata = json.loads((out / "metadata.json").read_text())
    blob = (out / "model.tflite").read_bytes()
    assert metadata["sha256"] == hashlib.sha256(blob).hexdigest() and metadata["bytes"] == len(blob)
    assert 0 <= metadata["held_out_accuracy"]["all"] <= 1 and metadata["groups"] > 100
    assert (tmp_path / "reader.weights.h5").is_file()  # the Keras weights stay out of the shipped folder
    reads = Reader(out).read(np.ones((40, 90), np.float32))  # loads, warms up and reads: any digits, in range
    assert all(0 <= r.digit <= 9 and abs(r.probabilities.sum() - 1) < 1e-6 for r in reads)


def test_examples_are_groups_of_touching_digits_with_their_truth(fixture_data):
    data = training.examples(fixture_data.x_train, fixture_data.y_train, 40, seed=4)
    assert len(data) >= 36  # touching digits the service sees as one group, nearly always
    for ink, truth in data:
        assert ink.ndim == 2 and ink.max() > 0.5 and truth.isdigit() and 1 <= len(truth) <= max(training.KINDS)
