"""Metrics, request ids and JSON logs: in-process, and across two gunicorn workers."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from bench.server import running_server


def metric(text: str, metric_name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{metric_name}(?:\{{(.*)\}})? ([0-9.e+-]+)$", line)
        if not match:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_request_id_is_generated_and_returned(client):
    first = client.get("/healthz").headers["X-Request-ID"]
    second = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first) and first != second


@pytest.mark.parametrize(("sent", "kept"), [("abc-123", True), ("x" * 129, False), ("bad id<script>", False)])
def test_client_request_id_is_kept_only_when_safe(client, sent, kept):
    got = client.get("/healthz", headers={"X-Request-ID": sent}).headers["X-Request-ID"]
    assert (got == sent) is kept


def test_errors_carry_a_request_id_too(client):
    response = client.post("/predict", data=b"", content_type="image/png")
    assert response.status_code == 400 and response.headers["X-Request-ID"]


def test_metrics_count_requests_and_predictions(client, one_png):
    before = client.get("/metrics").get_data(as_text=True)
    for _ in range(3):
        assert client.post("/predict", data=one_png, content_type="image/png").status_code == 200
    client.post("/predict", data=b"", content_type="image/png")
    after = client.get("/metrics").get_data(as_text=True)
    delta = lambda name, **kw: metric(after, name, **kw) - metric(before, name, **kw)  # noqa: E731
    assert delta("digits_http_requests_total", route="/predict", status="200") == 3
    assert delta("digits_http_requests_total", route="/predict", status="400") == 1
    assert delta("digits_predictions_total", model="fake") == 3
    assert delta("digits_batch_size_count") == 3
    assert delta("digits_http_request_duration_seconds_count", route="/predict") == 4
    assert metric(after, "digits_model_info", name="fake", version="7") == 1


def test_a_batch_counts_every_image_it_predicts(client, one_png):
    import base64

    url = "data:image/png;base64," + base64.b64encode(one_png).decode()
    before = client.get("/metrics").get_data(as_text=True)
    response = client.post("/predict", json={"images": [url] * 5})
    assert response.status_code == 200
    digits = [p["digit"] for p in response.get_json()["predictions"]]
    after = client.get("/metrics").get_data(as_text=True)
    for digit in set(digits):
        labels = {"model": "fake", "digit": str(digit)}
        name = "digits_predictions_total"
        assert metric(after, name, **labels) - metric(before, name, **labels) == digits.count(digit)
    assert metric(after, "digits_batch_size_sum") - metric(before, "digits_batch_size_sum") == 5


@pytest.mark.slow
def test_metrics_add_up_across_two_gunicorn_workers(tmp_path, model_dir, one_png):
    env = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "2", "MODEL_DIR": model_dir}
    log = tmp_path / "server.log"
    with running_server(env, log_path=log) as (url, _):
        read = lambda: urllib.request.urlopen(f"{url}/metrics", timeout=10).read().decode()  # noqa: E731
        before = read()
        pids = set()
        for i in range(20):
            request = urllib.request.Request(
                f"{url}/predict",
                data=one_png,
                headers={"Content-Type": "image/png", "X-Request-ID": f"test-{i}", "Connection": "close"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.headers["X-Request-ID"] == f"test-{i}"
                assert json.load(response)["digit"] == 1
        after = read()
        for line in log.read_text().splitlines():
            if '"logger": "digits.access"' in line:
                pids.add(json.loads(line)["request_id"])
    got = metric(after, "digits_http_requests_total", route="/predict", status="200") - metric(
        before, "digits_http_requests_total", route="/predict", status="200"
    )
    assert got == 20
    assert (
        metric(after, "digits_predictions_total", digit="1") - metric(before, "digits_predictions_total", digit="1")
        == 20
    )
    assert {f"test-{i}" for i in range(20)} <= pids  # every request logged as JSON with its id
    workers = {json.loads(line).get("message", "") for line in log.read_text().splitlines() if "Booting worker" in line}
    assert len(workers) == 2


def test_unexpected_errors_are_logged_as_json_with_the_request_id(caplog, make_predictor, one_png):
    import logging

    from service import create_app
    from service.logs import JsonFormatter

    client = create_app(predictor=make_predictor(fail=RuntimeError("boom"))).test_client()
    with caplog.at_level(logging.ERROR, logger="service.errors"):
        response = client.post("/predict", data=one_png, content_type="image/png", headers={"X-Request-ID": "req-42"})
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "req-42"
    (record,) = [r for r in caplog.records if r.name == "service.errors"]
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "req-42" and line["level"] == "error" and "RuntimeError: boom" in line["exception"]
