"""Pin the images' requirements from pyproject.toml and requirements.lock (run by `make lock`).

    python requirements/pin.py

- requirements/serve.txt: what the default image serves with (LiteRT, no TensorFlow).
- requirements/savedmodel.txt: the same plus CPU-only TensorFlow, for the `savedmodel` target (RUNTIME=savedmodel).

Each file is a complete pinned set, installed with `pip install --no-deps`: pip adds nothing to it. That is how the
default image leaves out what ai-edge-litert declares but its interpreter never imports (ml_dtypes, protobuf,
flatbuffers, tqdm, ...): serve.txt is the closure of the service's other dependencies, plus ai-edge-litert alone.
The versions come from requirements.lock, so the images run what the tests ran.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import tomllib
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
TENSORFLOW = {"tensorflow", "tensorflow-cpu"}
# Installed without its declared dependencies: `ai_edge_litert.interpreter` imports numpy and its own extension only
# (the image's CI test, tests/test_image.py, loads the model and predicts with exactly this set).
ALONE = {"ai-edge-litert"}
# The image is Linux x86_64 on CPython 3.11: the markers of pyproject.toml are evaluated for it.
IMAGE_PLATFORM = {"sys_platform": "linux", "platform_machine": "x86_64", "platform_system": "Linux"}
HEADER = (
    "# {what}, pinned: a complete set, installed with `pip install --no-deps`.\n"
    "# Generated from pyproject.toml and requirements.lock by `make lock` (requirements/pin.py); do not edit.\n"
)


def service_requirements() -> list[Requirement]:
    """The service's own dependencies (pyproject's [project].dependencies) that apply to the image's platform."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = [Requirement(line) for line in project["dependencies"]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate(IMAGE_PLATFORM)]


def locked() -> dict[str, str]:
    """name -> version from requirements.lock."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    pins = (line.split("==") for line in lines if "==" in line and not line.startswith("#"))
    return {canonicalize_name(name): version.strip() for name, version in pins}


def closure(requirements: list[str]) -> dict[str, str]:
    """name -> version of everything pip would install for `requirements`, constrained to requirements.lock."""
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet", "--report", "-"]
    command += ["--constraint", str(ROOT / "requirements.lock"), *requirements]
    report = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    return {item["metadata"]["name"]: item["metadata"]["version"] for item in report["install"]}


def pinned(packages: dict[str, str]) -> str:
    return "".join(f"{name}=={version}\n" for name, version in sorted(packages.items(), key=lambda p: p[0].lower()))


def main() -> int:
    reqs = service_requirements()
    lock = locked()
    alone = {r.name: lock[canonicalize_name(r.name)] for r in reqs if canonicalize_name(r.name) in ALONE}
    others = [str(r) for r in reqs if canonicalize_name(r.name) not in ALONE | TENSORFLOW]
    serve = {**closure(others), **alone}
    savedmodel = {**closure([str(r) for r in reqs]), **alone}
    out = ROOT / "requirements"
    (out / "serve.txt").write_text(HEADER.format(what="The default image's runtime dependencies") + pinned(serve))
    (out / "savedmodel.txt").write_text(
        HEADER.format(what="The savedmodel image's runtime dependencies (serve.txt plus TensorFlow)")
        + pinned(savedmodel)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
