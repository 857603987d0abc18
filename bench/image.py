"""The real image: its size, what it adds to its base, start-to-ready time and memory under load, in the container.

    python -m bench.image                 # the default image; writes bench/results/image.json
    python -m bench.image --savedmodel    # also the `savedmodel` target (TensorFlow); downloads about 500 MB

Each image is built from the Dockerfile with oci-build (podman; see bench/container.py) and run as CI runs it: its
unprivileged user, a read-only root file system, a tmpfs /tmp and a /data volume, on the host's network. Sizes are
podman's. Ready: from the container's start (podman's StartedAt) to the first 200 from /readyz, polled every 20 ms
from the host; the median of `--starts` fresh containers. Memory: `podman stats` (the container's cgroup) once
ready, then every half second while wrk sends the canvas request (a JSON data URL of a 280x280 drawing) over
`--connections` connections for `--seconds`; the peak and the reading after the load are recorded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
from pathlib import Path

from bench import container
from bench.load import wrk
from bench.payloads import canvas_json
from bench.results import emit

TARGETS = {"runtime": "localhost/digits-bench:runtime", "savedmodel": "localhost/digits-bench:savedmodel"}


def ready_seconds(tag: str, starts: int) -> dict:
    """Seconds from the container's start, and from `podman run`, to ready: the median of `starts` containers."""
    from_start, from_run = [], []
    for _ in range(starts):
        with container.running(tag) as running:
            ready_at = container.wait_ready(running)
            from_start.append(ready_at - container.started_at(running))
            from_run.append(ready_at - running.run_at)
    return {
        "ready_s": round(statistics.median(from_start), 2),
        "ready_runs_s": [round(s, 2) for s in from_start],
        "run_to_ready_s": round(statistics.median(from_run), 2),
    }


def memory_under_load(tag: str, connections: int, seconds: int) -> dict:
    """`podman stats` memory when ready, its peak while wrk loads the server, and after; wrk's own figures."""
    with container.running(tag) as running:
        container.wait_ready(running)
        idle = container.memory_mb(running)
        samples: list[float] = []
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append(container.memory_mb(running))

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            load = wrk(f"{running.url}/predict", canvas_json(), "application/json", connections, seconds)
        finally:
            done.set()
            sampler.join()
        after = container.memory_mb(running)
    return {
        "memory_ready_mb": idle,
        "memory_load_peak_mb": max(samples + [idle]),
        "memory_after_load_mb": after,
        "load": {k: load[k] for k in ("connections", "seconds", "requests", "rps", "errors", "p50_ms", "p99_ms")},
    }


def measure(target: str, args: argparse.Namespace, logs: Path) -> dict:
    tag = TARGETS[target]
    container.build(tag, target, log=logs / f"build-{target}.log")
    size, base = container.image_bytes(tag), container.image_bytes(container.base_of(target))
    result = {"size_mb": round(size / 1e6), "added_mb": round((size - base) / 1e6)}
    result |= ready_seconds(tag, args.starts)
    result |= memory_under_load(tag, args.connections, args.seconds)
    container.podman("rmi", tag, check=False)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.image", description=__doc__.split("\n\n")[0])
    parser.add_argument("--savedmodel", action="store_true", help="also the savedmodel target (with TensorFlow)")
    parser.add_argument("--starts", type=int, default=5, help="fresh containers timed to ready, per image")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--no-save", action="store_true", help="do not write bench/results/image.json")
    args = parser.parse_args(argv)
    targets = ["runtime", "savedmodel"] if args.savedmodel else ["runtime"]
    base = container.base_of("runtime")
    load_before = os.getloadavg()[0]  # this machine is shared: how busy it was says how far to trust the timings
    with tempfile.TemporaryDirectory() as tmp:
        images = {target: measure(target, args, Path(tmp)) for target in targets}
    result = {
        "base": base,
        "base_mb": round(container.image_bytes(base) / 1e6),
        "settings": " ".join(container.LOCKED_DOWN),
        "images": images,
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }
    emit(result, None if args.no_save else "image")
    return 0


if __name__ == "__main__":
    sys.exit(main())
