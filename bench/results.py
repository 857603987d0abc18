"""The recorded benchmark results (bench/results/NAME.json), which the README's figures are made from."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def emit(result: dict, name: str | None) -> None:
    """Print `result` as JSON; also record it as results/NAME.json unless name is None (smoke runs)."""
    text = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text)
    if name:
        (RESULTS / f"{name}.json").write_text(text)


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
