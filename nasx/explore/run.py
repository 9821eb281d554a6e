"""`nasx explore`: the design space seen through the cost core, then through the device.

1. Sampling. N architectures are drawn from the space, every choice uniformly at random (as
   `SearchSpace.random_arch` and Optuna's RandomSampler draw them: a stage of depth 1 is as likely as one
   of depth 4, so this is uniform over choices, not over distinct networks), and N more from each
   single-family sub-space (the same skeleton with every block of one family). The cost core prices each
   in microseconds. Following Radosavovic et al. ("Designing Network Design Spaces", 2020), each
   population is summarised by the empirical distribution functions (EDFs) of its MAdds, MAC and params:
   the sub-spaces are design spaces of their own, and their EDFs show what each family costs.
2. Measuring. A small subset (default 40) is built and timed: half from the whole space, the rest split
   over the family sub-spaces so every family is represented; within each population the picks are
   spread evenly over log MAdds between its smallest and largest member (so the subset covers the range,
   tails included, rather than mirroring the bulk). Latencies go through the study database's latency
   cache (same key as `nasx search`), so nothing is timed twice.
3. Predicting. The measured subset is split in two halves, stratified (consecutive architectures in
   MAdds order, one to each half). Each predictor — MAdds, MAC, params, activations alone (a·x + c) and
   the combination a·MAdds + b·MAC + c — is fitted on one half by least squares on relative residuals
   (see nasx.measure.latency_model for why) and judged on the other: Kendall's tau-b, Spearman's rho and the
   share predicted within ±10% (nn-Meter's measure). The combination is stored as the latency model of
   this device fingerprint, which `nasx search --prefilter` uses.
4. Blocks (unless --no-blocks). Every distinct layer of the measured networks is timed alone into the block
   latency table (nasx.measure.blocks; layers already there are not timed again), and the block model
   (nasx.measure.block_model: a correction of each network's layer sum) is fitted on the same training half
   and judged on the same held-out half, in each of its forms; DEFAULT_FORM's, `blocks`, is stored for the
   fingerprint (`nasx latency --predict` uses it).

Everything (the run, every sampled architecture's choices and costs, the measured latencies) is stored
in the same database as the searches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import time
from dataclasses import dataclass

from nasx.errors import NasxError
from nasx.explore.predictors import COMBINATION, COSTS, PredictorResult, evaluate_blocks, predictor_table
from nasx.explore.sampling import (
    ALL,
    Sample,
    population_names,
    quotas,
    sample_population,
    split_halves,
    stratified_subset,
)
from nasx.explore.schema import explore_archs, explore_runs
from nasx.explore.settings import ExploreSettings
from nasx.measure.block_model import BlockModel, save_block_model
from nasx.measure.blocks import BlockTable, LayerEntry, arch_layers
from nasx.measure.cached import Timer
from nasx.measure.device import resolve_device
from nasx.measure.latency import check_measure_time
from nasx.measure.latency_model import LatencyModel, save_model
from nasx.store.db import Store
from nasx.util.fmt import duration, human


@dataclass
class ExploreResult:
    settings: ExploreSettings
    populations: dict[str, list[Sample]]
    subset: list[Sample]
    train: list[Sample]
    test: list[Sample]
    predictors: list[PredictorResult]
    model: LatencyModel | None
    fingerprint: dict
    fingerprint_hash: str
    run_id: int | None
    sample_s: float
    measure_s: float
    measured_now: int
    block_model: BlockModel | None = None
    layers: int = 0  # distinct layers of the measured networks (the block table's entries they use)
    layers_timed_now: int = 0
    layers_s: float = 0.0


def explore_timer(settings: ExploreSettings, store) -> Timer:
    """The explorer's cached timing: as `nasx search` times (same cache, same fingerprint), with a shorter
    warm-up when the time cap is short."""
    return Timer.here(
        store,
        settings.space.input,
        device=settings.device,
        threads=settings.threads,
        batch=settings.batch,
        drift_correction=settings.drift_correction,
        runtime=settings.runtime,
        max_time_s=settings.measure_time_s,
        warmup_s=min(0.25, settings.measure_time_s / 2),
    )


def measure_subset(subset: list[Sample], timer: Timer, progress: bool = True, out=None) -> int:
    """Build and time each architecture (latency cache first); returns how many were timed now."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    timed, start = 0, time.perf_counter()
    for i, s in enumerate(subset, 1):
        m = timer.measure(s.arch, arch_hash=s.arch_hash)
        timed += not m.cached
        s.latency_ms, s.iqr_ms, s.cached = m.latency["median_ms"], m.latency["iqr_ms"], m.cached
        if progress:
            elapsed = time.perf_counter() - start
            eta = elapsed / i * (len(subset) - i)
            out.write(
                f"measure {i}/{len(subset)} | {s.population:<13} | {human(s.madds):>6} MAdds | "
                f"{s.latency_ms:8.2f} ms{' (cached)' if s.cached else ''} | {duration(elapsed)} | ETA "
                f"{duration(eta)}" + ("\r" if out.isatty() else "\n")
            )
            out.flush()
    if progress and out.isatty():
        out.write("\n")
    return timed


def time_layers(subset: list[Sample], timer: Timer, progress: bool = True, out=None) -> tuple[int, int]:
    """Every distinct layer of the measured networks into the block table (those it lacks timed now); each
    sample gets its layer sum. Returns (distinct layers, timed now)."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    table, start = BlockTable(timer), time.perf_counter()

    def report(i: int, n: int, entry: LayerEntry, ms: float) -> None:
        elapsed = time.perf_counter() - start
        out.write(
            f"layer {i}/{n} | {entry.section}{entry.index} {entry.layer.name:<13} | "  # type: ignore[attr-defined]
            f"{'x'.join(map(str, entry.in_shape)):>11} | {ms:7.3f} ms | {duration(elapsed)} | ETA "
            f"{duration(elapsed / i * (n - i))}" + ("\r" if out.isatty() else "\n")
        )
        out.flush()

    timed_now = table.fill([s.arch for s in subset], report if progress else None)
    if progress and timed_now and out.isatty():
        out.write("\n")
    hashes: set[str] = set()
    for s in subset:
        times = table.layer_times(s.arch, time_missing=False)
        s.layer_sum_ms, s.n_layers = times.total_ms, times.n_layers
        hashes.update(e.hash for e in arch_layers(s.arch))
    return len(hashes), timed_now


def explore(settings: ExploreSettings, out=None) -> ExploreResult:
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    if settings.n < 1:
        raise NasxError(f"-n must be at least 1, got {settings.n}")
    if settings.measure < 0:
        raise NasxError(f"--measure must be 0 or more, got {settings.measure}")
    check_measure_time(settings.measure_time_s)
    if settings.threads is not None and settings.threads < 1:
        raise NasxError(f"--threads must be at least 1, got {settings.threads}")
    names = population_names(settings.space)
    if settings.measure:
        quotas(names, settings.measure)  # a clear error before any work
        resolve_device(settings.device)
    store = Store(settings.storage)
    t0 = time.perf_counter()
    populations = {}
    for name in names:
        populations[name] = sample_population(settings.space, settings.n, settings.seed, name)
        if settings.progress:
            out.write(
                f"sampled {settings.n} from {settings.space.name if name == ALL else name + ' only'} "
                f"({duration(time.perf_counter() - t0)})\n"
            )
    sample_s = time.perf_counter() - t0
    tm = explore_timer(settings, store)
    subset: list[Sample] = []
    train: list[Sample] = []
    test: list[Sample] = []
    predictors: list[PredictorResult] = []
    model, measured_now, measure_s, block_model = None, 0, 0.0, None
    layers, layers_timed_now, layers_s = 0, 0, 0.0
    if settings.measure:
        subset = stratified_subset(populations, settings.measure)
        t = time.perf_counter()
        measured_now = measure_subset(subset, tm, settings.progress, out)
        measure_s = time.perf_counter() - t
        if settings.blocks:
            t = time.perf_counter()
            layers, layers_timed_now = time_layers(subset, tm, settings.progress, out)
            layers_s = time.perf_counter() - t
        train, test = split_halves(subset, settings.seed)
        if len(train) >= 3 and len(test) >= 3:
            predictors = predictor_table(train, test)
            if settings.blocks:
                block_model = dataclasses.replace(
                    evaluate_blocks(train, test)[1],
                    config=settings.space.name,
                    fingerprint_hash=tm.fp_hash,
                    fingerprint=tm.fp,
                )
                if settings.store_model:
                    save_block_model(store, block_model)
            comb = predictors[len(COSTS)]
            model = LatencyModel(
                COMBINATION,
                comb.coef,
                comb.intercept_ms,
                comb.fit,
                comb.n_train,
                comb.n_test,
                comb.kendall,
                comb.spearman,
                comb.within10,
                comb.p90_abs_rel_error,
                settings.space.name,
                tm.fp_hash,
                tm.fp,
            )
            if settings.store_model:
                save_model(store, model)
    result = ExploreResult(
        settings,
        populations,
        subset,
        train,
        test,
        predictors,
        model,
        tm.fp,
        tm.fp_hash,
        None,
        sample_s,
        measure_s,
        measured_now,
        block_model,
        layers,
        layers_timed_now,
        layers_s,
    )
    result.run_id = store_run(store, result)
    return result


def store_run(store, result: ExploreResult) -> int:
    s = result.settings
    for table in (explore_runs, explore_archs):
        table.create(store.engine, checkfirst=True)
    summary = {
        "populations": {k: len(v) for k, v in result.populations.items()},
        "measured": len(result.subset),
        "predictors": [p.as_dict() for p in result.predictors],
        "model": result.model.to_dict() if result.model else None,
        "block_model": result.block_model.to_dict() if result.block_model else None,
    }
    with store.engine.begin() as c:
        run_id = c.execute(
            explore_runs.insert().values(
                config_name=s.space.name,
                config_hash=s.space.config_hash,
                config=s.space.text,
                seed=s.seed,
                n=s.n,
                fingerprint_hash=result.fingerprint_hash,
                fingerprint=result.fingerprint,
                summary=summary,
                created=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
            )
        ).inserted_primary_key[0]
        rows = [
            {
                "run_id": run_id,
                "population": x.population,
                "index": x.index,
                "arch_hash": x.arch_hash,
                "choices": x.choices,
                "madds": x.madds,
                "mac": x.mac,
                "params": x.params,
                "activations": x.activations,
                "measured": x.latency_ms is not None,
                "split": x.split,
                "median_ms": x.latency_ms,
                "iqr_ms": x.iqr_ms,
            }
            for samples in result.populations.values()
            for x in samples
        ]
        if rows:
            c.execute(explore_archs.insert(), rows)
    return int(run_id)
