"""`python -m bench.readme`: rewrite the README's generated blocks from the recorded results.

Each block sits between `<!-- NAME: ... -->` and `<!-- /NAME -->`. Its text is made only from
files that commands in this repo write (models/*/metadata.json, bench/results/*.json), so every
figure in the README can be traced to a command. `--check` exits 1 when the README is stale.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from train.table import table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _result(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def canvas_block() -> str:
    r = _result("canvas_eval")
    if not r:
        return "_Not measured yet._"
    styles = ", ".join(f"{k} {v:.2%}" for k, v in r["by_style"].items())
    return (
        f"Accuracy of `{r['model']['name']}` v{r['model']['version']} on {r['images']:,} canvas re-drawings of "
        f"MNIST test digits: **{r['accuracy']:.2%}** ({styles})."
    )


BLOCKS: dict[str, Callable[[], str]] = {
    "models-table": lambda: table(ROOT / "models"),
    "canvas-eval": canvas_block,
}


def render(text: str) -> str:
    for name, make in BLOCKS.items():
        pattern = re.compile(rf"(<!-- {name}:[^\n]*-->\n)(.*?)(<!-- /{name} -->)", re.DOTALL)
        if not pattern.search(text):
            raise SystemExit(f"README has no block {name!r}")
        text = pattern.sub(lambda m, make=make: m.group(1) + make().rstrip() + "\n" + m.group(3), text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.readme", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the README differs from its sources")
    args = parser.parse_args(argv)
    readme = ROOT / "README.md"
    current = readme.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print("README.md is stale: run python -m bench.readme", file=sys.stderr)
            return 1
        return 0
    readme.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
