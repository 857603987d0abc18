"""The corrections routes' part of the OpenAPI description (service/openapi.py adds it to the document)."""

from __future__ import annotations

from typing import Any

from service.storage import LABELS, STATUSES

ADMIN = [{"adminToken": []}]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(description: str, schema: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def schemas() -> dict[str, Any]:
    label = {
        "oneOf": [{"type": "integer", "minimum": 0, "maximum": 9}, {"type": "string", "enum": list(LABELS)}],
        "description": "what it really was: a digit 0-9 (number or string), or 'not_a_digit'",
    }
    model = {
        "oneOf": [
            {"type": "string"},
            {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}},
        ],
        "description": "the model that was wrong (a name, or /predict's model object); default: the default model",
    }
    predicted = {"type": "integer", "minimum": 0, "maximum": 9, "description": "the digit the page showed"}
    image = {"type": "string", "description": "a data URL (data:image/png;base64,...) or bare base64 image bytes"}
    pixels = {
        "type": "array",
        "minItems": 28,
        "maxItems": 28,
        "items": {"type": "array", "minItems": 28, "maxItems": 28, "items": {"type": "number"}},
    }
    common = {"label": label, "predicted": predicted, "model": model}
    summary = {
        "id": {"type": "integer"},
        "label": {"type": "string", "enum": list(LABELS)},
        "predicted": {"type": "integer", "nullable": True, "description": "the model's digit for the stored input"},
        "confidence": {"type": "number", "nullable": True},
        "model": _ref("ModelRef"),
        "created": {"type": "string", "format": "date-time"},
        "status": {"type": "string", "enum": list(STATUSES)},
    }
    return {
        "CorrectionRequest": {
            "oneOf": [
                {"type": "object", "required": ["image", "label"], "properties": {"image": image, **common}},
                {"type": "object", "required": ["pixels", "label"], "properties": {"pixels": pixels, **common}},
            ]
        },
        "CorrectionId": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        "Correction": {"type": "object", "required": list(summary), "properties": summary},
        "CorrectionList": {
            "type": "object",
            "required": ["count", "corrections"],
            "properties": {"count": {"type": "integer"}, "corrections": {"type": "array", "items": _ref("Correction")}},
        },
        "Review": {"type": "object", "required": ["status"], "properties": {"status": {"enum": list(STATUSES)}}},
    }


def create_path(errors: dict) -> dict:
    """POST /v1/corrections: anyone may send one."""
    key = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": False,
        "schema": {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
        "description": "a key the client picks for this correction: sent again, the first id comes back (200)",
    }
    unavailable = _json("the corrections database is down, full or busy (see Retry-After)", "Error")
    return {
        "post": {
            "summary": "Tell the service what a drawing really was; stored for review and training",
            "description": "Stored: the image (as decoded, grey PNG, bounded), the 28x28 model input, the label, "
            "the model's name, version, digit and confidence, the time. Nothing about the person.",
            "parameters": [key],
            "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("CorrectionRequest")}}},
            "responses": {
                "201": _json("stored (committed)", "CorrectionId"),
                "200": _json("stored before, under the same Idempotency-Key", "CorrectionId"),
                **{code: errors[code] for code in ("400", "404", "413", "415", "422", "429")},
                "503": unavailable,
            },
        }
    }


def _listing(errors: dict, denied: dict, unavailable: dict) -> dict:
    def param(name: str, schema: dict) -> dict:
        return {"name": name, "in": "query", "required": False, "schema": schema}

    return {
        "security": ADMIN,
        "summary": "Corrections, newest first, with their count",
        "parameters": [
            param("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
            param("offset", {"type": "integer", "minimum": 0}),
            param("status", {"type": "string", "enum": list(STATUSES)}),
        ],
        "responses": {"200": _json("one page", "CorrectionList"), "400": errors["400"], **denied, **unavailable},
    }


def _one(summary: str, responses: dict) -> dict:
    ident = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}]
    return {"security": ADMIN, "summary": summary, "parameters": ident, "responses": responses}


def paths(errors: dict, admin: bool) -> dict[str, Any]:
    """The corrections paths; the review routes only when ADMIN_TOKEN is set (otherwise they do not exist)."""
    create = create_path(errors)
    if not admin:
        return {"/v1/corrections": create}
    denied = {"401": _json("no or wrong Bearer token", "Error")}
    unavailable = {"503": _json("the corrections database is down, full or busy", "Error")}
    missing = {"404": _json("no such correction", "Error")}
    png = {"description": "PNG", "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}}}
    images = {"200": png, **denied, **missing, **unavailable}
    review = _one(
        "Accept or reject a correction (only accepted ones reach training)",
        {"200": _json("reviewed", "Correction"), "400": errors["400"], **denied, **missing, **unavailable},
    )
    review["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref("Review")}}}
    return {
        "/v1/corrections": {**create, "get": _listing(errors, denied, unavailable)},
        "/v1/corrections/{id}": {"patch": review},
        "/v1/corrections/{id}/image": {"get": _one("The image, as stored", images)},
        "/v1/corrections/{id}/input": {"get": _one("The 28x28 model input", images)},
    }


SECURITY_SCHEMES = {"adminToken": {"type": "http", "scheme": "bearer", "description": "ADMIN_TOKEN"}}
