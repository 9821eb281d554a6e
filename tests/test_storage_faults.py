"""The storage failing under a search, in process: a server that goes away is waited for and announced in
one line each way, then given up on in one line; a full disk and Optuna's wrapped errors are one line; a trial
another worker failed as stale does not stop this one; a resumed command retries the trials of a killed process
even when the study already holds its total.
The same faults end to end, for minutes: tests/test_soak.py."""

import io
import os
import time

import optuna
import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from nasx.errors import StorageError
from nasx.search.budgets import Budgets
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space
from nasx.store import reconnect
from nasx.store.db import explain, storage_failure
from nasx.store.reconnect import Reconnect, server_unreachable

PG_GONE = OperationalError("SELECT 1", {}, Exception("server closed the connection unexpectedly"))
DISK_FULL = OperationalError("INSERT", {}, Exception("database or disk is full"))


def test_a_server_that_comes_back_is_waited_for_and_announced_once(monkeypatch):
    monkeypatch.setattr(reconnect, "BACKOFF_S", (0.01,))
    out, calls = io.StringIO(), []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise PG_GONE
        return "ok"

    r = Reconnect("postgresql://me@db:5432/nasx", out=out)
    assert r.call(flaky) == "ok" and len(calls) == 4
    calls.clear()  # the restart flickers: a connection of the pool dies on its next use, just after
    assert r.call(flaky) == "ok" and len(calls) == 4
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("nasx: lost the storage db:5432/nasx (server closed the connection")
    assert "me@" not in out.getvalue() and "is back after" in lines[1]
    r.back_at -= reconnect.SETTLE_S  # long after: a new outage, said again
    calls.clear()
    assert r.call(flaky) == "ok" and len(out.getvalue().splitlines()) == 4


def test_a_server_gone_past_the_wait_is_one_line(monkeypatch):
    monkeypatch.setattr(reconnect, "BACKOFF_S", (0.01,))

    def gone():
        raise PG_GONE

    r = Reconnect("postgresql://db/nasx", limit_s=0.05, out=io.StringIO())
    with pytest.raises(StorageError, match=r"lost the storage postgresql://db/nasx for 0 s .*re-run the same command"):
        r.call(gone)


def test_what_waiting_cannot_cure_passes_at_once():
    r = Reconnect("postgresql://db/nasx", out=io.StringIO())
    for err in (DISK_FULL, IntegrityError("INSERT", {}, Exception("duplicate key"))):

        def fails(err=err):
            raise err

        with pytest.raises(type(err)):
            r.call(fails)
    assert not server_unreachable(DISK_FULL) and server_unreachable(PG_GONE)
    sqlite = Reconnect("sqlite:///x.db", out=io.StringIO())  # no server to wait for
    with pytest.raises(OperationalError):
        sqlite.call(lambda: (_ for _ in ()).throw(PG_GONE))


def test_a_full_disk_is_one_line_naming_the_disk(tmp_path):
    e = explain(f"sqlite:///{tmp_path}/s.db", DISK_FULL)
    assert f"the disk holding {tmp_path.resolve()} is full" in str(e) and "re-run the same command" in str(e)
    assert "database server's disk is full" in str(explain("postgresql://db/x", DISK_FULL))
    # Optuna wraps the driver's error, and fails the trial meeting it again: the line is found in the chain
    try:
        try:
            raise optuna.exceptions.StorageInternalError("An exception is raised during the commit.") from DISK_FULL
        except Exception:
            raise UnboundLocalError("updated_state")  # noqa: B904 (as optuna 5.1's _run_trial raises it: no from)
    except Exception as err:
        assert "is full" in str(storage_failure(f"sqlite:///{tmp_path}/s.db", err))
    assert storage_failure("sqlite:///x.db", KeyError("x")) is None


def settings(url, n, **kw):
    return SearchSettings(
        space=load_space("cifar32"),
        budgets=Budgets(compute=12_000_000),
        storage=url,
        study_name="s",
        n_trials=n,
        seed=0,
        sampler="random",
        measure_time_s=0.05,
        drift_correction=False,
        retime=False,
        progress=False,
        heartbeat_s=1,
        **kw,
    )


def test_a_trial_failed_by_another_worker_does_not_stop_this_one(tmp_path, monkeypatch, capfd):
    """A storage away for more than 3 heartbeats: another worker fails this one's running trial as stale and
    queues its retry; this worker's result cannot be told, and it goes on with the next trial."""
    from nasx.search import run

    real = run.Objective.__call__
    done = []

    def failed_meanwhile(self, trial):
        if not done:
            done.append(trial.number)
            trial.storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        return real(self, trial)

    monkeypatch.setattr(run.Objective, "__call__", failed_meanwhile)
    out = io.StringIO()
    result = run.search(settings(f"sqlite:///{tmp_path}/s.db", 4), out=out)
    assert "failed by another worker" in out.getvalue() and "Traceback" not in capfd.readouterr().err
    states = [t.state.name for t in result.study.trials]
    assert states[0] == "FAIL" and states.count("FAIL") == 1
    assert sum(s in ("COMPLETE", "PRUNED") for s in states) == 4


def test_a_resume_retries_a_killed_trial_when_the_total_is_reached(tmp_path):
    """A worker killed as the others finished the total: its RUNNING trial turns stale after 3 heartbeats (one
    killed before its first heartbeat too); the same command run again fails it and runs its retry, though the
    study holds its total already."""
    from nasx.search.run import search

    url = f"sqlite:///{tmp_path}/s.db"
    first = search(settings(url, 3), out=io.StringIO())
    with pytest.warns(UserWarning, match="Heartbeat"):  # optuna's: asked outside optimize, as a test does
        killed = first.study.ask()  # a trial whose process died: RUNNING, one heartbeat, never another
        unborn = first.study.ask()  # killed between creating its trial and the first beat: no heartbeat at all
    first.study._storage.record_heartbeat(killed._trial_id)
    time.sleep(4.2)  # more than 3 heartbeats of silence, on SQLite's whole-second clock: stale
    out = io.StringIO()
    again = search(settings(url, 3), out=out)
    assert "running the 2 retries of interrupted trials" in out.getvalue()
    ts = again.study.trials
    for dead in (killed, unborn):
        assert ts[dead.number].state.name == "FAIL"
        retry = [t for t in ts if t.system_attrs.get("failed_trial") == dead.number]
        assert len(retry) == 1 and retry[0].state.name in ("COMPLETE", "PRUNED")
    assert not [t for t in ts if t.state.name in ("RUNNING", "WAITING")]
    assert os.path.exists(tmp_path / "s.db")


def test_two_workers_timing_one_arch_at_once_share_the_first_stored_latency(tmp_path, monkeypatch):
    """Both missed the cache and timed it; the second's insert loses: it takes the stored number, so the two
    trials of one arch carry one latency (the 300-trial SQLite soak found its stored front listing an arch by a
    trial whose duplicate, timed apart, showed another latency)."""
    from nasx.arch import zoo_arch
    from nasx.measure import cached
    from nasx.store.db import Store

    store = Store(f"sqlite:///{tmp_path}/s.db")
    timer = cached.Timer.here(store, (3, 224, 224), drift_correction=False)
    arch = zoo_arch("mobilenet_v2")

    def timed_while_the_other_stores(*args, **kwargs):
        store.put_latency(arch.content_hash(), timer.fp_hash, timer.fp, {"median_ms": 12.5, "from": "the other"})
        return {"median_ms": 7.0}

    monkeypatch.setattr(cached, "timed", timed_while_the_other_stores)
    m = timer.measure(arch, module=object())
    assert m.latency == {"median_ms": 12.5, "from": "the other"} and not m.cached
