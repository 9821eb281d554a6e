"""One trial: sample -> cost -> (reject | build -> measure -> score). Candidates over budget are rejected
from the cost core alone (never built, never timed) and end PRUNED with their constraint values, from which
TPE still learns. Feasible candidates are built, timed on the device (nasx.measure.cached: cached per arch
hash and device fingerprint) and scored (nasx.score.cached)."""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any, Protocol

import optuna

from nasx.arch import Arch
from nasx.build import build_seeded
from nasx.cost import cost
from nasx.errors import ArchError
from nasx.measure.cached import Timer
from nasx.measure.prefilter import Prefilter
from nasx.score.cached import Scorer
from nasx.score.data import DEFAULT_DATA, load_data
from nasx.score.proxies import get_score, needs_data
from nasx.score.train import TrainSettings
from nasx.search.screen import Screen
from nasx.search.settings import SearchSettings
from nasx.store.db import Store
from nasx.store.studies import pareto_front, trial_id
from nasx.store.summary import readable_attrs
from nasx.util.fmt import human

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
# what a repeat does not take over from the trial it repeats: that trial's own process, timings and re-timing
NOT_REPEATED = (
    "worker",
    "latency_confirmed",
    "time_cost_s",
    "time_build_s",
    "time_measure_s",
    "time_score_s",
    "time_layers_s",
    "time_screen_s",
    "layer_timing",
    "layers_timed",
    "screen_off",
)

# what a trial records of its latency (the cache holds a few more fields)
LATENCY_ATTRS = (
    "median_ms",
    "iqr_ms",
    "mean_ms",
    "min_ms",
    "repeats",
    "stable",
    "raw_median_ms",
    "drift",
    "attempts",
    "calibration_before_ms",
    "calibration_after_ms",
    "calibration_chained",
    "export_s",
    "calibration_s",
    "lock_wait_s",
)


class UserAttrs(Protocol):
    """What recording a trial's results needs of it (optuna.Trial; optuna.trial.FixedTrial in tests)."""

    def set_user_attr(self, key: str, value: Any) -> None: ...


def record(trial: UserAttrs, attrs: dict) -> None:
    for k, v in attrs.items():
        trial.set_user_attr(k, v)


class Objective:
    """One trial: sample -> cost -> (reject | build -> measure -> score)."""

    def __init__(self, settings: SearchSettings, store: Store):
        self.s = settings
        self.store = store
        self.timer = Timer.here(
            store,
            settings.space.input,
            device=settings.device,
            threads=settings.threads,
            batch=settings.batch,
            drift_correction=settings.drift_correction,
            max_time_s=settings.measure_time_s,
            runtime=settings.runtime,
        )
        self.fp, self.fp_hash = self.timer.fp, self.timer.fp_hash
        self.score_fn = make_score(settings)
        self.scorer = Scorer(settings.score, self.score_fn)
        self.seen = SeenArchs()
        self.repeats_in_a_row = 0
        self.screen = Screen(self.timer) if settings.screen else None
        self.prefilter = None
        if settings.prefilter:  # before any study is opened: no model is one clear error
            self.prefilter = Prefilter.load(store, self.fp_hash, self.fp, settings.prefilter_margin)

    def __call__(self, trial: optuna.Trial):
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        t0 = time.perf_counter()
        arch = self.s.space.sample(trial)
        attrs: dict = {
            "arch": arch.to_dict(include_name=False),
            "families": arch.families(),
            "time_sample_s": time.perf_counter() - t0,
        }
        t0 = time.perf_counter()
        try:
            attrs["arch_hash"] = arch.content_hash()
            report = cost(arch)
        except ArchError as e:
            return self._reject(trial, attrs, {"valid": 1.0}, f"invalid architecture: {e}", t0)
        violations = self.s.budgets.violations(report)
        first = self.seen.first(trial, attrs["arch_hash"]) if self.s.max_resample else None
        if first is not None:
            return self._repeat(trial, attrs, violations, first)
        self.repeats_in_a_row = 0
        attrs.update(
            madds=report.madds,
            flops=report.flops,
            params=report.params,
            mac_elements=report.mac,
            mac_bytes=report.mac_bytes,
            activations=report.activations,
        )
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

    def _set_constraints(self, trial: optuna.Trial, violations: dict[str, float]) -> None:
        for key, value in violations.items():
            trial.set_constraint(key, value)
        # optuna-dashboard 0.21 reads only the older list form of the constraints
        trial.storage.set_trial_system_attr(trial_id(trial), "constraints", list(violations.values()))

    def _reject(self, trial: optuna.Trial, attrs: dict, violations: dict[str, float], reason: str, t0: float):
        attrs.update(feasible=False, reason=reason, time_cost_s=time.perf_counter() - t0)
        attrs.update(readable_attrs(attrs))  # strings for optuna-dashboard
        self._set_constraints(trial, violations)
        record(trial, attrs)
        raise optuna.TrialPruned(reason)

    def _repeat(self, trial: optuna.Trial, attrs: dict, violations: dict, first: optuna.trial.FrozenTrial):
        """A proposal whose architecture the study already holds: recorded as a repeat of that trial, with its
        results (a feasible one COMPLETE with the same values and attrs, never listed twice on the front; a
        rejected one PRUNED with the same constraint values), so TPE learns from it exactly as it would from
        evaluating the network again; but it is not counted in --n-trials, and the search asks for another
        proposal, up to --max-resample times in a row. The next one in a row counts, so a search of a space
        whose feasible networks are all seen still ends.

        Measured against recording repeats PRUNED (which files them in TPE's worse group and pushes the sampler
        off networks it found good): on mobile224 @ 300M, seed 0, 150 trials, that front's hypervolume was
        0.297 against 0.324 evaluating repeats as trials (docs/benchmarks.md, "Distinct candidates")."""
        in_a_row = self.repeats_in_a_row >= self.s.max_resample
        # study-wide, past the first max_resample, at most one re-sampled repeat per counted trial: once a sampler
        # keeps proposing what the study holds (four TPE workers converged on a small space stored 1,538 repeats
        # beside 339 counted trials in 9 minutes), re-sampling finds nothing new and only grows the study, whose
        # size slows TPE's every proposal (from 1.2 trials/s to 0.3 there)
        flooded = self.seen.resampled >= max(self.seen.counted, self.s.max_resample)
        counted = in_a_row or flooded
        self.repeats_in_a_row = 0 if counted else self.repeats_in_a_row + 1
        if in_a_row:
            why = f"{self.s.max_resample} repeats in a row before it: counted"
        elif flooded:
            why = f"the study holds as many re-sampled repeats as counted trials ({self.seen.resampled}): counted"
        else:
            why = "re-sampled"
        results = {k: v for k, v in first.user_attrs.items() if k not in attrs and k not in NOT_REPEATED}
        attrs.update(results, repeat_of=first.number, repeat_counted=counted)
        attrs.update(reason=f"repeat of trial {first.number} ({why})")
        attrs.update(readable_attrs(attrs), Status=attrs["reason"])
        self._set_constraints(trial, violations)
        record(trial, attrs)
        if first.state == optuna.trial.TrialState.COMPLETE and first.values is not None:
            return tuple(first.values)
        raise optuna.TrialPruned(attrs["reason"])

    def evaluate_arch(self, arch: Arch) -> dict:
        """Build, time and score `arch` outside any trial (reference models), exactly as a trial does,
        through the same caches. Returns the attrs a trial would carry."""
        attrs = {"arch_hash": arch.content_hash()}
        self._measure_and_score(arch, self._build(arch, attrs), attrs)
        return attrs

    def _evaluate(self, trial: optuna.Trial, arch: Arch, attrs: dict):
        module = self._build(arch, attrs)
        if self.prefilter is not None:
            self._prefilter(trial, arch, module, attrs)  # raises TrialPruned: predicted far off the front
        if self.screen is not None:
            self._screen(trial, arch, module, attrs)  # raises TrialPruned: screened
        objectives = self._measure_and_score(arch, module, attrs)
        record(trial, attrs)
        return objectives

    def _build(self, arch: Arch, attrs: dict):
        t = time.perf_counter()
        module = build_seeded(arch)  # the score is a function of (arch, seed), like the cache key
        attrs["time_build_s"] = time.perf_counter() - t
        return module

    def _measure_and_score(self, arch: Arch, module, attrs: dict) -> tuple[float, float]:
        """Time (latency cache first) and score (score cache first) the built `module`, into attrs; the two
        objectives."""
        m = self.timer.measure(arch, module, attrs["arch_hash"])
        lat = m.latency
        attrs["time_measure_s"] = m.seconds
        attrs["latency_cached"] = m.cached
        attrs["latency"] = {k: lat[k] for k in LATENCY_ATTRS if k in lat}
        attrs["fingerprint"] = lat["fingerprint"]

        value = self._score(arch, module, attrs)
        attrs.update(score=value, score_name=self.s.score, feasible=True, reason="")
        attrs.update(readable_attrs(attrs))  # strings for optuna-dashboard
        if not math.isfinite(value):
            value = -1e9  # a degenerate NASWOT kernel: worst possible score, still comparable
        return lat["median_ms"], value

    def _score(self, arch: Arch, module, attrs: dict) -> float:
        """The score of `arch`, through the score cache (adds the time spent to attrs)."""
        t = time.perf_counter()
        r = self.scorer.score(self.store, arch, module, attrs["arch_hash"])
        details = {"cached": True, "seconds": r.seconds} if r.cached else r.details
        if hasattr(self.score_fn, "expected_cost"):  # --score train: what the training cost, on the trial
            madds = attrs.get("madds") or cost(arch).madds
            attrs["training"] = {**(details or {}), **self.score_fn.expected_cost(madds)}
        attrs["time_score_s"] = attrs.get("time_score_s", 0.0) + time.perf_counter() - t
        return r.value

    def _prefilter(self, trial: optuna.Trial, arch: Arch, module, attrs: dict) -> None:
        """--prefilter (rule in nasx.measure.prefilter): score first, then end the trial PRUNED, never timed, when
        the stored latency model predicts it far off the current front."""
        value = self._score(arch, module, attrs)  # cached: the score step after timing reads it back
        front = [(t.number, t.values[0], t.values[1]) for t in pareto_front(trial.study)]
        verdict = self.prefilter.check(
            front, attrs["madds"], attrs["mac_elements"], value if math.isfinite(value) else -1e9
        )
        attrs["predicted_latency_ms"] = verdict.predicted_ms
        if not verdict.skip:
            return
        self._skip(trial, attrs, value, "prefiltered", verdict.reason)

    def _screen(self, trial: optuna.Trial, arch: Arch, module, attrs: dict) -> None:
        """Screening (nasx.search.screen): score, predict from the block table (timing the layers it lacks), and
        end the trial PRUNED as screened, never timed whole, when the prediction cannot reach the front."""
        assert self.screen is not None
        if self.screen.off or not self.screen.ready(trial.study):
            return  # no model yet, or one too wide to screen with: timed whole, as without screening
        value = self._score(arch, module, attrs)  # cached: the score step after timing reads it back
        t0 = time.perf_counter()
        self.screen.model(trial.study)  # fitted now: the bootstrap candidates' layers timed here, once
        if self.screen.off:
            attrs["screen_off"] = self.screen.off
            attrs["time_layers_s"] = time.perf_counter() - t0
            return
        times = self.screen.layer_times(arch)
        timed = [times, *self.screen.backlog]
        self.screen.backlog.clear()
        attrs.update(layer_sum_ms=times.total_ms, n_layers=times.n_layers)
        attrs["layers_timed"] = sum(x.timed_now for x in timed)  # with the earlier trials' timed for the model
        attrs["time_layers_s"] = time.perf_counter() - t0
        attrs["layer_timing"] = {k: sum(x.timing.get(k, 0.0) for x in timed) for k in times.timing}
        t0 = time.perf_counter()
        front = [(t.number, t.values[0], t.values[1]) for t in pareto_front(trial.study)]
        verdict = self.screen.check(trial.study, front, times, value if math.isfinite(value) else -1e9)
        attrs["time_screen_s"] = time.perf_counter() - t0
        if verdict.predicted_ms is not None:
            attrs.update(predicted_latency_ms=verdict.predicted_ms, screen_margin=verdict.margin)
        if not verdict.skip:
            return
        self._skip(trial, attrs, value, "screened", verdict.reason)

    def _skip(self, trial: optuna.Trial, attrs: dict, score: float, flag: str, reason: str) -> None:
        """End a feasible, scored candidate PRUNED without timing it whole (`flag`: prefiltered or screened)."""
        attrs.update({flag: True}, score=score, score_name=self.s.score, feasible=True, reason=reason)
        attrs.update(readable_attrs(attrs))
        attrs["Status"] = reason
        record(trial, attrs)
        raise optuna.TrialPruned(reason)


class SeenArchs:
    """The architectures a study holds (feasible, rejected or screened; not repeats, failures or trials still
    running), read incrementally: the first trial of each architecture hash."""

    def __init__(self):
        self.by_hash: dict[str, optuna.trial.FrozenTrial] = {}
        self.read: set[int] = set()  # trial numbers already looked at
        self.resampled = 0  # finished re-sampled repeats in the study (every worker's)
        self.counted = 0  # finished trials that count in --n-trials

    def first(self, trial: optuna.Trial, arch_hash: str) -> optuna.trial.FrozenTrial | None:
        for t in trial.study.get_trials(deepcopy=False, states=FINISHED):
            if t.number in self.read:
                continue
            self.read.add(t.number)
            uncounted = is_uncounted_repeat(t)
            self.resampled += uncounted
            self.counted += not uncounted
            h = t.user_attrs.get("arch_hash")
            if h and "repeat_of" not in t.user_attrs and h not in self.by_hash:
                self.by_hash[h] = t
        return self.by_hash.get(arch_hash)


def is_uncounted_repeat(t: optuna.trial.FrozenTrial) -> bool:
    """A re-sampled repeat: stored, but not one of --n-trials."""
    return "repeat_of" in t.user_attrs and not t.user_attrs.get("repeat_counted")


def make_score(settings: SearchSettings):
    """The score function of a search; a score that trains gets its data set (default digits) here."""
    if not needs_data(settings.score):
        return get_score(settings.score)
    data = load_data(settings.data or DEFAULT_DATA, settings.space.input, settings.space.classes)
    return get_score(settings.score, data=data, train=settings.train or TrainSettings(device=settings.device))


def score_study_attrs(settings: SearchSettings) -> dict:
    """What a training score depends on, stored on the study."""
    if not needs_data(settings.score):
        return {}
    return {
        "data": settings.data or DEFAULT_DATA,
        "train": (settings.train or TrainSettings(device=settings.device)).as_dict(),
    }
