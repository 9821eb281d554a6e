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
   (see nasx.latency_model for why) and judged on the other: Kendall's tau-b, Spearman's rho and the
   share predicted within ±10% (nn-Meter's measure). The combination is stored as the latency model of
   this device fingerprint, which `nasx search --prefilter` uses.

Everything (the run, every sampled architecture's choices and costs, the measured latencies) is stored
in the same database as the searches."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
import random
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import JSON, Boolean, Column, DateTime, Float, Integer, String, Table

from nasx.arch import Arch
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.fmt import human, render_table
from nasx.latency_model import LatencyModel, fit_linear, relative_errors, within_share
from nasx.stats import kendall_tau_b, spearman
from nasx.space import SearchSpace, load_space
from nasx.store import DEFAULT_STORAGE, metadata

ALL = "all"  # the population drawn from the whole space
COSTS = (("MAdds", "madds"), ("MAC", "mac"), ("params", "params"), ("activations", "activations"))
COMBINATION = ("madds", "mac")

explore_runs = Table(
    "nasx_explore_run", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("config_name", String(256), nullable=False),
    Column("config_hash", String(32), nullable=False),
    Column("config", String, nullable=False),
    Column("seed", Integer, nullable=False),
    Column("n", Integer, nullable=False),
    Column("fingerprint_hash", String(32), nullable=False),
    Column("fingerprint", JSON, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("created", DateTime, nullable=False),
)

explore_archs = Table(
    "nasx_explore_arch", metadata,
    Column("run_id", Integer, primary_key=True),
    Column("population", String(64), primary_key=True),
    Column("index", Integer, primary_key=True),
    Column("arch_hash", String(32), nullable=False),
    Column("choices", JSON, nullable=False),  # rebuild with SearchSpace.sample(FixedChoices(choices))
    Column("madds", Integer, nullable=False),
    Column("mac", Integer, nullable=False),
    Column("params", Integer, nullable=False),
    Column("activations", Integer, nullable=False),
    Column("measured", Boolean, nullable=False),
    Column("split", String(8), nullable=True),  # train | test | None (not measured)
    Column("median_ms", Float, nullable=True),
    Column("iqr_ms", Float, nullable=True),
)


# --- sampling -------------------------------------------------------------------------------------------

class _Recorder:
    """Draws each choice uniformly (exactly the random stream `SearchSpace.random_arch` consumes) and
    records it."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.choices: dict = {}

    def suggest_categorical(self, name, choices):
        value = self.rng.choice(list(choices))
        self.choices[name] = value
        return value


class FixedChoices:
    """Replays recorded choices into `SearchSpace.sample`."""

    def __init__(self, choices: dict):
        self.choices = choices

    def suggest_categorical(self, name, choices):
        return self.choices[name]


def draw(space: SearchSpace, rng: random.Random) -> tuple[dict, Arch]:
    """One uniform draw: (the choices made, the architecture)."""
    rec = _Recorder(rng)
    arch = space.sample(rec)
    return rec.choices, arch


def enumerate_space(space: SearchSpace, limit: int = 100_000):
    """Every choice path of a (small) space with its probability under the uniform draw:
    yields (probability, choices, arch). Raises NasxError past `limit` paths."""

    class _Replay:
        def __init__(self, prefix):
            self.prefix, self.path, self.choices = prefix, [], {}

        def suggest_categorical(self, name, choices):
            choices = list(choices)
            i = self.prefix[len(self.path)] if len(self.path) < len(self.prefix) else 0
            self.path.append((i, len(choices)))
            self.choices[name] = choices[i]
            return choices[i]

    stack, seen = [[]], 0
    while stack:
        prefix = stack.pop()
        rep = _Replay(prefix)
        arch = space.sample(rep)
        for pos in range(len(prefix), len(rep.path)):
            stack.extend([i for i, _ in rep.path[:pos]] + [alt] for alt in range(1, rep.path[pos][1]))
        seen += 1
        if seen > limit:
            raise NasxError(f"space {space.name} has more than {limit} choice paths: too many to enumerate")
        yield math.prod(1 / n for _, n in rep.path), rep.choices, arch


def subspace(space: SearchSpace, family: str) -> SearchSpace:
    """The same skeleton with every block of one family (its parameter choices unchanged)."""
    fams = dict(space.families)
    if family not in fams:
        raise NasxError(f"space {space.name} has no family {family!r}; it has {', '.join(fams)}")
    return dataclasses.replace(space, name=f"{space.name}[{family}]", families=((family, fams[family]),))


def population_names(space: SearchSpace) -> list[str]:
    fams = [f for f, _ in space.families]
    return [ALL] + fams if len(fams) > 1 else [ALL]


@dataclass
class Sample:
    population: str
    index: int
    choices: dict
    arch: Arch
    arch_hash: str
    madds: int
    mac: int
    params: int
    activations: int
    families: dict
    latency_ms: float | None = None
    iqr_ms: float | None = None
    cached: bool = False
    split: str | None = None

    def value(self, key: str) -> float:
        return getattr(self, key)


def sample_population(space: SearchSpace, n: int, seed: int, population: str = ALL) -> list[Sample]:
    """n uniform draws from `space` (or from its single-family sub-space `population`), costed."""
    sp = space if population == ALL else subspace(space, population)
    rng = random.Random(f"nasx-explore:{seed}:{population}")
    out = []
    for i in range(n):
        choices, arch = draw(sp, rng)
        r = cost(arch)
        out.append(Sample(population, i, choices, arch, arch.content_hash(), r.madds, r.mac, r.params,
                          r.activations, arch.families()))
    return out


# --- empirical distribution functions -------------------------------------------------------------------

def edf(values) -> tuple[np.ndarray, np.ndarray]:
    """The empirical distribution function F(t) = share of values <= t, as its steps: (the distinct
    values in increasing order, F at each of them). F is right-continuous and ends at 1."""
    v = np.sort(np.asarray(values, dtype=float))
    if len(v) == 0:
        return v, v
    xs, counts = np.unique(v, return_counts=True)
    return xs, np.cumsum(counts) / len(v)


def edf_at(values, points) -> np.ndarray:
    """F evaluated at arbitrary points."""
    v = np.sort(np.asarray(values, dtype=float))
    return np.searchsorted(v, np.asarray(points, dtype=float), side="right") / len(v)


# --- the measured subset ------------------------------------------------------------------------------

def quotas(names: list[str], k: int) -> dict[str, int]:
    """Half of k (rounded up) to the whole space, the rest evenly over the family sub-spaces."""
    if len(names) == 1:
        return {names[0]: k}
    fams = names[1:]
    if k < 1 + len(fams):
        raise NasxError(f"--measure {k} is too few to represent the whole space and each of the {len(fams)} "
                        f"families: use at least {1 + len(fams)} (default 40)")
    rest = k - math.ceil(k / 2)
    rest = max(rest, len(fams))
    q = {ALL: k - rest}
    for i, f in enumerate(fams):
        q[f] = rest // len(fams) + (1 if i < rest % len(fams) else 0)
    return q


def spread_pick(samples: list[Sample], q: int) -> list[Sample]:
    """q samples of distinct architectures, nearest to q targets evenly spaced over log MAdds between the
    population's smallest and largest member (targets at the centres of q equal intervals)."""
    if q <= 0 or not samples:
        return []
    logm = np.log(np.array([s.madds for s in samples], dtype=float))
    lo, hi = logm.min(), logm.max()
    chosen, hashes = [], set()
    for j in range(q):
        target = lo + (j + 0.5) / q * (hi - lo)
        for i in np.argsort(np.abs(logm - target), kind="stable"):
            s = samples[int(i)]
            if s.arch_hash not in hashes:
                chosen.append(s)
                hashes.add(s.arch_hash)
                break
    return chosen


def stratified_subset(populations: dict[str, list[Sample]], k: int) -> list[Sample]:
    q = quotas(list(populations), k)
    subset, hashes = [], set()
    for name, samples in populations.items():
        picks = spread_pick([s for s in samples if s.arch_hash not in hashes], q[name])
        subset += picks
        hashes.update(s.arch_hash for s in picks)
    return subset


def split_halves(subset: list[Sample], seed: int) -> tuple[list[Sample], list[Sample]]:
    """Within each population, architectures in MAdds order are paired; a seeded coin sends one of each
    pair to the training half and the other to the held-out half (an odd one out trains)."""
    rng = random.Random(f"nasx-explore-split:{seed}")
    train, test = [], []
    by_pop: dict[str, list[Sample]] = {}
    for s in subset:
        by_pop.setdefault(s.population, []).append(s)
    for samples in by_pop.values():
        ordered = sorted(samples, key=lambda s: (s.madds, s.arch_hash))
        for i in range(0, len(ordered) - 1, 2):
            a, b = ordered[i], ordered[i + 1]
            if rng.random() < 0.5:
                a, b = b, a
            train.append(a)
            test.append(b)
        if len(ordered) % 2:
            train.append(ordered[-1])
    for s in train:
        s.split = "train"
    for s in test:
        s.split = "test"
    return train, test


# --- predictors -----------------------------------------------------------------------------------------

@dataclass
class PredictorResult:
    name: str
    features: tuple[str, ...]
    fit: str
    coef: tuple[float, ...]
    intercept_ms: float
    kendall: float
    spearman: float
    within10: float
    median_abs_rel_error: float
    p90_abs_rel_error: float
    n_train: int
    n_test: int
    predictions: list[float] = field(default_factory=list)  # on the held-out half, in its order

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def evaluate_predictor(name: str, features: tuple[str, ...], train: list[Sample], test: list[Sample],
                       relative: bool = True) -> PredictorResult:
    X = np.array([[s.value(f) for f in features] for s in train], dtype=float)
    y = np.array([s.latency_ms for s in train], dtype=float)
    coef, intercept = fit_linear(X, y, relative=relative)
    Xt = np.array([[s.value(f) for f in features] for s in test], dtype=float)
    yt = np.array([s.latency_ms for s in test], dtype=float)
    pred = Xt @ coef + intercept if len(test) else np.array([])
    # rank statistics of the predictor itself: for one cost, its raw value (a fitted line of positive slope
    # ranks the same); for a combination, the fitted prediction
    ranker = Xt[:, 0] if len(features) == 1 else pred
    err = np.abs(relative_errors(pred, yt)) if len(test) else np.array([math.nan])
    return PredictorResult(
        name, features, "relative least squares" if relative else "least squares", tuple(map(float, coef)),
        intercept, kendall_tau_b(ranker, yt), spearman(ranker, yt), within_share(pred, yt),
        float(np.median(err)), float(np.quantile(err, 0.9)), len(train), len(test), [float(p) for p in pred])


def predictor_table(train: list[Sample], test: list[Sample]) -> list[PredictorResult]:
    rows = [evaluate_predictor(label, (key,), train, test) for label, key in COSTS]
    rows.append(evaluate_predictor("a·MAdds + b·MAC + c", COMBINATION, train, test))
    rows.append(evaluate_predictor("a·MAdds + b·MAC + c", COMBINATION, train, test, relative=False))
    return rows


def _corr(v: float) -> str:
    return "n/a" if v is None or math.isnan(v) else f"{v:+.3f}"


def _share(v: float, n: int) -> str:
    return "n/a" if math.isnan(v) else f"{v:.0%} ({round(v * n)}/{n})"


def predictor_rows(rows: list[PredictorResult]) -> list[list[str]]:
    out = []
    for r in rows:
        terms = ""
        for i, (c, f) in enumerate(zip(r.coef, r.features)):
            terms += ("" if i == 0 else (" + " if c >= 0 else " - ")) + f"{(c if i == 0 else abs(c)) * 1e6:.3g}·{f}/1M"
        out.append([r.name, r.fit, f"{terms} {'+' if r.intercept_ms >= 0 else '-'} {abs(r.intercept_ms):.3g}",
                    _corr(r.kendall), _corr(r.spearman), _share(r.within10, r.n_test),
                    f"{r.median_abs_rel_error:.0%}"])
    return out


PREDICTOR_HEADER = ["predictor", "fit (train half)", "latency ms ≈", "Kendall τb", "Spearman ρ", "within ±10%",
                    "median |err|"]


# --- the run ----------------------------------------------------------------------------------------------

@dataclass
class ExploreSettings:
    space: SearchSpace
    n: int = 1000
    measure: int = 40
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    measure_time_s: float = 0.5
    store_model: bool = True
    progress: bool = True
    drift_correction: bool = True  # as nasx search: its --prefilter finds the model under the same fingerprint


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


def measure_subset(subset: list[Sample], settings: ExploreSettings, fp: dict, fp_hash: str, store,
                   out=sys.stderr) -> int:
    """Build and time each architecture (latency cache first); returns how many were timed now."""
    import torch

    from nasx.build import build
    from nasx.timing import timed as measure

    timed, start = 0, time.perf_counter()
    for i, s in enumerate(subset, 1):
        cached = store.get_latency(s.arch_hash, fp_hash)
        if cached is None:
            torch.manual_seed(0)
            module = build(s.arch)
            lat = measure(module, s.arch.input, store, fp, fp_hash, device=settings.device, batch=settings.batch,
                          threads=settings.threads, max_time_s=settings.measure_time_s,
                          warmup_s=min(0.25, settings.measure_time_s / 2))
            store.put_latency(s.arch_hash, fp_hash, fp, lat)
            timed += 1
            del module
        else:
            lat = cached
        s.latency_ms, s.iqr_ms, s.cached = lat["median_ms"], lat["iqr_ms"], cached is not None
        if settings.progress:
            elapsed = time.perf_counter() - start
            eta = elapsed / i * (len(subset) - i)
            out.write(f"measure {i}/{len(subset)} | {s.population:<13} | {human(s.madds):>6} MAdds | "
                      f"{s.latency_ms:8.2f} ms{' (cached)' if s.cached else ''} | {_duration(elapsed)} | ETA "
                      f"{_duration(eta)}" + ("\r" if out.isatty() else "\n"))
            out.flush()
    if settings.progress and out.isatty():
        out.write("\n")
    return timed


def _duration(s: float) -> str:
    s = int(s)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def explore(settings: ExploreSettings, out=sys.stderr) -> ExploreResult:
    from nasx.latency import fingerprint, fingerprint_hash, resolve_device
    from nasx.latency_model import save_model
    from nasx.store import Store

    if settings.n < 1:
        raise NasxError(f"-n must be at least 1, got {settings.n}")
    if settings.measure < 0:
        raise NasxError(f"--measure must be 0 or more, got {settings.measure}")
    if settings.measure_time_s <= 0:
        raise NasxError(f"--measure-time must be positive seconds, got {settings.measure_time_s}")
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
            out.write(f"sampled {settings.n} from {settings.space.name if name == ALL else name + ' only'} "
                      f"({_duration(time.perf_counter() - t0)})\n")
    sample_s = time.perf_counter() - t0
    fp = fingerprint(settings.device, settings.threads, settings.batch, settings.space.input,
                     drift_corrected=settings.drift_correction)
    fp_hash = fingerprint_hash(fp)
    subset: list[Sample] = []
    train: list[Sample] = []
    test: list[Sample] = []
    predictors: list[PredictorResult] = []
    model, measured_now, measure_s = None, 0, 0.0
    if settings.measure:
        subset = stratified_subset(populations, settings.measure)
        t = time.perf_counter()
        measured_now = measure_subset(subset, settings, fp, fp_hash, store, out)
        measure_s = time.perf_counter() - t
        train, test = split_halves(subset, settings.seed)
        if len(train) >= 3 and len(test) >= 3:
            predictors = predictor_table(train, test)
            comb = predictors[len(COSTS)]
            model = LatencyModel(COMBINATION, comb.coef, comb.intercept_ms, comb.fit, comb.n_train, comb.n_test,
                                 comb.kendall, comb.spearman, comb.within10, comb.p90_abs_rel_error,
                                 settings.space.name, fp_hash, fp)
            if settings.store_model:
                save_model(store, model)
    result = ExploreResult(settings, populations, subset, train, test, predictors, model, fp, fp_hash, None,
                           sample_s, measure_s, measured_now)
    result.run_id = store_run(store, result)
    return result


def store_run(store, result: ExploreResult) -> int:
    s = result.settings
    for table in (explore_runs, explore_archs):
        table.create(store.engine, checkfirst=True)
    summary = {"populations": {k: len(v) for k, v in result.populations.items()}, "measured": len(result.subset),
               "predictors": [p.as_dict() for p in result.predictors],
               "model": result.model.to_dict() if result.model else None}
    with store.engine.begin() as c:
        run_id = c.execute(explore_runs.insert().values(
            config_name=s.space.name, config_hash=s.space.config_hash, config=s.space.text, seed=s.seed, n=s.n,
            fingerprint_hash=result.fingerprint_hash, fingerprint=result.fingerprint, summary=summary,
            created=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))).inserted_primary_key[0]
        rows = [{"run_id": run_id, "population": x.population, "index": x.index, "arch_hash": x.arch_hash,
                 "choices": x.choices, "madds": x.madds, "mac": x.mac, "params": x.params,
                 "activations": x.activations, "measured": x.latency_ms is not None, "split": x.split,
                 "median_ms": x.latency_ms, "iqr_ms": x.iqr_ms}
                for samples in result.populations.values() for x in samples]
        if rows:
            c.execute(explore_archs.insert(), rows)
    return int(run_id)


# --- text report --------------------------------------------------------------------------------------

def _q(values, qs=(0.1, 0.5, 0.9)) -> str:
    return " / ".join(human(float(v)) for v in np.quantile(np.asarray(values, float), qs))


def edf_table(populations: dict[str, list[Sample]]) -> str:
    rows = []
    for name, samples in populations.items():
        ratio = np.median([s.mac / s.madds for s in samples])
        rows.append([name, f"{len(samples):,}", _q([s.madds for s in samples]), _q([s.mac for s in samples]),
                     _q([s.params for s in samples]), f"{ratio:.4f}"])
    return render_table(["population", "archs", "MAdds p10 / p50 / p90", "MAC p10 / p50 / p90",
                         "params p10 / p50 / p90", "MAC/MAdd p50"], rows)


def text_report(result: ExploreResult) -> str:
    s, sp = result.settings, result.settings.space
    fams = [f for f, _ in sp.families]
    total = sum(len(v) for v in result.populations.values())
    rate = total / result.sample_s if result.sample_s else math.inf
    lines = [f"nasx explore: space {sp.name} ({'x'.join(map(str, sp.input))}), seed {s.seed}",
             f"sampled {s.n:,} architectures uniformly from the whole space"
             + (f" and {s.n:,} from each single-family sub-space ({total:,} in all)" if len(fams) > 1 else "")
             + f", costed in {result.sample_s:.1f} s ({rate:,.0f} architectures/s)", "",
             "cost distributions (the EDFs, as quantiles; MAC in elements):", edf_table(result.populations)]
    if result.subset:
        fp = result.fingerprint
        q = quotas(list(result.populations), s.measure)
        split = f"{q[ALL]} from the whole space" + (
            f", {', '.join(f'{q[f]} {f}' for f in fams)}" if len(fams) > 1 else "")
        lines += ["", f"measured {len(result.subset)} ({split}; spread over each population's MAdds range) on "
                      f"{fp['device']} {fp['hardware']}, {fp['threads']} threads, batch {fp['batch']}, torch "
                      f"{fp['torch']}: {result.measured_now} timed now, {len(result.subset) - result.measured_now} "
                      f"from the latency cache, in {result.measure_s:.0f} s"]
        lat = [x.latency_ms for x in result.subset]
        lines.append(f"latency {min(lat):.2f} .. {max(lat):.2f} ms (median {np.median(lat):.2f} ms)")
    if result.predictors:
        n_test = len(result.test)
        lines += ["", f"predictors of latency, judged on the {n_test} held-out architectures (fitted on the other "
                      f"{len(result.train)}; rank statistics of the raw cost for single costs):",
                  render_table(PREDICTOR_HEADER, predictor_rows(result.predictors))]
        comb = result.predictors[len(COSTS)]
        by_pop = []
        for name in result.populations:
            idx = [i for i, x in enumerate(result.test) if x.population == name]
            if idx:
                pred = np.array([comb.predictions[i] for i in idx])
                y = np.array([result.test[i].latency_ms for i in idx])
                by_pop.append(f"{name} {int(np.sum(np.abs(relative_errors(pred, y)) <= 0.1 + 1e-12))}/{len(idx)}")
        lines.append("a·MAdds + b·MAC + c (relative fit) within ±10%, by population: " + ", ".join(by_pop))
    elif result.subset:
        lines += ["", f"too few measured architectures to fit on one half and judge on the other "
                      f"({len(result.train)} + {len(result.test)}): use --measure 12 or more (default 40)"]
    if result.model:
        lines += ["", f"latency model for fingerprint {result.fingerprint_hash} "
                      f"({'stored; nasx search --prefilter uses it' if s.store_model else 'not stored'}): "
                      f"{result.model.formula()}"]
    lines.append(f"run {result.run_id} stored in {s.storage} ({total:,} architectures, {len(result.subset)} measured)")
    return "\n".join(lines)


# --- HTML -------------------------------------------------------------------------------------------------

PALETTE = ("#222222", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2")


def figures(result: ExploreResult) -> dict:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    colors = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(result.populations)}
    figs = {}
    edf_fig = make_subplots(rows=1, cols=3, subplot_titles=("MAdds", "MAC (elements)", "params"))
    for name, samples in result.populations.items():
        for col, key in enumerate(("madds", "mac", "params"), 1):
            xs, fs = edf([getattr(x, key) for x in samples])
            edf_fig.add_trace(go.Scatter(x=xs, y=fs, mode="lines", line=dict(shape="hv", color=colors[name],
                                                                              width=3 if name == ALL else 1.8),
                                         name=name, legendgroup=name, showlegend=col == 1), row=1, col=col)
    edf_fig.update_xaxes(type="log")
    edf_fig.update_yaxes(title_text="cumulative share of architectures", row=1, col=1, range=[0, 1.02])
    edf_fig.update_layout(title=f"EDFs of cost in {result.settings.space.name}: the whole space and each "
                                f"single-family sub-space ({result.settings.n:,} each)", template="plotly_white")
    figs["edf"] = edf_fig
    if result.subset:
        for key, label in (("madds", "MAdds"), ("mac", "MAC (elements)")):
            fig = go.Figure()
            for name in result.populations:
                for split, symbol in (("train", "circle"), ("test", "circle-open")):
                    pts = [x for x in result.subset if x.population == name and (x.split or "train") == split]
                    if not pts:
                        continue
                    fig.add_trace(go.Scatter(
                        x=[getattr(x, key) for x in pts], y=[x.latency_ms for x in pts], mode="markers", name=name,
                        legendgroup=name, showlegend=split == "train" or not any(
                            x.population == name and x.split != "test" for x in result.subset),
                        marker=dict(color=colors[name], size=10, symbol=symbol, line=dict(width=2)),
                        error_y=dict(type="data", array=[x.iqr_ms / 2 for x in pts], visible=True, thickness=1),
                        hovertext=[f"{name} #{x.index}<br>{human(x.madds)} MAdds, MAC {human(x.mac)}, params "
                                   f"{human(x.params)}<br>{x.latency_ms:.2f} ± {x.iqr_ms:.2f} ms ({split})"
                                   for x in pts], hoverinfo="text"))
            xs = [getattr(x, key) for x in result.subset]
            ys = [x.latency_ms for x in result.subset]
            fig.update_layout(title=f"latency vs {label} (all {len(xs)} measured: Kendall τb "
                                    f"{_corr(kendall_tau_b(xs, ys))}, Spearman ρ {_corr(spearman(xs, ys))}); "
                                    f"filled: train half, open: held out", template="plotly_white",
                              xaxis_title=label, yaxis_title="latency, ms (median; bars: IQR)",
                              xaxis_type="log", yaxis_type="log")
            figs[f"latency_{key}"] = fig
    if result.predictors:
        comb = result.predictors[len(COSTS)]
        y = [x.latency_ms for x in result.test]
        fig = go.Figure()
        lo, hi = min(y + comb.predictions), max(y + comb.predictions)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#888"), name="exact"))
        for f, dash in ((1.1, "dot"), (0.9, "dot")):
            fig.add_trace(go.Scatter(x=[lo, hi], y=[lo * f, hi * f], mode="lines", name="±10%",
                                     line=dict(color="#bbb", dash=dash), showlegend=f > 1))
        for name in result.populations:
            idx = [i for i, x in enumerate(result.test) if x.population == name]
            if idx:
                fig.add_trace(go.Scatter(x=[y[i] for i in idx], y=[comb.predictions[i] for i in idx],
                                         mode="markers", name=name, marker=dict(color=colors[name], size=9)))
        fig.update_layout(title=f"held-out architectures: a·MAdds + b·MAC + c (relative least squares) — "
                                f"{_share(comb.within10, comb.n_test)} within ±10%",
                          xaxis_title="measured latency, ms", yaxis_title="predicted latency, ms",
                          xaxis_type="log", yaxis_type="log", template="plotly_white")
        figs["prediction"] = fig
    return figs


def render_html(result: ExploreResult, figs: dict) -> str:
    import plotly
    import plotly.io as pio

    parts = []
    for i, (key, fig) in enumerate(figs.items()):
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=(i == 0), div_id=f"fig-{key}",
                                 default_width="100%", default_height="520px"))
    name = html.escape(result.settings.space.name)
    text = html.escape(text_report(result))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>nasx explore: {name}</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1250px;color:#222}}
pre{{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:.85em}}.small{{color:#666;font-size:.9em}}</style>
</head><body><h1>nasx explore: {name}</h1>
{''.join(parts)}
<h2>Numbers</h2><pre id="explore-text">{text}</pre>
<p class="small">made by nasx with plotly {html.escape(plotly.__version__)}. MAdds = conv + linear multiply-accumulates
(BN folded); MAC = elements read + written, conv+BN+act fused. Sampling is uniform over every choice of the
space. Fits: least squares on relative residuals, on one half of the measured subset; judged on the other.</p>
</body></html>
"""


def write_html(result: ExploreResult, path) -> str:
    from pathlib import Path

    from nasx.export import atomic_write

    text = render_html(result, figures(result))
    return str(atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), ".html"))


def settings_from_args(args) -> ExploreSettings:
    return ExploreSettings(space=load_space(args.config), n=args.n, measure=args.measure, seed=args.seed,
                           storage=args.storage, device=args.device, threads=args.threads,
                           measure_time_s=args.measure_time, store_model=not args.no_store_model,
                           progress=not args.quiet, drift_correction=not args.no_drift_correction)
