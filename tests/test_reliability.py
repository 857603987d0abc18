"""Reliability against a real gunicorn server on loopback: cross-talk, hostile input, faults."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from bench.server import running_server
from tests.conftest import MODELS
from tests.images import drawn_one, encode, mnist_as_image

pytestmark = pytest.mark.slow  # a gunicorn server for most tests; the benchmarks' smoke runs start their own


def post(url: str, body: bytes, content_type: str, timeout: float = 30) -> tuple[int, dict]:
    request = urllib.request.Request(f"{url}/predict", data=body, headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


@pytest.fixture(scope="module")
def server(model_dir):
    env = {"WEB_CONCURRENCY": "2", "GUNICORN_THREADS": "4", "MODEL_DIR": model_dir}
    with running_server(env) as (url, process):
        yield url, process


def test_no_cross_talk_between_parallel_clients(server, fixture_data):
    """16 clients, each with its own digit, 8 times each, all at once: each gets its own answer."""
    url, _ = server
    bodies = [encode(mnist_as_image(d)) for d in fixture_data.x_test[:16]]
    alone = [post(url, b, "image/png")[1]["probabilities"] for b in bodies]

    def client(i: int) -> list[list[float]]:
        return [post(url, bodies[i], "image/png")[1]["probabilities"] for _ in range(8)]

    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(client, range(16)))
    for i in range(16):
        for probs in together[i]:
            assert probs == pytest.approx(alone[i], abs=1e-5)


HOSTILE = [
    (b"", "image/png", 400),
    (b"{", "application/json", 400),
    (json.dumps({"pixels": [[float("nan")] * 28] * 28}).encode(), "application/json", 400),
    (b"[" * 200000 + b"]" * 200000, "application/json", 400),
    (
        json.dumps({"image": "data:text/html;base64," + base64.b64encode(b"<b>").decode()}).encode(),
        "application/json",
        415,
    ),
    (b"<svg/>", "image/svg+xml", 415),
    (b"%PDF-1.7", "application/pdf", 415),
    (encode(drawn_one())[:300], "image/png", 400),
    (encode(drawn_one(), "JPEG")[:500], "image/jpeg", 400),
    (encode(__import__("PIL.Image", fromlist=["Image"]).new("1", (10000, 10000))), "image/png", 413),
]


@pytest.mark.parametrize(("body", "content_type", "status"), HOSTILE)
def test_hostile_input_over_http_gets_its_error_quickly(server, body, content_type, status):
    url, _ = server
    started = time.monotonic()
    got, payload = post(url, body, content_type)
    assert got == status and set(payload["error"]) == {"code", "message"}
    assert time.monotonic() - started < 10
    assert post(url, encode(drawn_one()), "image/png")[0] == 200  # and it keeps serving


def test_body_over_the_limit_is_refused_before_it_is_read(server):
    """Content-Length over the limit: 413 at once, without waiting for (or reading) the body."""
    import socket

    url, _ = server
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
            b"Content-Length: 104857600\r\n\r\n" + b"x" * 65536
        )
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413")
    assert json.loads(body)["error"]["code"] == "too_large"


def test_killed_worker_is_replaced_and_service_continues():
    """SIGKILL one of two workers under load: gunicorn replaces it, and only the requests that were at the
    killed worker, or reached its socket while the kernel tore the process down, fail."""
    from bench.faults import kill_worker_under_load

    result = kill_worker_under_load(clients=4, before_s=2, after_s=6)
    assert result["worker_replaced"] and result["workers_after"] == 2
    assert result["requests"] > 20
    assert result["failed"] <= result["requests"] // 100
    assert all(0 <= t < 0.5 for t in result["failures_after_kill_s"])  # none before the kill, none long after


def test_soak_smoke(wrk):
    """bench/soak.py in smoke mode: a few seconds of load, no errors (the full run is in the README)."""
    from bench.soak import soak

    result = soak(seconds=3, connections=4, workers=1)
    assert result["errors"] == 0 and result["requests"] > 10
    assert result["rss_max_mb"] > 50


def test_serve_bench_smoke(wrk):
    """bench/serve_bench.py in quick mode: both servers start, every measurement runs (the 5-digit canvas and the
    look inside on this service only), no errors."""
    from bench.serve_bench import run

    result = run(quick=True)
    for side in ("service", "baseline"):
        assert result[side]["errors"] == 0
        assert set(result[side]["throughput_rps"]) == {"1", "4", "16", "64"}
        assert result[side]["rss_mb"] > 0 and result[side]["ready_s"] > 0
    assert set(result["service"]["batch_images_per_s"]) == {"1", "32", "256"}
    assert result["service"]["latency_number_json"]["p50_ms"] > 0 and "latency_number_json" not in result["baseline"]
    assert result["ratios"]["p50_5_digits_over_1_digit_x"] > 0
    # looking inside the cnn (issue 17): today's service only, in the same run as the plain canvas
    assert result["service"]["latency_canvas_inside"]["p50_ms"] > result["service"]["latency_canvas_json"]["p50_ms"]
    assert "latency_canvas_inside" not in result["baseline"] and result["ratios"]["p50_inside_over_plain_x"] > 1


def test_request_parts_smoke(wrk):
    """bench/request_parts.py in quick mode: every stage runs and is timed (no timing is asserted)."""
    from bench.request_parts import run

    result = run(quick=True)
    parts = (
        "decode_ms",
        "decode_pillow_only_ms",
        "preprocess_ms",
        "model_ms",
        "whole_in_process_ms",
        "whole_cold_caches_ms",
        "http_floor_ms",
    )
    assert all(result[k] > 0 for k in parts)
    assert result["batch"]["images"] == 256
    assert all(result["batch"][k] > 0 for k in ("decode_ms", "preprocess_ms", "model_ms"))


def test_runtime_batches_smoke():
    from bench.runtime_batches import SIZES, run

    result = run(quick=True)
    assert set(result["ms_per_image"]) == {str(s) for s in SIZES}
    assert all(v > 0 for v in result["ms_per_image"].values())
    assert result["model_gmacs_at_256"] > 0 and result["matmul_gmacs"] > 0


def keras_macs(model) -> int:
    """The reference: multiply-adds counted from the Keras layers' own shapes."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw, c_in, _ = layer.kernel.shape
            total += h * w * c_out * kh * kw * c_in
        elif isinstance(layer, keras.layers.Dense):
            total += layer.kernel.shape[0] * layer.kernel.shape[1]
    return total


@pytest.mark.parametrize("arch", ["softmax", "mlp", "cnn"])
def test_macs_read_from_the_litert_file_match_the_keras_model(arch):
    from bench.runtime_batches import macs_per_image
    from train.config import TrainConfig
    from train.models import BUILDERS

    reference = keras_macs(BUILDERS[arch](TrainConfig(arch=arch)))
    assert macs_per_image(MODELS / arch / "1" / "model.tflite") == reference > 0
