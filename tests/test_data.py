"""The IDX loader: reads the standard files, checks them, and says clearly what is wrong."""

from __future__ import annotations

import gzip
import shutil
import struct

import numpy as np
import pytest

from train.data import FILES, MnistError, load_idx_dir, load_mnist, read_idx


@pytest.fixture
def data_copy(tmp_path, mnist_fixture_dir):
    """A writable copy of the fixture directory, to corrupt."""
    dest = tmp_path / "mnist"
    shutil.copytree(mnist_fixture_dir, dest)
    return dest


def test_loads_fixture_shapes_and_types(fixture_data):
    assert fixture_data.x_train.shape == (500, 28, 28)
    assert fixture_data.y_train.shape == (500,)
    assert fixture_data.x_test.shape == (200, 28, 28)
    assert fixture_data.x_train.dtype == np.uint8 and fixture_data.y_train.dtype == np.uint8
    assert set(np.unique(fixture_data.y_train)) == set(range(10))
    # MNIST polarity: black background (0) dominates, white ink reaches 255
    assert np.median(fixture_data.x_train) == 0 and fixture_data.x_train.max() == 255
    assert set(fixture_data.checksums) == set(FILES.values())


def test_first_digits_match_known_mnist_labels(fixture_data):
    # The first training labels of MNIST are famously 5 0 4 1 9 2 1 3 1 4; the first test label is 7.
    assert fixture_data.y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert fixture_data.y_test[0] == 7


def test_validation_split_comes_from_training_images(fixture_data):
    (x_tr, y_tr), (x_val, y_val) = fixture_data.split_validation(100)
    assert len(x_tr) == 400 and len(x_val) == 100
    np.testing.assert_array_equal(x_val, fixture_data.x_train[400:])
    np.testing.assert_array_equal(y_tr, fixture_data.y_train[:400])
    with pytest.raises(ValueError):
        fixture_data.split_validation(500)


def _rewrite(path, transform):
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(transform(raw)))


@pytest.mark.parametrize(
    ("file_key", "transform", "message"),
    [
        ("train_images", lambda raw: struct.pack(">i", 1234) + raw[4:], "bad magic number"),
        ("train_labels", lambda raw: struct.pack(">i", 2051) + raw[4:], "bad magic number"),
        ("test_images", lambda raw: raw[:-100], "holds"),
        ("test_labels", lambda raw: raw[:3], "too short"),
        ("train_labels", lambda raw: raw[:8] + bytes([42]) + raw[9:], "out of range"),
    ],
    ids=["image-magic", "label-magic", "truncated-images", "truncated-header", "bad-label"],
)
def test_corrupt_content_is_rejected(data_copy, file_key, transform, message):
    path = data_copy / FILES[file_key]
    _rewrite(path, transform)
    (data_copy / "SHA256SUMS").unlink()  # test the structural checks themselves
    with pytest.raises(MnistError, match=message):
        load_idx_dir(data_copy)


def test_checksum_mismatch_is_rejected(data_copy):
    _rewrite(data_copy / FILES["train_images"], lambda raw: raw[:-1] + b"\x01")
    with pytest.raises(MnistError, match="train-images-idx3-ubyte.gz: SHA-256 mismatch"):
        load_idx_dir(data_copy)


def test_loads_without_sha256sums(data_copy, fixture_data):
    (data_copy / "SHA256SUMS").unlink()
    data = load_idx_dir(data_copy)
    np.testing.assert_array_equal(data.x_test, fixture_data.x_test)


def test_not_gzip_is_rejected(data_copy):
    (data_copy / FILES["test_labels"]).write_bytes(b"plain text, not gzip")
    (data_copy / "SHA256SUMS").unlink()
    with pytest.raises(MnistError, match="not a readable gzip"):
        load_idx_dir(data_copy)


def test_missing_files_are_named(data_copy):
    (data_copy / FILES["test_images"]).unlink()
    (data_copy / FILES["train_labels"]).unlink()
    with pytest.raises(MnistError, match="t10k-images-idx3-ubyte.gz, |train-labels") as err:
        load_idx_dir(data_copy)
    assert "t10k-images-idx3-ubyte.gz" in str(err.value) and "train-labels-idx1-ubyte.gz" in str(err.value)


def test_read_idx_returns_declared_shape(mnist_fixture_dir):
    images = read_idx(mnist_fixture_dir / FILES["test_images"], 2051)
    assert images.shape == (200, 28, 28)


def test_load_mnist_reads_env_dir(monkeypatch, mnist_fixture_dir):
    monkeypatch.setenv("MNIST_DIR", str(mnist_fixture_dir))
    assert load_mnist().source == str(mnist_fixture_dir)


def test_fallback_download_failure_explains_what_to_do(monkeypatch):
    import keras

    def offline():
        raise OSError("network unreachable")

    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(MnistError, match="--data-dir"):
        load_mnist(None)


def test_fallback_uses_keras_download(monkeypatch, fixture_data):
    import keras

    fake = ((fixture_data.x_train, fixture_data.y_train), (fixture_data.x_test, fixture_data.y_test))
    monkeypatch.delenv("MNIST_DIR", raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: fake)
    data = load_mnist(None)
    assert data.source == "keras.datasets.mnist" and data.x_train.shape == (500, 28, 28)
