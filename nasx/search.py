"""The search: an Optuna multi-objective study (latency_ms min, score max) under FLOPs/MAC/params
budgets. Candidates over budget are rejected from the cost core alone (never built, never timed) and end
PRUNED with their constraint values, from which TPE still learns. Feasible candidates are built, timed on
the device (cached per arch hash and device fingerprint) and scored."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field

import optuna

# nasx relies on these on purpose (set_metric_names, TPE's group mode); the warnings say nothing to users
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)

from nasx.arch import Arch
from nasx.cost import cost
from nasx.errors import ArchError, NasxError, StorageError
from nasx.fmt import human
from nasx.latency import (DEFAULT_MEASURE_TIME_S, default_threads, fingerprint, fingerprint_hash, host_lock,
                          resolve_device)
from nasx.score import check_score, get_score, needs_data
from nasx.space import SearchSpace, load_space
from nasx.store import (
    DEFAULT_STORAGE,
    DEFAULT_TRIALS,
    Store,
    created_by_one_of_racing_workers,
    engine_kwargs,
    explain,
    prepare_sqlite_dir,
)
from nasx.summary import readable_attrs
from nasx.timing import timed

METRICS = ("latency_ms", "score")
DIRECTIONS = ("minimize", "maximize")
SCORE_SEED = 0
DEFAULT_DATA = "digits"  # the data set of --score train when --data is not given


@dataclass
class Budgets:
    """Upper bounds; None means unbounded. `metric` is what `compute` bounds: madds or flops."""

    compute: int | None = None
    metric: str = "madds"
    mac: int | None = None
    mac_unit: str = "elements"  # or bytes
    params: int | None = None

    def label(self) -> str:
        parts = []
        if self.compute:
            parts.append(f"{self.metric}{human(self.compute)}")
        if self.mac:
            parts.append(f"mac{human(self.mac)}{'B' if self.mac_unit == 'bytes' else ''}")
        if self.params:
            parts.append(f"params{human(self.params)}")
        return "-".join(parts) or "unbounded"

    def violations(self, report) -> dict[str, float]:
        """Relative excess per constraint: value / budget - 1 (feasible when <= 0)."""
        out = {}
        if self.compute:
            used = report.madds if self.metric == "madds" else report.flops
            out[self.metric] = used / self.compute - 1
        if self.mac:
            used = report.mac if self.mac_unit == "elements" else report.mac_bytes
            out["mac"] = used / self.mac - 1
        if self.params:
            out["params"] = report.params / self.params - 1
        return out


@dataclass
class SearchSettings:
    space: SearchSpace
    budgets: Budgets
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    n_trials: int | None = DEFAULT_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    seed: int | None = None
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    score: str = "naswot"
    measure_time_s: float = DEFAULT_MEASURE_TIME_S
    progress: bool = True
    heartbeat_s: int = 10  # a trial whose worker stops beating for 3x this is failed and retried
    data: str | None = None  # data set spec for scores that train (nasx.data): digits, cifar10:PATH, folder:PATH
    train: object = None  # nasx.train.TrainSettings for --score train (None: its defaults)
    prefilter: bool = False  # skip timing candidates the stored latency model puts far off the front
    prefilter_margin: float | None = None  # None: the model's held-out p90 relative error (nasx.prefilter)
    drift_correction: bool = True  # rescale each latency by a calibration workload timed around it (nasx.latency)

    def default_study_name(self) -> str:
        data = f"-{self.data.split(':', 1)[0]}" if self.data else ""
        return f"{self.space.name}-{self.budgets.label()}-{self.device}-b{self.batch}-{self.score}{data}"


@dataclass
class Progress:
    """Counts shown on the terminal while the search runs."""

    total: int | None
    timeout: float | None
    out: object = sys.stderr
    start: float = field(default_factory=time.perf_counter)
    done: int = 0
    feasible: int = 0
    rejected: int = 0
    failed: int = 0
    prefiltered: int = 0
    best_latency: float = math.inf
    measure_s: float = 0.0
    enabled: bool = True

    def update(self, trial: optuna.trial.FrozenTrial) -> None:
        self.done += 1
        attrs = trial.user_attrs
        if trial.state == optuna.trial.TrialState.COMPLETE:
            self.feasible += 1
            self.best_latency = min(self.best_latency, trial.values[0])
        elif attrs.get("prefiltered"):
            self.prefiltered += 1
        elif attrs.get("feasible") is False:
            self.rejected += 1
        else:
            self.failed += 1
        self.measure_s += attrs.get("time_measure_s", 0.0)
        if self.enabled:
            self.out.write(self.line() + ("\r" if self.out.isatty() else "\n"))
            self.out.flush()

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        eta = ""
        if self.total:
            eta = f" | ETA {_duration(elapsed / self.done * (self.total - self.done))}"
        elif self.timeout:
            eta = f" | ETA {_duration(max(0.0, self.timeout - elapsed))}"
        best = f"{self.best_latency:.2f} ms" if self.best_latency < math.inf else "-"
        total = f"/{self.total}" if self.total else ""
        return (f"trial {self.done}{total} | feasible {self.feasible} | rejected {self.rejected}"
                f"{f' | failed {self.failed}' if self.failed else ''}"
                f"{f' | prefiltered {self.prefiltered}' if self.prefiltered else ''} | best latency {best}"
                f" | {_duration(elapsed)}{eta}")


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def make_sampler(name: str, seed: int | None):
    if name == "tpe":
        # Independent TPE with more EI candidates: on mobile224_layers @ 300M (stubbed objectives, 3 seeds)
        # it kept >= 82% of second-half proposals feasible, against 72-96% for the multivariate variants;
        # with real objectives multivariate+group gave no better fronts (hypervolume 0.292 vs 0.288 there,
        # 0.285 vs 0.301 on seed 0 of mobile224) and samples slower. constant_liar spreads workers apart.
        return optuna.samplers.TPESampler(seed=seed, n_ei_candidates=64, constant_liar=True)
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
        storage = created_by_one_of_racing_workers(lambda: optuna.storages.RDBStorage(
            url, engine_kwargs=engine_kwargs(url), heartbeat_interval=settings.heartbeat_s,
            grace_period=3 * settings.heartbeat_s,
            heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=2)))
    except Exception as e:  # optuna wraps driver errors in several types
        raise explain(url, e) from None
    existing = {s.study_name: s for s in storage.get_all_studies()}
    resumed = name in existing
    if resumed:
        if existing[name].directions != [optuna.study.StudyDirection.MINIMIZE, optuna.study.StudyDirection.MAXIMIZE]:
            raise StorageError(f"study {name!r} in {url} was not made by nasx search (other objectives); pick "
                               f"another --study")
        attrs = existing[name].user_attrs
        # no config_hash yet: another worker is creating the study right now; no drift_correction: an older
        # nasx study, timed raw
        corrected = attrs.get("drift_correction", False) if "config_hash" in attrs else settings.drift_correction
        if corrected != settings.drift_correction:
            flag = "without --no-drift-correction" if corrected else "with --no-drift-correction"
            raise StorageError(f"study {name!r} was timed {'with' if corrected else 'without'} drift correction; "
                               f"resume it {flag} or use a new --study name")
        made_from = attrs.get("config_hash")
        if made_from and made_from != settings.space.config_hash:
            raise StorageError(f"study {name!r} was made from a different search space (config hash {made_from}, "
                               f"now {settings.space.config_hash}); use a new --study name to search the changed "
                               f"space")
    elif not create:
        raise StorageError(f"no study {name!r} in {url}")
    sampler = make_sampler(settings.sampler, settings.seed)
    study = optuna.create_study(storage=storage, study_name=name, directions=list(DIRECTIONS), sampler=sampler,
                                load_if_exists=True)
    if not resumed:
        study.set_metric_names(list(METRICS))
        for key, value in {  # one by one, in this order: a worker that sees config_hash sees drift_correction
            "drift_correction": settings.drift_correction, "nasx": "search", "config": settings.space.text,
            "config_name": settings.space.name, "config_hash": settings.space.config_hash,
            "budget_metric": settings.budgets.metric,
            "budget": settings.budgets.compute, "mac_budget": settings.budgets.mac,
            "mac_unit": settings.budgets.mac_unit, "params_budget": settings.budgets.params,
            "device": settings.device, "batch": settings.batch, "score": settings.score,
            "measure_time_s": settings.measure_time_s,
            **score_study_attrs(settings),
        }.items():
            study.set_user_attr(key, value)
    return study, resumed


class _AttrSink:
    """Stands in for a trial when evaluating outside a study."""

    def __init__(self):
        self.attrs: dict = {}

    def set_user_attr(self, key, value):
        self.attrs[key] = value


class Objective:
    """One trial: sample -> cost -> (reject | build -> measure -> score)."""

    def __init__(self, settings: SearchSettings, store: Store):
        self.s = settings
        self.store = store
        self.fp = fingerprint(settings.device, settings.threads, settings.batch, settings.space.input,
                              drift_corrected=settings.drift_correction)
        self.fp_hash = fingerprint_hash(self.fp)
        self.score_fn = make_score(settings)
        self.prefilter = None
        if settings.prefilter:  # before any study is opened: no model is one clear error
            from nasx.prefilter import Prefilter

            self.prefilter = Prefilter.load(store, self.fp_hash, self.fp, settings.prefilter_margin)

    def __call__(self, trial: optuna.Trial):
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        t0 = time.perf_counter()
        arch = self.s.space.sample(trial)
        attrs: dict = {"arch": arch.to_dict(include_name=False), "families": arch.families(),
                       "time_sample_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        try:
            attrs["arch_hash"] = arch.content_hash()
            report = cost(arch)
        except ArchError as e:
            return self._reject(trial, attrs, {"valid": 1.0}, f"invalid architecture: {e}", t0)
        attrs.update(madds=report.madds, flops=report.flops, params=report.params, mac_elements=report.mac,
                     mac_bytes=report.mac_bytes, activations=report.activations)
        violations = self.s.budgets.violations(report)
        over = {k: v for k, v in violations.items() if v > 0}
        if over:
            reason = "; ".join(self._over_text(k, report) for k in over)
            return self._reject(trial, attrs, violations, f"over budget: {reason}", t0)
        self._set_constraints(trial, violations)
        attrs["time_cost_s"] = time.perf_counter() - t0
        return self._evaluate(trial, arch, attrs)

    def _over_text(self, key: str, report) -> str:
        b = self.s.budgets
        if key in ("madds", "flops"):
            used = report.madds if key == "madds" else report.flops
            return f"{key} {human(used)} > {human(b.compute)}"
        if key == "mac":
            used = report.mac if b.mac_unit == "elements" else report.mac_bytes
            return f"MAC {human(used)}{'B' if b.mac_unit == 'bytes' else ''} > {human(b.mac)}"
        return f"params {human(report.params)} > {human(b.params)}"

    def _set_constraints(self, trial, violations: dict[str, float]) -> None:
        for key, value in violations.items():
            trial.set_constraint(key, value)
        # optuna-dashboard 0.21 reads only the older list form of the constraints
        trial.storage.set_trial_system_attr(trial._trial_id, "constraints", list(violations.values()))

    def _reject(self, trial, attrs: dict, violations: dict[str, float], reason: str, t0: float):
        attrs.update(feasible=False, reason=reason, time_cost_s=time.perf_counter() - t0)
        attrs.update(readable_attrs(attrs))  # strings for optuna-dashboard
        self._set_constraints(trial, violations)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        raise optuna.TrialPruned(reason)

    def evaluate_arch(self, arch: Arch) -> dict:
        """Build, time and score `arch` outside any trial (reference models), exactly as a trial does,
        through the same caches. Returns the attrs a trial would carry."""
        sink = _AttrSink()
        self._evaluate(sink, arch, {"arch_hash": arch.content_hash()})
        return sink.attrs

    def _evaluate(self, trial, arch: Arch, attrs: dict):
        import torch

        from nasx.build import build

        t = time.perf_counter()
        torch.manual_seed(SCORE_SEED)  # the score is a function of (arch, seed), like the cache key
        module = build(arch)
        attrs["time_build_s"] = time.perf_counter() - t

        if self.prefilter is not None and hasattr(trial, "study"):
            self._prefilter(trial, arch, module, attrs)  # raises TrialPruned: predicted far off the front
        cached = self.store.get_latency(attrs["arch_hash"], self.fp_hash)
        t = time.perf_counter()
        if cached is None:
            lat = timed(module, arch.input, self.store, self.fp, self.fp_hash, device=self.s.device,
                        batch=self.s.batch, threads=self.s.threads, max_time_s=self.s.measure_time_s)
            self.store.put_latency(attrs["arch_hash"], self.fp_hash, self.fp, lat)
        else:
            lat = cached
        attrs["time_measure_s"] = time.perf_counter() - t
        attrs["latency_cached"] = cached is not None
        attrs["latency"] = {k: lat[k] for k in ("median_ms", "iqr_ms", "mean_ms", "min_ms", "repeats", "stable",
                                                "raw_median_ms", "drift", "attempts", "calibration_before_ms",
                                                "calibration_after_ms") if k in lat}
        attrs["fingerprint"] = lat["fingerprint"]

        value = self._score(arch, module, attrs)
        attrs.update(score=value, score_name=self.s.score, feasible=True, reason="")
        attrs.update(readable_attrs(attrs))  # strings for optuna-dashboard
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        if not math.isfinite(value):
            value = -1e9  # a degenerate NASWOT kernel: worst possible score, still comparable
        return lat["median_ms"], value

    def _score(self, arch: Arch, module, attrs: dict) -> float:
        """The score of `arch`, through the score cache (adds the time spent to attrs)."""
        key = score_key(self.s.score, arch.input, getattr(self.score_fn, "key", ""))
        t = time.perf_counter()
        hit = self.store.get_score(attrs["arch_hash"], key)
        if hit is None:
            with host_lock(shared=True):  # never compute while another worker is timing
                value = self.score_fn(module.cpu(), arch.input, SCORE_SEED)
            details, value = getattr(value, "details", None), float(value)
            self.store.put_score(attrs["arch_hash"], key, value, time.perf_counter() - t)
        else:
            value, details = hit[0], {"cached": True, "seconds": hit[1]}
        if hasattr(self.score_fn, "expected_cost"):  # --score train: what the training cost, on the trial
            madds = attrs.get("madds") or cost(arch).madds
            attrs["training"] = {**(details or {}), **self.score_fn.expected_cost(madds)}
        attrs["time_score_s"] = attrs.get("time_score_s", 0.0) + time.perf_counter() - t
        return value

    def _prefilter(self, trial, arch: Arch, module, attrs: dict) -> None:
        """--prefilter (rule in nasx.prefilter): score first, then end the trial PRUNED, never timed, when
        the stored latency model predicts it far off the current front."""
        value = self._score(arch, module, attrs)  # cached: the score step after timing reads it back
        front = [(t.number, t.values[0], t.values[1]) for t in pareto_front(trial.study)]
        verdict = self.prefilter.check(front, attrs["madds"], attrs["mac_elements"],
                                       value if math.isfinite(value) else -1e9)
        attrs["predicted_latency_ms"] = verdict.predicted_ms
        if not verdict.skip:
            return
        attrs.update(score=value, score_name=self.s.score, feasible=True, prefiltered=True, reason=verdict.reason)
        attrs.update(readable_attrs(attrs))
        attrs["Status"] = verdict.reason
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        raise optuna.TrialPruned(verdict.reason)


def score_key(score: str, input_shape, extra: str = "", seed: int = SCORE_SEED) -> str:
    """Score cache key: the score is a function of (arch, score, seed, input) and, for scores that train, of
    the data set and the training settings (`extra`, the score function's `key`)."""
    return f"{score}:seed{seed}:{'x'.join(map(str, input_shape))}" + (f":{extra}" if extra else "")


def make_score(settings: SearchSettings):
    """The score function of a search; a score that trains gets its data set (default digits) here."""
    if not needs_data(settings.score):
        return get_score(settings.score)
    from nasx.data import load_data

    from nasx.train import TrainSettings

    data = load_data(settings.data or DEFAULT_DATA, settings.space.input, settings.space.classes)
    return get_score(settings.score, data=data, train=settings.train or TrainSettings(device=settings.device))


def score_study_attrs(settings: SearchSettings) -> dict:
    """What a training score depends on, stored on the study."""
    if not needs_data(settings.score):
        return {}
    from nasx.train import TrainSettings

    return {"data": settings.data or DEFAULT_DATA,
            "train": (settings.train or TrainSettings(device=settings.device)).as_dict()}


@dataclass
class SearchResult:
    study: optuna.Study
    resumed_from: int
    front: list
    interrupted: bool
    elapsed_s: float
    measure_s: float


def pareto_front(study: optuna.Study) -> list:
    """Feasible, measured, non-dominated trials, fastest first; an architecture TPE proposed again (its
    latency and score then come from the caches) is listed once, at its first trial."""
    seen, front = set(), []
    for t in sorted(study.best_trials, key=lambda t: (t.values[0], t.number)):
        key = t.user_attrs.get("arch_hash", t.number)
        if t.user_attrs.get("feasible") and key not in seen:
            seen.add(key)
            front.append(t)
    return front


def search(settings: SearchSettings, out=sys.stderr) -> SearchResult:
    """Run (or resume) a search; Ctrl-C finishes the current trial, keeps everything, and returns."""
    resolve_device(settings.device)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    store = Store(settings.storage)
    objective = Objective(settings, store)  # before the study: a bad --prefilter is one clear error
    study, resumed = open_study(settings)
    before = len(study.trials)
    if resumed:
        out.write(f"resuming study {study.study_name!r} ({before} trials stored) in {settings.storage}\n")
    else:
        out.write(f"new study {study.study_name!r} in {settings.storage}\n")
    out.write(f"space {settings.space.name} ({settings.space.input[1]}x{settings.space.input[2]}), budget "
              f"{settings.budgets.label()}, device {settings.device}, score {settings.score}, sampler "
              f"{settings.sampler}\n")
    progress = Progress(settings.n_trials, settings.timeout, out, enabled=settings.progress)
    stop = {"asked": False}

    def on_sigint(signum, frame):
        if stop["asked"]:  # second Ctrl-C: give up on the running trial (optuna records it as FAIL)
            raise KeyboardInterrupt
        stop["asked"] = True
        out.write("\nstopping after the current trial (Ctrl-C again to abandon it)\n")

    def after_trial(study, trial):
        progress.update(trial)
        if stop["asked"]:
            study.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    previous_term = signal.signal(signal.SIGTERM, on_sigint)
    interrupted = False
    try:
        study.optimize(objective, n_trials=settings.n_trials, timeout=settings.timeout,
                       callbacks=[after_trial], catch=(RuntimeError,), gc_after_trial=False)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGINT, previous)
        signal.signal(signal.SIGTERM, previous_term)
    interrupted = interrupted or stop["asked"]
    if progress.enabled and out.isatty():
        out.write("\n")
    front = pareto_front(study)
    numbers = [t.number for t in front]
    study.set_user_attr("pareto_front", numbers)
    store.snapshot_pareto(study.study_name, numbers)
    return SearchResult(study, before, front, interrupted, time.perf_counter() - progress.start, progress.measure_s)


STATES = {"COMPLETE": "feasible", "PRUNED": "rejected", "FAIL": "failed", "RUNNING": "running",
          "WAITING": "waiting"}


def trial_status(t) -> str:
    """feasible | rejected (over budget, never built) | failed | running | waiting | pruned (not by nasx)."""
    status = STATES.get(t.state.name, t.state.name.lower())
    if status == "rejected" and t.user_attrs.get("prefiltered"):
        return "prefiltered"
    return "pruned" if status == "rejected" and t.user_attrs.get("feasible") is not False else status


def front_table(front: list, status: bool = False) -> str:
    """Trials as a table: latency median ± IQR, score, MAdds, MAC, params, block-family mix. With `status`,
    any trial (rejected, failed) gets a row and a status column says why it has no latency."""
    from nasx.fmt import render_table

    rows = []
    for t in front:
        a = t.user_attrs
        lat = a.get("latency", {})
        fams = ", ".join(f"{k} {v}" for k, v in sorted(a.get("families", {}).items(), key=lambda kv: -kv[1]))
        measured = t.values is not None and "latency" in a
        row = [t.number, f"{lat.get('median_ms', t.values[0]):.2f} ± {lat.get('iqr_ms', 0):.2f}" if measured else "-",
               f"{t.values[1]:.2f}" if measured else "-", human(a["madds"]) if "madds" in a else "-",
               human(a["mac_elements"]) if "mac_elements" in a else "-", human(a["params"]) if "params" in a else "-",
               fams]
        if status:
            why = a.get("reason") or t.system_attrs.get("fail_reason", "")
            row.insert(1, trial_status(t) + (f": {why}" if why and trial_status(t) != "feasible" else ""))
        rows.append(row)
    header = ["trial", "latency ms (median ± IQR)", "score", "MAdds", "MAC", "params", "families"]
    if status:
        header.insert(1, "status")
    return render_table(header, rows)


def trial_record(t) -> dict:
    """A trial as plain JSON: objectives, costs, status and the rebuildable arch (None where not recorded)."""
    a = t.user_attrs
    measured = t.values is not None and "latency" in a
    return {"trial": t.number, "status": trial_status(t), "latency_ms": t.values[0] if measured else None,
            "latency_iqr_ms": a.get("latency", {}).get("iqr_ms"), "score": t.values[1] if measured else None,
            "madds": a.get("madds"), "flops": a.get("flops"), "mac_elements": a.get("mac_elements"),
            "mac_bytes": a.get("mac_bytes"), "params": a.get("params"), "activations": a.get("activations"),
            "families": a.get("families", {}), "reason": a.get("reason", ""), "arch_hash": a.get("arch_hash"),
            "arch": a.get("arch")}


def summary_json(trials: list) -> str:
    return json.dumps([trial_record(t) for t in trials], indent=1)


def split_trials(n_trials: int | None, workers: int) -> list[int | None]:
    """Trials per worker so the total is exactly n_trials."""
    if n_trials is None:
        return [None] * workers
    return [n_trials // workers + (1 if i < n_trials % workers else 0) for i in range(workers)]


def run_workers(argv: list[str], settings: SearchSettings, workers: int, out=sys.stderr) -> SearchResult:
    """Start `workers` processes of this same search on one storage and wait for them, showing the
    study's combined progress. SIGINT/SIGTERM are passed on: each worker finishes its current trial."""
    import subprocess

    if settings.storage.startswith("sqlite") and workers > 4:
        raise NasxError(f"--workers {workers} on SQLite would mostly wait on the database lock; use "
                        f"--storage postgresql://... for more than 4 workers")
    store = Store(settings.storage)  # one clear error before any worker starts, and the tables exist
    if settings.prefilter:
        Objective(settings, store)  # a missing latency model is one clear error here too
    study, resumed = open_study(settings)
    before = len(study.trials)
    out.write(f"{'resuming' if resumed else 'new'} study {study.study_name!r} ({before} trials stored) in "
              f"{settings.storage}; starting {workers} workers\n")
    base = [a for a in argv if a != "--quiet"]
    for option in ("--workers", "--n-trials", "--seed", "--study"):
        base = _strip_option(base, option)
    procs = []
    for i, n in enumerate(split_trials(settings.n_trials, workers)):
        cmd = [sys.executable, "-m", "nasx", *base, "--quiet", "--study", study.study_name]
        if n is not None:
            cmd += ["--n-trials", str(n)]
        if settings.seed is not None:  # same seed everywhere would make every worker propose the same trials
            cmd += ["--seed", str(settings.seed + i)]
        # scoring runs in parallel across workers: give each its share of the cores (timing sets its own
        # thread count explicitly, under the host lock), or N workers oversubscribe the CPU N times
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, default_threads() // workers))}
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env))
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
                trials = study.get_trials(deepcopy=False)[before:]
                done = [t for t in trials if t.state.is_finished()]
                feasible = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
                best = min((t.values[0] for t in feasible), default=math.inf)
                total = f"/{settings.n_trials}" if settings.n_trials else ""
                out.write(f"trials {len(done)}{total} | feasible {len(feasible)} | rejected "
                          f"{sum(t.state == optuna.trial.TrialState.PRUNED for t in done)} | best latency "
                          f"{'-' if best == math.inf else f'{best:.2f} ms'} | {workers} workers | "
                          f"{_duration(time.perf_counter() - start)}" + ("\r" if out.isatty() else "\n"))
                out.flush()
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
    study.set_user_attr("pareto_front", [t.number for t in front])
    Store(settings.storage).snapshot_pareto(study.study_name, [t.number for t in front])
    return SearchResult(study, before, front, stop["asked"], time.perf_counter() - start, measure_s)


def _strip_option(argv: list[str], name: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a == name:
            skip = True
        elif not a.startswith(name + "="):
            out.append(a)
    return out


def settings_from_args(args) -> SearchSettings:
    from nasx.units import parse_count, parse_size

    budgets = Budgets(metric=args.budget_metric)
    if args.budget is not None:
        budgets.compute = parse_count(args.budget, "--budget")
    if args.mac_budget is not None:
        budgets.mac, budgets.mac_unit = parse_size(args.mac_budget, "--mac-budget")
    if args.params_budget is not None:
        budgets.params = parse_count(args.params_budget, "--params-budget")
    for name in ("n_trials", "threads", "batch", "workers", "heartbeat"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise NasxError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    if args.measure_time <= 0:
        raise NasxError(f"--measure-time must be positive seconds, got {args.measure_time}")
    if args.timeout is not None and args.timeout <= 0:
        raise NasxError(f"--timeout must be positive seconds, got {args.timeout}")
    check_score(args.score)
    make_sampler(args.sampler, None)
    return SearchSettings(space=load_space(args.config), budgets=budgets, storage=args.storage,
                          study_name=args.study, n_trials=args.n_trials, timeout=args.timeout, sampler=args.sampler,
                          seed=args.seed, device=args.device, threads=args.threads, batch=args.batch,
                          score=args.score, **score_options(args), progress=not args.quiet, heartbeat_s=args.heartbeat,
                          measure_time_s=args.measure_time, prefilter=getattr(args, "prefilter", False),
                          prefilter_margin=getattr(args, "prefilter_margin", None),
                          drift_correction=not args.no_drift_correction)


def score_options(args) -> dict:
    """--data and the training options of `nasx search`, checked (the data set is loaded once here, so a
    missing or malformed one is one clear error before any trial starts)."""
    data = getattr(args, "data", None)
    if not needs_data(args.score):
        given = [f"--{n.replace('_', '-')}" for n in ("data", "train_steps", "train_batch")
                 if getattr(args, n, None) is not None]
        if given:
            raise NasxError(f"{', '.join(given)} only apply to --score train (this search scores with "
                            f"{args.score!r})")
        return {}
    from nasx.data import load_data
    from nasx.train import DEFAULT_BATCH, DEFAULT_STEPS, TrainSettings

    steps = getattr(args, "train_steps", None)
    batch = getattr(args, "train_batch", None)
    for name, v in (("--train-steps", steps), ("--train-batch", batch)):
        if v is not None and v < (2 if name == "--train-batch" else 1):
            raise NasxError(f"{name} must be at least {2 if name == '--train-batch' else 1}, got {v}")
    train = TrainSettings(steps=steps or DEFAULT_STEPS, batch=batch or DEFAULT_BATCH, device=args.device)
    space = load_space(args.config)
    load_data(data or DEFAULT_DATA, space.input, space.classes)
    return {"data": data or DEFAULT_DATA, "train": train}
