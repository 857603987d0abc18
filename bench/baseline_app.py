"""BASELINE, not the product: the minimal deployment that tutorials show, for bench/serve_bench.py.

A Flask app that loads the same exported model as a Keras model at import time and calls
`model.predict` on every request, with the usual tutorial preprocessing (decode, grayscale,
resize to 28x28, invert). It exists only to be measured against the real service.

    MODEL_DIR=models/cnn/1 gunicorn --workers 2 bench.baseline_app:app
"""

import base64
import io
import os

import keras
import numpy as np
from flask import Flask, jsonify, request
from PIL import Image

from service.contract import OUTPUT_NAME, SIGNATURE

MODEL_DIR = os.environ.get("MODEL_DIR") or "models/cnn/1"

inputs = keras.Input(shape=(28, 28))
outputs = keras.layers.TFSMLayer(MODEL_DIR, call_endpoint=SIGNATURE)(inputs)[OUTPUT_NAME]
model = keras.Model(inputs, outputs)

app = Flask(__name__)


@app.post("/predict")
def predict():
    data = base64.b64decode(request.get_json()["image"].split(",", 1)[1]) if request.is_json else request.get_data()
    image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
    x = 255.0 - np.asarray(image, dtype=np.float32)
    probs = model.predict(x[None], verbose=0)[0]
    return jsonify({"digit": int(probs.argmax()), "probabilities": probs.tolist()})


@app.get("/readyz")
def ready():
    return jsonify({"status": "ready"})
