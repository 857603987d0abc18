"""Load generation with wrk (Debian's `wrk`), and memory readings of a process tree."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

# wrk's Lua hooks: POST a fixed body, and print a JSON summary at the end.
LUA = """
wrk.method = "%(method)s"
wrk.headers["Content-Type"] = "%(content_type)s"
local f = io.open("%(body)s", "rb")
wrk.body = f:read("*a")
f:close()
function done(summary, latency, requests)
  io.write(string.format(
    'JSON{"requests": %%d, "seconds": %%.3f, "connect": %%d, "read": %%d, "write": %%d, "status": %%d, ' ..
    '"timeout": %%d, "p50_ms": %%.3f, "p90_ms": %%.3f, "p99_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration / 1e6, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000))
end
"""


def wrk(
    url: str, body: bytes, content_type: str, connections: int, seconds: float, threads: int = 2, method: str = "POST"
) -> dict:
    """Run wrk against `url` and return requests/s, latency percentiles and error counts."""
    binary = shutil.which("wrk")
    if not binary:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        body_path, script = Path(tmp) / "body", Path(tmp) / "post.lua"
        body_path.write_bytes(body)
        script.write_text(LUA % {"method": method, "content_type": content_type, "body": body_path})
        out = subprocess.run(
            [
                binary,
                "-t",
                str(min(threads, connections)),
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        ).stdout
    line = next(line for line in out.splitlines() if line.startswith("JSON"))
    result = json.loads(line[4:])
    result["errors"] = sum(result[k] for k in ("connect", "read", "write", "status", "timeout"))
    result["rps"] = round(result["requests"] / result["seconds"], 1)
    result["connections"] = connections
    return result


def tree_pids(pid: int) -> list[int]:
    """`pid` and all its descendants (Linux /proc)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(p) for p in (task / "children").read_text().split()]
    return pids


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children, in MB."""
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return round(total / 1024, 1)


def cpu_seconds(pid: int) -> float:
    """CPU time used so far by a process and all its children (Linux /proc, user + system)."""
    total = 0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, busy: float = 0.05, every: float = 0.2, longest: float = 15.0) -> float:
    """Wait until a server has stopped working (its processes use under `busy` of a core), at most `longest` s.

    A slow server still answers the requests queued when the load stopped (the tutorial baseline at 64 connections:
    over a second of CPU); the next server measured would otherwise share the machine with it. -> seconds waited."""
    started = time.monotonic()
    before = cpu_seconds(pid)
    while time.monotonic() - started < longest:
        time.sleep(every)
        now = cpu_seconds(pid)
        if now - before < busy * every:
            break
        before = now
    return time.monotonic() - started
