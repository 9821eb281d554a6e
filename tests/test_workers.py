"""Fault injection against the real PostgreSQL server on 127.0.0.1:5432 (database `test`, trust auth):
many workers on one study, a worker killed mid-trial, Ctrl-C and resume. Each test uses its own study."""

import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from tests.conftest import counted

PG = os.environ.get("NASX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def _pg_available() -> bool:
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(PG, connect_args={"connect_timeout": 3}).connect():
            return True
    except Exception:
        return False


pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not _pg_available(), reason=f"PostgreSQL not reachable at {PG}")]


def search_cmd(study, n_trials, *extra, storage=PG):
    return [
        sys.executable,
        "-m",
        "nasx",
        "search",
        "--score",
        "capacity",  # the score is not under test here: the default, which builds nothing
        "--config",
        "cifar32",
        "--budget",
        "12M",
        "--storage",
        storage,
        "--study",
        study,
        "--n-trials",
        str(n_trials),
        "--measure-time",
        "0.1",
        "--no-retime",  # the front's re-timing is tests/test_retime.py's; workers are under test here
        "--no-drift-correction",  # 0.3 s of calibration a trial; tests/test_latency.py tests the correction
        "--quiet",
        *extra,
    ]


@pytest.fixture
def study_name():
    name = f"pytest-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        optuna.delete_study(study_name=name, storage=PG)
    except KeyError:
        pass


def trials(name):
    return optuna.load_study(study_name=name, storage=PG).get_trials(deepcopy=False)


def wait_for(predicate, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_workers_six_trials_each(study_name, tmp_path):
    # --more: each process adds its 6 (without it, 6 is the study's total, which the three share)
    procs = [
        subprocess.Popen(
            search_cmd(study_name, 6, "--more"),
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=400)
        assert p.returncode == 0, err
    every = trials(study_name)
    assert sorted(t.number for t in every) == list(range(len(every)))
    ts = counted(every)  # re-sampled repeats of an architecture already held are stored beside them
    assert len(ts) == 18 and all(t.state in FINISHED for t in every)
    assert len({t.user_attrs["worker"] for t in ts}) == 3
    for t in ts:  # every completed trial's attrs are intact
        a = t.user_attrs
        assert {"arch", "arch_hash", "madds", "mac_elements", "params", "feasible", "worker"} <= set(a)
        if "repeat_of" in a:
            assert a["reason"].startswith("repeat of trial")
        elif t.state == optuna.trial.TrialState.COMPLETE:
            assert a["feasible"] is True and a["latency"]["median_ms"] == t.values[0] and "score" in a
        else:
            assert a["feasible"] is False and a["reason"]
    params = [tuple(sorted(t.params.items())) for t in ts]
    assert len(params) == 18


def test_sigkill_mid_trial_is_failed_and_retried(study_name, tmp_path):
    """Heartbeat 1 s, grace 3 s: a worker killed with SIGKILL leaves a RUNNING trial that a surviving
    worker fails and re-runs; nothing else is lost."""
    victim = subprocess.Popen(
        search_cmd(study_name, 40, "--heartbeat", "1"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    tag = f":{victim.pid}"

    def victim_running():
        return any(
            t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get("worker", "").endswith(tag)
            for t in _safe_trials(study_name)
        )

    def frozen_inside_a_trial():
        # Freeze first, then look: a trial can end between a look and a kill (rejections take milliseconds),
        # but not while the process is stopped.
        if len([t for t in _safe_trials(study_name) if t.state in FINISHED]) < 2:
            return False
        victim.send_signal(signal.SIGSTOP)
        if victim_running():
            return True
        victim.send_signal(signal.SIGCONT)
        return False

    wait_for(frozen_inside_a_trial, 120, "the victim to be inside a trial")
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    killed = [t for t in trials(study_name) if t.state == optuna.trial.TrialState.RUNNING]
    assert len(killed) == 1
    done_before = len([t for t in counted(trials(study_name)) if t.state in FINISHED])
    # the sweep's candidates the victim left queued run first, then the retry the survivor queues behind them
    left_queued = len([t for t in trials(study_name) if t.state == optuna.trial.TrialState.WAITING])
    assert all(t.user_attrs.get("swept") for t in trials(study_name) if t.state == optuna.trial.TrialState.WAITING)
    time.sleep(3.5)  # past the grace period
    survivor = subprocess.run(
        search_cmd(study_name, 3, "--heartbeat", "1", "--more"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert survivor.returncode == 0, survivor.stderr
    ts = trials(study_name)
    by_number = {t.number: t for t in ts}
    assert by_number[killed[0].number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in ts if t.system_attrs.get("failed_trial") == killed[0].number]
    assert len(retries) == 1 and retries[0].state in FINISHED
    # the retry keeps every choice the killed trial had made (it may have died mid-sampling) and completes it
    assert killed[0].params.items() <= retries[0].params.items()
    assert [t for t in ts if t.state == optuna.trial.TrialState.FAIL] == [by_number[killed[0].number]]
    assert len([t for t in counted(ts) if t.state in FINISHED]) == done_before + max(3, left_queued + 1)
    assert not [t for t in ts if t.state == optuna.trial.TrialState.WAITING]


def _safe_trials(name):
    try:
        return trials(name)
    except KeyError:  # the study is not created yet
        return []


def test_sigint_finishes_the_current_trial_and_resumes(study_name, tmp_path):
    p = subprocess.Popen(
        search_cmd(study_name, 200), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: len([t for t in _safe_trials(study_name) if t.state in FINISHED]) >= 3, 120, "3 trials")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "Resume with the same command" in out and "Traceback" not in err
    ts = trials(study_name)
    assert all(finished_or_queued_sweep(t) for t in ts), [t.state for t in ts]  # the current trial finished cleanly
    n = len([t for t in counted(ts) if t.state in FINISHED])
    queued = [t.number for t in ts if t.state == optuna.trial.TrialState.WAITING]
    again = subprocess.run(
        search_cmd(study_name, 2, "--more"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0 and "resuming study" in again.stderr
    ts = trials(study_name)
    assert len([t for t in counted(ts) if t.state in FINISHED]) == n + 2
    by_number = {t.number: t for t in ts}
    assert all(by_number[k].state in FINISHED for k in queued[:2])  # the sweep goes on where it stopped


def finished_or_queued_sweep(trial) -> bool:
    """Finished, or one of the sweep's candidates a stopped run left queued for the next (nasx.search.sweep)."""
    return trial.state in FINISHED or (trial.state == optuna.trial.TrialState.WAITING and trial.user_attrs["swept"])


def test_sigterm_is_handled_like_ctrl_c(study_name, tmp_path):
    p = subprocess.Popen(
        search_cmd(study_name, 200), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    wait_for(lambda: len([t for t in _safe_trials(study_name) if t.state in FINISHED]) >= 2, 120, "2 trials")
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    assert p.returncode == 130
    assert all(finished_or_queued_sweep(t) for t in trials(study_name))


def test_workers_option_splits_trials_exactly(study_name, tmp_path):
    r = subprocess.run(
        search_cmd(study_name, 5, "--workers", "2"), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    ts = counted(trials(study_name))
    assert len(ts) == 5 and all(t.state in FINISHED for t in ts)
    assert len({t.user_attrs["worker"] for t in ts}) == 2


def test_two_workers_on_sqlite_are_safe(tmp_path):
    url = f"sqlite:///{tmp_path}/w.db"
    r = subprocess.run(
        search_cmd("sq", 4, "--workers", "2", storage=url), cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stderr
    ts = counted(optuna.load_study(study_name="sq", storage=url).trials)
    assert len(ts) == 4 and all(t.state in FINISHED for t in ts)


START_AT_ONCE = """
import sys
from nasx.search.budgets import Budgets
from nasx.search.settings import SearchSettings
from nasx.search.study import open_study
from nasx.space.config import load_space
from nasx.store.db import Store
print("ready", flush=True)
sys.stdin.readline()  # every worker starts at the same instant: when the test writes to all of them
Store(sys.argv[1])
open_study(SearchSettings(space=load_space("cifar32"), budgets=Budgets(), storage=sys.argv[1], study_name="s"))
"""


def test_workers_starting_at_once_on_an_empty_database():
    """Several workers opening one new PostgreSQL database at the same instant all create the tables at once;
    the losers of that race (duplicate key in pg_type) must retry, not exit (CI hit this on a fresh server)."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT")
    # the race needs 4 free connection slots at one instant: on a slow machine, worker processes of the tests
    # before this one may still be closing theirs (CI once met "too many clients already" here)
    deadline = time.time() + 60
    with admin.connect() as c:
        limit = int(c.exec_driver_sql("SHOW max_connections").scalar())
        while (used := c.exec_driver_sql("SELECT count(*) FROM pg_stat_activity").scalar()) > limit - 10:
            if time.time() > deadline:
                pytest.skip(f"the PostgreSQL server has {used} of {limit} connections in use by others after 60 s")
            time.sleep(1)
    for _ in range(3):
        db = f"nasx_race_{uuid.uuid4().hex[:8]}"
        with admin.connect() as c:
            c.exec_driver_sql(f"CREATE DATABASE {db}")
        url = PG.rsplit("/", 1)[0] + "/" + db
        try:
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", START_AT_ONCE, url],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(4)
            ]
            # released once every interpreter has imported nasx and optuna (a fixed wait cost 4 s a round)
            assert all(p.stdout.readline() == "ready\n" for p in procs)
            for p in procs:
                p.stdin.write("go\n")
                p.stdin.flush()
            for p in procs:
                _, err = p.communicate(timeout=120)
                assert p.returncode == 0, err
            assert "s" in optuna.get_all_study_names(url)
        finally:
            sqlalchemy.create_engine(url).dispose()
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
