"""Running (or resuming) a search: the optimize loop, Ctrl-C handling and the stored front."""

from __future__ import annotations

import logging
import signal
import sys
import time
from dataclasses import dataclass, field

import optuna

from nasx.measure.device import resolve_device
from nasx.search.objective import Objective, is_uncounted_repeat
from nasx.search.progress import Progress
from nasx.search.settings import SearchSettings
from nasx.search.study import fail_stale_trials, open_study, total_reached, trials_to_run
from nasx.search.sweep import sweep
from nasx.store.db import Store, storage_failure, storage_failures
from nasx.store.reconnect import chain
from nasx.store.studies import pareto_front


@dataclass
class SearchResult:
    study: optuna.Study
    resumed_from: int
    front: list
    interrupted: bool
    elapsed_s: float
    measure_s: float
    retime: object = None  # nasx.search.retime.RetimeResult, None with --no-retime or an empty front
    times: dict = field(default_factory=dict)  # seconds per step (nasx.search.progress.add_times)

    def time_split(self) -> str:
        from nasx.search.progress import time_split

        return time_split(self.times, self.elapsed_s, self.retime.seconds if self.retime else 0.0)


def search(settings: SearchSettings, out=None) -> SearchResult:
    """Run (or resume) a search; Ctrl-C finishes the current trial, keeps everything, and returns. A storage
    that fails under it (a full disk, a server gone past the wait) is one StorageError line."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    with storage_failures(settings.storage):
        return _search(settings, out)


def _search(settings: SearchSettings, out) -> SearchResult:
    resolve_device(settings.device)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = Store(settings.storage)
    objective = Objective(settings, store)  # before the study: a bad --prefilter is one clear error
    study, resumed = open_study(settings)
    fail_stale_trials(study)  # a process that died mid-trial: its trial is retried first
    before = len(study.trials)
    n_trials, plan = trials_to_run(study, settings)
    if resumed:
        out.write(f"resuming study {study.study_name!r} ({before} trials stored) in {settings.storage}: {plan}\n")
    else:
        out.write(f"new study {study.study_name!r} in {settings.storage}\n")
    out.write(
        f"space {settings.space.name} ({settings.space.input[1]}x{settings.space.input[2]}), budget "
        f"{settings.budgets.label()}, device {settings.device}, score {settings.score}, sampler "
        f"{settings.sampler}\n"
    )
    progress = Progress(n_trials, settings.timeout, out, enabled=settings.progress)
    interrupted = False
    if sweeps(settings, study):
        queue_sweep(study, settings, objective, n_trials, progress, out)
    progress.started()
    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:  # second Ctrl-C: give up on the running trial (optuna records it as FAIL)
            raise KeyboardInterrupt
        stop["asked"] = True
        out.write("\nstopping after the current trial (Ctrl-C again to abandon it)\n")

    started = {"counted": 0}

    def after_trial(study, trial):
        progress.update(trial)
        # a re-sampled repeat takes no slot of this run's n_trials (a failed trial does: as before)
        started["counted"] += not is_uncounted_repeat(trial)
        run_done = n_trials is not None and started["counted"] >= n_trials
        # the total also counts trials other processes finished meanwhile
        if stop["asked"] or run_done or (n_trials and total_reached(study, settings)):
            study.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    try:
        optimize(study, objective, n_trials, settings.timeout, after_trial, progress, out)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    interrupted = interrupted or stop["asked"]
    if progress.enabled and out.isatty():
        out.write("\n")
    front = pareto_front(study)
    retimed = None
    if settings.retime and front and not interrupted:
        from nasx.search.retime import retime_front

        retimed = retime_front(study, front, objective)
        front = retimed.front
    numbers = [t.number for t in front]
    study.set_user_attr("pareto_front", numbers)
    store.snapshot_pareto(study.study_name, numbers)
    return SearchResult(
        study,
        before,
        front,
        interrupted,
        time.perf_counter() - progress.start,
        progress.measure_s,
        retimed,
        progress.times,
    )


def sweeps(settings: SearchSettings, study: optuna.Study) -> bool:
    """Whether this run starts with a sweep: a new study (no trial stored, none queued) and a sampler that is
    not the uniform baseline."""
    return settings.sweep and settings.sampler != "random" and not study.trials


def queue_sweep(study, settings: SearchSettings, objective: Objective, n_trials, progress, out) -> None:
    """Queue a new study's first trials from the sweep's free front (nasx.search.sweep)."""
    swept = sweep(settings.space, settings.budgets, objective.score_fn, n_trials, settings.seed)
    if swept is None:
        return
    for choices in swept.choices:
        study.enqueue_trial(choices, user_attrs={"swept": True})
    study.set_user_attr("sweep", swept.summary())
    if progress is not None:
        progress.times["sweep"] = progress.times.get("sweep", 0.0) + swept.seconds
    out.write(swept.line() + "\n")


def optimize(study, objective, n_trials: int | None, timeout: float | None, after_trial, progress, out) -> None:
    """study.optimize, going on when another process failed this one's running trial: its heartbeat went silent
    for 3x --heartbeat (the storage away that long, the process stopped), and a worker that found it stale
    failed it and queued its retry. Optuna then cannot tell the trial's result and raises; the retry, run by
    whichever worker takes it, replaces the trial in the count."""
    start = time.perf_counter()
    quiet = TakenOverTrials()
    log = logging.getLogger("optuna.study._optimize")
    log.addFilter(quiet)
    try:
        while True:
            try:
                if n_trials is not None and progress.done >= n_trials:
                    return
                # no n_trials: after_trial stops the study once this run's counted trials are done (a
                # re-sampled repeat is not one of them)
                study.optimize(
                    objective,
                    n_trials=None,
                    timeout=None if timeout is None else max(0.0, timeout - (time.perf_counter() - start)),
                    callbacks=[after_trial],
                    catch=(RuntimeError,),
                    gc_after_trial=False,
                )
                return
            except Exception as e:
                if not taken_over(e):
                    raise
                out.write(
                    "a trial of this process was failed by another worker (its heartbeat was silent for 3x "
                    "--heartbeat); its retry runs it again\n"
                )
    finally:
        log.removeFilter(quiet)


def taken_over(err: BaseException) -> bool:
    """Whether `err` is Optuna's refusal to finish a trial that another process has already failed."""
    return any(
        isinstance(e, optuna.exceptions.UpdateFinishedTrialError)
        or (isinstance(e, ValueError) and str(e).startswith("Cannot tell a FAIL trial"))
        for e in chain(err)
    )


class TakenOverTrials(logging.Filter):
    """Drops Optuna's two warnings (one with a traceback) about a trial another process failed, and its
    traceback of a trial that met a storage failure; optimize and storage_failures say each in one line."""

    def __init__(self):
        super().__init__()
        self.numbers: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        err = record.exc_info[1] if record.exc_info else None
        if err is not None and storage_failure("", err) is not None:
            return False  # a full disk or a storage gone: the search ends in its one StorageError line
        number = text.split(" ", 2)[1] if text.startswith("Trial ") else ""
        if "UpdateFinishedTrialError" in text:
            self.numbers.add(number)
            return False
        return not (number in self.numbers and "failed with value" in text)
