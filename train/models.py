"""The course's three models, plus the training-only augmentation pipeline.

Every model takes the service's input contract directly: float32 [N, 28, 28], values 0-255,
white ink on black (MNIST polarity). Scaling to 0-1 happens inside the model (a Rescaling
layer), so inference cannot disagree with training.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

from service.contract import CLASSES, INPUT_NAME, OUTPUT_NAME, SIDE
from train.config import NORMAL_STDDEV, TrainConfig

INPUT_SHAPE = (SIDE, SIDE)


def _regularizer(config: TrainConfig) -> keras.regularizers.Regularizer | None:
    if config.l1 or config.l2:
        return keras.regularizers.L1L2(l1=config.l1, l2=config.l2)
    return None


def kernel_initializer(config: TrainConfig) -> keras.initializers.Initializer:
    """A new initializer per layer: an instance shared by several layers would give them the same draws."""
    if config.initializer == "normal":
        return keras.initializers.RandomNormal(mean=0.0, stddev=NORMAL_STDDEV)
    return keras.initializers.get(config.initializer)


def _dense(units: int, config: TrainConfig, activation: str | None, name: str) -> layers.Dense:
    return layers.Dense(
        units,
        activation=activation,
        kernel_initializer=kernel_initializer(config),
        kernel_regularizer=_regularizer(config),
        name=name,
    )


def _inputs() -> tuple[keras.KerasTensor, keras.KerasTensor]:
    """Input [N, 28, 28] in 0-255, rescaled to 0-1."""
    inputs = keras.Input(shape=INPUT_SHAPE, dtype="float32", name=INPUT_NAME)
    return inputs, layers.Rescaling(1.0 / 255, name="rescale")(inputs)


def build_softmax(config: TrainConfig) -> keras.Model:
    """Softmax regression: flatten 784 -> dense 10."""
    inputs, x = _inputs()
    x = layers.Flatten(name="flatten")(x)
    outputs = _dense(CLASSES, config, "softmax", OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="softmax")


def build_mlp(config: TrainConfig) -> keras.Model:
    """Multilayer perceptron 784 -> 512 -> 512 -> 10 with dropout."""
    inputs, x = _inputs()
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = _dense(512, config, config.activation, f"hidden{i}")(x)
        x = layers.Dropout(config.dropout, name=f"dropout{i}")(x)
    outputs = _dense(CLASSES, config, "softmax", OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="mlp")


def _conv_bn(
    x: keras.KerasTensor,
    filters: int,
    size: int,
    config: TrainConfig,
    name: str,
    strides: int = 1,
    padding: str = "valid",
) -> keras.KerasTensor:
    """Conv (no bias: batch norm supplies it) -> batch norm -> ReLU."""
    x = layers.Conv2D(
        filters,
        size,
        strides=strides,
        padding=padding,
        use_bias=False,
        kernel_initializer=kernel_initializer(config),
        kernel_regularizer=_regularizer(config),
        name=name,
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_cnn(config: TrainConfig) -> keras.Model:
    """Convolutional net: two conv blocks (3x3, 3x3, strided 5x5), a 4x4 conv head, dropout."""
    inputs, x = _inputs()
    x = layers.Reshape((28, 28, 1), name="channels")(x)
    for block, filters in ((1, 32), (2, 64)):
        x = _conv_bn(x, filters, 3, config, f"conv{block}a")  # 28->26 / 12->10
        x = _conv_bn(x, filters, 3, config, f"conv{block}b")  # 26->24 / 10->8
        x = _conv_bn(x, filters, 5, config, f"conv{block}c", strides=2, padding="same")  # ->12 / ->4
        x = layers.Dropout(config.dropout, name=f"dropout{block}")(x)
    x = _conv_bn(x, 128, 4, config, "conv3")  # 4x4 -> 1x1
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config.dropout, name="dropout3")(x)
    outputs = _dense(CLASSES, config, "softmax", OUTPUT_NAME)(x)
    return keras.Model(inputs, outputs, name="cnn")


BUILDERS = {"softmax": build_softmax, "mlp": build_mlp, "cnn": build_cnn}


def build_model(config: TrainConfig) -> keras.Model:
    return BUILDERS[config.arch](config)


class StrokeWidth(layers.Layer):
    """Randomly thickens (grey dilation) or thins (grey erosion) strokes, per image.

    Canvas drawings come with any brush width; MNIST strokes are 2-3 px. A 2x2 max (or min)
    filter widens (or narrows) every stroke by about one pixel. Training only: identity otherwise.
    """

    def __init__(self, p_thick: float = 0.15, p_thin: float = 0.15, seed: int | None = None, **kw):
        super().__init__(**kw)
        self.p_thick, self.p_thin = p_thick, p_thin
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x: tf.Tensor, training: bool = True) -> tf.Tensor:  # x: [B, 28, 28, 1]
        if not training:
            return x
        thick = tf.nn.max_pool2d(x, 2, 1, "SAME")
        thin = -tf.nn.max_pool2d(-x, 2, 1, "SAME")
        u = keras.random.uniform((tf.shape(x)[0], 1, 1, 1), seed=self.seed_generator)
        return tf.where(u < self.p_thick, thick, tf.where(u < self.p_thick + self.p_thin, thin, x))


def build_augmenter(seed: int) -> keras.Sequential:
    """Canvas-minded augmentation: small rotations, shifts, scaling and stroke-width changes."""
    return keras.Sequential(
        [
            layers.RandomRotation(12 / 360, fill_mode="constant", seed=seed),
            layers.RandomZoom((-0.15, 0.15), fill_mode="constant", seed=seed + 1),
            layers.RandomTranslation(0.1, 0.1, fill_mode="constant", seed=seed + 2),
            StrokeWidth(seed=seed + 3),
        ],
        name="augment",
    )
