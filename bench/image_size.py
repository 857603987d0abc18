"""What the Docker image adds to its base: the runtime virtualenv and the app files.

    python -m bench.image_size      # writes bench/results/image_size.json

No Docker engine is needed: it installs requirements/serve.txt into a fresh virtualenv, as the
image's build stage does, and measures it, plus what the final stage copies (service/, models/
without reports). The image is these plus the python:3.11.7-slim-bookworm base.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.results import emit
from service.contract import REPORT_DIR

ROOT = Path(__file__).resolve().parent.parent


def tree_mb(path: Path, skip: str = "") -> float:
    files = (p for p in path.rglob("*") if p.is_file() and not (skip and skip in p.parts))
    return round(sum(p.stat().st_size for p in files) / 1e6, 1)


def image_venv(venv: Path) -> Path:
    """A fresh virtualenv with exactly requirements/serve.txt, as the image's build stage makes it."""
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--requirement", str(ROOT / "requirements" / "serve.txt")], check=True, timeout=900)
    return venv


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        venv = image_venv(Path(tmp) / "venv")
        result = {
            "venv_mb": tree_mb(venv),
            "service_mb": tree_mb(ROOT / "service", skip="__pycache__"),
            "models_mb": tree_mb(ROOT / "models", skip=REPORT_DIR),
            "measured_at": time.strftime("%Y-%m-%d"),
        }
    emit(result, "image_size")
    return 0


if __name__ == "__main__":
    sys.exit(main())
