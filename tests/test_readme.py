"""The README's figures come from commands, and stay true."""

from __future__ import annotations

from bench.readme import ROOT, render


def test_readme_generated_blocks_are_current():
    text = (ROOT / "README.md").read_text()
    assert render(text) == text, "README.md is stale: run `python -m bench.readme`"


def test_readme_has_the_two_setup_commands():
    text = (ROOT / "README.md").read_text()
    assert "make serve" in text and "make test" in text
