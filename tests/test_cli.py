"""CLI conventions: --version from one source, bare `nasx`, grouped `search --help` with the settings'
defaults, the SQLite folder rule, tables within 100 columns, and the progress line on a real terminal (tmux)."""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib
from conftest import run_nasx

import nasx
from nasx.search.settings import SearchSettings

REPO = Path(__file__).resolve().parents[1]


def test_version_has_one_source():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    assert meta["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "nasx.__version__"}
    r = run_nasx("--version")  # through `python -m nasx`, as are the bare command and the help below
    assert r.returncode == 0 and r.stdout.strip() == f"nasx {nasx.__version__}"


def test_bare_nasx_prints_help():
    r = run_nasx()
    assert r.returncode == 0 and r.stdout.startswith("usage: nasx") and r.stderr == ""
    for command in ("search", "pareto", "export", "report", "dashboard"):
        assert command in r.stdout


def test_search_help_is_grouped_and_shows_the_settings_defaults(nasx_cli):
    from nasx.cli.main import make_parser

    text = " ".join(nasx_cli("search", "--help").stdout.split())
    for group in ("budgets:", "space and sampler:", "measurement:", "storage:", "workers:"):
        assert group in text
    defaults = {f.name: f.default for f in dataclasses.fields(SearchSettings)}
    for flag, field in (
        ("--n-trials", "n_trials"),
        ("--sampler", "sampler"),
        ("--device", "device"),
        ("--measure-time", "measure_time_s"),
        ("--heartbeat", "heartbeat_s"),
        ("--storage", "storage"),
        ("--score", "score"),
        ("--batch", "batch"),
    ):
        assert re.search(rf"{flag} \S+ .*?\(default: {re.escape(str(defaults[field]))}\)", text), flag
    search = make_parser()._subparsers._group_actions[0].choices["search"]
    undocumented = [a.option_strings for a in search._actions if a.option_strings and not a.help]
    assert not undocumented


def test_sqlite_folder_is_made_only_for_the_default(nasx_cli, tmp_path, monkeypatch):
    r = nasx_cli(
        "search", "--config", "cifar32", "--budget", "20M", "--storage", f"sqlite:///{tmp_path}/typo/s.db", cwd=tmp_path
    )
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"no folder {tmp_path}/typo for the SQLite database s.db" in r.stderr and "mkdir -p" in r.stderr
    assert not (tmp_path / "typo").exists()
    from nasx.store.db import DEFAULT_STORAGE, Store

    monkeypatch.chdir(tmp_path)  # the default's studies/ is made where the command runs (back after the test)
    Store(DEFAULT_STORAGE)
    assert (tmp_path / "studies" / "nasx.db").is_file()


def test_front_tables_fit_100_columns_and_name_their_latency_scale(small_study, nasx_cli):
    url, name, d = small_study
    r = nasx_cli("pareto", "--storage", url, "--study", name, cwd=d)
    assert r.returncode == 0, r.stderr
    table = r.stdout[r.stdout.index("latency ms:") :]
    assert max(map(len, table.splitlines())) <= 100, table
    assert re.search(r"drift-corrected to this storage's reference speed \(mobilenet_v3_small = \d+\.\d\d ms\)", table)
    header = next(line for line in table.splitlines() if line.startswith("trial  "))
    assert "raw ms" in header and "first ms" in header  # the raw figure and the re-timed front's first one


def test_render_table_wraps_the_long_column():
    from nasx.util.fmt import render_table

    families = ", ".join(f"family{i} {i}" for i in range(12))
    text = render_table(["trial", "score", "families"], [[1, "2.00", families], [2, "3.00", "dwsep 1"]], width=60)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 60 and len(lines) > 4
    assert " ".join(" ".join(line[13:].split()) for line in lines[2:-1]) == families  # nothing lost or cut


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="needs tmux (apt-get install tmux)")
def test_progress_line_and_ctrl_c_leave_no_stale_characters(tmp_path):
    """A search on a real terminal, interrupted with Ctrl-C: every progress line on the screen is whole (no
    "ETA 23ss" left from a longer line, no "^Cial 15/30" where ^C was echoed over the line's start)."""
    session = f"nasx-{os.getpid()}"
    cmd = (
        f"cd {tmp_path} && PYTHONPATH={REPO} {sys.executable} -m nasx search --config cifar32 --budget 20M "
        f"--storage sqlite:///{tmp_path}/t.db --n-trials 30 --seed 1 --measure-time 0.1 --score params; "
        f"echo EXIT=$?; sleep 60"
    )
    subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "150", "-y", "50", cmd], check=True)

    def screen():
        return subprocess.run([TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout

    def wait(pattern, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if re.search(pattern, screen()):
                return
            time.sleep(0.3)
        raise AssertionError(f"no {pattern!r} on the screen:\n{screen()}")

    try:
        wait(r"trial [3-9]/30", 240)
        subprocess.run([TMUX, "send-keys", "-t", session, "C-c"], check=True)
        wait(r"EXIT=\d+", 240)
        text = screen()
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session])
    assert "EXIT=130" in text and "stopping after the current trial" in text, text
    progress = [line for line in text.splitlines() if "| feasible" in line]
    assert progress, text
    whole = re.compile(
        r"^trial \d+/\d+ \| feasible \d+ \| rejected \d+( \| failed \d+)? \| best latency "
        r"(-|\d+\.\d\d ms) \| \d+(m\d\d)?s( \| ETA \d+(m\d\d)?s)?(\^C)?$"  # no ETA over the first trials
    )
    for line in progress:
        assert whole.match(line.rstrip()), (line, text)
