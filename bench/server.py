"""Start the production server (gunicorn via digits-serve) on loopback for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The server's worker designs: today's (gevent, service/worker.py) and the threaded one it replaced, which
# the benchmarks measure side by side in the same run (`--compare`).
WORKER_DESIGNS = {"gevent": {"WORKER_CLASS": "gevent"}, "gthread": {"WORKER_CLASS": "gthread"}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 90.0) -> float:
    """Seconds until GET url/readyz answers 200; raises if the process dies or time runs out."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before it was ready")
        with (
            contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
            urllib.request.urlopen(f"{url}/readyz", timeout=2) as response,
        ):
            if response.status == 200:
                return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextlib.contextmanager
def running_server(
    env: dict | None = None,
    command: list[str] | None = None,
    log_path: Path | None = None,
    cwd: Path = ROOT,
    inherit_env: bool = True,
    port_in_command: bool = False,
):
    """Yield (base_url, process) for a server on a free loopback port; SIGTERM it afterwards.

    With `inherit_env`, `cwd` also leads PYTHONPATH: the server runs the code of the checkout it starts in (a
    worktree's, or an older commit's for a side-by-side comparison), not whichever one the venv was installed from.
    """
    port = free_port()
    base = dict(os.environ) if inherit_env else {}
    if inherit_env:
        base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cwd), base.get("PYTHONPATH")]))
    full_env = {**base, **(env or {}), "HOST": "127.0.0.1", "PORT": str(port)}
    command = command or [str(Path(sys.executable).with_name("digits-serve"))]
    if port_in_command:
        command = [part.replace("{port}", str(port)) for part in command]
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command, env=full_env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        process.ready_s = wait_ready(url, process)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if log_path:
            log.close()
