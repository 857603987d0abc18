"""Benchmarks and evaluations that run outside the test suite (and in a smoke mode inside it)."""
