"""Corrections: POST /v1/corrections (anyone), and the admin routes that list and review them (Bearer ADMIN_TOKEN).

What is stored: the submitted image (as decoded: a grey PNG, at most STORED_SIDE pixels on a side), the 28x28 input the
model saw, the label, the model's name, version, digit and confidence for that input, and the time. Nothing about
the person: no address, no headers, no cookie.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re

import cv2
import numpy as np
from flask import Blueprint, Request, Response, current_app, jsonify, render_template, request

from service import i18n, inputs, messages
from service.errors import BadRequest, NoDigit, NotFound, Unauthorized, Unavailable, UnsupportedMediaType
from service.observability import record_correction
from service.preprocessing import preprocess
from service.recent import Recent, Seen
from service.storage import LABELS, NOT_A_DIGIT, STATUSES, Correction, StorageUnavailable, Store

bp = Blueprint("corrections", __name__)
admin = Blueprint("admin", __name__)

STORED_SIDE = 560  # the stored image's longest side, in pixels: twice the page's canvas height
MAX_PAGE = 500  # corrections per admin list request
MAX_ID = 2**31 - 1  # ids are 32-bit integers in both databases; a larger one names no correction
IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PNG = "image/png"


def store() -> Store:
    return current_app.extensions["digits_store"]


def settings():
    return current_app.extensions["digits_settings"]


def parse_label(value) -> str:
    """0-9 (a number or a one-digit string) or "not_a_digit" -> the stored label."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) not in LABELS:
        raise BadRequest(f"'label' must be a digit 0-9 or {NOT_A_DIGIT!r}")
    return str(value)


def parse_digit(value, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
        raise BadRequest(f"'{name}' must be a digit 0-9")
    return value


def parse_model(value) -> str | None:
    """The model named by the client: a name, or the {"name", "version"} object /predict answers with."""
    name = value.get("name") if isinstance(value, dict) else value
    if value is not None and not isinstance(name, str):
        raise BadRequest("'model' must be a model name, or an object with its 'name'")
    return name


def png(image: np.ndarray) -> bytes:
    """A grey uint8 [H, W] image as PNG bytes, shrunk to at most STORED_SIDE on its longest side."""
    scale = STORED_SIDE / max(image.shape)
    if scale < 1:
        size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return cv2.imencode(".png", image)[1].tobytes()


def model_input(gray: np.ndarray, label: str) -> np.ndarray | None:
    """The 28x28 input the model sees for this image; None for a blank "not a digit" (a digit needs ink: 422)."""
    try:
        return preprocess(gray)
    except NoDigit:
        if label == NOT_A_DIGIT:
            return None
        raise


def reading_of(payload: dict, predictor, label: str, max_pixels: int, recent: Recent) -> Seen:
    """The drawing as the model read it: as /predict just did, when this worker kept that reading
    (service/recent.py), else decoded and read now. Input and probabilities are None for a blank "not a digit"."""
    data = None if "pixels" in payload else inputs.item_bytes(payload)
    model = (predictor.info.name, predictor.info.version)
    seen = recent.recall(data, model) if data is not None else None
    if seen is not None:
        return seen
    gray = inputs.decode(data, max_pixels).gray if data is not None else inputs.item_to_gray(payload, max_pixels).gray
    x = model_input(gray, label)
    probabilities = None if x is None else predictor.predict(x[None].astype(np.float32))[0]
    return Seen(cv2.convertScaleAbs(gray, alpha=255.0), x, probabilities)  # uint8, rounded and saturated in C


def correction_from(payload: dict, registry, max_pixels: int, recent: Recent | None = None) -> Correction:
    """A parsed JSON body -> the Correction to store (not yet committed). Plain function: no HTTP."""
    if "image" not in payload and "pixels" not in payload:
        raise BadRequest("a correction needs 'image' (data URL or base64) or 'pixels' (28x28), and 'label'")
    if "label" not in payload:
        raise BadRequest(f"a correction needs 'label': a digit 0-9 or {NOT_A_DIGIT!r}")
    label = parse_label(payload["label"])
    shown = parse_digit(payload.get("predicted"), "predicted")
    predictor = registry.get(parse_model(payload.get("model")))
    seen = reading_of(payload, predictor, label, max_pixels, recent or Recent(budget=0))
    p = seen.probabilities
    return Correction(
        created=dt.datetime.now(dt.timezone.utc),
        label=label,
        model_name=predictor.info.name,
        model_version=predictor.info.version,
        predicted=None if p is None else int(p.argmax()),
        confidence=None if p is None else float(p.max()),
        shown=shown,
        image=png(seen.gray),
        input=None if seen.input is None else np.clip(seen.input, 0, 255).round().astype(np.uint8).tobytes(),
        status="pending",
    )


def idempotency_key(req: Request) -> str | None:
    key = req.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.match(key):
        raise BadRequest("Idempotency-Key must be 1-128 characters: letters, digits, '.', '_', ':', '-'")
    return key


def stored(action, *args):
    """Run a Store method; a database that is down, full or busy becomes a 503 (predictions carry on)."""
    try:
        return action(*args)
    except StorageUnavailable as e:
        raise Unavailable("the corrections database is unavailable; try again later") from e


@bp.post("/v1/corrections")
def create():
    if not inputs.is_json(inputs.media_type(request.content_type)):
        raise UnsupportedMediaType("send the correction as application/json")
    body = request.get_data(cache=False)
    if not body:
        raise BadRequest("empty request body: send a JSON object", code="empty_body")
    cfg = settings()
    payload = inputs.parse_json(body, cfg.max_json_depth)
    extensions = current_app.extensions
    correction = correction_from(payload, extensions["digits"], cfg.max_image_pixels, extensions["digits_recent"])
    correction.idempotency_key = idempotency_key(request)
    correction_id, created = stored(store().add, correction)
    if created:
        record_correction(correction.label, correction.model_name)
    return jsonify({"id": correction_id}), 201 if created else 200


# ---- admin: only registered when ADMIN_TOKEN is set ------------------------------------------------------------


@admin.before_request
def authorise():
    if request.endpoint == "admin.review_page":
        return  # the page holds no data; its script sends the token the reviewer types in
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    token = settings().admin_token.encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token):
        raise Unauthorized("send Authorization: Bearer <ADMIN_TOKEN>")


def query_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise BadRequest(f"'{name}' must be a whole number from {low} to {high}")
    return int(raw)


@admin.get("/v1/corrections")
def listing():
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
    limit, offset = query_int("limit", 50, 1, MAX_PAGE), query_int("offset", 0, 0, MAX_ID)
    count, page = stored(store().page, limit, offset, status)
    return jsonify({"count": count, "corrections": [c.summary() for c in page]})


def found(correction_id: int) -> Correction:
    correction = stored(store().get, correction_id) if correction_id <= MAX_ID else None
    if correction is None:
        raise NotFound(f"no correction {correction_id}")
    return correction


def private_png(data: bytes) -> Response:
    response = Response(data, mimetype=PNG)
    response.headers["Cache-Control"] = "private, no-store"  # reviewers' data: never in a shared cache
    return response


@admin.get("/v1/corrections/<int:correction_id>/image")
def image(correction_id: int):
    return private_png(found(correction_id).image)


@admin.get("/v1/corrections/<int:correction_id>/input")
def model_input_image(correction_id: int):
    correction = found(correction_id)
    if correction.input is None:
        raise NotFound(f"correction {correction_id} has no digit, so no model input")
    x = np.frombuffer(correction.input, dtype=np.uint8).reshape(28, 28)
    return private_png(cv2.imencode(".png", x)[1].tobytes())


@admin.patch("/v1/corrections/<int:correction_id>")
def review(correction_id: int):
    payload = inputs.parse_json(request.get_data(cache=False) or b"null", settings().max_json_depth)
    status = payload.get("status")
    if status not in STATUSES:
        raise BadRequest(f"'status' must be one of {', '.join(STATUSES)}")
    correction = stored(store().review, correction_id, status) if correction_id <= MAX_ID else None
    if correction is None:
        raise NotFound(f"no correction {correction_id}")
    return jsonify(correction.summary())


@admin.get("/admin")
def review_page():
    response = current_app.make_response(render_template("admin.html", messages=messages.admin()))
    response.headers["Cache-Control"] = "no-cache"
    return i18n.localise(response)
