"""Nothing acknowledged is lost: a real gunicorn server, real HTTP, a worker SIGKILLed during a burst of corrections,
then a restart, on SQLite and on PostgreSQL (the scenario is bench/corrections.py's, which records the figures)."""

from __future__ import annotations

import pytest

from bench.corrections import durability, latency

pytestmark = pytest.mark.slow


def test_every_acknowledged_correction_survives_a_killed_worker_and_a_restart(database_url):
    result = durability(database_url, total=200, clients=8)
    assert result["worker_killed"]
    assert result["acknowledged"] == 200  # each client retried its failed posts under the same key until stored
    assert result["missing"] == 0  # every acknowledged id is listed after the restart, with its label
    assert result["listed_twice"] == 0 and result["listed_not_acknowledged"] == 0  # none twice
    assert result["listed_after_restart"] == 200


def test_latency_smoke_run_answers_both_routes(tmp_path):
    """The benchmark's latency part runs end to end (figures are the benchmark's business, not a test's)."""
    result = latency(f"sqlite:///{tmp_path / 'digits.db'}", baseline="HEAD", requests=3)
    assert result["requests_each"] == 3 and result["correction_p50_ms"] > 0 and result["baseline"]["predict_p50_ms"] > 0
