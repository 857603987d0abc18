"""JSON API blueprint: /predict, /healthz, /readyz, /v1/models, /openapi.json."""

from __future__ import annotations

import base64
import io

import numpy as np
from flask import Blueprint, Request, current_app, jsonify, request
from PIL import Image

from service import inputs
from service.errors import BadRequest, NotADigit, UnsupportedMediaType
from service.observability import record_predictions
from service.openapi import spec
from service.predictor import ModelRegistry, Predictor
from service.reading import Reading, read

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


def digit_entry(reading: Reading, is_digit: bool, include_input: bool) -> dict:
    """One position of the answer: the digit (None when it is not one), how sure, and where (in the submitted
    image's pixels)."""
    entry = {
        "digit": reading.digit if is_digit else None,
        "confidence": reading.confidence,
        "probabilities": reading.probabilities.tolist(),  # float64 [10] -> Python floats, in C
        "box": reading.box._asdict(),
    }
    if not is_digit:
        entry["reason"] = "not_a_digit"
    if include_input:
        entry["input"] = png_data_url(reading.input)
    return entry


def answer(readings: list[Reading], predictor: Predictor, include_input: bool, batch: bool) -> dict:
    """One image's answer: the number, each digit, and, as before numbers were read, the first digit's fields.

    A single image in which nothing is a digit is refused (NotADigit); in a batch, it is an answer whose number
    is None, so that one scribble does not fail the others."""
    accepted = predictor.is_digit(np.stack([r.probabilities for r in readings]))
    digits = [digit_entry(r, bool(ok), include_input) for r, ok in zip(readings, accepted, strict=True)]
    if not batch and not accepted.any():
        first = digits[0]
        details = {"probabilities": first["probabilities"], "confidence": first["confidence"]}
        raise NotADigit("this does not look like a digit", details=details | {"digits": digits})
    first = digits[0]
    model = {"name": predictor.info.name, "version": predictor.info.version}
    result = {
        "number": "".join(str(d["digit"]) for d in digits) if accepted.all() else None,
        "digits": digits,
        "digit": first["digit"],
        "confidence": first["confidence"],
        "probabilities": first["probabilities"],
        "model": model,
    }
    if include_input:
        result["input"] = first["input"]
    return result


def read_images(req: Request) -> tuple[list[inputs.Submitted], bool]:
    """Whatever the request carries -> (its images, is_batch)."""
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
    images, batch = read_images(request)
    include = "input" in request.args.get("include", "").split(",")
    pages = read(images, predictor, settings().max_digits, batch)
    results = [answer(readings, predictor, include, batch) for readings in pages]
    digits = [d["digit"] for result in results for d in result["digits"] if d["digit"] is not None]
    record_predictions(predictor.info.name, digits, len(images))
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
