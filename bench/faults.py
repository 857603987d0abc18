"""Fault injection: SIGKILL a gunicorn worker under load and count what clients saw.

python -m bench.faults       # writes bench/results/faults.json (the README's figure)
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import sys
import threading
import time
from pathlib import Path

from bench.payloads import canvas_png
from bench.results import emit
from bench.server import WORKER_DESIGNS, running_server


def worker_pids(master: int) -> set[int]:
    """The gunicorn master's child processes: its workers."""
    return {int(p) for p in Path(f"/proc/{master}/task/{master}/children").read_text().split()}


def _client(url: str, body: bytes, stop: threading.Event, results: list) -> None:
    host, port = url.removeprefix("http://").split(":")
    while not stop.is_set():
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("POST", "/predict", body=body, headers={"Content-Type": "image/png"})
            response = conn.getresponse()
            response.read()
            results.append((time.monotonic(), response.status))
        except (OSError, http.client.HTTPException):
            results.append((time.monotonic(), -1))  # connection reset, refused or timed out
        finally:
            conn.close()


def kill_worker_under_load(clients: int = 4, before_s: float = 2, after_s: float = 6, env: dict | None = None) -> dict:
    env = {**(env or {}), "WEB_CONCURRENCY": "2"}
    with running_server(env) as (url, process):
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        before = worker_pids(process.pid)
        stop, results = threading.Event(), []
        threads = [threading.Thread(target=_client, args=(url, canvas_png(), stop, results)) for _ in range(clients)]
        for t in threads:
            t.start()
        time.sleep(before_s)
        killed_at = time.monotonic()  # before the signal: no failure can precede it
        os.kill(min(before), signal.SIGKILL)
        replaced_s = None
        while time.monotonic() - killed_at < after_s:
            now = worker_pids(process.pid)
            if replaced_s is None and len(now) == 2 and now != before:
                replaced_s = round(time.monotonic() - killed_at, 2)
            time.sleep(0.05)
        stop.set()
        for t in threads:
            t.join()
        after = worker_pids(process.pid)
    failures = [at - killed_at for at, status in results if status != 200]  # seconds after the kill
    return {
        "clients": clients,
        "requests": len(results),
        "failed": len(failures),
        # A killed process keeps its listening socket until the kernel has torn it down: a client can
        # fail again by reconnecting in those few milliseconds. Every failure should fall in that window.
        "failures_after_kill_s": [round(t, 3) for t in sorted(failures)],
        "workers_before": len(before),
        "workers_after": len(after),
        "worker_replaced": after != before,
        "replacement_seen_after_s": replaced_s,
        "measured_at": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument("--compare", action="store_true", help="also kill a worker of the former gthread design")
    args = parser.parse_args(argv)
    result = kill_worker_under_load(env=WORKER_DESIGNS["gevent"])
    if args.compare:
        result["gthread_before"] = kill_worker_under_load(env=WORKER_DESIGNS["gthread"])
    emit(result, None if args.no_save else "faults")
    return 0


if __name__ == "__main__":
    sys.exit(main())
