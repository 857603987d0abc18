"""JSON log lines, for gunicorn's and the app's loggers alike (see gunicorn_conf.logconfig_dict)."""

from __future__ import annotations

import json
import logging

from gunicorn.glogging import Logger as GunicornLogger


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request id, exception if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("request_id", "method", "path", "status", "duration_ms", "remote"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)  # logs only, never responses
        return json.dumps(entry, ensure_ascii=False)


class AppAccessLogger(GunicornLogger):
    """gunicorn's logger minus its access log: the app writes its own (with the request id), and
    gunicorn would otherwise build an access record on every request only to drop it."""

    def access(self, resp, req, environ, request_time) -> None:
        return None
