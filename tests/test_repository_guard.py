"""The suite never writes the user's checkout (tests/conftest.py): tests run from a temporary folder, and a
test that changes studies/ or adds to the repository root fails."""

import os

import conftest
from conftest import ROOT


def test_tests_run_outside_the_repository():
    cwd = os.path.realpath(os.getcwd())
    assert not (cwd + os.sep).startswith(os.path.realpath(ROOT) + os.sep), cwd


def test_a_command_left_to_its_default_storage_writes_the_temporary_folder(capsys):
    from nasx.cli.main import main

    before = conftest.repository_snapshot()
    # a score that builds the network reads and fills the default sqlite:///studies/nasx.db cache
    assert main(["score", "mobilenet_v3_small", "--score", "naswot"]) == 0
    assert os.path.isfile(os.path.join(os.getcwd(), "studies", "nasx.db"))
    assert conftest.repository_snapshot() == before


def test_the_snapshot_sees_a_write_under_studies_and_a_new_root_entry(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "ROOT", str(tmp_path))  # a stand-in repository
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "nasx.db").write_bytes(b"x")
    before = conftest.repository_snapshot()
    (tmp_path / "studies" / "nasx.db").write_bytes(b"xy")
    assert conftest.repository_snapshot() != before
    before = conftest.repository_snapshot()
    (tmp_path / ".pytest_cache").mkdir()
    assert conftest.repository_snapshot() == before  # a tool's cache is not a test's write
    (tmp_path / "report.html").write_text("")
    assert conftest.repository_snapshot() != before
