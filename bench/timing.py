"""In-process timing for the benchmarks: the median of many calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

FLUSH_BYTES = 64 << 20  # more than this machine's caches hold
_SCRATCH: np.ndarray | None = None


def flush_caches() -> None:
    """Write a buffer bigger than the CPU's caches, so the next call starts with cold caches,
    as a request does in a server, where other work runs between requests."""
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = np.zeros(FLUSH_BYTES, np.uint8)
    _SCRATCH += 1


def median_ms(fn: Callable[[], object], calls: int, between: Callable[[], object] | None = None) -> float:
    """Median milliseconds of `calls` calls of fn, after one untimed warm-up call;
    `between` runs, untimed, before each timed call."""
    fn()
    times = []
    for _ in range(calls):
        if between is not None:
            between()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)
