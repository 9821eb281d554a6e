"""Trials per minute of `nasx search` with 1, 2 and 4 workers on one host, PostgreSQL storage.

Creates a scratch database (dropped at the end) on the server so every run starts with an empty latency
cache. Latency timing is serialised host-wide (exclusive lock), cost evaluation and sampling are not,
scoring overlaps other scoring but not timing: expect rejections and scoring to scale, timing not.

    python scripts/bench_workers.py [--server postgresql://postgres@127.0.0.1:5432] [--trials 24]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import optuna
import sqlalchemy


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    ap.add_argument("--trials", type=int, default=24, help="trials per run (split between the workers)")
    ap.add_argument("--config", default="mobile224")
    ap.add_argument("--budget", default="300M")
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    admin = sqlalchemy.create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
    rows = []
    for workers in map(int, args.workers.split(",")):
        db = f"nasx_bench_{workers}"
        with admin.connect() as c:
            c.exec_driver_sql(f"DROP DATABASE IF EXISTS {db}")
            c.exec_driver_sql(f"CREATE DATABASE {db}")
        url = f"{args.server}/{db}"
        try:
            cmd = [
                sys.executable,
                "-m",
                "nasx",
                "search",
                "--config",
                args.config,
                "--budget",
                args.budget,
                "--storage",
                url,
                "--study",
                "bench",
                "--n-trials",
                str(args.trials),
                "--seed",
                "0",
                "--quiet",
            ]
            if workers > 1:
                cmd += ["--workers", str(workers)]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if r.returncode != 0:
                print(r.stderr, file=sys.stderr)
                return 1
            trials = optuna.load_study(study_name="bench", storage=url).trials
            feasible = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            measure = sum(t.user_attrs.get("time_measure_s", 0) for t in feasible)
            score = sum(t.user_attrs.get("time_score_s", 0) for t in feasible)
            rows.append((workers, len(trials), len(feasible), elapsed, measure, score))
        finally:
            sqlalchemy.create_engine(url).dispose()
            with admin.connect() as c:
                c.exec_driver_sql(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    base = rows[0][1] / rows[0][3]
    print(
        f"{'workers':>7} {'trials':>6} {'feasible':>8} {'wall s':>7} {'trials/min':>10} {'speed-up':>8} "
        f"{'timing s':>8} {'scoring s':>9}"
    )
    for workers, n, feas, elapsed, measure, score in rows:
        rate = n / elapsed
        print(
            f"{workers:>7} {n:>6} {feas:>8} {elapsed:>7.1f} {60 * rate:>10.1f} {rate / base:>8.2f} "
            f"{measure:>8.1f} {score:>9.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
