"""Console scripts for the corrections database: `digits-db upgrade|current` and `digits-corrections export`.

Both read DATABASE_URL (else SQLite at $DATA_DIR/digits.db), as the server does.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import struct
import sys
from pathlib import Path

import numpy as np

from service.contract import SIDE

IDX_IMAGES = "corrections-images-idx3-ubyte.gz"
IDX_LABELS = "corrections-labels-idx1-ubyte.gz"


def _store(url: str | None):
    from service.config import Settings
    from service.storage import Store

    return Store(url or Settings.from_env().resolved_database_url())


def db(argv: list[str] | None = None) -> int:
    """`digits-db upgrade` applies the migrations (the server also does at start-up); `current` shows the revision."""
    parser = argparse.ArgumentParser(prog="digits-db", description=db.__doc__)
    parser.add_argument("action", choices=("upgrade", "current"))
    parser.add_argument("--url", help="database URL (default: $DATABASE_URL, else $DATA_DIR/digits.db)")
    args = parser.parse_args(argv)
    from sqlalchemy.exc import SQLAlchemyError

    from service.storage import current_revision, upgrade

    store = _store(args.url)
    try:
        if args.action == "upgrade":
            upgrade(store.engine)
        print(current_revision(store.engine) or "(empty database)")
    except SQLAlchemyError as e:
        print(f"digits-db: database unavailable: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


def accepted_arrays(store) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 [N, 28, 28] white on black, labels uint8 [N], ids int64 [N]) of the accepted digit corrections."""
    rows = store.accepted_digits()
    x = np.array([np.frombuffer(r.input, np.uint8).reshape(SIDE, SIDE) for r in rows], np.uint8).reshape(-1, SIDE, SIDE)
    y = np.array([int(r.label) for r in rows], np.uint8)
    return x, y, np.array([r.id for r in rows], np.int64)


def write_idx(folder: Path, x: np.ndarray, y: np.ndarray) -> list[Path]:
    """MNIST's IDX format (gzip'd), which train.data.read_idx reads."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = folder / IDX_IMAGES, folder / IDX_LABELS
    images.write_bytes(gzip.compress(struct.pack(">iiii", 2051, len(x), SIDE, SIDE) + x.tobytes(), mtime=0))
    labels.write_bytes(gzip.compress(struct.pack(">ii", 2049, len(y)) + y.tobytes(), mtime=0))
    return [images, labels]


def corrections(argv: list[str] | None = None) -> int:
    """`digits-corrections export --out corrections.npz`: the accepted corrections, for `digits-train --extra-data`."""
    parser = argparse.ArgumentParser(prog="digits-corrections", description=corrections.__doc__)
    parser.add_argument("action", choices=("export",))
    parser.add_argument("--out", type=Path, default=Path("corrections.npz"), help="the .npz to write (x, y, ids)")
    parser.add_argument("--idx", type=Path, help="also write the two IDX .gz files (MNIST's format) to this folder")
    parser.add_argument("--url", help="database URL (default: $DATABASE_URL, else $DATA_DIR/digits.db)")
    args = parser.parse_args(argv)
    from service.storage import StorageUnavailable

    try:
        x, y, ids = accepted_arrays(_store(args.url))
    except StorageUnavailable as e:
        print(f"digits-corrections: database unavailable: {e}", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        np.savez_compressed(f, x=x, y=y, ids=ids)
    written = [args.out, *(write_idx(args.idx, x, y) if args.idx else [])]
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(f"exported {len(y)} accepted corrections to {', '.join(map(str, written))} (sha256 {digest}...)")
    return 0


if __name__ == "__main__":  # python -m service.dbcli db|corrections ...
    sys.exit({"db": db, "corrections": corrections}[sys.argv[1]](sys.argv[2:]))
