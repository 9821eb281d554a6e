"""The README's test command is the command CI runs (.ci/run says it keeps them identical); the README is a
front page whose links lead to the manual in docs/, an MkDocs site that builds strictly."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
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


# ---- the README as a front page; the manual in docs/ ------------------------------------------------------

DOC_LINK = re.compile(r"\]\((docs/[^)#\s]+\.md)(?:#([^)\s]+))?\)")


def readme_text() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def slug(heading: str) -> str:
    """The anchor MkDocs (toc's default slugify) and GitHub give a heading: lower case, punctuation dropped."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[\s]+", "-", text).strip("-")


def anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.M | re.S)
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.*?)\s*$", text, re.M)}


def test_readme_is_a_front_page():
    lines = readme_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; the manual belongs in docs/"
    headings = [line for line in lines if line.startswith("## ")]
    assert headings[0] == "## Quick start", "the Quick start comes first"


def test_readme_docs_links_exist():
    links = DOC_LINK.findall(readme_text())
    assert links, "the README links to the manual in docs/"
    for path, anchor in links:
        page = REPO / path
        assert page.is_file(), f"README links to {path}, which does not exist"
        if anchor:
            assert anchor in anchors(page), f"README links to {path}#{anchor}: no such heading there"


def test_readme_picture_exists():
    for path in re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme_text()):
        assert (REPO / path).is_file(), f"README shows {path}, which does not exist"


def test_readme_commands_are_on_their_pages():
    """Each command in the README's table is described on the pages its row links to (the commands moved
    there from the README, with their full reference)."""
    rows = [line for line in readme_text().splitlines() if line.startswith("| `nasx ")]
    assert len(rows) >= 10, "the README's Commands table lists nasx's commands"
    for row in rows:
        commands = re.findall(r"`(nasx [\w-]+)`", row.split("|")[1])
        pages = {path for path, _ in DOC_LINK.findall(row)}
        assert commands and pages, row
        text = " ".join((REPO / p).read_text(encoding="utf-8") for p in pages)
        for command in commands:
            assert command in text, f"{command}: none of {sorted(pages)} mentions it"


def test_readme_points_inside_the_repository():
    """No link a reader follows leaves the checkout: ../shared/ and the like do not exist in a clone."""
    for path in [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]:
        assert "../shared" not in path.read_text(encoding="utf-8"), path


def test_docs_site_builds_strictly(tmp_path):
    """mkdocs build --strict, as .ci/run runs it: a broken link or anchor, or a page missing from the nav,
    fails."""
    pytest.importorskip("mkdocs", reason='mkdocs is not installed (pip install -e ".[docs]"); .ci/run builds the site')
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_ci_builds_the_docs_strictly():
    text = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert '".[docs]"' in text and "mkdocs build --strict" in text
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(d.startswith("mkdocs") for d in meta["project"]["optional-dependencies"]["docs"])
