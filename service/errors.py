"""Typed API errors, and the handlers that turn every error on API paths into one JSON shape."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, code: str | None = None, details: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code:
            self.code = code


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class InvalidImage(ApiError):
    status, code = 400, "invalid_image"


class TooLarge(ApiError):
    status, code = 413, "too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class RequestTimeout(ApiError):
    status, code = 408, "request_timeout"


class NoDigit(ApiError):
    status, code = 422, "no_digit"


class NotADigit(ApiError):
    """Nothing in the image looks like a digit to the model; details carry what it would have guessed."""

    status, code = 422, "not_a_digit"


class TooManyDigits(ApiError):
    status, code = 422, "too_many_digits"


class UnknownModel(ApiError):
    status, code = 404, "unknown_model"


class NoTemplates(ApiError):
    """Weight templates exist only for softmax regression (one layer from the 784 pixels to the 10 digits)."""

    status, code = 404, "no_templates"


class InsideUnavailable(ApiError):
    """Activations and templates need the model's LiteRT file and ai_edge_litert: a server run with
    RUNTIME=savedmodel on a model without model.tflite, or without LiteRT installed, cannot look inside.
    Not temporary, so no Retry-After."""

    status, code = 503, "inside_unavailable"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="digits admin"'}


class Unavailable(ApiError):
    """A dependency (the corrections database) is down, full or busy; predictions are unaffected."""

    status, code = 503, "database_unavailable"
    retry_after = 5


# Stable codes for errors Flask/werkzeug raise themselves (routing, body size, bad JSON).
HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


@contextlib.contextmanager
def batch_item(index: int | None) -> Iterator[None]:
    """Prefix any API error raised inside with `images[index]: ` (nothing when not in a batch)."""
    try:
        yield
    except ApiError as e:
        if index is not None:
            e.message = f"images[{index}]: {e.message}"
        raise


def error_body(code: str, message: str, details: dict | None = None) -> dict:
    error = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _wants_json() -> bool:
    """API paths (everything but the page and its static files) always answer JSON."""
    return not (request.path == "/" or request.path.startswith("/static/"))


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(e: ApiError):
        response = jsonify(error_body(e.code, e.message, e.details))
        if getattr(e, "retry_after", None):
            response.headers["Retry-After"] = str(e.retry_after)
        response.headers.update(getattr(e, "headers", {}))
        return response, e.status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if not _wants_json():
            return e
        code = HTTP_CODES.get(e.code, (e.name or "error").lower().replace(" ", "_"))
        response = jsonify(error_body(code, e.description or e.name))
        response.status_code = e.code or 500
        if e.code == 405 and hasattr(e, "valid_methods") and e.valid_methods:
            response.headers["Allow"] = ", ".join(e.valid_methods)
        return response

    @app.errorhandler(Exception)
    def unexpected(e: Exception):
        # Logged with its traceback for operators; the client only learns that it was our fault.
        log.exception(
            "unhandled error on %s %s",
            request.method,
            request.path,
            extra={"request_id": g.get("request_id"), "method": request.method, "path": request.path},
        )
        return jsonify(error_body("internal_error", "internal server error")), 500
