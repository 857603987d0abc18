"""Benchmark of the production server against the usual deployment, on loopback.

    python -m bench.serve_bench             # full run; writes bench/results/serve_bench.json
    python -m bench.serve_bench --quick     # smoke mode (CI): tiny counts, nothing saved

Starts the production server (digits-serve: the same gunicorn config as `make serve`) and the
baseline (bench/baseline_app.py: Flask + model.predict per request), and measures each with the
same payloads: single-client latency, throughput with wrk at several connection counts, memory,
time to ready, and batch throughput.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time

from bench.load import rss_mb, wrk
from bench.payloads import batch_json, canvas_json, small_png
from bench.results import emit
from bench.server import running_server

BASELINE = ["{python}", "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "bench.baseline_app:app"]


def latencies(url: str, body: bytes, content_type: str, count: int) -> list[float]:
    """Milliseconds per request, one client, one keep-alive connection."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/predict", body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return out


def percentiles(values: list[float]) -> dict:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50_ms": round(statistics.median(values), 2), "p90_ms": round(q[89], 2), "p99_ms": round(q[98], 2)}


def measure(url: str, pid: int, ready_s: float, quick: bool, batches: bool) -> dict:
    n, seconds = (20, 1) if quick else (400, 8)
    canvas = canvas_json()
    latencies(url, canvas, "application/json", 20)  # warm-up
    result = {
        "ready_s": round(ready_s, 2),
        "latency_canvas_json": percentiles(latencies(url, canvas, "application/json", n)),
        "latency_small_png": percentiles(latencies(url, small_png(), "image/png", n)),
        "throughput_rps": {},
    }
    for connections in (1, 4, 16, 64):
        run = wrk(f"{url}/predict", canvas, "application/json", connections, seconds)
        result["throughput_rps"][str(connections)] = run["rps"]
        result.setdefault("errors", 0)
        result["errors"] += run["errors"]
    result["rss_mb"] = rss_mb(pid)
    if batches:
        result["batch_images_per_s"] = {}
        for size in (1, 32, 256):
            body = batch_json(size)
            times = latencies(url, body, "application/json", 3 if quick else 20)
            result["batch_images_per_s"][str(size)] = round(size / (statistics.median(times) / 1000), 1)
    return result


def run(quick: bool) -> dict:
    with running_server({}) as (url, process):
        ours = measure(url, process.pid, process.ready_s, quick, batches=True)
    command = [part.format(python=sys.executable, port="{port}") for part in BASELINE]
    with running_server({}, command=command, port_in_command=True) as (url, process):
        base = measure(url, process.pid, process.ready_s, quick, batches=False)
    p50 = ours["latency_canvas_json"]["p50_ms"]
    return {
        "service": ours,
        "baseline": base,
        "ratios": {
            "p50_latency_lower_x": round(base["latency_canvas_json"]["p50_ms"] / p50, 1),
            "throughput_16_higher_x": round(ours["throughput_rps"]["16"] / max(base["throughput_rps"]["16"], 0.1), 1),
        },
        "quick": quick,
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny counts, result not saved")
    args = parser.parse_args(argv)
    emit(run(args.quick), None if args.quick else "serve_bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
