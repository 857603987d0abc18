"""JSON API blueprint: /predict, /healthz, /readyz, /v1/models, /openapi.json."""

from __future__ import annotations

import base64
import io

import numpy as np
from flask import Blueprint, Request, current_app, jsonify, request
from PIL import Image

from service import inputs
from service.errors import BadRequest, UnsupportedMediaType, batch_item
from service.observability import record_predictions
from service.openapi import spec
from service.predictor import ModelRegistry, Predictor
from service.preprocessing import preprocess

bp = Blueprint("api", __name__)


def registry() -> ModelRegistry:
    return current_app.extensions["digits"]


def settings():
    return current_app.extensions["digits_settings"]


def png_data_url(x: np.ndarray) -> str:
    """The 28x28 model input (0..255) as a PNG data URL, as the model sees it."""
    buffer = io.BytesIO()
    Image.fromarray(np.clip(x, 0, 255).round().astype(np.uint8), mode="L").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def prepare(grays: list[np.ndarray], batch: bool) -> np.ndarray:
    """Preprocess each image; in a batch, an error names the image's index. -> float32 [N, 28, 28]."""
    out = []
    for i, gray in enumerate(grays):
        with batch_item(i if batch else None):
            out.append(preprocess(gray))
    return np.stack(out).astype(np.float32)


def predictions(predictor: Predictor, x: np.ndarray, include_input: bool) -> list[dict]:
    """The response objects for model inputs x [N, 28, 28] (the predictor's rows sum to 1)."""
    probs = predictor.predict(x)
    model = {"name": predictor.info.name, "version": predictor.info.version}
    results = []
    for image, p in zip(x, probs, strict=True):
        result = {
            "digit": int(p.argmax()),
            "confidence": float(p.max()),
            "probabilities": [float(v) for v in p],
            "model": model,
        }
        if include_input:
            result["input"] = png_data_url(image)
        results.append(result)
    return results


def read_grays(req: Request) -> tuple[list[np.ndarray], bool]:
    """Whatever the request carries -> (grayscale images, is_batch)."""
    cfg = settings()
    kind = inputs.media_type(req.content_type)
    if kind == "multipart/form-data":
        return [inputs.multipart_to_gray(req.files, cfg.max_image_pixels)], False
    if not (inputs.is_json(kind) or inputs.is_image(kind)):  # decided before the body is read
        raise UnsupportedMediaType(f"unsupported Content-Type {kind or '(none)'!r}; send {inputs.ACCEPTED}")
    body = req.get_data(cache=False)
    if not body:
        raise BadRequest("empty request body: send an image or a JSON object", code="empty_body")
    if inputs.is_json(kind):
        payload = inputs.parse_json(body, cfg.max_json_depth)
        return inputs.json_to_grays(payload, cfg.max_image_pixels, cfg.max_batch)
    return [inputs.decode(body, cfg.max_image_pixels)], False


@bp.post("/predict")
def predict():
    predictor = registry().get(request.args.get("model"))
    grays, batch = read_grays(request)
    include = "input" in request.args.get("include", "").split(",")
    results = predictions(predictor, prepare(grays, batch), include)
    record_predictions(predictor.info.name, [r["digit"] for r in results])
    return jsonify({"predictions": results} if batch else results[0])


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    info = registry().default.info
    return jsonify({"status": "ready", "model": {"name": info.name, "version": info.version}})


@bp.get("/v1/models")
def models():
    return jsonify({"default": registry().default.info.name, "models": registry().describe()})


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec(settings()))
