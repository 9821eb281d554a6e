"""`nasx report`: one standalone HTML page per study (plotly.js inlined, works offline).

Figures: the Pareto front (latency vs score, coloured by MAdds, infeasible greyed), MAdds vs latency and
MAC vs latency with their Spearman and Kendall rank correlations printed on the plot, the block-family mix
of the front, and reference models from the zoo as labelled points.

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
from dataclasses import dataclass, field
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
from nasx.store.studies import front_table, knee_trial, latency_iqr_ms, study_front, trial_status
from nasx.store.studies import latency_ms as shown_latency  # the re-timed latency of a front member
from nasx.study.inspect import study_header
from nasx.util.files import atomic_write, is_regular_target
from nasx.util.fmt import fmt_corr, human, render_table
from nasx.util.page import figure_divs, made_with_plotly, page, write_page
from nasx.util.pareto import dominates
from nasx.util.stats import kendall_tau_b, spearman

# references for a study no zoo model matches (another input shape, or no compute budget)
DEFAULT_REFS = ("mobilenet_v2", "mobilenet_v3_small", "shufflenet_v2_1.0", "fasternet_t0", "resnet18")
NEAR_BUDGET = 2.0  # a zoo model up to this many times the study's compute budget is a fair comparison
GREY = "#b8b8b8"
REF_COLOR = "#d62728"


# --- data ---------------------------------------------------------------------------------------------


@dataclass
class Point:
    label: str
    latency_ms: float
    score: float | None
    madds: int
    mac: int
    params: int
    hover: str
    dominated_by: list[int] = field(default_factory=list)  # front trials that dominate this reference


@dataclass
class ReportData:
    study: object
    url: str
    measured: list  # feasible, measured trials
    infeasible: list  # measured but violating a constraint
    rejected: list  # never measured (over budget)
    failed: list
    front: list
    refs: list[Point] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    knee: object = None  # the front's knee (nasx.store.studies.knee_trial), the one recommendation

    def corr(self, key: str, objective: int = 0) -> tuple[float, float, int]:
        """Rank correlations of a cost attribute with latency (objective 0) or score (1), measured trials."""
        x = [t.user_attrs[key] for t in self.measured]
        y = [t.values[objective] for t in self.measured]
        return spearman(x, y), kendall_tau_b(x, y), len(x)


def collect(study, url: str) -> ReportData:
    measured, infeasible, rejected, failed = [], [], [], []
    for t in study.get_trials(deepcopy=False):
        status = trial_status(t)
        if status == "feasible" and t.values is not None and "latency" in t.user_attrs:
            violated = any(v > 0 for v in (getattr(t, "constraints", None) or {}).values())
            (infeasible if violated else measured).append(t)
        elif status == "rejected":
            rejected.append(t)
        elif status == "failed":
            failed.append(t)
    front = study_front(study)
    return ReportData(study, url, measured, infeasible, rejected, failed, front, knee=knee_trial(front))


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


def refs_table(data: ReportData) -> str:
    """The reference models as measured for this report, and which front members dominate each."""
    rows = [
        [
            p.label,
            ", ".join(f"#{n}" for n in p.dominated_by) or "none",
            human(p.madds),
            f"{p.latency_ms:.2f}",
            "n/a" if p.score is None else f"{p.score:.2f}",
        ]
        for p in data.refs
    ]
    return render_table(["reference", "dominated by front trials", "MAdds", "latency ms", "score"], rows)


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


# --- figures ------------------------------------------------------------------------------------------


def _trial_hover(t) -> str:
    a = t.user_attrs
    fams = ", ".join(f"{k} {v}" for k, v in sorted(a.get("families", {}).items(), key=lambda kv: -kv[1]))
    lat = a.get("latency", {})
    raw = ""
    if "raw_median_ms" in lat:  # of the first measurement where the front was re-timed
        raw = f" (raw {lat['raw_median_ms']:.3f} ms{', first' if 'latency_confirmed' in a else ''})"
    return (
        f"<b>trial {t.number}</b><br>latency {shown_latency(t):.3f} ± {latency_iqr_ms(t) or 0:.3f}"
        f" ms{raw}<br>score {t.values[1]:.2f}<br>MAdds {human(a.get('madds', 0))} · MAC "
        f"{human(a.get('mac_elements', 0))} · params {human(a.get('params', 0))}<br>{html.escape(fams)}"
    )


def _axis_type(values) -> str:
    """'log' when positive values span more than 20x (one slow outlier would squash the rest), else 'linear'."""
    v = [x for x in values if x is not None and x > 0]
    return "log" if v and max(v) > 20 * min(v) else "linear"


def _label(fig, xs, ys, labels) -> None:
    """Reference labels as annotations: drawn above every trace (a trace's text sits under later traces'
    markers, and the front's markers hid them), on a white box, pointing at their marker from above."""
    for x, y, text in zip(xs, ys, labels, strict=True):
        fig.add_annotation(
            x=x,
            y=y,
            text=html.escape(text),
            showarrow=True,
            arrowhead=0,
            arrowcolor=REF_COLOR,
            ax=0,
            ay=-28,
            font=dict(size=11, color=REF_COLOR),
            bgcolor="rgba(255,255,255,0.85)",
        )


def _scale_note(data: ReportData) -> str:
    """The latency scale in a few words, for axis titles (the full line is nasx.store.studies.latency_scale)."""
    from nasx.store.studies import latency_scale

    line = latency_scale(data.measured + data.infeasible).splitlines()[0]
    return line.removeprefix("latency ms: ").split(";")[0]


def front_figure(data: ReportData):
    import plotly.graph_objects as go

    a = data.study.user_attrs
    fig = go.Figure()
    on_front = {t.number for t in data.front}
    rest = [t for t in data.measured if t.number not in on_front]
    madds = [t.user_attrs["madds"] for t in data.measured] or [0]
    color = dict(colorscale="Viridis", cmin=min(madds), cmax=max(madds) if max(madds) > min(madds) else min(madds) + 1)
    if rest:
        fig.add_trace(
            go.Scatter(
                x=[shown_latency(t) for t in rest],
                y=[t.values[1] for t in rest],
                mode="markers",
                name="feasible trials",
                marker=dict(
                    size=8,
                    color=[t.user_attrs["madds"] for t in rest],
                    opacity=0.75,
                    **color,
                    colorbar=dict(title="MAdds"),
                ),
                hovertext=[_trial_hover(t) for t in rest],
                hoverinfo="text",
            )
        )
    if data.front:
        fig.add_trace(
            go.Scatter(
                x=[shown_latency(t) for t in data.front],
                y=[t.values[1] for t in data.front],
                mode="lines+markers+text",
                name="Pareto front",
                line=dict(shape="hv", color="black", width=1),
                textposition="bottom right",
                textfont=dict(size=10),
                cliponaxis=False,  # trial numbers stay readable in the static PNG too
                marker=dict(
                    size=12,
                    color=[t.user_attrs["madds"] for t in data.front],
                    **color,
                    line=dict(color="black", width=2),
                    showscale=not rest,
                    colorbar=dict(title="MAdds"),
                ),
                text=[f"#{t.number}" for t in data.front],
                hovertext=[_trial_hover(t) for t in data.front],
                hoverinfo="text",
            )
        )
    if data.knee is not None:
        k = data.knee
        fig.add_trace(
            go.Scatter(
                x=[shown_latency(k)],
                y=[k.values[1]],
                mode="markers+text",
                name=f"knee: trial {k.number} (recommended)",
                marker=dict(symbol="star", size=20, color="gold", line=dict(color="black", width=1)),
                text=["knee"],
                textposition="bottom center",
                hovertext=[_trial_hover(k)],
                hoverinfo="text",
                cliponaxis=False,
            )
        )
    if data.infeasible:
        fig.add_trace(
            go.Scatter(
                x=[shown_latency(t) for t in data.infeasible],
                y=[t.values[1] for t in data.infeasible],
                mode="markers",
                name="infeasible (constraint violated)",
                marker=dict(size=8, color=GREY),
                hovertext=[_trial_hover(t) for t in data.infeasible],
                hoverinfo="text",
            )
        )
    if data.rejected:  # never measured: no position on these axes, but counted in the legend
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                marker=dict(size=8, color=GREY, symbol="x"),
                name=f"{len(data.rejected)} rejected over budget (never measured)",
            )
        )
    refs = [p for p in data.refs if p.score is not None]
    if refs:
        fig.add_trace(
            go.Scatter(
                x=[p.latency_ms for p in refs],
                y=[p.score for p in refs],
                mode="markers",
                name="reference models",
                marker=dict(symbol="diamond", size=11, color=REF_COLOR),
                hovertext=[p.hover for p in refs],
                hoverinfo="text",
            )
        )
        _label(fig, [p.latency_ms for p in refs], [p.score for p in refs], [p.label for p in refs])
    lat = [shown_latency(t) for t in data.measured + data.infeasible] + [p.latency_ms for p in refs]
    fig.update_xaxes(type=_axis_type(lat))
    fig.update_layout(
        title=f"Pareto front of {data.study.study_name}: latency vs {a.get('score', 'score')}",
        xaxis_title=f"latency, ms (median; {a.get('device')}, batch {a.get('batch')}; {_scale_note(data)})",
        yaxis_title=f"score ({a.get('score')}, higher is better)",
        template="plotly_white",
        legend=dict(orientation="h", y=-0.2),
    )
    return fig


def cost_latency_figure(data: ReportData, key: str, label: str):
    import plotly.graph_objects as go

    rho, tau, n = data.corr(key)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[t.user_attrs[key] for t in data.measured],
            y=[shown_latency(t) for t in data.measured],
            mode="markers",
            name="measured trials",
            marker=dict(size=8, color="#1f77b4", opacity=0.8),
            hovertext=[_trial_hover(t) for t in data.measured],
            hoverinfo="text",
        )
    )
    if data.refs:
        xs = [p.madds if key == "madds" else p.mac for p in data.refs]
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=[p.latency_ms for p in data.refs],
                mode="markers",
                name="reference models (not in the correlation)",
                marker=dict(symbol="diamond", size=11, color=REF_COLOR),
                hovertext=[p.hover for p in data.refs],
                hoverinfo="text",
            )
        )
        _label(fig, xs, [p.latency_ms for p in data.refs], [p.label for p in data.refs])
    fig.add_annotation(
        xref="paper",
        yref="paper",
        x=1.0,
        y=1.02,
        xanchor="right",
        yanchor="bottom",
        showarrow=False,
        align="right",
        bgcolor="rgba(255,255,255,0.9)",
        bordercolor="#888",
        borderwidth=1,
        text=f"Spearman ρ = {fmt_corr(rho)} · Kendall τ<sub>b</sub> = {fmt_corr(tau)} · n = {n} measured trials",
    )
    fig.update_yaxes(type=_axis_type([shown_latency(t) for t in data.measured] + [p.latency_ms for p in data.refs]))
    fig.update_layout(
        title=f"{label} vs latency",
        xaxis_title=label,
        yaxis_title=f"latency, ms (median; {_scale_note(data)})",
        template="plotly_white",
        legend=dict(orientation="h", y=-0.2),
        margin=dict(t=90),
    )
    return fig


def family_figure(data: ReportData):
    import plotly.graph_objects as go

    families = sorted({f for t in data.front for f in t.user_attrs.get("families", {})})
    x = [f"#{t.number} ({shown_latency(t):.2f} ms)" for t in data.front]
    fig = go.Figure()
    for fam in families:
        fig.add_trace(go.Bar(name=fam, x=x, y=[t.user_attrs.get("families", {}).get(fam, 0) for t in data.front]))
    fig.update_layout(
        barmode="stack",
        title="Block families of the Pareto front (fastest first)",
        xaxis_title="front member",
        yaxis_title="blocks",
        template="plotly_white",
    )
    return fig


def figures(data: ReportData) -> dict:
    return {
        "front": front_figure(data),
        "madds_latency": cost_latency_figure(data, "madds", "MAdds"),
        "mac_latency": cost_latency_figure(data, "mac_elements", "MAC (elements)"),
        "families": family_figure(data),
    }


# --- page ---------------------------------------------------------------------------------------------


def render_html(data: ReportData, figs: dict) -> str:
    blocks = figure_divs(figs, "560px")
    rho_m, tau_m, n = data.corr("madds")
    rho_c, tau_c, _ = data.corr("mac_elements")
    rho_a, tau_a, _ = data.corr("activations", 1)
    header = html.escape(study_header(data.study, data.url, data.front))
    table = html.escape(front_table(data.front, knee=data.knee)) if data.front else "no feasible trial yet"
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in data.notes)
    refs = html.escape(refs_table(data)) if data.refs else "none measured (see Notes)"
    corr = (
        f'<table class="corr"><tr><th></th><th>Spearman ρ</th><th>Kendall τ<sub>b</sub></th></tr>'
        f'<tr><td>MAdds vs latency</td><td id="spearman-madds">{fmt_corr(rho_m)}</td>'
        f'<td id="kendall-madds">{fmt_corr(tau_m)}</td></tr>'
        f'<tr><td>MAC vs latency</td><td id="spearman-mac">{fmt_corr(rho_c)}</td>'
        f'<td id="kendall-mac">{fmt_corr(tau_c)}</td></tr>'
        f'<tr><td>activations vs score</td><td id="spearman-activations">{fmt_corr(rho_a)}</td>'
        f'<td id="kendall-activations">{fmt_corr(tau_a)}</td></tr></table>'
        f'<p class="small">over the {n} measured trials (references excluded); ties get average ranks, '
        f"tau is tau-b. Activations (conv output elements, from the cost core) against the score says how "
        f"much of a training-free score a cost count already predicts: NASWOT tracks it closely.</p>"
    )
    body = f"""<pre>{header}</pre>
<h2>Pareto front</h2>{blocks[0]}<pre>{table}</pre>
<h2>Architectures on the front</h2><p class="small">each front member stage by stage: its blocks' family and
knobs, output width and depth (stride-2 stages halve the resolution).</p>{arch_tables(data)}
<h2>Reference models</h2><p class="small">timed and scored as the study's trials were, through the same caches
(scripts/bench_search.py measures them the same way).</p><pre id="refs-table">{refs}</pre>
<h2>Cost vs latency and score</h2>{corr}{blocks[1]}{blocks[2]}
<h2>Block families on the front</h2>{blocks[3]}
<h2>Notes</h2><ul>{notes or "<li>none</li>"}</ul>
<p class="small">{made_with_plotly()}; MAdds = conv + linear multiply-accumulates
(BN folded); MAC = elements read + written, conv+BN+act fused.</p>"""
    return page(
        f"nasx report: {data.study.study_name}",
        body,
        css="table.corr td,table.corr th{padding:.2em .8em;text-align:right}"
        "table.arch{border-collapse:collapse;margin:.6em 0 1.2em}"
        "table.arch td,table.arch th{border-bottom:1px solid #ddd;padding:.15em .7em;text-align:left}"
        "table.arch caption{text-align:left;font-weight:600;padding:.2em 0}",
    )


def arch_tables(data: ReportData) -> str:
    """One HTML table per front member, a row per stage (more where its blocks differ): family, knobs,
    width, depth, stride."""
    from nasx.store.summary import stages

    out = []
    for t in data.front:
        arch = t.user_attrs.get("arch")
        if not arch:
            continue
        rows = []
        for i, stage in enumerate(stages(arch, t.params), 1):
            for j, b in enumerate(stage["blocks"]):
                head = f'<td rowspan="{len(stage["blocks"])}">{i}</td>' if j == 0 else ""
                tail = (
                    f'<td rowspan="{len(stage["blocks"])}">{stage["out"]}</td><td rowspan="{len(stage["blocks"])}">'
                    f'{stage["depth"]}</td><td rowspan="{len(stage["blocks"])}">{stage["stride"]}</td>'
                    if j == 0
                    else ""
                )
                count = f" ×{b['count']}" if b["count"] > 1 else ""
                rows.append(
                    f"<tr>{head}<td>{html.escape(b['family'])}{count}</td><td>{html.escape(b['knobs'])}</td>{tail}</tr>"
                )
        out.append(
            f'<table class="arch" id="arch-{t.number}"><caption>trial {t.number}: {shown_latency(t):.2f} ms, score '
            f"{t.values[1]:.2f}, {human(t.user_attrs.get('madds', 0))} MAdds</caption><tr><th>stage</th>"
            f"<th>family</th><th>knobs</th><th>width</th><th>depth</th><th>stride</th></tr>{''.join(rows)}"
            f"</table>"
        )
    return "".join(out) or "<p>no front yet</p>"


def write_png(figs: dict, html_path: Path, out=None) -> list[Path]:
    """One PNG per figure beside the page (report-front.png, ...) where kaleido works; a note otherwise."""
    out = out or sys.stderr
    written = []
    try:
        import kaleido  # noqa: F401
    except ImportError:
        out.write('PNG export skipped: kaleido is not installed (pip install "nasx[report]")\n')
        return written
    for key, fig in figs.items():
        png = html_path.with_name(f"{html_path.stem}-{key}.png")
        try:
            atomic_write(png, lambda tmp, fig=fig: fig.write_image(tmp, format="png", width=1100, height=560), ".png")
        except Exception as e:  # kaleido needs a Chrome/Chromium; any failure only skips the PNGs
            text = str(e).strip().splitlines()
            out.write(f"PNG export skipped: {text[0][:200] if text else type(e).__name__}\n")
            return written
        written.append(png)
    return written


def make_report(
    study, url: str, path, refs=None, png: bool = True, measure_time_s: float | None = None, out=None
) -> tuple[Path, list[Path], ReportData]:
    """refs None: the zoo models near the study's budget (default_refs); measure_time_s None: the study's."""
    data = collect(study, url)
    reference_points(data, default_refs(study) if refs is None else refs, measure_time_s, out)
    figs = figures(data)
    text = render_html(data, figs)
    regular = is_regular_target(path)  # the PNGs are named from the page's stem: only a regular file has one
    path = write_page(path, text)
    if png and not regular:
        (out or sys.stderr).write(f"PNG export skipped: {path} is not a regular file, so no PNGs are named beside it\n")
    pngs = write_png(figs, path, out) if png and regular else []
    return path, pngs, data
