"""The prediction service: `create_app()` builds the Flask app around a loaded model."""

from __future__ import annotations

import functools
import logging

from flask import Flask

from service.config import Settings
from service.errors import register_error_handlers
from service.security import SecurityHeaders

log = logging.getLogger(__name__)


def _settings(config: dict | None) -> Settings:
    settings = Settings.from_env()
    for key, value in (config or {}).items():
        if hasattr(settings, key.lower()):
            setattr(settings, key.lower(), value)
    return settings


def create_app(config: dict | None = None, predictor=None) -> Flask:
    """Build the app. `predictor` defaults to the SavedModel in MODEL_DIR (bundled cnn), loaded now."""
    from service import api, observability, pages, ratelimit
    from service.predictor import ModelRegistry, Predictor

    settings = _settings(config)
    app = Flask(__name__)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_content_length,
        DEBUG=False,
        TESTING=False,
        SEND_FILE_MAX_AGE_DEFAULT=365 * 24 * 3600,  # static URLs carry a content hash (pages.asset)
    )
    app.config.update({k: v for k, v in (config or {}).items() if k.isupper()})
    app.json.sort_keys = False
    load = functools.partial(Predictor, runtime=settings.runtime)
    registry = ModelRegistry(predictor or load(settings.resolved_model_dir()), settings.models_root, loader=load)
    if predictor is None:
        registry.preload()  # production: every bundled model ready before the first request
    predictor = registry.default
    app.extensions["digits"] = registry
    app.extensions["digits_settings"] = settings
    register_error_handlers(app)
    observability.install(app)
    ratelimit.install(app, settings.rate_limit, settings.rate_burst)
    observability.MODEL_INFO.labels(name=predictor.info.name, version=str(predictor.info.version)).set(1)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)

    app.wsgi_app = SecurityHeaders(app.wsgi_app)
    return app
