"""The course's training options in digits-train (tanh, SGD with momentum, the quadratic loss, the initialisers):
each builds the models it concerns, trains a few steps on real MNIST digits, and is the one that was asked for."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import ROOT
from train.__main__ import build_parser, config_from_args
from train.config import (
    ACTIVATIONS,
    ARCH_DEFAULTS,
    INITIALIZERS,
    LOSSES,
    NORMAL_STDDEV,
    OPTIMIZERS,
    SGD_MOMENTUM,
    TrainConfig,
)
from train.extra import ExtraData
from train.models import build_model
from train.trainer import fit, make_loss, one_hot, run

ARCHS = ["softmax", "mlp", "cnn"]
IMAGES, BATCH = 256, 32  # the first 256 MNIST training digits: 8 steps an epoch
LEARNED = 0.95  # 8 steps cut the training loss by 5% at least: the slowest here (softmax with the quadratic
# loss, the mlp from N(0, 0.01^2)) cut it by 14-16%, most by 20-80%


def quick(arch: str, **kw) -> TrainConfig:
    """One epoch of 8 steps at a brisk rate, no validation split, no dropout, no augmentation: seconds at most."""
    defaults = dict(arch=arch, epochs=1, batch_size=BATCH, max_train=IMAGES, validation_size=0, learning_rate=3e-3)
    return TrainConfig(**{**defaults, "dropout": 0.0, "augment": False, "report": False, "verbose": 0, **kw})


def train_slice(data) -> tuple[np.ndarray, np.ndarray]:
    """What quick() configs train on: images float32 [256, 28, 28], one-hot targets [256, 10]."""
    return data.x_train[:IMAGES].astype(np.float32), one_hot(data.y_train[:IMAGES])


def loss_before_and_after(config: TrainConfig, data) -> tuple[keras.Model, float, float]:
    """fit()'s model, and its loss (the configured one) on its training digits before and after training.

    fit() seeds Keras with config.seed before building: the same seed here builds the same starting weights.
    The loss is taken in training mode, so that the cnn's batch norm uses the statistics its 8 steps saw."""
    x, t = train_slice(data)
    keras.utils.set_random_seed(config.seed)
    start = build_model(config)
    model, _ = fit(config, data)
    loss = make_loss(config)
    return model, float(loss(t, start(x, training=True))), float(loss(t, model(x, training=True)))


def kernels(model: keras.Model) -> list[keras.layers.Layer]:
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D))]


def fans(kernel: np.ndarray) -> tuple[int, int]:
    """(fan_in, fan_out) of a Dense [in, out] or Conv2D [h, w, in, out] kernel, as Glorot counts them."""
    field = int(np.prod(kernel.shape[:-2]))
    return field * kernel.shape[-2], field * kernel.shape[-1]


# --- the options build, train, and are the ones asked for -------------------------------------------------------


@pytest.mark.slow
def test_tanh_trains_the_mlp(full_mnist):
    config = quick("mlp", activation="tanh")
    model, before, after = loss_before_and_after(config, full_mnist)
    assert {model.get_layer(f"hidden{i}").activation.__name__ for i in (1, 2)} == {"tanh"}
    assert after < LEARNED * before


def test_activation_changes_only_the_mlp():
    """softmax regression has no hidden layer and the cnn keeps ReLU: --help says so, and it holds."""
    for arch in ("softmax", "cnn"):
        relu = build_model(TrainConfig(arch=arch)).get_config()
        assert build_model(TrainConfig(arch=arch, activation="tanh")).get_config() == relu


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "schedule", "momentum", "decayed"),
    # the rate one epoch later, per schedule (train/trainer.py's _schedule): cosine ends at alpha = 1% over the
    # run, exponential loses 10% an epoch, constant stays
    [("softmax", "cosine", None, 0.01), ("mlp", "exponential", 0.0, 0.9), ("cnn", "constant", 0.5, 1.0)],
)
def test_sgd_trains_each_model_on_each_schedule(full_mnist, arch, schedule, momentum, decayed):
    config = quick(arch, optimizer="sgd", momentum=momentum, schedule=schedule, learning_rate=0.05)
    model, before, after = loss_before_and_after(config, full_mnist)
    optimizer = model.optimizer
    assert type(optimizer) is keras.optimizers.SGD and int(optimizer.iterations) == IMAGES // BATCH
    assert optimizer.momentum == (SGD_MOMENTUM if momentum is None else momentum)
    assert float(optimizer.learning_rate) == pytest.approx(0.05 * decayed, rel=1e-4)
    assert after < LEARNED * before


@pytest.mark.slow
@pytest.mark.parametrize("arch", ARCHS)
def test_quadratic_loss_trains_each_model(full_mnist, arch):
    model, before, after = loss_before_and_after(quick(arch, loss="quadratic"), full_mnist)
    assert type(model.loss) is keras.losses.MeanSquaredError and type(model.optimizer) is keras.optimizers.Adam
    x, t = train_slice(full_mnist)
    p = model.predict(x[:8], verbose=0)  # softmax outputs [8, 10]
    assert float(model.loss(t[:8], p)) == pytest.approx(float(np.mean((t[:8] - p) ** 2)), rel=1e-5)
    assert after < LEARNED * before


@pytest.mark.slow
def test_quadratic_loss_weighs_extra_examples(full_mnist):
    """Sample weights still apply with the quadratic loss: 32 test digits given wrong labels (each digit + 1) are
    learned when they weigh 10 MNIST digits each, ignored when they weigh nothing. Outliers share these weights."""
    x, y = full_mnist.x_test[:32], full_mnist.y_test[:32]
    planted = ExtraData(x, ((y + 1) % 10).astype(np.uint8), "0" * 64, "planted")
    answers = {}
    for weight in (0.0, 10.0):
        config = quick("softmax", loss="quadratic", epochs=3, learning_rate=0.01, extra_weight=weight)
        model, _ = fit(config, full_mnist, planted)
        answers[weight] = (model.predict(x.astype(np.float32), verbose=0).argmax(1) == planted.y).mean()
    assert answers[0.0] <= 0.1 and answers[10.0] >= 0.5


def test_crossentropy_is_the_default_loss_and_optimizer():
    config = TrainConfig()
    assert (config.optimizer, config.loss, config.momentum, config.initializer) == (
        "adam",
        "crossentropy",
        None,
        "glorot_uniform",
    )
    assert type(make_loss(config)) is keras.losses.CategoricalCrossentropy


# --- initialisers -------------------------------------------------------------------------------------------------

INITIALIZER_CLASSES = {
    "glorot_uniform": keras.initializers.GlorotUniform,
    "glorot_normal": keras.initializers.GlorotNormal,
    "normal": keras.initializers.RandomNormal,
    "zeros": keras.initializers.Zeros,
}


def expected_spread(initializer: str, kernel: np.ndarray) -> float:
    """The standard deviation each initialiser draws a kernel's weights with."""
    fan_in, fan_out = fans(kernel)
    return {
        "glorot_uniform": math.sqrt(6 / (fan_in + fan_out)) / math.sqrt(3),  # uniform in +-limit
        "glorot_normal": math.sqrt(2 / (fan_in + fan_out)),
        "normal": NORMAL_STDDEV,
        "zeros": 0.0,
    }[initializer]


@pytest.mark.parametrize("initializer", INITIALIZERS)
@pytest.mark.parametrize("arch", ARCHS)
def test_initializer_draws_every_kernel(arch, initializer):
    """Every Dense and Conv2D kernel has the initialiser asked for, and its weights the spread that one gives."""
    keras.utils.set_random_seed(1)
    model = build_model(TrainConfig(arch=arch, initializer=initializer))
    for layer in kernels(model):
        assert type(layer.kernel_initializer) is INITIALIZER_CLASSES[initializer]
        w = layer.kernel.numpy()
        spread = expected_spread(initializer, w)
        assert abs(w.mean()) <= 4 * spread / math.sqrt(w.size), layer.name  # centred on 0
        assert w.std() == pytest.approx(spread, rel=0.15, abs=1e-9), layer.name
    if initializer == "normal":
        assert kernels(model)[0].kernel_initializer.get_config()["stddev"] == NORMAL_STDDEV == 0.01


def test_each_layer_draws_its_own_weights():
    """One initialiser per layer: the mlp's two hidden layers do not start from the same draws."""
    model = build_model(TrainConfig(arch="mlp", initializer="normal"))
    second = model.get_layer("hidden2").kernel.numpy().ravel()  # [512 * 512]
    first = model.get_layer("hidden1").kernel.numpy().ravel()[: len(second)]
    assert np.abs(first - second).mean() > NORMAL_STDDEV / 2


@pytest.mark.slow
@pytest.mark.parametrize("initializer", ["normal", "glorot_normal"])
@pytest.mark.parametrize("arch", ARCHS)
def test_random_initializers_train_each_model(full_mnist, arch, initializer):
    _, before, after = loss_before_and_after(quick(arch, initializer=initializer), full_mnist)
    assert after < LEARNED * before


@pytest.mark.slow
def test_zeros_are_harmless_for_softmax_regression(full_mnist):
    """No hidden units, a convex loss: from zeros it learns as from anywhere."""
    _, before, after = loss_before_and_after(quick("softmax", initializer="zeros"), full_mnist)
    assert before == pytest.approx(math.log(10), rel=1e-6) and after < LEARNED * before


@pytest.mark.slow
@pytest.mark.parametrize(
    ("arch", "activation", "dropout", "layer"),
    [("mlp", "relu", 0.0, "hidden2"), ("mlp", "sigmoid", 0.0, "hidden2"), ("cnn", "relu", 0.0, "conv2c_relu")],
)
def test_zeros_keep_hidden_units_identical(full_mnist, arch, activation, dropout, layer):
    """Every unit of a layer starts equal and gets the same update: after training they still answer each digit
    alike (the mlp's 512 hidden units, the cnn's 64 feature maps), however the digits differ."""
    config = quick(arch, initializer="zeros", activation=activation, dropout=dropout)
    model, _ = fit(config, full_mnist)
    x, _ = train_slice(full_mnist)
    units = keras.Model(model.input, model.get_layer(layer).output)(x[:64], training=True).numpy()
    units = units.reshape(64, -1, units.shape[-1])  # [digits, positions, units]
    np.testing.assert_allclose(units, np.repeat(units[..., :1], units.shape[-1], axis=-1), atol=1e-6)
    if activation == "sigmoid":  # not merely stuck: the weights moved, all in lockstep
        kernel = model.get_layer("hidden1").kernel.numpy()
        assert np.abs(kernel).max() > 1e-4
        np.testing.assert_allclose(kernel, np.repeat(kernel[:, :1], kernel.shape[1], axis=1), atol=1e-7)


@pytest.mark.slow
def test_dropout_breaks_the_zeros_symmetry(full_mnist):
    """What --help adds in brackets: dropout's random masks give the units different updates."""
    model, _ = fit(quick("mlp", initializer="zeros", activation="sigmoid", dropout=0.2), full_mnist)
    x, _ = train_slice(full_mnist)
    units = keras.Model(model.input, model.get_layer("hidden2").output)(x[:64]).numpy()
    assert np.ptp(units, axis=1).max() > 1e-3


# --- configuration, command line, metadata --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; choose one of adam, sgd"),
        ({"loss": "hinge"}, "unknown loss 'hinge'; choose one of crossentropy, quadratic"),
        ({"initializer": "he_normal"}, "unknown initializer 'he_normal'; choose one of glorot_uniform"),
        ({"activation": "softplus"}, "unknown activation 'softplus'; choose one of relu, sigmoid, tanh"),
        ({"momentum": 0.9}, "--momentum applies to --optimizer sgd only"),
        ({"optimizer": "sgd", "momentum": 1.0}, r"--momentum must be in \[0, 1\)"),
        ({"optimizer": "sgd", "momentum": -0.1}, r"--momentum must be in \[0, 1\)"),
    ],
)
def test_config_rejects_unknown_choices_clearly(options, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(arch="mlp", **options)


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
        (["--loss", "mse"], "argument --loss: invalid choice: 'mse'"),
        (["--initializer", "he_normal"], "argument --initializer: invalid choice: 'he_normal'"),
        (["--activation", "softplus"], "argument --activation: invalid choice: 'softplus'"),
        (["--optimizer", "sgd", "--momentum", "fast"], "argument --momentum: invalid float value: 'fast'"),
        (["--momentum", "0.5"], "--momentum applies to --optimizer sgd only"),
        (["--optimizer", "sgd", "--momentum", "1.5"], "--momentum must be in [0, 1)"),
    ],
)
def test_cli_rejects_bad_values_with_exit_code_2(tmp_path, argv, complaint):
    """`python -m train` itself: the error, no traceback, exit code 2, nothing exported."""
    command = [sys.executable, "-m", "train", *argv, "--data-dir", str(tmp_path), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "digits-train: error: " in done.stderr and complaint in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "out").exists()


def test_cli_maps_the_options():
    config = config_from_args(
        ["--arch", "mlp", "--optimizer", "sgd", "--loss", "quadratic", "--initializer", "zeros", "--activation", "tanh"]
    )
    assert (config.optimizer, config.loss, config.initializer, config.activation) == (
        "sgd",
        "quadratic",
        "zeros",
        "tanh",
    )
    assert config.momentum == SGD_MOMENTUM and config.learning_rate == 10 * ARCH_DEFAULTS["mlp"]["learning_rate"]
    plain = config_from_args(["--optimizer", "sgd", "--momentum", "0", "--lr", "0.1"])
    assert (plain.momentum, plain.learning_rate) == (0.0, 0.1)  # 0 is plain SGD, not "unset"
    assert config_from_args([]).learning_rate == ARCH_DEFAULTS["cnn"]["learning_rate"]  # Adam's rates unchanged


def test_help_explains_each_choice(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for choice in (*ACTIVATIONS, *OPTIMIZERS, *LOSSES, *INITIALIZERS):
        assert f"{choice}:" in text or f"{choice} (" in text, choice
    for phrase in (
        "--momentum",
        "0: plain SGD",
        "mean squared error",
        "of the mlp, the only model it changes",
        "N(0, 0.01^2), stddev 0.01",
        "hidden units never differ",
        "what not to do",
        "Both follow --schedule",
    ):
        assert phrase in text, phrase


@pytest.mark.slow
def test_metadata_records_the_options(tmp_path, full_mnist):
    """metadata.json's hyper-parameters name every choice, and rebuild the same config (train.calibrate does)."""
    config = quick(
        "mlp",
        learning_rate=None,  # sgd's default
        optimizer="sgd",
        momentum=0.5,
        loss="quadratic",
        initializer="glorot_normal",
        activation="tanh",
        out=str(tmp_path),
    )
    result = run(config, data=full_mnist)
    hp = result.metadata["hyperparameters"]
    assert {k: hp[k] for k in ("optimizer", "momentum", "loss", "initializer", "activation")} == {
        "optimizer": "sgd",
        "momentum": 0.5,
        "loss": "quadratic",
        "initializer": "glorot_normal",
        "activation": "tanh",
    }
    assert hp["learning_rate"] == config.learning_rate == 10 * ARCH_DEFAULTS["mlp"]["learning_rate"]
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    rebuilt = TrainConfig(**{k: v for k, v in hp.items() if k in fields})
    assert (rebuilt.learning_rate, rebuilt.momentum) == (config.learning_rate, 0.5)  # not scaled twice
