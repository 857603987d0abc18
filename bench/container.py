"""The real image: built and run with podman through oci-build (used by tests/test_image.py and bench/image.py).

No image registry can be reached here, so `../shared/tools/oci-build` (beside the repository, as CI checks it out;
$OCI_BUILD names another copy) makes a local stand-in for the `python:3.11.x-slim` base from Debian's packages and
runs podman with the settings this machine needs. It installs podman, runc and debootstrap with apt when missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bench.server import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "Dockerfile"
UID = 10001  # the Dockerfile's USER
DEFAULT_TARGET = "runtime"  # the Dockerfile's last stage: what `docker build .` makes
# The settings CI and the README's figures use: non-root (the image's USER), read-only root file system, a tmpfs
# /tmp (gunicorn's metrics and control socket) and a volume on /data (the service's writable state).
LOCKED_DOWN = ("--read-only", "--tmpfs", "/tmp", "--volume", "/data")


def oci_build() -> Path:
    return Path(os.environ.get("OCI_BUILD") or ROOT.parent / "shared" / "tools" / "oci-build")


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()


def stages(dockerfile: Path = DOCKERFILE) -> list[tuple[str, str, int]]:
    """(stage name, base, index of its FROM line) for each stage of the Dockerfile."""
    lines = dockerfile.read_text().splitlines()
    found = []
    for i, line in enumerate(lines):
        match = re.match(r"\s*FROM\s+(?:--\S+\s+)*(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            found.append((match.group(2), match.group(1), i))
    return found


def base_of(target: str = DEFAULT_TARGET) -> str:
    return next(base for name, base, _ in stages() if name == target)


def dockerfile_through(target: str, folder: Path) -> Path:
    """The Dockerfile cut after stage `target`, which then is its last stage (oci-build has no --target)."""
    lines = DOCKERFILE.read_text().splitlines()
    after = [i for name, _, i in stages()]
    index = [name for name, _, _ in stages()].index(target)
    end = after[index + 1] if index + 1 < len(after) else len(lines)
    path = folder / f"Dockerfile.{target}"
    path.write_text("\n".join(lines[:end]) + "\n")
    return path


def build(tag: str, target: str = DEFAULT_TARGET, log: Path | None = None, timeout: float = 1800) -> str:
    """Build the Dockerfile's stage `target` as `tag` with oci-build; returns its output (raises when it fails)."""
    with tempfile.TemporaryDirectory() as tmp:
        dockerfile = DOCKERFILE if target == DEFAULT_TARGET else dockerfile_through(target, Path(tmp))
        command = [str(oci_build()), "-t", tag, "-f", str(dockerfile), str(ROOT)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    output = done.stdout + done.stderr
    if log:
        log.write_text(output)
    if done.returncode != 0:
        raise RuntimeError(f"oci-build failed ({done.returncode}):\n{output[-4000:]}")
    return output


def image_bytes(image: str) -> int:
    return int(podman("image", "inspect", image, "--format", "{{.Size}}"))


@dataclass
class Container:
    name: str
    url: str
    run_at: float  # time.time() when `podman run` was called


def start(tag: str, env: dict[str, str] | None = None, options: tuple[str, ...] = LOCKED_DOWN) -> Container:
    """`podman run -d` through oci-build, on the host's network at a free port (no port mapping needed)."""
    name, port = f"digits-{os.getpid()}-{time.monotonic_ns()}", free_port()
    settings = [f"--env={k}={v}" for k, v in {**(env or {}), "PORT": str(port)}.items()]
    run_at = time.time()
    command = [str(oci_build()), "--run", "--", "--detach", "--name", name, "--network", "host"]
    subprocess.run([*command, *options, *settings, tag], check=True, capture_output=True, timeout=120)
    return Container(name, f"http://127.0.0.1:{port}", run_at)


def state(container: Container) -> dict:
    return json.loads(podman("inspect", container.name, "--format", "{{json .State}}"))


def started_at(container: Container) -> float:
    """When the container's process started, as time.time() (podman's StartedAt, in nanoseconds, cut to micro)."""
    stamp = state(container)["StartedAt"]  # RFC 3339, e.g. 2026-11-23T16:22:12.297407494Z or ...494+00:00
    stamp = re.sub(r"(\.\d{6})\d+", r"\1", stamp).replace("Z", "+00:00")
    return datetime.fromisoformat(stamp).timestamp()


def wait_ready(container: Container, timeout: float = 120) -> float:
    """time.time() of the first 200 from /readyz; raises with the logs if the container stops or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{container.url}/readyz", timeout=2) as response,
        ):
            if response.status == 200:
                return time.time()
        if not state(container)["Running"]:
            raise RuntimeError(f"the container stopped before it was ready:\n{logs(container)}")
        time.sleep(0.02)
    raise TimeoutError(f"not ready after {timeout} s:\n{logs(container)}")


def logs(container: Container) -> str:
    done = subprocess.run(["podman", "logs", container.name], capture_output=True, text=True, timeout=60)
    return (done.stdout + done.stderr)[-6000:]


UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}


def memory_mb(container: Container) -> float:
    """The container's memory use as `podman stats` reports it (its cgroup's usage), in MB."""
    stats = json.loads(podman("stats", "--no-stream", "--no-reset", "--format", "json", container.name))
    used = stats[0]["mem_usage"].split("/")[0].strip()  # e.g. "127.8MB / 25.28GB"
    number, unit = re.fullmatch(r"([\d.]+)\s*([A-Za-z]+)", used).groups()
    return round(float(number) * UNITS[unit] / 1e6, 1)


def stop(container: Container, timeout: float = 60) -> int:
    """SIGTERM to the container's PID 1 (gunicorn), then its exit code once it has stopped."""
    podman("kill", "--signal", "TERM", container.name)
    return int(podman("wait", container.name, timeout=timeout))


@contextlib.contextmanager
def running(tag: str, env: dict[str, str] | None = None) -> Iterator[Container]:
    """A started container of `tag` (locked down as LOCKED_DOWN says), removed with its volumes afterwards."""
    container = start(tag, env)
    try:
        yield container
    finally:
        podman("rm", "--force", "--volumes", container.name, check=False)
