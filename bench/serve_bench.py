"""Benchmark of the production server against the usual deployment, on loopback.

    python -m bench.serve_bench             # full run, 5 repeats; writes bench/results/serve_bench.json
    python -m bench.serve_bench --quick     # smoke mode (CI): one short repeat, nothing saved

Starts the production server (digits-serve: the same gunicorn config as `make serve`) and the
baseline (bench/baseline_app.py: Flask + model.predict per request), and measures each with the
same payloads: single-client latency, throughput with wrk at several connection counts, memory,
and time to ready; this service also with a 5-digit canvas's latency and batch throughput. Each
repeat starts both servers afresh; the figures reported are the medians over the repeats (each
repeat's own figures are kept under "runs").

Latency is wrk's too, on one connection: a Python client would add its own ~0.2 ms per request.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
import time

from bench.load import rss_mb, wrk
from bench.payloads import batch_json, canvas_json, number_json, small_png
from bench.results import emit
from bench.server import WORKER_DESIGNS, running_server

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


def one_client(url: str, body: bytes, content_type: str, seconds: float) -> dict:
    """Latency percentiles of back-to-back requests on one keep-alive connection (wrk -c 1)."""
    run = wrk(f"{url}/predict", body, content_type, 1, seconds, threads=1)
    if run["errors"]:
        raise RuntimeError(f"{run['errors']} errors in the single-client run")
    return {"p50_ms": round(run["p50_ms"], 2), "p90_ms": round(run["p90_ms"], 2), "p99_ms": round(run["p99_ms"], 2)}


def measure(url: str, pid: int, ready_s: float, quick: bool, ours: bool) -> dict:
    """The server's figures; for this service (`ours`) also a 5-digit canvas's latency and batch throughput."""
    seconds = 1 if quick else 6
    canvas = canvas_json()
    latencies(url, canvas, "application/json", 20)  # warm-up
    result = {
        "ready_s": round(ready_s, 2),
        "latency_canvas_json": one_client(url, canvas, "application/json", seconds),
        "latency_small_png": one_client(url, small_png(), "image/png", seconds),
        "throughput_rps": {},
    }
    if ours:  # the baseline reads one digit per image: a number's latency means nothing there
        number = number_json()
        latencies(url, number, "application/json", 5)  # warm-up
        result["latency_number_json"] = one_client(url, number, "application/json", seconds)
    for connections in (1, 4, 16, 64):
        run = wrk(f"{url}/predict", canvas, "application/json", connections, seconds)
        result["throughput_rps"][str(connections)] = run["rps"]
        result.setdefault("errors", 0)
        result["errors"] += run["errors"]
    result["rss_mb"] = rss_mb(pid)
    if ours:
        result["batch_images_per_s"] = {}
        for size in (1, 32, 256):
            body = batch_json(size)
            times = latencies(url, body, "application/json", 3 if quick else 20)
            result["batch_images_per_s"][str(size)] = round(size / (statistics.median(times) / 1000), 1)
    return result


def model_alone(size: int = 256, calls: int = 20) -> float:
    """Images/s of the default model's runtime alone on a batch of `size`: the ceiling for batch requests."""
    from bench.runtime_batches import per_image_ms
    from service.config import Settings
    from service.predictor import Predictor

    predictor = Predictor(Settings.from_env().resolved_model_dir())
    return round(1000 / per_image_ms(predictor, size, calls), 1)


def median_of(runs: list[dict]) -> dict:
    """Per-figure medians of several runs' nested dicts of numbers."""
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, dict):
            out[key] = median_of([r[key] for r in runs])
        else:
            out[key] = round(statistics.median(r[key] for r in runs), 2)
    return out


def run_once(quick: bool, compare: bool) -> dict:
    """One repeat: the service, the tutorial baseline, and with `compare` the former gthread worker too."""
    out = {}
    with running_server(WORKER_DESIGNS["gevent"]) as (url, process):
        out["service"] = measure(url, process.pid, process.ready_s, quick, ours=True)
    command = [part.format(python=sys.executable, port="{port}") for part in BASELINE]
    with running_server({}, command=command, port_in_command=True) as (url, process):
        out["baseline"] = measure(url, process.pid, process.ready_s, quick, ours=False)
    if compare:
        with running_server(WORKER_DESIGNS["gthread"]) as (url, process):
            out["gthread_before"] = measure(url, process.pid, process.ready_s, quick, ours=True)
    return out


def run(quick: bool, repeats: int = 5, compare: bool = False) -> dict:
    runs = [run_once(quick, compare) for _ in range(1 if quick else repeats)]
    medians = {key: median_of([r[key] for r in runs]) for key in runs[0]}
    ours, base = medians["service"], medians["baseline"]
    p50 = ours["latency_canvas_json"]["p50_ms"]
    return {
        **medians,
        "ratios": {
            "p50_latency_lower_x": round(base["latency_canvas_json"]["p50_ms"] / p50, 1),
            "throughput_16_higher_x": round(ours["throughput_rps"]["16"] / max(base["throughput_rps"]["16"], 0.1), 1),
            "p50_5_digits_over_1_digit_x": round(ours["latency_number_json"]["p50_ms"] / p50, 2),
        },
        "model_alone_batch_256_images_per_s": model_alone(calls=3 if quick else 20),
        "repeats": len(runs),
        "runs": runs,
        "quick": quick,
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.serve_bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke mode: tiny counts, result not saved")
    parser.add_argument("--repeats", type=int, default=5, help="full runs to take medians over (default 5)")
    parser.add_argument("--compare", action="store_true", help="also measure the former gthread worker, same run")
    args = parser.parse_args(argv)
    emit(run(args.quick, args.repeats, args.compare), None if args.quick else "serve_bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
