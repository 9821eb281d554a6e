import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Caches tools keep in the repository root, which any run may make or touch.
TOOL_CACHES = {".pytest_cache", ".hypothesis", ".mypy_cache", ".ruff_cache"}


def counted(trials):
    """The trials --n-trials counts: not the repeats a search re-sampled (tests/test_repeats.py)."""
    return [t for t in trials if "repeat_of" not in t.user_attrs or t.user_attrs.get("repeat_counted")]


def run_nasx(*args, cwd=None, timeout=600, env=None):
    """Run the CLI as a user would: a fresh interpreter, `python -m nasx ...`, this checkout's nasx (the
    working directory is a temporary folder, not the repository)."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "nasx", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def run_nasx_here(*args, cwd=None):
    """`nasx ARGS` in this process (nasx.cli.main.main, what `python -m nasx` calls), returned as run_nasx returns
    it: exit status, stdout, stderr. It saves the 1-3 s a fresh interpreter spends importing torch, for checks
    of what a command prints, exits with and stores. An exception that escapes main() fails the test outright
    (a subprocess would print it as a traceback). What only a process shows (signals, `python -m nasx` itself,
    several workers) stays with run_nasx."""
    from nasx.cli.main import main

    out, err, old = io.StringIO(), io.StringIO(), os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        with redirect_stdout(out), redirect_stderr(err):
            try:
                code = main([str(a) for a in args])
            except SystemExit as e:  # argparse's usage errors exit 2, --help exits 0
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old)
    return subprocess.CompletedProcess(["nasx", *map(str, args)], code, out.getvalue(), err.getvalue())


@pytest.fixture(scope="session", autouse=True)
def away_from_the_repository(tmp_path_factory):
    """Every test runs from a temporary folder: a command left to its defaults makes studies/nasx.db (the
    default storage is relative), report.html and the like there, never in the user's checkout, whose
    studies/nasx.db is the quick start's own study."""
    old, cwd = os.getcwd(), tmp_path_factory.mktemp("cwd")
    os.chdir(cwd)
    yield os.path.realpath(cwd)
    os.chdir(old)


def repository_snapshot():
    """The repository root's entries (tool caches aside) and every file under studies/ with its size and
    modification time."""
    root = sorted(set(os.listdir(ROOT)) - TOOL_CACHES)
    studies = {}
    for folder, _, files in os.walk(os.path.join(ROOT, "studies")):
        for name in files:
            path = os.path.join(folder, name)
            st = os.stat(path)
            studies[os.path.relpath(path, ROOT)] = (st.st_size, st.st_mtime_ns)
    return root, studies


@pytest.fixture(autouse=True)
def repository_untouched(away_from_the_repository):
    """Fails a test that wrote under the repository (a new entry in its root, a changed studies/)."""
    before = repository_snapshot()
    yield
    if os.path.realpath(os.getcwd()) != away_from_the_repository:  # the next tests would run wherever it went
        os.chdir(away_from_the_repository)
        pytest.fail("the test changed the working directory and left it changed: use monkeypatch.chdir")
    after = repository_snapshot()
    if after != before:
        added = sorted(set(after[0]) - set(before[0]))
        changed = sorted(k for k in set(before[1]) | set(after[1]) if before[1].get(k) != after[1].get(k))
        pytest.fail(f"the test wrote under the repository {ROOT}: new {added}, changed studies files {changed}")


@pytest.fixture
def nasx_cli():
    """The CLI in this process (run_nasx_here): tests that need a real process call run_nasx themselves."""
    return run_nasx_here


@pytest.fixture(scope="session")
def small_study(small_search):
    """url, study name, folder of small_search's study."""
    return small_search[:3]


@pytest.fixture(scope="session")
def small_search(tmp_path_factory):
    """One small real search shared by the inspect/export/report/dashboard/retime tests: cifar32 at 20M MAdds,
    10 trials (seed 2: 6 feasible, 4 rejected), short latency measurements, the front re-timed at the end, plus
    one failed trial added after; with its SearchResult."""
    import optuna

    from nasx.search.budgets import Budgets
    from nasx.search.run import search
    from nasx.search.settings import SearchSettings
    from nasx.space.config import load_space

    d = tmp_path_factory.mktemp("study")
    url = f"sqlite:///{d}/s.db"
    settings = SearchSettings(
        score="naswot",  # the score is not under test here: the cheapest data-free one
        space=load_space("cifar32"),
        budgets=Budgets(compute=20_000_000),
        storage=url,
        study_name="small",
        n_trials=10,
        seed=2,
        measure_time_s=0.2,
        progress=False,
    )
    with open(os.devnull, "w") as devnull:
        result = search(settings, out=devnull)
    result.study.add_trial(
        optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, system_attrs={"fail_reason": "simulated failure"})
    )
    return url, "small", d, result
