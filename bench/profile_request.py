"""Where a request spends its time, in process, profiled with pyinstrument.

    python -m bench.profile_request                  # each request below; writes bench/results/profile_<name>.txt
    python -m bench.profile_request number           # only the 5-digit canvas
    python -m bench.profile_request --requests 200   # fewer requests (each profile runs 2,000 by default)

The requests: `canvas`, the page's one-digit drawing (280x280); `number`, a 5-digit number drawn on a wide
canvas (bench/payloads.number_json); `batch`, 256 small PNGs in one JSON body (bench/payloads.batch_json).
The process's allocator is tuned as a server worker's is (service/allocator.py).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pyinstrument import Profiler

from bench.payloads import batch_json, canvas_json, number_json
from service import create_app
from service.allocator import keep_freed_memory

RESULTS = Path(__file__).parent / "results"
# name -> (request body, how many requests one profile's `--requests` stands for: a batch is 256 images)
PAYLOADS: dict[str, tuple[Callable[[], bytes], int]] = {
    "canvas": (canvas_json, 1),
    "number": (number_json, 1),
    "batch": (lambda: batch_json(256), 50),
}


def profile(client, body: bytes, requests: int) -> str:
    """pyinstrument's text report of `requests` POSTs of `body` to /predict, after a warm-up."""
    for _ in range(min(50, requests)):
        client.post("/predict", data=body, content_type="application/json")
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for _ in range(requests):
        response = client.post("/predict", data=body, content_type="application/json")
        if response.status_code != 200:
            raise RuntimeError(f"status {response.status_code}: {response.get_data(as_text=True)[:200]}")
    profiler.stop()
    return profiler.output_text(unicode=False, color=False, show_all=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile_request", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="REQUEST", help=f"{', '.join(PAYLOADS)} (default: all)")
    parser.add_argument("--requests", type=int, default=2000, help="requests per profile (a batch: 1/50 of it)")
    args = parser.parse_args(argv)
    if set(args.names) - set(PAYLOADS):
        parser.error(f"unknown request {sorted(set(args.names) - set(PAYLOADS))}; choose from {', '.join(PAYLOADS)}")
    keep_freed_memory()  # as in a server's worker
    client = create_app().test_client()
    for name in args.names or PAYLOADS:
        make, per = PAYLOADS[name]
        text = profile(client, make(), max(1, args.requests // per))
        (RESULTS / f"profile_{name}.txt").write_text(text)
        sys.stdout.write(f"== {name}\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
