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
