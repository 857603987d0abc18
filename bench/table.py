"""`python -m bench.table`: the README's model table, every figure read from metadata.json."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from service import reader
from service.contract import latest_version, read_metadata  # the version the service would serve

ORDER = ("cnn", "mlp", "softmax")


def rows(models: Path) -> list[dict]:
    names = sorted(
        (p.name for p in models.iterdir() if p.is_dir() and p.name != reader.NAME),  # the line reader reads no digit
        key=lambda n: (n not in ORDER, ORDER.index(n) if n in ORDER else 0, n),
    )
    return [read_metadata(latest_version(models / name)) for name in names]


def table(models: Path) -> str:
    lines = [
        "| model | version | test accuracy | test errors | parameters | SavedModel size | LiteRT size | training time "
        "| epochs (best) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in rows(models):
        t = m["training"]
        entry = m.get("runtimes", {}).get("litert")
        litert = f"{entry['bytes'] / 1e6:.2f} MB" if entry else "-"
        lines.append(
            f"| `{m['name']}` | {m['version']} | {m['metrics']['test_accuracy']:.2%} | {m['metrics']['test_errors']} "
            f"| {m['parameters']:,} | {m['size_bytes'] / 1e6:.2f} MB | {litert} | {t['time_s'] / 60:.1f} min "
            f"| {t['epochs_run']} ({t['best_epoch']}) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.table", description=__doc__)
    parser.add_argument("--models", default="models", help="models root (default: %(default)s)")
    print(table(Path(parser.parse_args(argv).models)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
