"""Benchmark of the production server against the usual deployment, on loopback.

    python -m bench.serve_bench             # full run, 5 repeats; writes bench/results/serve_bench.json
    python -m bench.serve_bench --quick     # smoke mode (CI): one short repeat, nothing saved
    python -m bench.serve_bench --baseline 841e501   # also the service as of a git ref, side by side

Starts the production server (digits-serve: the same gunicorn config as `make serve`) and the
baseline (bench/baseline_app.py: Flask + model.predict per request), and with --baseline REF the
service as of REF (checked out with `git worktree add` in a temporary directory and started there
exactly as today's is), and measures each with the same payloads: single-client latency, throughput
with wrk at several connection counts, memory, and time to ready; the service (today's and REF's)
also with a 5-digit canvas's latency and batch throughput, and today's service with the canvas asking to look inside
the cnn (`?include=activations,saliency`, issue 17), whose p50 the README's target compares with the plain
request's, measured in the same run. All the servers of a repeat run at once
and are measured in turn, figure by figure, their order rotated between repeats, so that a busy
moment on a shared machine falls on all of them alike. Each repeat starts them afresh; the figures
reported are the medians over the repeats (each repeat's own figures are kept under "runs").

Latency is wrk's too, on one connection: a Python client would add its own ~0.2 ms per request.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.load import rss_mb, wait_idle, wrk
from bench.payloads import batch_json, canvas_json, number_json, small_png
from bench.results import ROOT, emit, git
from bench.server import WORKER_DESIGNS, running_server

AT_REF = "service_at_ref"  # the service as of --baseline REF (which commit: the result's "ref")
BASELINE = ["{python}", "-m", "gunicorn", "--workers", "2", "--bind", "127.0.0.1:{port}", "bench.baseline_app:app"]


INSIDE = "/predict?model=cnn&include=activations,saliency"  # what the page asks after each drawing (issue 17)


def latencies(url: str, body: bytes, content_type: str, count: int, path: str = "/predict") -> list[float]:
    """Milliseconds per request, one client, one keep-alive connection."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    out = []
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")
        out.append((time.perf_counter() - started) * 1000)
    conn.close()
    return out


def one_client(url: str, body: bytes, content_type: str, seconds: float, path: str = "/predict") -> dict:
    """Latency percentiles of back-to-back requests to `path` on one keep-alive connection (wrk -c 1)."""
    latencies(url, body, content_type, 5, path)  # warm-up: the first request of a kind builds what it needs
    run = wrk(f"{url}{path}", body, content_type, 1, seconds, threads=1)
    if run["errors"]:
        raise RuntimeError(f"{run['errors']} errors in the single-client run")
    return {"p50_ms": round(run["p50_ms"], 2), "p90_ms": round(run["p90_ms"], 2), "p99_ms": round(run["p99_ms"], 2)}


def throughput(url: str, body: bytes, connections: int, seconds: float) -> tuple[float, int]:
    """(requests/s, errors) of wrk at `connections` connections posting a canvas."""
    run = wrk(f"{url}/predict", body, "application/json", connections, seconds)
    return run["rps"], run["errors"]


def batch_rate(url: str, size: int, calls: int) -> float:
    """Images/s of batch requests of `size` small PNGs, one client: from the median request's time."""
    times = latencies(url, batch_json(size), "application/json", calls)
    return round(size / (statistics.median(times) / 1000), 1)


# Which servers a figure is taken for: all of them, those that read numbers (every version of this service), or
# only today's service (what an older version or the baseline does not have).
ALL, NUMBERS, TODAY = "all", "numbers", "today"
Step = tuple[tuple[str, ...], Callable[[str], object], str]  # where the figure goes, how to take it, for whom


def steps(quick: bool) -> list[Step]:
    """Every figure a server is measured for. A baseline that reads one digit per image (the tutorial's) skips the
    5-digit canvas and the batches, whose figures would mean nothing there; only today's service looks inside."""
    seconds, calls = (1, 3) if quick else (6, 20)
    canvas, number, small = canvas_json(), number_json(), small_png()
    out: list[Step] = [
        (("latency_canvas_json",), lambda url: one_client(url, canvas, "application/json", seconds), ALL),
        (("latency_small_png",), lambda url: one_client(url, small, "image/png", seconds), ALL),
        (("latency_number_json",), lambda url: one_client(url, number, "application/json", seconds), NUMBERS),
        (
            ("latency_canvas_inside",),
            lambda url: one_client(url, canvas, "application/json", seconds, INSIDE),
            TODAY,
        ),
    ]
    for c in (1, 4, 16, 64):
        out.append((("throughput_rps", str(c)), lambda url, c=c: throughput(url, canvas, c, seconds), ALL))
    for size in (1, 32, 256):
        out.append((("batch_images_per_s", str(size)), lambda url, size=size: batch_rate(url, size, calls), NUMBERS))
    return out


def measured(name: str, reads_numbers: bool, who: str) -> bool:
    """Whether a step for `who` (ALL, NUMBERS, TODAY) is taken on server `name`."""
    return who == ALL or (who == NUMBERS and reads_numbers) or (who == TODAY and name == "service")


def measure_side_by_side(servers: dict[str, tuple[str, object, bool]], quick: bool, turn: int) -> dict:
    """Each server's figures (servers: name -> (url, process, reads numbers)), taken step by step in turn: every
    figure of every server within seconds of the others', the servers' order rotated by `turn`, so that a
    busy moment on the machine falls on all of them alike."""
    names = list(servers)
    names = names[turn % len(names) :] + names[: turn % len(names)]
    out = {name: {"ready_s": round(servers[name][1].ready_s, 2), "errors": 0} for name in servers}
    for where, take, who in steps(quick):
        for name in names:
            url, _, ours = servers[name]
            if not measured(name, ours, who):
                continue
            value = take(url)
            wait_idle(servers[name][1].pid)  # the next server measured gets the machine to itself
            if where[0] == "throughput_rps":
                value, errors = value
                out[name]["errors"] += errors
            target = out[name]
            for key in where[:-1]:
                target = target.setdefault(key, {})
            target[where[-1]] = value
    for name in names:
        out[name]["rss_mb"] = rss_mb(servers[name][1].pid)
    return out


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


def run_once(quick: bool, compare: bool, baseline: Path | None, turn: int) -> dict:
    """One repeat, all servers started afresh and measured side by side: the service, the tutorial baseline, with
    `compare` the former gthread worker, and with `baseline` the service as checked out there."""
    command = [part.format(python=sys.executable, port="{port}") for part in BASELINE]
    with contextlib.ExitStack() as stack:
        servers = {"service": (*stack.enter_context(running_server(WORKER_DESIGNS["gevent"])), True)}
        if baseline is not None:
            servers[AT_REF] = (*stack.enter_context(running_server(WORKER_DESIGNS["gevent"], cwd=baseline)), True)
        if compare:
            servers["gthread_before"] = (*stack.enter_context(running_server(WORKER_DESIGNS["gthread"])), True)
        servers["baseline"] = (*stack.enter_context(running_server({}, command=command, port_in_command=True)), False)
        return measure_side_by_side(servers, quick, turn)


@contextlib.contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """`ref` checked out (git worktree, detached) in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as tmp:
        path = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--quiet", "--detach", str(path), ref], check=True)
        try:
            yield path
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], check=False)


def run(quick: bool, repeats: int = 5, compare: bool = False, baseline: str | None = None) -> dict:
    with contextlib.ExitStack() as stack:
        tree = stack.enter_context(checkout(baseline)) if baseline else None
        runs = [run_once(quick, compare, tree, turn) for turn in range(1 if quick else repeats)]
    medians = {key: median_of([r[key] for r in runs]) for key in runs[0]}
    ours, base = medians["service"], medians["baseline"]
    p50 = ours["latency_canvas_json"]["p50_ms"]
    ratios = {
        "p50_latency_lower_x": round(base["latency_canvas_json"]["p50_ms"] / p50, 1),
        "throughput_16_higher_x": round(ours["throughput_rps"]["16"] / max(base["throughput_rps"]["16"], 0.1), 1),
        "p50_5_digits_over_1_digit_x": round(ours["latency_number_json"]["p50_ms"] / p50, 2),
        "p50_inside_over_plain_x": round(ours["latency_canvas_inside"]["p50_ms"] / p50, 2),
    }
    extra = {}
    if baseline:
        then = medians[AT_REF]
        ratios["p50_canvas_over_ref_x"] = round(p50 / then["latency_canvas_json"]["p50_ms"], 2)
        ratios["p50_small_png_over_ref_x"] = round(
            ours["latency_small_png"]["p50_ms"] / then["latency_small_png"]["p50_ms"], 2
        )
        extra["ref"] = {"name": baseline, "commit": git("rev-parse", baseline)}
    return {
        **medians,
        "ratios": ratios,
        **extra,
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
    parser.add_argument(
        "--baseline",
        metavar="REF",
        help="also measure the service as of git REF (checked out in a temporary worktree), side by side",
    )
    args = parser.parse_args(argv)
    emit(run(args.quick, args.repeats, args.compare, args.baseline), None if args.quick else "serve_bench")
    return 0


if __name__ == "__main__":
    sys.exit(main())
