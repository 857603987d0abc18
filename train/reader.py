"""Train the line reader (service/reader.py) with CTC on groups of touching MNIST *training* digits.

    python -m train.reader --data-dir /path/to/mnist [--count 100000] [--epochs 12] [--out models/reader/2]

Each example is a number of 1 to 8 digits written touching (train/segmenter.py's number_image(): canvas strokes or
pen ink on paper, strokes crossing a little, heights within 15%, a slight slope; most single digits drawn up to 1.8
times as wide), decoded and laid out by the
service's own code, so that the reader learns from exactly the group ink the service will hand it. The network:
four convolutions and pools that leave one column of features per 4 input columns, two 1-D convolutions across
those columns for context, and per column the probabilities of the 10 digits and of the CTC blank. Exports
model.tflite (float32, width free) and metadata.json with its held-out accuracy by count of digits.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

from service.reader import BLANK, HEIGHT, MODEL_FILE, STRIDE, greedy, line_input

KINDS = {1: 0.2, 2: 0.25, 3: 0.15, 4: 0.12, 5: 0.1, 6: 0.08, 7: 0.05, 8: 0.05}  # digits per group -> share
# Most single digits are drawn up to 1 + WIDEN times as wide: a wide 4 or 2 written alone must read as one digit, not
# as "21" (a reader trained without read the fixture's wide 4 so); widening every group's digits instead cost 3 to 4
# points on touching numbers (bench/numbers_eval.py)
WIDEN, WIDENED = 0.8, 0.7
BATCH = 64


def examples(
    images: np.ndarray, labels: np.ndarray, count: int, seed: int, inputs: bool = False
) -> list[tuple[np.ndarray, str]]:
    """`count` groups of touching digits as the service lays them out: (group ink float32 [h, w], truth), or with
    `inputs` (reader input float32 [HEIGHT, width], truth): a group's ink can take a megabyte, its input 32 kB."""
    from service import segmentation
    from service.decoding import decode
    from service.preprocessing import image_ink
    from train.segmenter import number_image

    rng = np.random.default_rng(seed)
    lengths = rng.choice(list(KINDS), size=count, p=np.array(list(KINDS.values())) / sum(KINDS.values()))
    out = []
    for length in lengths:
        picks = rng.integers(0, len(images), length)
        widen = WIDEN if length == 1 and rng.random() < WIDENED else 0.0
        groups = segmentation.layout(image_ink(decode(number_image(images, picks, rng, widen))))
        if len(groups) == 1:  # touching digits the service sees as one group: what the reader is for
            ink = line_input(groups[0].ink)[0] if inputs else groups[0].ink
            out.append((ink, "".join(str(int(labels[i])) for i in picks)))
    return out


def batches(data: list[tuple[np.ndarray, str]], rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """Reader inputs and their truths (examples(inputs=True)) -> batches of inputs of one width each (float32
    [B, HEIGHT, width, 1]) and their labels (int32 [B, longest], BLANK-padded), in random order."""
    inputs = [x for x, _ in data]
    order = sorted(range(len(data)), key=lambda i: (inputs[i].shape[1], rng.random()))
    out = []
    for start in range(0, len(order), BATCH):
        chunk = order[start : start + BATCH]
        width = max(inputs[i].shape[1] for i in chunk)
        x = np.zeros((len(chunk), HEIGHT, width, 1), np.float32)
        longest = max(len(data[i][1]) for i in chunk)
        y = np.full((len(chunk), longest), BLANK, np.int32)
        for row, i in enumerate(chunk):
            x[row, :, : inputs[i].shape[1], 0] = inputs[i]
            y[row, : len(data[i][1])] = [int(c) for c in data[i][1]]
        out.append((x, y))
    rng.shuffle(out)
    return out


def build():
    """The network: float32 [N, HEIGHT, width, 1] -> probabilities [N, width / STRIDE, 11]."""
    import keras
    from keras import layers

    x = inputs = keras.Input((HEIGHT, None, 1))
    for filters, pool in ((24, (2, 2)), (48, (2, 2)), (64, (2, 1)), (64, (2, 1))):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)
        x = layers.MaxPooling2D(pool)(x)
    # [N, HEIGHT / 16, width / 4, 64] -> one feature vector per output step: [N, width / 4, HEIGHT / 16 * 64]
    x = layers.Permute((2, 1, 3))(x)
    x = layers.Reshape((-1, (HEIGHT // 16) * 64))(x)
    x = layers.Dense(128, activation="relu")(x)
    for dilation in (1, 2):
        x = layers.Conv1D(128, 5, padding="same", dilation_rate=dilation, activation="relu")(x)
    x = layers.Dropout(0.2)(x)
    outputs = layers.Dense(BLANK + 1, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def train(model, data: list[tuple[np.ndarray, str]], epochs: int, seed: int, log) -> None:
    """CTC with Adam, the learning rate stepped down over the last epochs."""
    import keras
    import tensorflow as tf

    optimizer = keras.optimizers.Adam(2e-3)
    rng = np.random.default_rng(seed)

    @tf.function(reduce_retracing=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            p = model(x, training=True)
            steps = tf.fill([tf.shape(x)[0]], tf.shape(p)[1])
            lengths = tf.reduce_sum(tf.cast(y != BLANK, tf.int32), axis=1)
            loss = tf.reduce_mean(
                tf.nn.ctc_loss(y, tf.math.log(p + 1e-7), lengths, steps, logits_time_major=False, blank_index=BLANK)
            )
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    for epoch in range(epochs):
        optimizer.learning_rate.assign(2e-3 * (0.3 ** max(0, epoch - epochs + 3)))
        started, losses = time.time(), []
        for x, y in batches(data, rng):
            losses.append(float(step(tf.constant(x), tf.constant(y))))
        log(f"epoch {epoch + 1}/{epochs}: CTC loss {np.mean(losses):.4f} ({time.time() - started:.0f} s)")


def accuracy(read, data: list[tuple[np.ndarray, str]]) -> dict[str, float]:
    """Groups read whole and right, by count of digits; `read(ink)` -> service.reader.Read list."""
    right, total = Counter(), Counter()
    for ink, truth in data:
        total[len(truth)] += 1
        right[len(truth)] += "".join(str(r.digit) for r in read(ink)) == truth
    out = {str(n): round(right[n] / total[n], 4) for n in sorted(total)}
    return out | {"all": round(sum(right.values()) / sum(total.values()), 4)}


def keras_read(model):
    def read(ink):
        x, scale = line_input(ink)
        p = model(x[None, :, :, None], training=False).numpy()[0]
        return greedy(p, scale, int(np.ceil((x.shape[1]) / STRIDE)))

    return read


def export(model, out: Path, metadata: dict, check: list[np.ndarray]) -> None:
    """model.tflite (its width free) and metadata.json in `out`; the LiteRT model must give the Keras model's
    probabilities on the inputs `check` (float32 [HEIGHT, width] each)."""
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec([1, HEIGHT, None, 1], tf.float32))
    # no trackable object: the weights are frozen into the file (with one, they stay variables LiteRT never sets)
    blob = tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()
    worst = 0.0
    for x in check:
        interpreter = Interpreter(model_content=blob)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [1, *x.shape, 1])
        interpreter.allocate_tensors()
        interpreter.set_tensor(index, x[None, :, :, None])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        worst = max(worst, float(np.abs(got - model(x[None, :, :, None], training=False).numpy()).max()))
    if not worst < 1e-4:
        raise RuntimeError(f"the LiteRT reader differs from the Keras one by {worst}")
    out.mkdir(parents=True, exist_ok=True)
    (out / MODEL_FILE).write_bytes(blob)
    metadata |= {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (out / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    import keras

    from service.reader import Reader
    from train.data import load_mnist

    parser = argparse.ArgumentParser(prog="python -m train.reader", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", help="MNIST IDX directory (default: $MNIST_DIR)")
    parser.add_argument("--count", type=int, default=100000, help="training groups")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--out", default="models/reader/2")
    parser.add_argument("--work", default="out", help="folder for the Keras weights (not shipped)")
    args = parser.parse_args(argv)
    log = lambda message: print(message, flush=True)  # noqa: E731
    keras.utils.set_random_seed(args.seed)
    data = load_mnist(args.data_dir)
    started = time.time()
    hold = min(5000, len(data.x_train) // 10)  # the last training digits: held out, never trained on
    fitting = examples(data.x_train[:-hold], data.y_train[:-hold], args.count, args.seed, inputs=True)
    held_out = examples(data.x_train[-hold:], data.y_train[-hold:], min(2000, args.count), args.seed + 1)
    log(f"{len(fitting)} groups to train on, {len(held_out)} held out ({time.time() - started:.0f} s)")
    model = build()
    train(model, fitting, args.epochs, args.seed, log)
    metadata = {
        "name": "reader",
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": "python -m train.reader " + " ".join(argv if argv is not None else sys.argv[1:]),
        "groups": len(fitting),
        "epochs": args.epochs,
        "input": {"height": HEIGHT, "stride": STRIDE, "blank": BLANK},
    }
    model.save_weights(Path(args.work) / "reader.weights.h5")  # kept outside the shipped folder
    export(model, Path(args.out), metadata, [line_input(ink)[0] for ink, _ in held_out[:20]])
    metadata["held_out_accuracy"] = accuracy(Reader(args.out).read, held_out)
    log(f"held out, groups read whole and right: {metadata['held_out_accuracy']}")
    (Path(args.out) / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
