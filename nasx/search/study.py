"""Creating or resuming a search's Optuna study, refusing one made from another space or timing, and its sampler."""

from __future__ import annotations

import optuna

from nasx.errors import NasxError, StorageError
from nasx.measure.device import default_threads
from nasx.search.objective import FINISHED, is_uncounted_repeat, score_study_attrs
from nasx.search.settings import SearchSettings
from nasx.store.db import (
    commits_without_fsync,
    created_by_one_of_racing_workers,
    engine_kwargs,
    explain,
    prepare_sqlite_dir,
)
from nasx.store.rdb import ReconnectingStorage
from nasx.store.studies import experimental_optuna

METRICS = ("latency_ms", "score")


DIRECTIONS = ("minimize", "maximize")


def make_sampler(name: str, seed: int | None, concurrent: bool = True):
    """The sampler `name`; `concurrent`: other processes run trials of the study at the same time."""
    if name == "tpe":
        # Independent TPE with more EI candidates: on mobile224_layers @ 300M (stubbed objectives, 3 seeds)
        # it kept >= 82% of second-half proposals feasible, against 72-96% for the multivariate variants;
        # with real objectives multivariate+group gave no better fronts (hypervolume 0.292 vs 0.288 there,
        # 0.285 vs 0.301 on seed 0 of mobile224) and samples slower. constant_liar spreads concurrent workers
        # apart, but makes TPE re-read every trial from the storage for each parameter it samples (about 40
        # here, a quarter of a lone search's time): a lone process, whose only running trial is its own
        # (which the liar leaves out anyway), samples the same without it.
        return optuna.samplers.TPESampler(seed=seed, n_ei_candidates=64, constant_liar=concurrent)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise NasxError(f"unknown sampler {name!r}: use tpe, nsga2 or random")


def open_study(settings: SearchSettings, create: bool = True) -> tuple[optuna.Study, bool]:
    """Create or resume the study; returns (study, resumed). Refuses a study made from another space."""
    url, name = settings.storage, settings.study_name or settings.default_study_name()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    prepare_sqlite_dir(url)
    try:
        with experimental_optuna():
            storage = created_by_one_of_racing_workers(
                lambda: ReconnectingStorage(  # waits out a server restart mid-search
                    url,
                    engine_kwargs=engine_kwargs(url),
                    heartbeat_interval=settings.heartbeat_s,
                    grace_period=3 * settings.heartbeat_s,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2),
                )
            )
    except Exception as e:  # optuna wraps driver errors in several types
        raise explain(url, e) from None
    commits_without_fsync(storage.engine)
    existing = {s.study_name: s for s in storage.get_all_studies()}
    resumed = name in existing
    if resumed:
        if existing[name].directions != [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]:
            raise StorageError(
                f"study {name!r} in {url} was not made by nasx search (other objectives); pick another --study"
            )
        attrs = existing[name].user_attrs
        # no config_hash yet: another worker is creating the study right now; no drift_correction: an older
        # nasx study, timed raw
        corrected = attrs.get("drift_correction", False) if "config_hash" in attrs else settings.drift_correction
        if corrected != settings.drift_correction:
            flag = "without --no-drift-correction" if corrected else "with --no-drift-correction"
            raise StorageError(
                f"study {name!r} was timed {'with' if corrected else 'without'} drift correction; "
                f"resume it {flag} or use a new --study name"
            )
        runtime = attrs.get("runtime", "torch") if "config_hash" in attrs else settings.runtime  # older: eager
        if runtime != settings.runtime:
            raise StorageError(
                f"study {name!r} was timed in {runtime}, not {settings.runtime}; resume it with "
                f"--runtime {runtime} or use a new --study name"
            )
        refuse_other_timing(name, attrs, settings)
        refuse_other_space(name, attrs, settings)
    elif not create:
        raise StorageError(f"no study {name!r} in {url}")
    sampler = make_sampler(settings.sampler, settings.seed, settings.concurrent())
    study = optuna.create_study(
        storage=storage, study_name=name, directions=list(DIRECTIONS), sampler=sampler, load_if_exists=True
    )
    if not resumed:
        with experimental_optuna():
            study.set_metric_names(list(METRICS))
        for key, value in {  # one by one, in this order: a worker that sees config_hash sees drift_correction
            "drift_correction": settings.drift_correction,
            "runtime": settings.runtime,
            "device": settings.device,
            "threads": timing_threads(settings),
            "nasx": "search",
            "config": settings.space.text,  # a function's space: its source, kept for the record, never parsed
            "config_name": settings.space.name,
            "config_hash": settings.space.config_hash,
            **space_attrs(settings.space),
            "budget_metric": settings.budgets.metric,
            "budget": settings.budgets.compute,
            "mac_budget": settings.budgets.mac,
            "mac_unit": settings.budgets.mac_unit,
            "params_budget": settings.budgets.params,
            "batch": settings.batch,
            "score": settings.score,
            "measure_time_s": settings.measure_time_s,
            **score_study_attrs(settings),
        }.items():
            study.set_user_attr(key, value)
    elif existing[name].user_attrs.get("config_hash") not in (None, settings.space.config_hash):
        # --force-space accepted a changed function: its new source becomes the study's (a later resume with it
        # needs no flag), the hashes it replaced kept in order
        before = existing[name].user_attrs
        study.set_user_attr("space_sha256_before", [*before.get("space_sha256_before", []), before.get("space_sha256")])
        for key, value in {"config": settings.space.text, **space_attrs(settings.space)}.items():
            study.set_user_attr(key, value)
        study.set_user_attr("config_hash", settings.space.config_hash)
    return study, resumed


def space_attrs(space) -> dict:
    """What the faces reading a study need of its space without the space itself: its input and classes,
    and for a define-by-run space the function and the sha256 of its source (a report never imports it)."""
    attrs = {"space_kind": getattr(space, "kind", "yaml"), "input": list(space.input), "classes": space.classes}
    if attrs["space_kind"] == "function":
        attrs.update(space_function=space.spec, space_sha256=space.sha256)
    return attrs


def refuse_other_space(name: str, attrs: dict, settings: SearchSettings) -> None:
    """One study, one space: a changed YAML config is refused; a define-by-run function whose source
    changed is refused unless --force-space (settings.force_space) accepts the new source as the study's."""
    made_from, now = attrs.get("config_hash"), settings.space.config_hash
    if not made_from or made_from == now:
        return
    kind = getattr(settings.space, "kind", "yaml")
    if attrs.get("space_kind", "yaml") != kind:
        raise StorageError(
            f"study {name!r} was made from a {'define-by-run function' if kind == 'yaml' else 'YAML config'}, "
            f"not a {'YAML config' if kind == 'yaml' else 'define-by-run function'}; use a new --study name"
        )
    if kind == "yaml":
        raise StorageError(
            f"study {name!r} was made from a different search space (config hash {made_from}, now {now}); use a "
            f"new --study name to search the changed space"
        )
    if not settings.force_space:
        raise StorageError(
            f"study {name!r} was made from {attrs.get('space_function', settings.space.spec)} with source hash "
            f"{made_from}; its source changed (now {now}): pass --force-space to resume with the new source, or "
            f"use a new --study name"
        )


def timing_threads(settings: SearchSettings) -> int:
    """The thread count latencies are timed with (the fingerprint's: all usable cores by default)."""
    return settings.threads or default_threads()


def refuse_other_timing(name: str, attrs: dict, settings: SearchSettings) -> None:
    """Latencies timed on another device or thread count are another workload: one study never mixes them.
    (Studies from before nasx stored threads are not checked for it.)"""
    device, threads = attrs.get("device"), attrs.get("threads")
    if device is not None and device != settings.device:
        raise StorageError(
            f"study {name!r} was timed on --device {device}; resume it with --device {device} or use a new --study name"
        )
    if threads is not None and threads != timing_threads(settings):
        raise StorageError(
            f"study {name!r} was timed with {threads} threads, this run would use "
            f"{timing_threads(settings)}; resume it with --threads {threads} or use a new --study name"
        )


def finished_trials(study: optuna.Study) -> int:
    """Feasible and rejected trials: what --n-trials counts (failed ones do not, a retry replaces them; nor do
    re-sampled repeats of an architecture the study already held)."""
    return sum(not is_uncounted_repeat(t) for t in study.get_trials(deepcopy=False, states=FINISHED))


def trials_queued(study: optuna.Study) -> list:
    """Queued trials not yet run (WAITING), in the order Optuna runs them: retries of interrupted trials
    (queued by the heartbeat's retry callback) and the sweep's candidates that a stopped run left."""
    return study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))


def is_retry(trial) -> bool:
    return "failed_trial" in trial.system_attrs  # set by Optuna's RetryHeartbeatStaleTrialCallback


def fail_stale_trials(study: optuna.Study) -> None:
    """Fail the trials whose process stopped beating (killed, its machine gone) and queue their retries now, as
    Optuna does before each trial: a resumed command that has nothing left to run still retries them."""
    with experimental_optuna():
        optuna.storages.fail_stale_trials(study)


def total_reached(study: optuna.Study, settings: SearchSettings) -> bool:
    """The study holds its --n-trials finished trials and nothing queued waits to run (without --more)."""
    if settings.more or settings.n_trials is None or finished_trials(study) < settings.n_trials:
        return False
    return not trials_queued(study)


def trials_to_run(study: optuna.Study, settings: SearchSettings) -> tuple[int | None, str]:
    """How many trials this run starts, and the words for it: --n-trials is the study's total, so re-running
    an interrupted command finishes it; with --more it is that many more."""
    total, done, queue = settings.n_trials, finished_trials(study), trials_queued(study)
    if total is None:
        return None, "until --timeout"
    if settings.more:
        # Optuna runs its queue in order, and a killed run's leftover sweep candidates sit ahead of the retries
        # a later run queues: run through the last retry, so that a killed trial is retried now
        through = max((i + 1 for i, t in enumerate(queue) if is_retry(t)), default=0)
        if through > total:
            return through, f"running {through} more (--more {total}, and the queue through its last retry)"
        return total, f"running {total} more (--more: {done + total} in all)"
    left, waiting = max(0, total - done), len(queue)
    if waiting > left:  # a killed trial is retried even when others finished the total meanwhile
        what = "retries of interrupted trials" if all(map(is_retry, queue)) else "queued trials"
        return waiting, f"running the {waiting} {what} (it holds {done} finished of --n-trials {total})"
    if not left:
        return 0, (
            f"it already holds {done} finished of --n-trials {total}: nothing to run (raise --n-trials, or "
            f"pass --more to run {total} more)"
        )
    return left, f"running the {left} left of --n-trials {total} (--more runs {total} more instead)"
