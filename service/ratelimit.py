"""Optional per-client rate limit (RATE_LIMIT=requests per second, RATE_BURST=bucket size).

A token bucket per client address, per worker process: with N workers a client gets up to N
times the rate. It protects a worker from one noisy client; a shared limit across replicas
belongs in the load balancer in front.
"""

from __future__ import annotations

import threading
import time

from flask import Flask, request

from service.errors import ApiError

LIMITED = ("api.predict", "corrections.create")  # the endpoints that do work per request


class RateLimited(ApiError):
    status, code = 429, "rate_limited"


class TokenBuckets:
    def __init__(self, rate: float, burst: int, max_clients: int = 10_000):
        self.rate, self.burst, self.max_clients = rate, burst, max_clients
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill time)
        self._lock = threading.Lock()

    def take(self, client: str, now: float | None = None) -> float:
        """0 if a request may go now, else the seconds until it may."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) >= self.max_clients and client not in self._buckets:
                self._buckets.clear()  # bounded memory: forgetting every bucket only lets clients in
            tokens, last = self._buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def install(app: Flask, rate: float, burst: int) -> None:
    """Limit POST /predict and POST /v1/corrections per client address when rate > 0."""
    if rate <= 0:
        return
    buckets = TokenBuckets(rate, max(1, burst))

    @app.before_request
    def limit():
        if request.endpoint not in LIMITED:
            return
        wait = buckets.take(request.remote_addr or "?")
        if wait > 0:
            error = RateLimited(f"rate limit of {rate:g} requests/s exceeded; retry in {wait:.2f} s")
            error.retry_after = max(1, round(wait + 0.5))
            raise error
