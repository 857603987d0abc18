"""Slow, idle and greedy clients against the real gunicorn server on loopback (service/worker.py's bounds).

Every test is bounded in time: sockets have timeouts, and the attacks stop by themselves.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from bench.payloads import canvas_json
from bench.server import running_server

pytestmark = pytest.mark.slow

LIMITS = {"KEEPALIVE": "1", "BODY_TIMEOUT": "1", "BODY_MIN_RATE": "1000000", "CLIENT_CONNECTIONS": "8"}
SMALL_LIMIT = 1_000_000  # MAX_CONTENT_LENGTH for these tests: the oversized body stays quick to send
SLOW_BODY_HEAD = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 9000\r\n\r\n"


@pytest.fixture(scope="module")
def server(model_env):
    env = {**model_env, **LIMITS, "WEB_CONCURRENCY": "1", "MAX_CONTENT_LENGTH": str(SMALL_LIMIT)}
    with running_server(env) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        yield url, (host, int(port))


@pytest.fixture(scope="module")
def model_env():
    import os

    return {"MODEL_DIR": os.environ.get("TEST_MODEL_DIR", "")}


def connect(address, source: str = "127.0.0.1", timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout, source_address=(source, 0))
    sock.settimeout(timeout)
    return sock


def read_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """(status, headers, body) of one HTTP/1.1 response with a Content-Length."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a full response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(lines[0].split()[1]), headers, body


def predict(url: str) -> int:
    request = urllib.request.Request(f"{url}/predict", data=canvas_json(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def test_slow_headers_and_bodies_do_not_stop_a_normal_request(server):
    url, address = server
    attackers = []
    try:
        for i in range(40):  # each from its own address: the per-client limit is not what saves us here
            sock = connect(address, source=f"127.0.2.{i + 1}")
            if i % 2:
                sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers that never end
            else:
                sock.sendall(
                    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 9000\r\n\r\n"
                )
            attackers.append(sock)
        started = time.monotonic()
        assert [predict(url) for _ in range(5)] == [200] * 5
        assert time.monotonic() - started < 5  # answered while every attacker still holds its connection
    finally:
        for sock in attackers:
            sock.close()


def test_unfinished_headers_are_cut_off(server):
    _, address = server
    with connect(address) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        assert sock.recv(1024) == b""  # closed by the server, without an answer
        assert time.monotonic() - started < 5  # KEEPALIVE=1 s bounds the head; 5 s leaves room on a busy machine


def test_idle_connection_is_closed(server):
    _, address = server
    with connect(address) as sock:
        started = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - started < 5


def test_slow_body_gets_408_json(server):
    _, address = server
    with connect(address) as sock:
        sock.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 5000\r\n\r\nab")
        status, headers, body = read_response(sock)
        assert status == 408 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"]["code"] == "request_timeout"
        assert headers.get("connection") == "close"


def test_oversized_body_413_reaches_urllib(server):
    url, _ = server
    request = urllib.request.Request(
        f"{url}/predict", data=b"\x89PNG" + b"\0" * (4 * SMALL_LIMIT), headers={"Content-Type": "image/png"}
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=30)
    assert caught.value.code == 413
    assert json.load(caught.value)["error"]["code"] == "too_large"


def test_oversized_body_413_reaches_requests(server):
    url, _ = server
    response = requests.post(
        f"{url}/predict", data=b"\0" * (4 * SMALL_LIMIT), headers={"Content-Type": "image/png"}, timeout=30
    )
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"


@pytest.mark.parametrize(
    ("content_type", "length", "status", "code"),
    [
        ("image/png", 4 * SMALL_LIMIT, 413, "too_large"),
        ("text/plain", 1000, 415, "unsupported_media_type"),
    ],
)
def test_expect_continue_gets_its_error_before_the_body(server, content_type, length, status, code):
    _, address = server
    with connect(address) as sock:
        sock.sendall(
            f"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        got, _, body = read_response(sock)  # no body sent: the answer must come without it, and not be a 100
        assert got == status and json.loads(body)["error"]["code"] == code


def test_expect_continue_then_body_is_answered(server):
    _, address = server
    body = canvas_json()
    with connect(address) as sock:
        sock.sendall(
            "POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n".encode()
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(body)
        status, _, answer = read_response(sock)
        assert status == 200 and 0 <= json.loads(answer)["digit"] <= 9


def test_connections_per_client_are_limited(server):
    url, address = server
    held = [connect(address, source="127.0.3.1") for _ in range(8)]
    try:
        time.sleep(0.2)  # let the worker accept them all
        with connect(address, source="127.0.3.1") as extra:
            status, _, body = read_response(extra)
            assert status == 429 and json.loads(body)["error"]["code"] == "too_many_connections"
        assert predict(url) == 200  # another client is not affected
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()


def test_abuse_bench_quick_mode_has_no_failures():
    """bench/abuse.py's smoke mode: the polite client gets every answer during the attack (timings not asserted)."""
    from bench.abuse import run

    result = run(quick=True, designs={"gevent": {"WEB_CONCURRENCY": "2"}})
    design = result["designs"]["gevent"]
    for stage in ("before", "during", "after"):
        assert design[stage]["failures"] == 0 and design[stage]["answered"] > 0, (stage, design[stage])
    assert sum(design["attack"]["opened"].values()) > 0


def burst(address, connections: int) -> None:
    """`connections` connections at once, each sending a request head it never finishes, then all dropped."""
    socks = []
    try:
        for i in range(connections):  # 8 per address: under the per-client limit of both workers
            socks.append(connect(address, source=f"127.0.3.{1 + i // 8}"))
            socks[-1].sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        time.sleep(1.5)  # a heartbeat or more with all of them open
    finally:
        for sock in socks:
            sock.close()


def test_a_worker_left_larger_by_bursts_is_replaced_while_the_other_answers(model_env, tmp_path):
    """RECYCLE_AFTER_MB tiny: whatever a burst leaves behind recycles the worker; one at a time, no request lost.

    Four clients predict at once, so that connections are being accepted whenever a worker stops listening."""
    env = {**model_env, **LIMITS, "WEB_CONCURRENCY": "2", "RECYCLE_AFTER_MB": "0.001", "KEEPALIVE": "5"}
    log = tmp_path / "server.log"
    with running_server(env, log_path=log) as (url, process):
        host, port = url.removeprefix("http://").split(":")
        burst((host, int(port)), 200)
        deadline = time.monotonic() + 20
        with ThreadPoolExecutor(4) as pool:
            clients = [pool.submit(predict_until, url, lambda: recycled(log, deadline)) for _ in range(4)]
            answered = [status for client in clients for status in client.result()]
        answered += [predict(url) for _ in range(10)]
    times = logged(log, "recycling worker")
    assert len(times) == 2, log.read_text()[-3000:]
    assert times[1] - times[0] >= 2.5  # RECYCLE_SPACING: never both at once
    assert len(logged(log, "Booting worker")) == 4  # two at start, two replacements
    assert len(answered) > 10 and set(answered) == {200}


def predict_until(url: str, done) -> list[int]:
    """Statuses of predictions sent one after another until done(); any error fails the test."""
    statuses = []
    while not done():
        statuses.append(predict(url))
    return statuses


def recycled(log, deadline: float) -> bool:
    """Both workers replaced (two at start, two replacements booted), or out of time."""
    return time.monotonic() > deadline or len(logged(log, "Booting worker")) >= 4


def logged(log, message: str) -> list[float]:
    """When each JSON log line containing `message` was written (seconds)."""
    from datetime import datetime

    out = []
    for line in log.read_text().splitlines():
        if message in line:
            out.append(datetime.fromisoformat(json.loads(line)["time"]).timestamp())
    return out
