"""In-process timing for the benchmarks: the median of many calls."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], calls: int) -> float:
    """Median milliseconds of `calls` calls of fn, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)
