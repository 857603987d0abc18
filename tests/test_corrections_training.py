"""Training from corrections: a style the model misreads, corrected a few dozen times through the API, reviewed,
exported, and fine-tuned on, is read right afterwards, and the fixture's MNIST accuracy does not fall.

The style: mirrored 7s, as children often write them, which the shipped cnn reads as other digits.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from service import create_app
from service.dbcli import corrections as corrections_cli
from service.predictor import Predictor
from service.preprocessing import preprocess
from tests.conftest import MODELS
from train.config import TrainConfig
from train.data import MnistError
from train.extra import load_extra

TOKEN = "training-admin-token"
STYLE = 7
CORRECTED = 40  # "a few dozen"


def mirrored(images: np.ndarray) -> np.ndarray:
    return images[:, :, ::-1]


def as_paper(image: np.ndarray) -> list:
    """An MNIST digit as a user's drawing: dark ink on white, 0..1."""
    return (1.0 - image / 255.0).tolist()


def style_accuracy(predictor: Predictor, images: np.ndarray) -> float:
    x = np.stack([preprocess(np.asarray(as_paper(image), np.float32)) for image in images])
    return float((predictor.predict(x).argmax(axis=1) == STYLE).mean())


def mnist_accuracy(predictor: Predictor, data) -> float:
    return float((predictor.predict(data.x_test.astype(np.float32)).argmax(axis=1) == data.y_test).mean())


@pytest.fixture(scope="module")
def exported(fixture_data, tmp_path_factory):
    """40 mirrored 7s posted as corrections, plus junk that review rejects; the accepted ones exported."""
    folder = tmp_path_factory.mktemp("corrections")
    url = f"sqlite:///{folder / 'digits.db'}"
    client = create_app({"database_url": url, "admin_token": TOKEN}).test_client()
    admin = {"Authorization": f"Bearer {TOKEN}"}
    sevens = mirrored(fixture_data.x_train[fixture_data.y_train == STYLE])[:CORRECTED]
    junk = mirrored(fixture_data.x_train[fixture_data.y_train == 1])[:5]  # abuse: ones labelled 7
    for image in [*sevens, *junk]:
        created = client.post("/v1/corrections", json={"pixels": as_paper(image), "label": STYLE})
        assert created.status_code == 201, created.json
    for entry in client.get("/v1/corrections?limit=500", headers=admin).json["corrections"]:
        status = "rejected" if entry["id"] > CORRECTED else "accepted"
        client.patch(f"/v1/corrections/{entry['id']}", json={"status": status}, headers=admin)
    npz, idx = folder / "corrections.npz", folder / "idx"
    assert corrections_cli(["export", "--out", str(npz), "--idx", str(idx), "--url", url]) == 0
    return npz, idx


def test_export_holds_the_accepted_corrections_only(exported):
    npz, idx = exported
    extra, as_idx = load_extra(npz), load_extra(idx)
    assert len(extra.y) == CORRECTED and set(extra.y.tolist()) == {STYLE}
    np.testing.assert_array_equal(extra.x, as_idx.x)
    np.testing.assert_array_equal(extra.y, as_idx.y)
    assert extra.x.dtype == np.uint8 and extra.x.shape == (CORRECTED, 28, 28) and extra.x.max() > 200


def test_a_bad_extra_file_is_refused(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, x=np.zeros((3, 28, 28), np.uint8), y=np.array([1, 2, 12], np.uint8))
    with pytest.raises(MnistError, match="0-9"):
        load_extra(bad)
    (tmp_path / "text.npz").write_text("not numpy")
    with pytest.raises(MnistError, match="not a corrections export"):
        load_extra(tmp_path / "text.npz")
    with pytest.raises(ValueError, match="needs --init-from"):
        TrainConfig(arch="cnn", trainable_from="conv2a")


@pytest.mark.slow
def test_fine_tuning_on_corrections_reads_the_style_and_keeps_mnist(exported, fixture_data, tmp_path):
    from train.trainer import run

    npz, _ = exported
    shipped = MODELS / "cnn" / "1"
    test_sevens = mirrored(fixture_data.x_test[fixture_data.y_test == STYLE])
    before = Predictor(shipped)
    style_before, mnist_before = style_accuracy(before, test_sevens), mnist_accuracy(before, fixture_data)
    assert style_before < 0.2  # the style is misread
    config = TrainConfig(
        arch="cnn", init_from=str(shipped), trainable_from="conv2a", extra_data=str(npz), extra_weight=2.0,
        epochs=5, learning_rate=3e-4, schedule="constant", batch_size=64, augment=False, validation_size=100,
        out=str(tmp_path), name="tuned", report=False, verbose=0,
    )  # fmt: skip
    result = run(config, data=fixture_data)
    after = Predictor(result.path)  # the exported model, as the service runs it
    assert style_accuracy(after, test_sevens) >= 0.9  # corrected test digits, none of them seen in training
    assert mnist_accuracy(after, fixture_data) >= mnist_before  # MNIST accuracy on the fixture does not fall
    metadata = json.loads((result.path / "metadata.json").read_text())
    assert metadata["extra_data"] == {
        "source": "corrections.npz",
        "count": CORRECTED,
        "sha256": hashlib.sha256(npz.read_bytes()).hexdigest(),
        "weight": 2.0,
    }
    assert metadata["fine_tuned_from"]["name"] == "cnn" and metadata["fine_tuned_from"]["version"] == 1
    assert "extra_data" not in metadata["hyperparameters"]  # this machine's path: the record above says what it was


def test_digits_train_takes_the_extra_data_options():
    from train.__main__ import config_from_args

    argv = ["--extra-data", "c.npz", "--extra-weight", "3", "--init-from", "models/cnn/1", "--trainable-from", "conv3"]
    config = config_from_args(argv)
    assert (config.extra_data, config.extra_weight, config.init_from, config.trainable_from) == (
        "c.npz",
        3.0,
        "models/cnn/1",
        "conv3",
    )
