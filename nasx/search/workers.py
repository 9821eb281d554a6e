"""Several worker processes of one search on one storage, with the study's combined progress.

Each worker is `python -m nasx.search.workers SETTINGS.json`: the search's own settings (SearchSettings.to_json)
with what differs per worker set on them (its share of the trials, seed + i, the study's name, no progress line)."""

from __future__ import annotations

import dataclasses
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from nasx.errors import NasxError
from nasx.measure.device import default_threads
from nasx.search.objective import Objective, is_uncounted_repeat
from nasx.search.progress import add_times, write_status
from nasx.search.run import SearchResult, queue_sweep, search, sweeps
from nasx.search.settings import SearchSettings
from nasx.search.study import open_study, trials_to_run
from nasx.store.db import Store, storage_failures
from nasx.store.studies import pareto_front
from nasx.util.fmt import duration


def split_trials(n_trials: int | None, workers: int) -> list[int | None]:
    """Trials per worker so the total is exactly n_trials."""
    if n_trials is None:
        return [None] * workers
    return [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]


def worker_settings(
    settings: SearchSettings, study_name: str, workers: int, n_trials: int | None
) -> list[SearchSettings]:
    """The settings of each worker: its share of the `n_trials` left to run on the one study, counted from
    now (more: not as the study's total), quiet, and its own seed (the same seed everywhere would make every
    worker propose the same trials). A worker whose share is 0 (fewer trials left than workers) is not
    started. Workers never re-time the front: run_workers does, once, after all of them are done."""
    return [
        dataclasses.replace(
            settings,
            study_name=study_name,
            n_trials=n,
            more=True,
            progress=False,
            retime=False,
            workers=workers,
            seed=None if settings.seed is None else settings.seed + i,
        )
        for i, n in enumerate(split_trials(n_trials, workers))
        if n != 0
    ]


def run_workers(settings: SearchSettings, workers: int, out=None) -> SearchResult:
    """Start `workers` processes of this same search on one storage and wait for them, showing the
    study's combined progress. SIGINT/SIGTERM are passed on: each worker finishes its current trial."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    with storage_failures(settings.storage):
        return _run_workers(settings, workers, out)


def _run_workers(settings: SearchSettings, workers: int, out) -> SearchResult:
    if settings.storage.startswith("sqlite") and workers > 4:
        raise NasxError(
            f"--workers {workers} on SQLite would mostly wait on the database lock; use "
            f"--storage postgresql://... for more than 4 workers"
        )
    store = Store(settings.storage)  # one clear error before any worker starts, and the tables exist
    objective = Objective(settings, store)  # a missing latency model is one clear error before any worker starts
    study, resumed = open_study(settings)
    before = len(study.trials)
    n_trials, plan = trials_to_run(study, settings)
    out.write(
        f"{'resuming' if resumed else 'new'} study {study.study_name!r} ({before} trials stored) in "
        f"{settings.storage}{f': {plan}' if resumed else ''}; starting {workers} workers\n"
    )
    if sweeps(settings, study):  # once, here: each worker then finds the study holding trials
        queue_sweep(study, settings, objective, n_trials, None, out)
    # scoring runs in parallel across workers: give each its share of the cores (timing sets its own
    # thread count explicitly, under the host lock), or N workers oversubscribe the CPU N times
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, default_threads() // workers))}
    procs = []
    with tempfile.TemporaryDirectory(prefix="nasx-workers-") as tmp:
        for i, worker in enumerate(worker_settings(settings, study.study_name, workers, n_trials)):
            path = Path(tmp) / f"worker{i}.json"
            path.write_text(worker.to_json(), encoding="utf-8")
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "nasx.search.workers", str(path)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
            )
        start = time.perf_counter()
        stop = {"asked": False}

        def forward(signum, frame):
            stop["asked"] = True
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)

        previous = signal.signal(signal.SIGINT, forward), signal.signal(signal.SIGTERM, forward)
        try:
            while any(p.poll() is None for p in procs):
                time.sleep(1.0)
                if settings.progress:
                    _show_progress(study, before, n_trials, workers, start, out)
        finally:
            signal.signal(signal.SIGINT, previous[0])
            signal.signal(signal.SIGTERM, previous[1])
    errors = [p.stderr.read().strip() for p in procs if p.returncode not in (0, 130)]
    if errors:
        raise NasxError(f"a worker failed: {errors[0].splitlines()[-1] if errors[0] else 'no message'}")
    study = open_study(settings)[0]  # a fresh handle: the workers' trials, not a cached view
    trials = study.get_trials(deepcopy=False)
    measure_s = sum(t.user_attrs.get("time_measure_s", 0.0) for t in trials[before:])
    front = pareto_front(study)
    retimed = None
    if settings.retime and front and not stop["asked"]:
        from nasx.search.retime import retime_front

        retimed = retime_front(study, front, Objective(settings, store))
        front = retimed.front
    study.set_user_attr("pareto_front", [t.number for t in front])
    Store(settings.storage).snapshot_pareto(study.study_name, [t.number for t in front])
    times: dict = {}
    for t in trials[before:]:
        add_times(times, t.user_attrs)
    return SearchResult(study, before, front, stop["asked"], time.perf_counter() - start, measure_s, retimed, times)


def _show_progress(study, before: int, n_trials: int | None, workers: int, start: float, out) -> None:
    trials = study.get_trials(deepcopy=False)[before:]
    finished = [t for t in trials if t.state.is_finished()]
    repeats = sum("repeat_of" in t.user_attrs for t in finished)
    done = [t for t in finished if not is_uncounted_repeat(t)]
    feasible = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    best = min((t.values[0] for t in feasible), default=math.inf)
    total = f"/{n_trials}" if n_trials is not None else ""
    write_status(
        out,
        f"trials {len(done)}{total} | feasible {len(feasible)} | rejected "
        f"{sum(t.state == optuna.trial.TrialState.PRUNED and 'repeat_of' not in t.user_attrs for t in done)}"
        f"{f' | repeats re-sampled {repeats}' if repeats else ''} | best latency "
        f"{'-' if best == math.inf else f'{best:.2f} ms'} | {workers} workers | "
        f"{duration(time.perf_counter() - start)}",
    )


def worker_main(argv: list[str] | None = None) -> int:
    """One worker: the search its settings file describes. Exit status and error line as `nasx search`'s
    (0, 130 when interrupted, 2 with `nasx search: error: ...` on stderr), which run_workers reads."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        settings = SearchSettings.from_json(Path(argv[0]).read_text(encoding="utf-8"))
        result = search(settings)
    except NasxError as e:
        print(f"nasx search: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nasx search: interrupted", file=sys.stderr)
        return 130
    return 130 if result.interrupted else 0


if __name__ == "__main__":
    sys.exit(worker_main())
