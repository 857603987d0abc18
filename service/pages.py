"""The drawing page blueprint: GET / in English or Portuguese (service/i18n.py); static assets are under /static/."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

from flask import Blueprint, current_app, render_template, url_for

from service import i18n, messages

bp = Blueprint("pages", __name__)


@functools.lru_cache(maxsize=64)
def _fingerprint(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


@bp.app_template_global()
def asset(filename: str) -> str:
    """A static file's URL with its content hash, so it can be cached for a year and never go stale."""
    path = Path(current_app.static_folder) / filename
    return url_for("static", filename=filename, v=_fingerprint(str(path)))


@bp.get("/")
def index():
    response = current_app.make_response(render_template("index.html", messages=messages.page()))
    response.headers["Cache-Control"] = "no-cache"  # the page is small; its assets carry the versions
    return i18n.localise(response)
