"""The README and bench/RESULTS.md: their figures come from recorded results, stay current, and say where they were
measured, so a stale figure shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from bench import results
from bench.readme import BLOCKS, README, REPORT, ROOT, render

RESULT_FILES = sorted(results.RESULTS.glob("*.json"))


@pytest.mark.parametrize("path", [README, REPORT], ids=lambda p: p.name)
def test_generated_blocks_are_current(path: Path):
    text = path.read_text()
    assert render(text, BLOCKS[path]) == text, f"{path.relative_to(ROOT)} is stale: run `python -m bench.readme`"


def test_readme_is_a_short_product_page():
    lines = README.read_text().splitlines()
    assert len(lines) <= 220, f"README.md has {len(lines)} lines; benchmark detail belongs in bench/RESULTS.md"


def test_readme_has_the_two_setup_commands():
    text = README.read_text()
    assert "make serve" in text and "make test" in text


def test_readme_images_exist():
    """The screenshot (and any other image) the README shows is committed."""
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", README.read_text())
    assert "docs/screenshot.png" in images
    missing = [image for image in images if not (ROOT / image).is_file()]
    assert not missing, f"README.md shows images that are not in the repository: {missing}"


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: p.stem)
def test_result_records_its_commit_and_machine(path: Path):
    recorded = json.loads(path.read_text())
    assert re.fullmatch(r"[0-9a-f]{40}", recorded.get("commit") or ""), f"{path.name} records no commit"
    assert results.git("cat-file", "-e", f"{recorded['commit']}^{{commit}}") is not None, "commit not in history"
    machine = recorded.get("machine") or {}
    assert machine.get("cpu") and machine.get("cores", 0) >= 1 and machine.get("memory_gb", 0) > 0, path.name


def test_emit_records_date_commit_and_machine(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(results, "RESULTS", tmp_path)
    results.emit({"rps": 1.5, "measured_at": "2000-01-02"}, "example")
    saved = json.loads((tmp_path / "example.json").read_text())
    assert saved["rps"] == 1.5 and saved["measured_at"] == "2000-01-02"  # a result's own date is kept
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert saved["commit"] == head
    assert saved["machine"]["cores"] == os.cpu_count() and saved["machine"]["memory_gb"] > 0
    assert json.loads(capsys.readouterr().out) == saved

    results.emit({"rps": 2.0}, None)  # a smoke run: printed, not recorded
    assert [p.name for p in tmp_path.iterdir()] == ["example.json"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", json.loads(capsys.readouterr().out)["measured_at"])


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with a committed service module, a result file and a README."""
    for name, text in {"service/app.py": "x = 1\n", "bench/results/r.json": "{}\n", "README.md": "hi\n"}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    git(tmp_path, "init", "--quiet")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "--quiet", "-m", "start")
    return tmp_path


def test_commit_is_dirty_only_with_uncommitted_code(repo: Path):
    head = results.git("rev-parse", "HEAD", root=repo)
    (repo / "README.md").write_text("changed\n")
    (repo / "bench/results/r.json").write_text('{"re-recorded": true}\n')
    (repo / "service/new.py").write_text("untracked = True\n")
    assert results.commit(repo) == {"commit": head}
    (repo / "service/app.py").write_text("x = 2\n")
    assert results.commit(repo) == {"commit": head, "dirty": True}


def test_commit_outside_a_repository_is_unknown(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # even if the temporary folder is in a checkout
    assert results.commit(tmp_path) == {"commit": None}


def test_code_changes_ignore_comments_and_blank_lines(repo: Path):
    start = results.git("rev-parse", "HEAD", root=repo)
    paths = ("service", "models")
    (repo / "service/app.py").write_text("# why x is 1\n\nx = 1\n")
    assert results.code_changes(start, paths, root=repo) == []
    git(repo, "commit", "--quiet", "-am", "comment")
    assert results.code_changes(start, paths, root=repo) == []
    for code in ("x = 2\n", "  x = 1\n", "x = 1  # a comment after code counts\n"):
        (repo / "service/app.py").write_text("# why x is 1\n\n" + code)
        assert results.code_changes(start, paths, root=repo) == ["service"], code
    assert results.code_changes("0" * 40, paths, root=repo) is None
