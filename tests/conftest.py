"""Shared fixtures. In CI (CI=true) a missing prerequisite fails the run instead of skipping."""

from __future__ import annotations

import itertools
import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_MNIST = Path(__file__).parent / "fixtures" / "mnist"
MODELS = ROOT / "models"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Apps and servers the tests start keep their corrections in a throw-away folder, never in the checkout's ./var
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="digits-test-data-"))


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
    With `fail`, predict() records the input and then raises that exception: a bug of ours. With `refuse`, the
    digits it reads as one of those are not digits to it (is_digit() is False), as a real model's threshold does.
    """

    def __init__(
        self, name: str = "fake", version: int = 7, fail: Exception | None = None, refuse: frozenset = frozenset()
    ):
        from types import SimpleNamespace

        from service.predictor import ModelInfo

        self.info = ModelInfo(name, version, "/nowhere", {"name": name, "version": version})
        self.runtime = SimpleNamespace(name="fake")
        self.fail = fail
        self.refuse = refuse
        self.calls: list = []

    def is_digit(self, probabilities, in_number=False):
        import numpy as np

        return ~np.isin(probabilities.argmax(axis=1), list(self.refuse))

    def predict(self, images):
        import numpy as np

        self.calls.append(images)
        if self.fail is not None:
            raise self.fail
        digits = (images > 128).sum(axis=(1, 2)) % 10
        probs = np.full((len(images), 10), 0.02)  # float64 rows summing to 1, as Predictor.predict returns
        probs[np.arange(len(images)), digits] = 0.82
        return probs

    def predict_parts(self, images):
        """predict() and the classifier's own probabilities: the same, as for a model without a detector."""
        probs = self.predict(images)
        return probs, probs


@pytest.fixture(scope="session")
def make_predictor():
    """Factory: a new FakePredictor, e.g. make_predictor(fail=RuntimeError("boom")) for one that breaks."""
    return FakePredictor


@pytest.fixture
def fake_predictor(make_predictor) -> FakePredictor:
    """The fake the `app` fixture serves."""
    return make_predictor()


@pytest.fixture
def app(fake_predictor):
    from service import create_app

    return create_app({"models_root": str(MODELS)}, predictor=fake_predictor)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def model_dir() -> str:
    """The model every real-model test serves, in-process or in a server: "" for the app's own default (the bundled
    cnn, as in CI), or $TEST_MODEL_DIR to try another exported model (a version or model directory, absolute or
    relative to the repository). The one place that reads TEST_MODEL_DIR."""
    chosen = os.environ.get("TEST_MODEL_DIR", "")
    path = ROOT / chosen if chosen else MODELS / "cnn"  # an absolute TEST_MODEL_DIR replaces ROOT
    require(path.is_dir(), f"{path} is missing: export it, or set TEST_MODEL_DIR to another model directory")
    return str(path) if chosen else ""


@pytest.fixture(scope="session")
def real_app(model_dir):
    """The app exactly as production builds it, around the tests' model (`model_dir`), loaded from disk."""
    from service import create_app

    return create_app({"model_dir": model_dir})


@pytest.fixture(scope="session")
def real_client(real_app):
    return real_app.test_client()


@pytest.fixture(scope="session", name="require")
def require_fixture():
    """The require() helper: skip locally, fail in CI, when a prerequisite is missing."""
    return require


@pytest.fixture(scope="session")
def wrk() -> str:
    """Debian's wrk, which the load benchmarks drive."""
    import shutil

    path = shutil.which("wrk")
    require(path is not None, "wrk is not installed (apt-get install wrk)")
    return path


@pytest.fixture(scope="session")
def images():
    """The image-making helpers of tests/images.py: encode, drawn_one, mnist_as_image."""
    from tests import images as helpers

    return helpers


@pytest.fixture(scope="session")
def one_png(images) -> bytes:
    """A PNG of the simplest drawn '1': a dark vertical stroke on white paper, 280x280."""
    return images.encode(images.drawn_one())


@pytest.fixture(scope="session")
def postgres(require):
    """A throw-away PostgreSQL cluster (Debian's `postgresql` package), for the whole session."""
    from bench.postgres import bindir, temporary_cluster

    require(bindir() is not None, "PostgreSQL is not installed (apt-get install postgresql)")
    with temporary_cluster() as cluster:
        yield cluster


_databases = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """An empty database of each kind: an SQLite file, and a new database in the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'digits.db'}"
    return request.getfixturevalue("postgres").create_database(f"test_{os.getpid()}_{next(_databases)}")
