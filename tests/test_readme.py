"""The README's test command is the command CI runs (.ci/run says it keeps them identical)."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def quick_start_blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    m = re.search(r"^## Quick start\s*$(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "README.md has no '## Quick start' section"
    return [b.strip() for b in re.findall(r"^```[^\n]*\n(.*?)^```", m.group(1), re.M | re.S)]


def ci_commands() -> list[str]:
    lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def steps(command: str) -> list[str]:
    """The && -separated steps of a shell command line, whitespace-normalised."""
    return [" ".join(part.split()) for part in command.split("&&")]


def install_and_test_steps(command: str) -> list[str]:
    return [s for s in steps(command) if re.search(r"\bpip\b|\bpytest\b", s)]


def test_readme_test_command_is_what_ci_runs():
    blocks = quick_start_blocks()
    assert len(blocks) >= 2, "the Quick start section needs a run block and a test block"
    readme = blocks[1]
    assert "\n" not in readme, "the test command is a single line"
    assert "pytest" in readme
    ci = [c for c in ci_commands() if "pytest" in c]
    assert len(ci) == 1, f".ci/run should run pytest exactly once, found {ci}"
    # the pip and pytest steps are identical, flags included
    assert install_and_test_steps(readme) == install_and_test_steps(ci[0])
    # and so is the whole line
    assert steps(readme) == steps(ci[0])


def test_ci_script_is_strict_and_starts_from_scratch():
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash")
    assert "set -euo pipefail" in text
    assert "rm -rf .venv" in text


def test_test_extra_has_what_the_tests_import():
    """`pip install -e ".[test]"` must bring what the test suite imports beyond the runtime deps."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    extra = " ".join(meta["project"]["optional-dependencies"]["test"])
    for package in ("pytest", "hypothesis"):
        assert package in extra, package
    assert "[test]" in quick_start_blocks()[1]
