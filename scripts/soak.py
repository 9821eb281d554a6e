"""Soak: a long search under the faults of a shared machine, checked from the database alone.

Runs `nasx search` on cifar32 (score capacity, which builds nothing; latency capped at --measure-time; no drift
correction) as --workers independent commands on one study, the way several shells or hosts share one: every
--kill-every seconds (±25%, seeded; the first at the latest once a quarter of the trials are finished) one
worker picked at random is SIGKILLed and a replacement started; with
--restart-db the local PostgreSQL server is restarted once, when half the trials are finished (workers wait
for it and say so in one line; one that exits with an error line instead is started again). When every worker
is done, the same command is run once more, as a user resumes: it fails the trials of killed workers whose
heartbeat went silent after the others stopped, and runs their retries.

Then the database alone is checked and a table printed: trials finished against --trials, kills, retries,
trials left RUNNING or WAITING (0), FAIL trials that are not a killed worker's (0: every FAIL must be named
by a retry and, where it got so far, carry the pid of a worker this script killed), finished trials missing
an attr (0), cache rows whose architecture is neither a trial's nor the reference the re-timing used (0),
the stored front against the front recomputed from the trials, and tracebacks in the workers' output (0).
`lost` sums the counts that must be 0; the exit status is 1 when it is not.

SQLite (--storage sqlite:///FILE, --workers 2): the same with no server to restart, plus a second command of
its own study started on the same file at the same time, whose trials must all be stored too.

Sampler: random, by measurement (this 2-core machine, 4 workers, kills every 60 s). TPE held ~1.1 trials/s up
to 1,000 trials while repeats were evaluated; since a proposal of an architecture the study holds is re-sampled
and not counted, TPE's four workers converge on cifar32 @ 12M: after 9 minutes 339 counted trials and 1,538
repeats, the rate down from 1.2/s to 0.3/s and falling (37 more minutes for the rest at best). Random proposals
rarely repeat and cost the same at any study size; the faults under test do not depend on the sampler (--sampler
tpe runs them with TPE).

    python scripts/soak.py [--trials 1000] [--workers 4] [--kill-every 60] [--restart-db]
                           [--storage URL] [--json FILE] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna
import sqlalchemy

from nasx.search.objective import is_uncounted_repeat
from nasx.search.retime import nearest_zoo

SERVER = "postgresql://postgres@127.0.0.1:5432"
FINISHED = ("COMPLETE", "PRUNED")
COMPLETE_ATTRS = ("arch", "arch_hash", "madds", "mac_elements", "params", "feasible", "worker", "latency", "score")
PRUNED_ATTRS = ("arch", "feasible", "reason", "worker")
MAX_RETRY = 2  # nasx.search.study's RetryHeartbeatStaleTrialCallback(max_retry=2)


def search_cmd(args, study: str, n_trials: int, seed: int, budget: str = "12M") -> list[str]:
    cmd = [sys.executable, "-m", "nasx", "search", "--config", "cifar32", "--budget", budget, "--score", "capacity"]
    cmd += ["--measure-time", str(args.measure_time), "--no-drift-correction", "--storage", args.storage]
    cmd += ["--study", study, "--n-trials", str(n_trials), "--sampler", args.sampler, "--seed", str(seed)]
    cmd += ["--heartbeat", str(args.heartbeat), "--quiet"]
    return cmd + ([] if args.retime else ["--no-retime"])


class Workers:
    """The worker processes, their logs, and what was done to them."""

    def __init__(self, args, logs: Path):
        self.args, self.logs = args, logs
        self.env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        }
        self.env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // args.workers))
        self.live: list[subprocess.Popen] = []
        self.started = 0
        self.killed: set[int] = set()
        self.errors: list[str] = []  # the last line of each worker that exited with an error
        self.errored: set[int] = set()  # their pids

    def start(self) -> None:
        i = self.started
        self.started += 1
        log = open(self.logs / f"worker{i}.log", "w")  # closed when the process is reaped
        p = subprocess.Popen(
            search_cmd(self.args, self.args.study, self.args.trials, self.args.seed * 1000 + i),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.logs,
        )
        p.log = log  # type: ignore[attr-defined]
        self.live.append(p)

    def kill_one(self, rng: random.Random, more_to_do: bool) -> None:
        """SIGKILL a worker picked at random; start a replacement while the study needs trials."""
        p = rng.choice(self.live)
        p.send_signal(signal.SIGKILL)
        p.wait()
        self.killed.add(p.pid)
        self._reap(p)
        if more_to_do:
            self.start()

    def _reap(self, p) -> None:
        self.live.remove(p)
        p.log.close()

    def poll(self, more_to_do: bool) -> None:
        """Reap the workers that exited; one that failed is started again while the study needs trials."""
        for p in [p for p in self.live if p.poll() is not None]:
            self._reap(p)
            if p.returncode != 0:
                self.errored.add(p.pid)
                lines = Path(p.log.name).read_text().strip().splitlines()
                self.errors.append(f"exit {p.returncode}: {lines[-1] if lines else '(no output)'}")
                if more_to_do:
                    self.start()

    def stop_all(self) -> None:
        for p in list(self.live):
            p.send_signal(signal.SIGINT)
        for p in list(self.live):
            p.wait(60)
            self._reap(p)

    def output(self) -> str:
        return "\n".join(f.read_text() for f in sorted(self.logs.glob("*.log")))


def counts(engine, study: str) -> tuple[int, int, int]:
    """(finished, waiting, running) trials of `study`, finished as --n-trials counts them (not re-sampled
    repeats: nasx.search.objective.is_uncounted_repeat); (-1, -1, -1) while the server is away."""
    q = sqlalchemy.text(
        "SELECT t.state, count(*) - count(a.trial_id) FROM trials t JOIN studies s ON s.study_id = t.study_id "
        "LEFT JOIN trial_user_attributes a ON a.trial_id = t.trial_id AND a.key = 'repeat_counted' "
        "AND a.value_json = 'false' WHERE s.study_name = :n GROUP BY t.state"
    )
    try:
        with engine.connect() as c:
            rows = dict(c.execute(q, {"n": study}).all())
    except sqlalchemy.exc.SQLAlchemyError:
        return -1, -1, -1
    return sum(rows.get(s, 0) for s in FINISHED), rows.get("WAITING", 0), rows.get("RUNNING", 0)


def restart_command(url: str) -> list[str]:
    """pg_ctlcluster's restart of the local cluster serving `url`'s port."""
    u = sqlalchemy.engine.make_url(url)
    if u.get_backend_name() != "postgresql" or u.host not in (None, "127.0.0.1", "localhost", "::1"):
        sys.exit(f"soak.py: error: --restart-db restarts a local PostgreSQL server; {u.host} is not local")
    try:
        listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        sys.exit("soak.py: error: --restart-db needs pg_lsclusters/pg_ctlcluster (Debian's postgresql-common)")
    for line in listing.splitlines():
        version, name, port = line.split()[:3]
        if int(port) == (u.port or 5432):
            return ["pg_ctlcluster", version, name]
    sys.exit(f"soak.py: error: no local PostgreSQL cluster on port {u.port or 5432} (pg_lsclusters)")


def server_online(cluster: list[str]) -> bool:
    listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True).stdout.splitlines()
    return any(line.split()[:2] == cluster[1:] and "online" in line for line in listing)


def restart_db(cluster: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([*cluster, "restart"], check=True, capture_output=True)
    return time.perf_counter() - t0


def pid_of(t) -> int | None:
    worker = t.user_attrs.get("worker")
    return int(worker.rsplit(":", 1)[1]) if worker else None


def check(url: str, study_name: str, n: int, killed: set[int], errored: set[int]) -> dict:
    """The figures of the table, read from the database alone (killed: pids this script SIGKILLed)."""
    study = optuna.load_study(study_name=study_name, storage=url)
    trials = study.get_trials(deepcopy=False)
    by_state: dict[str, list] = {}
    for t in trials:
        by_state.setdefault(t.state.name, []).append(t)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    fails = by_state.get("FAIL", [])
    # a killed worker's FAIL: it carries the pid of a worker killed (or exited with an error line), or, killed
    # before its first attr, it is part of a retry chain
    not_killed = [
        t
        for t in fails
        if pid_of(t) not in killed | errored
        and not (pid_of(t) is None and (t.number in retried or "failed_trial" in t.system_attrs))
    ]
    # every killed trial is retried, up to the 2 retries nasx allows (a trial killed 3 times is given up: an
    # architecture that gets its worker OOM-killed every time must not loop for ever)
    unretried = [t for t in fails if t.number not in retried and t not in not_killed]
    given_up = [t for t in unretried if len(t.system_attrs.get("retry_history", [])) >= MAX_RETRY]
    missing = [
        t
        for t in trials
        if (t.state.name == "COMPLETE" and not set(COMPLETE_ATTRS) <= set(t.user_attrs))
        or (t.state.name == "PRUNED" and not set(PRUNED_ATTRS) <= set(t.user_attrs))
    ]
    # cache rows: every architecture timed or scored is some trial's (of any study here) or a re-timing reference
    storage = optuna.storages.RDBStorage(url)
    known = set()
    for s in storage.get_all_studies():
        for t in storage.get_all_trials(s._study_id, deepcopy=False):
            known.add(t.user_attrs.get("arch_hash"))
        a = s.user_attrs
        if "retime_reference" in a and a.get("budget"):
            known.add(nearest_zoo(tuple(a["input"]), a["budget"], a.get("budget_metric", "madds")).content_hash())
    engine = sqlalchemy.create_engine(url)
    with engine.connect() as c:
        cached = [
            r[0]
            for tbl in ("nasx_latency_cache", "nasx_score_cache")
            for r in c.exec_driver_sql(f"SELECT arch_hash FROM {tbl}")
        ]
        snapshot = c.execute(
            sqlalchemy.text("SELECT trials FROM nasx_pareto WHERE study = :n ORDER BY id DESC LIMIT 1"),
            {"n": study_name},
        ).first()
    engine.dispose()
    orphans = [h for h in cached if h not in known]
    stored = study.user_attrs.get("pareto_front")
    recomputed = recompute_front(trials)
    front_ok = (
        stored is not None
        and set(stored) == recomputed
        and snapshot is not None
        and set(json.loads(snapshot[0]) if isinstance(snapshot[0], str) else snapshot[0]) == recomputed
    )
    finished = sum(not is_uncounted_repeat(t) for s in FINISHED for t in by_state.get(s, []))
    figures = {
        "trials_expected": n,
        "trials_finished": finished,
        "repeats": sum(map(is_uncounted_repeat, trials)),
        "short": max(0, n - finished),
        "retries": sum(1 for t in trials if "failed_trial" in t.system_attrs),
        "fail": len(fails),
        "running_left": len(by_state.get("RUNNING", [])),
        "waiting_left": len(by_state.get("WAITING", [])),
        "fail_not_killed": len(not_killed),
        "not_retried": len(unretried) - len(given_up),
        "given_up_after_2_retries": len(given_up),
        "missing_attrs": len(missing),
        "orphan_cache_rows": len(orphans),
        "front_size": len(recomputed),
        "front_mismatch": 0 if front_ok else 1,
    }
    return figures


def recompute_front(trials) -> set[int]:
    """Feasible trials, the first of each architecture, on (shown latency: the re-timed one where the search
    re-timed it, else the first measurement; score): the non-dominated ones' numbers."""
    points: dict[str, tuple[int, float, float]] = {}
    for t in sorted(trials, key=lambda t: t.number):
        a = t.user_attrs
        if t.state.name != "COMPLETE" or not a.get("feasible") or a["arch_hash"] in points:
            continue
        latency = a["latency_confirmed"]["median_ms"] if a.get("latency_confirmed") else t.values[0]
        points[a["arch_hash"]] = (t.number, latency, t.values[1])
    pts = list(points.values())
    return {
        n
        for n, lat, score in pts
        if not any(l2 <= lat and s2 >= score and (l2, s2) != (lat, score) for _, l2, s2 in pts)
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=1000, help="the study's --n-trials")
    ap.add_argument("--workers", type=int, default=4, help="nasx search commands at once (SQLite: use 2)")
    ap.add_argument("--kill-every", type=float, default=60.0, help="seconds between SIGKILLs (±25%%, seeded)")
    ap.add_argument("--restart-db", action="store_true", help="restart the local PostgreSQL server once mid-run")
    ap.add_argument("--storage", help=f"storage URL (default: a fresh database nasx_soak on {SERVER})")
    ap.add_argument("--study", help="study name (default: soak-<time>)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill times, the victims and the workers' samplers")
    ap.add_argument("--sampler", default="random", choices=("random", "tpe", "nsga2"), help="see above")
    ap.add_argument("--measure-time", type=float, default=0.05, help="each candidate's latency cap, s")
    ap.add_argument("--heartbeat", type=int, default=10, help="the workers' --heartbeat")
    ap.add_argument("--no-retime", dest="retime", action="store_false", help="the workers' --no-retime")
    ap.add_argument("--max-minutes", type=float, default=60.0, help="give up (and say so) after this long")
    args = ap.parse_args()
    if args.storage is None:
        admin = sqlalchemy.create_engine(f"{SERVER}/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.exec_driver_sql("DROP DATABASE IF EXISTS nasx_soak WITH (FORCE)")
            c.exec_driver_sql("CREATE DATABASE nasx_soak")
        admin.dispose()
        args.storage = f"{SERVER}/nasx_soak"
    sqlite = args.storage.startswith("sqlite")
    if sqlite and args.restart_db:
        sys.exit("soak.py: error: --restart-db restarts a PostgreSQL server; SQLite has none (leave it out)")
    cluster = restart_command(args.storage) if args.restart_db else None
    args.study = args.study or f"soak-{int(time.time())}"
    rng = random.Random(args.seed)
    logs = Path(tempfile.mkdtemp(prefix="nasx-soak-"))
    workers = Workers(args, logs)
    engine = sqlalchemy.create_engine(args.storage, pool_pre_ping=True)
    print(
        f"soak: {args.trials} trials, {args.workers} workers, a kill every {args.kill_every:.0f} s, "
        f"{'one database restart, ' if cluster else ''}{args.storage}, study {args.study}, logs {logs}",
        flush=True,
    )
    other = None
    if sqlite:  # a second, independent command on the same file at the same time
        with open(logs / "other.log", "w") as log:
            other = subprocess.Popen(
                search_cmd(args, f"{args.study}-other", max(4, args.trials // 10), args.seed, budget="20M"),
                stdout=subprocess.DEVNULL,
                stderr=log,
                env=workers.env,
                cwd=logs,
            )
    start = time.perf_counter()
    for _ in range(args.workers):
        workers.start()
    kills, restarts, restart_s, last_kill, shown = 0, 0, 0.0, 0.0, start
    next_kill = start + args.kill_every * rng.uniform(0.75, 1.25)
    finished = waiting = 0
    try:
        while workers.live:
            time.sleep(0.5)
            now = time.perf_counter()
            f, w, _ = counts(engine, args.study)
            if f >= 0:
                finished, waiting = f, w
            more_to_do = finished < args.trials or waiting > 0
            workers.poll(more_to_do)
            if not workers.live:
                break
            # a run quicker than --kill-every still gets a kill, before the restart: a soak that kills nothing
            # tests nothing (a 24-trial soak once finished before its first kill was due)
            if now >= next_kill or (not kills and more_to_do and finished >= args.trials // 4):
                workers.kill_one(rng, more_to_do)
                kills, last_kill = kills + 1, now
                next_kill = now + args.kill_every * rng.uniform(0.75, 1.25)
            if cluster and not restarts and finished >= args.trials // 2:
                restart_s = restart_db(cluster)
                restarts += 1
                print(f"soak: restarted the PostgreSQL server ({restart_s:.1f} s) at {finished} finished", flush=True)
            if now - shown >= 30:
                shown = now
                print(
                    f"soak: {now - start:.0f} s, {finished}/{args.trials} finished, {len(workers.live)} workers, "
                    f"{kills} kills",
                    flush=True,
                )
            if now - start > args.max_minutes * 60:
                print(f"soak: gave up after {args.max_minutes:.0f} minutes", flush=True)
                break
    finally:
        workers.stop_all()
        if cluster and not server_online(cluster):
            subprocess.run([*cluster, "start"])  # never leave the server down
    # the resume: a trial left RUNNING by a kill less than 3 heartbeats before the end is stale only after that
    if counts(engine, args.study)[2]:
        time.sleep(max(0.0, last_kill + 3 * args.heartbeat + 1 - time.perf_counter()))
    resume = subprocess.run(
        search_cmd(args, args.study, args.trials, args.seed * 1000 + workers.started),
        capture_output=True,
        text=True,
        env=workers.env,
        cwd=logs,
    )
    (logs / "resume.log").write_text(resume.stdout + resume.stderr)
    elapsed = time.perf_counter() - start
    engine.dispose()
    fig = check(args.storage, args.study, args.trials, workers.killed, workers.errored)
    out = workers.output() + (logs / "resume.log").read_text()
    fig.update(
        kills=kills,
        db_restarts=restarts,
        db_restart_s=round(restart_s, 1),
        reconnects=out.count("nasx: lost the storage"),
        worker_error_exits=len(workers.errors),
        tracebacks=out.count("Traceback (most recent call last)"),
        resume_exit=resume.returncode,
        minutes=round(elapsed / 60, 1),
        workers=args.workers,
        sampler=args.sampler,
    )
    if other is not None:
        other.wait()
        o = optuna.load_study(study_name=f"{args.study}-other", storage=args.storage).get_trials(deepcopy=False)
        fig["other_expected"] = max(4, args.trials // 10)
        fig["other_finished"] = sum(t.state.name in FINISHED for t in o)
        fig["other_lost"] = (
            (other.returncode != 0)
            + sum(t.state.name not in FINISHED for t in o)
            + max(0, fig["other_expected"] - fig["other_finished"])
        )
        fig["tracebacks"] += (logs / "other.log").read_text().count("Traceback (most recent call last)")
    zero = ["short", "running_left", "waiting_left", "fail_not_killed", "not_retried", "missing_attrs"]
    zero += ["orphan_cache_rows"]
    fig["lost"] = sum(fig[k] for k in zero) + fig["front_mismatch"] + fig["tracebacks"] + fig.get("other_lost", 0)
    fig["lost"] += resume.returncode != 0
    print_table(fig)
    for e in workers.errors:
        print(f"  worker error exit: {e}")
    if args.json:
        Path(args.json).write_text(json.dumps(fig, indent=1) + "\n")
    print(f"logs: {logs}")
    return 0 if fig["lost"] == 0 else 1


def print_table(f: dict) -> None:
    rows = [
        ("trials finished (of --trials)", f"{f['trials_finished']} of {f['trials_expected']}"),
        ("re-sampled repeats (not counted)", f["repeats"]),
        ("workers killed (SIGKILL)", f["kills"]),
        ("killed trials retried", f["retries"]),
        ("database restarts", f"{f['db_restarts']} ({f['db_restart_s']} s)" if f["db_restarts"] else 0),
        ("worker reconnects / error exits", f"{f['reconnects']} / {f['worker_error_exits']}"),
        ("trials left RUNNING or WAITING", f["running_left"] + f["waiting_left"]),
        ("FAIL trials not a killed worker's", f"{f['fail_not_killed']} (of {f['fail']} FAIL)"),
        ("killed trials not retried", f"{f['not_retried']} ({f['given_up_after_2_retries']} killed 3 times: given up)"),
        ("finished trials missing an attr", f["missing_attrs"]),
        ("cache rows of no trial or reference", f["orphan_cache_rows"]),
        ("stored front = recomputed front", f"{'yes' if not f['front_mismatch'] else 'NO'} ({f['front_size']} trials)"),
        ("tracebacks in the workers' output", f["tracebacks"]),
        ("the final resume", "exit 0" if f["resume_exit"] == 0 else f"exit {f['resume_exit']}"),
    ]
    if "other_expected" in f:
        rows.append(("independent command, same file", f"{f['other_finished']} of {f['other_expected']} stored"))
    rows.append(("lost", f["lost"]))
    width = max(len(r[0]) for r in rows)
    print(f"\nsoak: {f['workers']} workers, sampler {f['sampler']}, {f['minutes']} min")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    sys.exit(main())
