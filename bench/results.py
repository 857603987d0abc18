"""The recorded benchmark results (bench/results/NAME.json), which the README's and bench/RESULTS.md's figures are made
from. Each records when, on which machine and at which commit it was measured, so a stale figure can be shown."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Code a measurement can depend on. bench/results is left out: re-recording one result must not mark the next dirty.
MEASURED_CODE = ("service", "train", "bench", "models", ":(exclude)bench/results")


def git(*args: str, root: Path = ROOT) -> str | None:
    """`git ARGS` in root, stripped stdout; None when git is missing or fails (not a checkout, unknown commit)."""
    try:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def commit(root: Path = ROOT) -> dict:
    """{"commit": HEAD} plus "dirty": True when tracked files under MEASURED_CODE have uncommitted changes."""
    head = git("rev-parse", "HEAD", root=root)
    if head is None:
        return {"commit": None}
    changes = git("status", "--porcelain", "--untracked-files=no", "--", *MEASURED_CODE, root=root)
    return {"commit": head, "dirty": True} if changes else {"commit": head}


# Hunks whose every changed line is a comment or blank change no code, so they leave a figure current. git matches
# this against each changed line with its newline and lets `^` match after that newline too, so a blank line is
# spelled "spaces, then the newline": `^\s*$` would match every line.
COMMENT_OR_BLANK = "^[[:space:]]*(#|\n)"


def code_changes(since: str, paths: tuple[str, ...], root: Path = ROOT) -> list[str] | None:
    """Those of `paths` whose code differs in the working tree from commit `since`; None if git cannot tell."""
    # --numstat (unlike --name-only) leaves out files that -I reduces to no change; a line: "added removed path"
    stat = git("diff", "--numstat", "--no-renames", f"-I{COMMENT_OR_BLANK}", since, "--", *paths, root=root)
    if stat is None:
        return None
    changed = [line.split("\t", 2)[2] for line in stat.splitlines()]
    return [p for p in paths if any(n == p or n.startswith(p + "/") for n in changed)]


def machine() -> dict:
    """CPU model, logical cores and memory of this machine; None where the platform does not say."""
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "memory_gb": memory_gb()}


def cpu_model() -> str | None:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:  # not Linux
        return platform.processor() or platform.machine() or None
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware") and value.strip():  # x86, then ARM
            return value.strip()
    return platform.machine() or None


def memory_gb() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) * 1024 / 1e9, 1)  # the file counts KiB
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)
    except (AttributeError, OSError, ValueError):  # no sysconf (Windows) or no such name
        return None


def emit(result: dict, name: str | None) -> None:
    """Print `result` as JSON with its date, commit and machine; also record it as results/NAME.json unless name is
    None (smoke runs)."""
    result = {**result, "measured_at": result.get("measured_at", time.strftime("%Y-%m-%d"))}
    result |= {**commit(), "machine": machine()}
    text = json.dumps(result, indent=2) + "\n"
    sys.stdout.write(text)
    if name:
        (RESULTS / f"{name}.json").write_text(text)


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None
