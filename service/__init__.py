"""The prediction service: `create_app()` builds the Flask app around a loaded model."""

from __future__ import annotations

import functools
import logging
from dataclasses import fields

from flask import Flask

from service.config import Settings
from service.errors import register_error_handlers
from service.security import SecurityHeaders

log = logging.getLogger(__name__)


def _settings(config: dict | None) -> Settings:
    """Settings from the environment, overridden by `config`; a key that is neither refuses to start."""
    settings = Settings.from_env()
    names = [f.name for f in fields(Settings)]
    for key, value in (config or {}).items():
        if isinstance(key, str) and key.lower() in names:  # max_batch, or MAX_BATCH as in the environment
            setattr(settings, key.lower(), value)
        elif key not in Flask.default_config:  # upper-case Flask keys (TESTING...) go to app.config
            raise ValueError(
                f"unknown configuration key {key!r}: a setting is one of {', '.join(names)} "
                "(either case), anything else an upper-case Flask configuration key"
            )
    return settings


def create_app(config: dict | None = None, predictor=None) -> Flask:
    """Build the app. `predictor` defaults to the model in MODEL_DIR (bundled cnn), loaded now.

    `config` overrides settings (max_batch...) and sets upper-case Flask keys (TESTING...); any other key is refused.
    """
    from service import api, corrections, i18n, observability, pages, ratelimit, reader
    from service.predictor import ModelRegistry, Predictor
    from service.recent import Recent
    from service.storage import Store

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
    app.extensions["digits_recent"] = Recent()  # the last readings, for corrections of them
    app.extensions["digits_reader"] = reader.bundled(settings)  # counts the digits of groups that may touch
    # the database is not needed to serve predictions: one that is down is retried when a correction comes
    app.extensions["digits_store"] = store = Store(settings.resolved_database_url())
    store.try_schema()
    register_error_handlers(app)
    i18n.install(app)
    observability.install(app)
    ratelimit.install(app, settings.rate_limit, settings.rate_burst)
    observability.MODEL_INFO.labels(name=predictor.info.name, version=str(predictor.info.version)).set(1)
    app.register_blueprint(api.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(corrections.bp)
    if settings.admin_token:  # no token, no admin routes at all
        app.register_blueprint(corrections.admin)

    app.wsgi_app = SecurityHeaders(app.wsgi_app)
    return app
