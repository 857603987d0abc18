"""Corrections: nothing acknowledged is lost to a SIGKILLed worker, and what posting one costs next to a prediction.

python -m bench.corrections           # writes bench/results/corrections.json (SQLite and a throw-away PostgreSQL)

Durability: 8 clients post 200 corrections to a 2-worker gunicorn server; once 50 are acknowledged a worker is
SIGKILLed. A client whose connection fails sends the same correction again under the same Idempotency-Key until it
is acknowledged. Then the server is stopped, a new one started on the same database, and the list is compared with
the acknowledgements: every acknowledged id listed, with its label, and nothing listed that was not acknowledged
(none twice). Latency: one client on one keep-alive connection takes in turn a prediction of a canvas drawing, a
correction of it (as the page sends one: the worker kept that reading, service/recent.py), and a correction of the
same drawing encoded otherwise, which the worker has not read (as an API client that never asked for a prediction);
the medians of each, side by side in the same run.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from bench.faults import worker_pids
from bench.payloads import canvas_png
from bench.results import ROOT, emit, git
from bench.server import running_server
from service.reader import NAME as READER

ADMIN_TOKEN = "bench-admin-token"
BASELINE = "accab35"  # the last commit before corrections: its /predict, side by side


def correction_body(png: bytes, label: int | str) -> bytes:
    return json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode(), "label": label}).encode()


def _connection(url: str) -> http.client.HTTPConnection:
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=30)


def post_once(url: str, body: bytes, key: str) -> tuple[int, dict | None]:
    """One POST /v1/corrections on a fresh connection: (status, JSON body); status -1 if the connection failed."""
    conn = _connection(url)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    try:
        conn.request("POST", "/v1/corrections", body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except (OSError, http.client.HTTPException, ValueError):
        return -1, None
    finally:
        conn.close()


def post_until_acknowledged(url: str, body: bytes, key: str, attempts: int = 50) -> tuple[int | None, int]:
    """(id, failed tries): the same correction, same key, until a 201 or 200 says it is stored."""
    for tried in range(attempts):
        status, answer = post_once(url, body, key)
        if status in (200, 201):
            return answer["id"], tried
        time.sleep(0.05)  # a killed worker's socket is torn down within milliseconds
    return None, attempts


def burst(url: str, master: int, total: int = 200, clients: int = 8, kill_after: int = 50) -> dict:
    """`clients` threads post `total` corrections between them; a worker is SIGKILLed after `kill_after` acks."""
    png = canvas_png()
    acked: dict[str, tuple[int, str]] = {}  # key -> (id, label)
    lock, failed, killed = threading.Lock(), [0], threading.Event()

    def client(n: int) -> None:
        for i in range(n, total, clients):
            key, label = f"bench-{i}", str(i % 10)
            correction_id, failures = post_until_acknowledged(url, correction_body(png, i % 10), key)
            with lock:
                failed[0] += failures
                if correction_id is not None:
                    acked[key] = (correction_id, label)
                if len(acked) >= kill_after and not killed.is_set():
                    killed.set()
                    os.kill(min(worker_pids(master)), signal.SIGKILL)

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"acked": acked, "failed_tries": failed[0], "killed": killed.is_set(), "s": time.monotonic() - started}


def listed(url: str) -> list[dict]:
    """Every stored correction, through the admin list."""
    out, offset = [], 0
    while True:
        conn = _connection(url)
        conn.request(
            "GET", f"/v1/corrections?limit=500&offset={offset}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        page = json.loads(conn.getresponse().read())
        conn.close()
        out += page["corrections"]
        offset += len(page["corrections"])
        if offset >= page["count"] or not page["corrections"]:
            return out


def server_env(database_url: str) -> dict:
    return {
        "DATABASE_URL": database_url,
        "ADMIN_TOKEN": ADMIN_TOKEN,
        "WEB_CONCURRENCY": "2",
        "PYTHONPATH": str(ROOT),  # this checkout's code, whatever the virtualenv's editable install points at
    }


def durability(database_url: str, total: int = 200, clients: int = 8) -> dict:
    """The burst with a SIGKILL, then a restart on the same database; what was acknowledged against what is listed."""
    env = server_env(database_url)
    with running_server(env) as (url, process):
        deadline = time.monotonic() + 30
        while len(worker_pids(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        result = burst(url, process.pid, total, clients, kill_after=total // 4)
    with running_server(env) as (url, _):  # a restart: nothing in memory survives, only what was committed
        rows = listed(url)
    by_id = {row["id"]: row["label"] for row in rows}
    acked = result["acked"]
    return {
        "posted": total,
        "clients": clients,
        "acknowledged": len(acked),
        "listed_after_restart": len(rows),
        "missing": sum(1 for cid, label in acked.values() if by_id.get(cid) != label),
        "listed_twice": len(rows) - len(by_id),
        "listed_not_acknowledged": len(set(by_id) - {cid for cid, _ in acked.values()}),
        "worker_killed": result["killed"],
        "failed_tries_retried": result["failed_tries"],
        "burst_s": round(result["s"], 2),
    }


def _timed(conn: http.client.HTTPConnection, path: str, body: bytes, expect: int) -> float:
    started = time.perf_counter()
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    if response.status != expect:
        raise RuntimeError(f"{path} answered {response.status}, expected {expect}")
    return elapsed


@contextlib.contextmanager
def baseline_checkout(ref: str) -> Iterator[Path]:
    """The service as it was at git `ref` (before corrections), in a temporary folder, with this checkout's models."""
    with tempfile.TemporaryDirectory(prefix="digits-baseline-") as folder:
        archive = subprocess.run(["git", "archive", ref, "service"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", folder], input=archive.stdout, check=True)
        # Its digit models only: the line reader (models/reader) came later, and a registry of then would load it
        # as a digit model and fail.
        models = Path(folder) / "models"
        models.mkdir()
        for model in (ROOT / "models").iterdir():
            if model.name != READER:
                (models / model.name).symlink_to(model)
        yield Path(folder)


def reencoded(png: bytes) -> bytes:
    """The same pixels as other PNG bytes (another compression level): a drawing no worker has read."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buffer, format="PNG", compress_level=1)
    assert buffer.getvalue() != png
    return buffer.getvalue()


def latency(database_url: str, baseline: str, requests: int = 200) -> dict:
    """Medians (ms) of a prediction, a correction of the same drawing and one of a drawing not read before, and of
    the same prediction by the service at git `baseline` (before corrections), taken in turn, each server on its
    own keep-alive connection."""
    png = canvas_png()
    predict = json.dumps({"image": "data:image/png;base64," + base64.b64encode(png).decode()}).encode()
    correct, unread = correction_body(png, 7), correction_body(reencoded(png), 7)
    env = {**server_env(database_url), "WEB_CONCURRENCY": "1"}
    with (
        baseline_checkout(baseline) as old,
        running_server(env) as (url, _),
        running_server({**env, "PYTHONPATH": str(old)}, cwd=old) as (old_url, _),
    ):
        new, before = _connection(url), _connection(old_url)
        rounds = [
            (
                _timed(new, "/predict", predict, 200),
                _timed(new, "/v1/corrections", correct, 201),
                _timed(new, "/v1/corrections", unread, 201),
                _timed(before, "/predict", predict, 200),
            )
            for _ in range(20 + requests)
        ][20:]  # the first 20: warm-up
        new.close(), before.close()
    p50 = lambda i: round(statistics.median(r[i] for r in rounds) * 1000, 2)  # noqa: E731
    return {
        "requests_each": requests,
        "predict_p50_ms": p50(0),
        "correction_p50_ms": p50(1),
        "correction_unread_p50_ms": p50(2),
        "baseline": {"ref": baseline, "commit": git("rev-parse", baseline), "predict_p50_ms": p50(3)},
    }


def parts(database_url: str, calls: int = 200) -> dict:
    """In-process medians (ms): building a correction (decode, preprocess one digit, the model, the PNG; or, of the
    drawing just read, the PNG of the reading kept) and committing it, against reading the same drawing as /predict
    does."""
    from bench.timing import median_ms
    from service import create_app
    from service.corrections import correction_from
    from service.inputs import item_to_gray
    from service.reading import read
    from service.recent import Recent

    app = create_app({"database_url": database_url})
    registry, store = app.extensions["digits"], app.extensions["digits_store"]
    payload = json.loads(correction_body(canvas_png(), 7))
    submitted, recent = item_to_gray(payload, 25_000_000), Recent()
    reader = app.extensions["digits_reader"]
    (reading,) = read([submitted], registry.default, 20, reader=reader)[0]
    model = (registry.default.info.name, registry.default.info.version)
    recent.remember(submitted.data, model, submitted.gray, reading)
    # Built before the commits are timed: a generator here would build each one inside the timed call.
    built = iter([correction_from(payload, registry, 25_000_000) for _ in range(calls + 1)])
    return {
        "build_p50_ms": median_ms(lambda: correction_from(payload, registry, 25_000_000), calls),
        "build_read_p50_ms": median_ms(lambda: correction_from(payload, registry, 25_000_000, recent), calls),
        "commit_p50_ms": median_ms(lambda: store.add(next(built)), calls),
        "read_p50_ms": median_ms(
            lambda: read([item_to_gray(payload, 25_000_000)], registry.default, 20, reader=reader), calls
        ),
    }


@contextlib.contextmanager
def databases(kinds: list[str]) -> Iterator[dict[str, str]]:
    """{kind: a fresh database URL}: an SQLite file in a temporary folder, and/or a throw-away PostgreSQL cluster."""
    from bench.postgres import temporary_cluster

    with tempfile.TemporaryDirectory(prefix="digits-bench-") as folder, contextlib.ExitStack() as stack:
        urls = {}
        if "sqlite" in kinds:  # the default: synchronous=NORMAL (service/storage.py)
            urls["sqlite"] = f"sqlite:///{folder}/digits.db"
        if "sqlite-full" in kinds:  # an fsync on every commit
            urls["sqlite-full"] = f"sqlite:///{folder}/full.db?synchronous=full"
        if "postgresql" in kinds:
            urls["postgresql"] = stack.enter_context(temporary_cluster()).create_database("bench")
        yield urls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.corrections", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--databases", default="sqlite,sqlite-full,postgresql", help="comma-separated: sqlite, sqlite-full, postgresql"
    )
    parser.add_argument("--requests", type=int, default=200, help="timed requests of each kind")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the service before corrections")
    parser.add_argument("--note", help="recorded with the figures, e.g. that the machine was busy")
    args = parser.parse_args(argv)
    result = {"note": args.note} if args.note else {}
    with databases(args.databases.split(",")) as urls:
        for kind, url in urls.items():
            result[kind] = {"durability": durability(url)}  # first: on the fresh, empty database it compares
            result[kind] |= {"latency": latency(url, args.baseline, args.requests), "parts": parts(url, args.requests)}
    emit(result, None if args.no_save else "corrections")
    return 0


if __name__ == "__main__":
    sys.exit(main())
