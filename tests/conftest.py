"""Shared fixtures. In CI (CI=true) a missing prerequisite fails the run instead of skipping."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_MNIST = Path(__file__).parent / "fixtures" / "mnist"
MODELS = ROOT / "models"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def require(condition: bool, reason: str) -> None:
    """Skip locally when a prerequisite is missing; fail in CI, where it must be present."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"CI prerequisite missing: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def mnist_fixture_dir() -> Path:
    return FIXTURE_MNIST


@pytest.fixture(scope="session")
def fixture_data():
    """The committed fixture: 500 training and 200 test MNIST digits."""
    from train.data import load_idx_dir

    return load_idx_dir(FIXTURE_MNIST)


@pytest.fixture(scope="session")
def full_mnist():
    """The full MNIST set from $MNIST_DIR (required in CI)."""
    from train.data import load_idx_dir

    data_dir = os.environ.get("MNIST_DIR")
    require(bool(data_dir) and Path(data_dir).is_dir(), "MNIST_DIR is not set to the MNIST IDX directory")
    return load_idx_dir(data_dir)


class FakePredictor:
    """Stands in for the model where TensorFlow is beside the point: records its inputs.

    Its answer is a real function of the input, not a constant: the digit is the number of
    bright pixels modulo 10, so tests can tell that the image they sent is the one predicted.
    """

    def __init__(self, name: str = "fake", version: int = 7):
        from types import SimpleNamespace

        from service.predictor import ModelInfo

        self.info = ModelInfo(name, version, "/nowhere", {"name": name, "version": version})
        self.runtime = SimpleNamespace(name="fake")
        self.calls: list = []

    def predict(self, images):
        import numpy as np

        self.calls.append(images)
        digits = (images > 128).sum(axis=(1, 2)) % 10
        probs = np.full((len(images), 10), 0.02, np.float32)
        probs[np.arange(len(images)), digits] = 0.82
        return probs


@pytest.fixture
def fake_predictor() -> FakePredictor:
    return FakePredictor()


@pytest.fixture
def app(fake_predictor):
    from service import create_app

    return create_app({"models_root": str(MODELS)}, predictor=fake_predictor)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def real_app():
    """The app exactly as production builds it: the bundled default model (cnn), loaded from disk."""
    from service import create_app

    model_dir = os.environ.get("TEST_MODEL_DIR", "")  # to try another model; CI uses the bundled cnn
    require(bool(model_dir) or (MODELS / "cnn").is_dir(), "the bundled models/cnn is missing")
    return create_app({"model_dir": model_dir})


@pytest.fixture(scope="session")
def real_client(real_app):
    return real_app.test_client()
