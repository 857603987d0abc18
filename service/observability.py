"""Request ids, access logs and Prometheus metrics (correct across gunicorn workers)."""

from __future__ import annotations

import collections
import logging
import os
import re
import time
import uuid

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")  # accepted from clients; anything else is replaced

REQUESTS = Counter("digits_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "digits_http_request_duration_seconds",
    "HTTP request latency",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10),
)
PREDICTIONS = Counter("digits_predictions_total", "Predicted digits", ["model", "digit"])
CORRECTIONS = Counter("digits_corrections_total", "Corrections stored (201)", ["label", "model"])
BATCH_SIZE = Histogram("digits_batch_size", "Images per /predict request", buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256))
# An info metric as a gauge: prometheus_client's Info type has no multiprocess mode.
MODEL_INFO = Gauge("digits_model_info", "The default model being served", ["name", "version"], multiprocess_mode="max")


def record_predictions(model: str, digits: list[int], images: int) -> None:
    """Count the digits read (every digit of every number), and the request's number of images."""
    BATCH_SIZE.observe(images)
    for digit, count in collections.Counter(digits).items():  # one update per digit, not per image of a batch
        PREDICTIONS.labels(model=model, digit=str(digit)).inc(count)


def record_correction(label: str, model: str) -> None:
    CORRECTIONS.labels(label=label, model=model).inc()


def metrics_response() -> Response:
    """All workers' metrics when PROMETHEUS_MULTIPROC_DIR is set (gunicorn), else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)


access_log = logging.getLogger("digits.access")


def install(app: Flask) -> None:
    """Request ids on every response, an access log line and metrics for every request."""

    @app.before_request
    def start():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        route = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(route=route, method=request.method, status=str(response.status_code)).inc()
        LATENCY.labels(route=route).observe(elapsed)
        response.headers["X-Request-ID"] = g.get("request_id", "")
        access_log.info(
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={
                "request_id": g.get("request_id"),
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed * 1000, 2),
                "remote": request.remote_addr,
            },
        )
        return response

    app.add_url_rule("/metrics", "metrics", metrics_response)
