"""JSON API blueprint: /predict, /healthz, /readyz, /v1/models, /openapi.json."""

from __future__ import annotations

import numpy as np
from flask import Blueprint, Request, current_app, jsonify, request

from service import inputs, inside
from service.contract import classifier_parameters
from service.errors import BadRequest, NotADigit, UnsupportedMediaType
from service.inside import Inside, parse_include, saliency
from service.observability import record_predictions
from service.openapi import spec
from service.predictor import ModelRegistry, Predictor
from service.reading import Reading, read
from service.reading import accepted as digits_accepted

bp = Blueprint("api", __name__)


def registry() -> ModelRegistry:
    return current_app.extensions["digits"]


def settings():
    return current_app.extensions["digits_settings"]


def inside_of(predictor: Predictor) -> Inside:
    """The model's Inside (its interpreters that keep every layer), made on the first request that looks inside."""
    made = current_app.extensions.setdefault("digits_inside", {})
    return made.get(predictor.info.path) or made.setdefault(predictor.info.path, Inside(predictor.info.path))


def png_data_url(x: np.ndarray) -> str:
    """The 28x28 model input (0..255) as a PNG data URL, as the model sees it."""
    return inside.png_data_url(np.clip(x, 0, 255).round().astype(np.uint8))


def look_inside(pages: list[list[Reading]], predictor: Predictor, include: frozenset[str]) -> list[list[dict]]:
    """Each digit's requested `activations` and `saliency`, page by page; every digit's occlusions in one call."""
    if not include & {"activations", "saliency"}:
        return [[{} for _ in page] for page in pages]  # the usual request: nothing more to do
    readings = [reading for page in pages for reading in page]
    extra: list[dict] = [{} for _ in readings]
    if "activations" in include:
        looking = inside_of(predictor)
        for fields, r in zip(extra, readings, strict=True):
            fields["activations"] = looking.activations(r.input, r.probabilities)
    if "saliency" in include:
        maps = saliency([r.input for r in readings], [r.probabilities for r in readings], predictor.predict)
        for fields, found in zip(extra, maps, strict=True):
            fields["saliency"] = found
    starts = np.cumsum([0] + [len(page) for page in pages])
    return [extra[a:b] for a, b in zip(starts[:-1], starts[1:], strict=True)]


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


def answer(readings: list[Reading], predictor: Predictor, include_input: bool, batch: bool, extra: list[dict]) -> dict:
    """One image's answer: the number, each digit (with its `extra` fields), and, as before numbers were read, the
    first digit's fields.

    A single image in which nothing is a digit is refused (NotADigit); in a batch, it is an answer whose number
    is None, so that one scribble does not fail the others."""
    accepted = digits_accepted(readings, predictor)
    digits = [digit_entry(r, bool(ok), include_input) for r, ok in zip(readings, accepted, strict=True)]
    for entry, fields in zip(digits, extra, strict=True):
        entry.update(fields)
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
    result.update({key: first[key] for key in ("input", "activations", "saliency") if key in first})
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


def remember(image: inputs.Submitted, readings: list[Reading], predictor: Predictor) -> None:
    """Keep the reading of a single one-digit image, for its correction (service/recent.py)."""
    if len(readings) == 1 and image.data is not None:
        model = (predictor.info.name, predictor.info.version)
        current_app.extensions["digits_recent"].remember(image.data, model, image.gray, readings[0])


@bp.post("/predict")
def predict():
    predictor = registry().get(request.args.get("model"))
    images, batch = read_images(request)
    include = parse_include(request.args.get("include"))  # before the work: a typo is a 400, not a slow 200
    pages = read(images, predictor, settings().max_digits, batch, current_app.extensions["digits_reader"])
    if not batch:
        remember(images[0], pages[0], predictor)
    extra = look_inside(pages, predictor, include)
    results = [answer(r, predictor, "input" in include, batch, e) for r, e in zip(pages, extra, strict=True)]
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


@bp.get("/v1/models/<name>/templates")
def templates(name: str):
    predictor = registry().get(name)
    # the classifier's own weights: a "not a digit" detector's are not templates
    weights = inside_of(predictor).templates(classifier_parameters(predictor.info.metadata))
    return jsonify({"model": {"name": predictor.info.name, "version": predictor.info.version}, "templates": weights})


@bp.get("/openapi.json")
def openapi():
    return jsonify(spec(settings()))
