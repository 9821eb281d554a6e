"""Faults together, end to end, in short: scripts/soak.py on the local PostgreSQL server (workers SIGKILLed every
few seconds, the server restarted mid-run; nothing lost, checked from the database alone), and a full disk under
an SQLite study (one line naming the disk, nothing half-written, the same command resumes once space is freed).
The full soak (1,000 trials, kills every minute) and its table: docs/workers.md "Soak"."""

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import optuna
import pytest
from conftest import ROOT, run_nasx_here

PG = os.environ.get("NASX_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
SOAK = Path(ROOT) / "scripts" / "soak.py"


def _pg_available() -> bool:
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(PG, connect_args={"connect_timeout": 3}).connect():
            return True
    except Exception:
        return False


def _cluster() -> list[str] | None:
    """pg_ctlcluster VERSION NAME of the local cluster serving PG's port; None where there is none to restart."""
    if not shutil.which("pg_lsclusters") or os.geteuid() != 0:
        return None
    port = str(__import__("sqlalchemy").engine.make_url(PG).port or 5432)
    for line in subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.splitlines():
        version, name, p = line.split()[:3]
        if p == port:
            return ["pg_ctlcluster", version, name]
    return None


@pytest.fixture
def fresh_database():
    import sqlalchemy

    # no pooled connection: the test restarts the server under it
    admin = sqlalchemy.create_engine(PG, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    db = f"nasx_soak_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.exec_driver_sql(f"CREATE DATABASE {db}")
    yield PG.rsplit("/", 1)[0] + "/" + db
    with admin.connect() as c:
        c.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(not _pg_available(), reason=f"PostgreSQL not reachable at {PG}")
@pytest.mark.skipif(
    _cluster() is None, reason="no local PostgreSQL cluster this test may restart (pg_ctlcluster, root)"
)
def test_short_soak_kills_and_a_server_restart_lose_nothing(fresh_database, tmp_path):
    cluster = _cluster()
    try:
        r = subprocess.run(
            [sys.executable, str(SOAK), "--trials", "16", "--workers", "2", "--kill-every", "3", "--restart-db"]
            # heartbeat 2: a trial is stale after 6 s of silence, longer than the restart keeps workers waiting
            + ["--storage", fresh_database, "--heartbeat", "2", "--no-retime", "--json", str(tmp_path / "s.json")],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
        )
    finally:  # whatever happened, the server other tests use is running
        subprocess.run([*cluster, "start"], capture_output=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    f = json.loads((tmp_path / "s.json").read_text())
    assert f["lost"] == 0 and f["db_restarts"] == 1 and f["kills"] >= 1, f
    assert f["trials_finished"] >= 16 and f["running_left"] == f["waiting_left"] == f["tracebacks"] == 0
    assert "stored front = recomputed front      yes" in r.stdout


def _mount_tmpfs(where: Path, size: str) -> None:
    where.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, text=True
    )
    if r.returncode != 0:
        pytest.skip(
            f"this machine refuses to mount a small tmpfs for the full disk ({r.stderr.strip() or 'mount failed'})"
        )


def test_a_full_disk_stops_the_search_in_one_line_and_the_same_command_resumes(tmp_path):
    """The study on an 8 MB tmpfs of its own, 6.5 MB of it taken by a filler: the search's own writes fill it
    within a few trials. One line names the disk, exit 2, no traceback; the trials stored are intact; with the
    filler removed the same command finishes the study, retrying the trial the full disk cut short."""
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small filesystem to fill")
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "8m")
    try:
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (6 * 1024 + 512) * 1024)
        url = f"sqlite:///{disk}/s.db"
        cmd = ["search", "--config", "cifar32", "--budget", "12M", "--storage", url, "--study", "d", "--n-trials", "14"]
        cmd += ["--sampler", "random", "--seed", "0", "--measure-time", "0.05", "--no-drift-correction", "--no-retime"]
        cmd += ["--heartbeat", "1", "--quiet"]
        full = run_nasx_here(*cmd, cwd=tmp_path)
        assert full.returncode == 2, full.stdout + full.stderr
        assert "Traceback" not in full.stderr
        error = [line for line in full.stderr.splitlines() if "error" in line]
        assert error == [
            f"nasx search: error: storage '{url}': the disk holding {disk.resolve()} is full (database or disk is "
            f"full); free space on it and re-run the same command: every completed trial is stored and the search "
            f"resumes"
        ], full.stderr
        before = optuna.load_study(study_name="d", storage=url).trials
        done = [t for t in before if t.state.name in ("COMPLETE", "PRUNED")]
        # the trial the full disk cut short is RUNNING (its state could not be written) or FAIL (it could)
        assert 0 < len(done) < 14 and all(t.state.name in ("COMPLETE", "PRUNED", "RUNNING", "FAIL") for t in before)
        (disk / "filler").unlink()
        time.sleep(4.2)  # > 3 heartbeats (SQLite's clock counts whole seconds): the cut-short trial is stale
        again = run_nasx_here(*cmd, cwd=tmp_path)
        assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr
        ts = optuna.load_study(study_name="d", storage=url).trials
        assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in ts) >= 14
        assert not [t for t in ts if t.state.name in ("RUNNING", "WAITING")]
        for t in done:  # what was stored before the disk filled is unchanged
            assert ts[t.number].state == t.state and ts[t.number].user_attrs == t.user_attrs
        for t in ts:  # nothing half-written: a finished trial has all its attrs, a FAIL one was retried
            if t.state.name == "COMPLETE":
                assert {"arch", "arch_hash", "latency", "score", "worker", "feasible"} <= set(t.user_attrs)
            elif t.state.name == "PRUNED":
                assert {"arch", "feasible", "reason"} <= set(t.user_attrs)
            else:  # FAIL: not counted, so the total above was reached without it; a stale one was retried
                assert t.state.name == "FAIL", t
                if t.number < len(before) and before[t.number].state.name == "RUNNING":
                    assert any(u.system_attrs.get("failed_trial") == t.number for u in ts), t
    finally:
        if subprocess.run(["umount", str(disk)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True)
