"""`nasx report`: one standalone HTML page per study (plotly.js inlined, works offline).

Figures (nasx.study.report_figures; the page: nasx.study.report_page): the Pareto front (latency vs
score, coloured by MAdds, infeasible greyed), MAdds vs latency and MAC vs latency with their Spearman and
Kendall rank correlations printed on the plot, the block-family mix of the front, and reference models from
the zoo as labelled points.

Reference models are re-instantiated at the study's input shape when it differs from theirs (same layers,
their 1000-class heads kept; a 224-px model at 32x32 is a different workload from the one its paper
reports, and is labelled `name @32x32`). They are timed and scored exactly as the study's trials were
(nasx.measure.cached and nasx.score.cached, the paths a trial takes: the study's fingerprint settings, device,
threads, batch, and the latency and score caches of the study's database, so a second report measures
nothing), and only on a machine whose fingerprint equals the study's; elsewhere they are skipped with a note
saying why.

Correlations are computed over the measured trials only (references excluded) with numpy: Spearman's rho
is Pearson's r of average ranks (ties share their mean rank); Kendall's tau is tau-b (tie-corrected),
the variant scipy.stats.kendalltau computes by default."""

from __future__ import annotations

import dataclasses
import html
import math
import sys
from pathlib import Path

from nasx import zoo
from nasx.arch import zoo_arch
from nasx.build import build_seeded
from nasx.cost import cost
from nasx.errors import ArchError, NasxError
from nasx.measure.cached import Timer
from nasx.measure.device import fingerprint_hash, runtime_of
from nasx.measure.latency import DEFAULT_MEASURE_TIME_S
from nasx.score.cached import Scorer
from nasx.score.proxies import SCORES, needs_data
from nasx.space.config import parse_space
from nasx.store.db import Store
from nasx.store.studies import latency_ms as shown_latency  # the re-timed latency of a front member
from nasx.study.report_data import Point, ReportData, collect
from nasx.study.report_figures import figures
from nasx.study.report_page import render_html, write_png
from nasx.util.files import is_regular_target
from nasx.util.fmt import human
from nasx.util.page import write_page
from nasx.util.pareto import dominates

# references for a study no zoo model matches (another input shape, or no compute budget)
DEFAULT_REFS = ("mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_1.0", "fasternet_t0", "resnet18")
NEAR_BUDGET = 2.0  # a zoo model up to this many times the study's compute budget is a fair comparison


def budget_refs(input_shape, budget: int | None, metric: str = "madds") -> tuple[str, ...]:
    """The zoo models a study is compared with (this report and scripts/bench_search.py): those made for
    the study's input whose compute (in the study's budget metric) is at most NEAR_BUDGET x its budget,
    cheapest first; DEFAULT_REFS when none is (another input shape, or no compute budget)."""
    if not budget:
        return DEFAULT_REFS
    archs = {n: zoo_arch(n) for n in zoo.names()}
    used = {n: getattr(cost(a), metric) for n, a in archs.items() if tuple(a.input) == tuple(input_shape)}
    near = sorted((u, n) for n, u in used.items() if u <= NEAR_BUDGET * budget)
    return tuple(n for _, n in near) or DEFAULT_REFS


def study_input(attrs: dict) -> tuple[int, ...]:
    """The input shape of a study's networks: stored by the search (a define-by-run space's "config" is
    Python source, never YAML); older studies' from their YAML config."""
    if "input" in attrs:
        return tuple(attrs["input"])
    return parse_space(attrs["config"], attrs.get("config_name", "study config")).input


def default_refs(study) -> tuple[str, ...]:
    a = study.user_attrs
    try:
        shape = study_input(a)
    except Exception:  # not a nasx study, or a config this version no longer reads
        return DEFAULT_REFS
    return budget_refs(shape, a.get("budget"), a.get("budget_metric", "madds"))


def dominated_by(front, latency_ms: float, score: float) -> list[int]:
    """Numbers of the front trials that dominate the point (latency_ms, score) (nasx.util.pareto.dominates)."""
    return [t.number for t in front if dominates((shown_latency(t), t.values[1]), (latency_ms, score))]


def study_fingerprint(data: ReportData) -> dict | None:
    for t in data.measured + data.infeasible:
        if t.user_attrs.get("fingerprint"):
            return t.user_attrs["fingerprint"]
    return None


def _measuring(study, url: str, fp: dict, measure_time_s: float) -> tuple[Timer, Scorer] | None:
    """Cached timing and scoring with the study's settings on this machine (the timer's fp_hash says whether
    this machine is the study's device), or None when this machine cannot even fingerprint that device."""
    a = study.user_attrs
    try:
        timer = Timer.here(
            Store(url),
            study_input(a),
            device=fp["device"],
            threads=fp["threads"],
            batch=fp["batch"],
            drift_correction=a.get("drift_correction", False),  # studies before it were raw
            runtime=runtime_of(fp),  # as the study's trials were timed
            max_time_s=measure_time_s,
        )
        return timer, Scorer(a.get("score", "naswot"))
    except Exception:  # e.g. a CUDA study read on a machine without CUDA
        return None


def reference_points(data: ReportData, names, measure_time_s: float | None = None, out=None) -> None:
    """Reference models timed and scored exactly as the study's trials were (nasx.measure.cached and
    nasx.score.cached: same fingerprint settings, same latency and score caches); measured only on the study's
    own device."""
    out = out or sys.stderr  # looked up per call: a default bound at import outlives a replaced stderr
    names = [n for n in names if n]
    if not names:
        return
    fp = study_fingerprint(data)
    if fp is None:
        data.notes.append("reference models skipped: the study has no measured trial, so no device fingerprint")
        return
    score_name = data.study.user_attrs.get("score", "naswot")
    if needs_data(score_name):
        data.notes.append(
            f"reference models skipped: the study's score {score_name!r} trains each network, "
            f"which a report does not do"
        )
        return
    table = getattr(SCORES.get(score_name), "table", None)
    if table:  # --score bench: the table holds its own space's networks, no reference model
        data.notes.append(
            f"reference models skipped: the study's score {score_name!r} looks accuracy up in the {table} table, "
            f"which holds none of them"
        )
        return
    for name in names:
        try:
            zoo_arch(name)
        except ArchError as e:
            raise NasxError(f"--refs: {e}") from None
    fp_hash = fingerprint_hash(fp)
    if measure_time_s is None:  # time the references as the study timed its trials
        measure_time_s = data.study.user_attrs.get("measure_time_s", DEFAULT_MEASURE_TIME_S)
    timer, scorer = _measuring(data.study, data.url, fp, measure_time_s) or (None, None)
    same_device = timer is not None and timer.fp_hash == fp_hash
    shape = tuple(fp["input"])
    skipped = []
    for name in names:
        arch, label = zoo_arch(name), name
        if tuple(arch.input) != shape:
            arch = dataclasses.replace(arch, input=shape, name=f"{name}@{'x'.join(map(str, shape[1:]))}")
            label = f"{name} @{shape[1]}x{shape[2]}"
        try:
            report = cost(arch)
        except ArchError as e:
            data.notes.append(f"{name} skipped: it does not fit the study's input {list(shape)} ({e})")
            continue
        if not same_device:
            skipped.append(name)
            continue
        arch_hash = arch.content_hash()
        if not timer.is_cached(arch_hash):
            out.write(f"measuring reference {label} on {fp['device']} ...\n")
        module = build_seeded(arch)  # as a trial: one network, timed and then scored
        lat = timer.measure(arch, module, arch_hash).latency
        value = scorer.score(timer.store, arch, module, arch_hash).value
        hover = (
            f"<b>{html.escape(label)}</b> (reference)<br>latency {lat['median_ms']:.3f} ± {lat['iqr_ms']:.3f} ms"
            f"<br>score {value:.2f}<br>MAdds {human(report.madds)} · MAC {human(report.mac)} · params "
            f"{human(report.params)}"
        )
        score = value if math.isfinite(value) else None
        beaten = dominated_by(data.front, lat["median_ms"], score) if score is not None else []
        data.refs.append(Point(label, lat["median_ms"], score, report.madds, report.mac, report.params, hover, beaten))
    if skipped:
        here = "a machine without that device" if timer is None else timer.fp["hardware"]
        data.notes.append(
            f"reference models {', '.join(skipped)} skipped: the study was measured on "
            f"{fp['device']} {fp['hardware']} (torch {fp['torch']}, {fp['threads']} threads), this "
            f"is {here}; run the report where the study was measured"
        )
    if any(tuple(zoo_arch(n).input) != shape for n in names):
        data.notes.append(
            f"reference models re-instantiated at the study's input {'x'.join(map(str, shape))} "
            f"(same layers, 1000-class heads kept): not the workload their papers report"
        )


def make_report(
    study, url: str, path, refs=None, png: bool = True, measure_time_s: float | None = None, out=None
) -> tuple[Path, list[Path], ReportData]:
    """refs None: the zoo models near the study's budget (default_refs); measure_time_s None: the study's.
    Notes (references or PNGs skipped, and why) land in data.notes, which the page lists and the CLI prints."""
    data = collect(study, url)
    reference_points(data, default_refs(study) if refs is None else refs, measure_time_s, out)
    figs = figures(data)
    regular = is_regular_target(path)  # the PNGs are named from the page's stem: only a regular file has one
    if png and not regular:
        data.notes.append(f"PNG export skipped: {path} is not a regular file, so no PNGs are named beside it")
    path = write_page(path, render_html(data, figs))
    pngs = []
    if png and regular:
        before = len(data.notes)
        pngs = write_png(figs, path, data.notes)
        if len(data.notes) > before:  # the page lists every note the command prints: written again with it
            path = write_page(path, render_html(data, figs))
    return path, pngs, data
