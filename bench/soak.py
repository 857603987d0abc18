"""Soak test: the production server under steady load, for errors and memory growth.

python -m bench.soak                       # 60 s at 32 connections (the README's figures)
python -m bench.soak --seconds 3 --connections 4 --no-save    # smoke mode (CI)
"""

from __future__ import annotations

import argparse
import sys
import threading
import time

from bench.load import rss_mb, wrk
from bench.payloads import canvas_png
from bench.results import emit
from bench.server import WORKER_DESIGNS, running_server


def soak(seconds: float, connections: int, workers: int, env: dict | None = None) -> dict:
    env = {**(env or {}), "WEB_CONCURRENCY": str(workers)}
    with running_server(env) as (url, process):
        body = canvas_png()
        wrk(f"{url}/predict", body, "image/png", connections, 2)  # warm every worker before measuring
        samples = [rss_mb(process.pid)]
        done = threading.Event()

        def sample():
            while not done.wait(max(1.0, seconds / 12)):
                samples.append(rss_mb(process.pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            load = wrk(f"{url}/predict", body, "image/png", connections, seconds)
        finally:
            done.set()
            sampler.join()
        samples.append(rss_mb(process.pid))
    return {
        "seconds": seconds,
        "connections": connections,
        "workers": workers,
        "requests": load["requests"],
        "rps": load["rps"],
        "errors": load["errors"],
        "p50_ms": load["p50_ms"],
        "p99_ms": load["p99_ms"],
        "rss_start_mb": samples[0],
        "rss_end_mb": samples[-1],
        "rss_max_mb": max(samples),
        "rss_growth_mb": round(samples[-1] - samples[0], 1),
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/soak.json")
    parser.add_argument("--compare", action="store_true", help="also soak the former gthread worker, same run")
    args = parser.parse_args(argv)
    result = soak(args.seconds, args.connections, args.workers, WORKER_DESIGNS["gevent"])
    if args.compare:
        result["gthread_before"] = soak(args.seconds, args.connections, args.workers, WORKER_DESIGNS["gthread"])
    emit(result, None if args.no_save else "soak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
