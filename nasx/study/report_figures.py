"""The figures of `nasx report` (nasx.study.report): the Pareto front, cost vs latency with its rank
correlations, the block-family mix of the front, and the reference models as labelled points."""

from __future__ import annotations

import html

from nasx.store.studies import latency_iqr_ms
from nasx.store.studies import latency_ms as shown_latency  # the re-timed latency of a front member
from nasx.study.report_data import ReportData
from nasx.util.fmt import fmt_corr, human

GREY = "#b8b8b8"


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


# one legend entry per reference model, each its own marker: names beside the markers overlapped where
# references lie close together (mobilenet_v3_large under mobilenet_v2), a legend never does
REF_SYMBOLS = ("diamond", "square", "triangle-up", "cross", "pentagon", "triangle-down", "hexagon", "star-diamond")
REF_COLORS = ("#d62728", "#8c1c13", "#ff7f0e")


def _ref_traces(fig, refs, xs, ys, group: str) -> None:
    """One trace per reference model, named by its label, in a legend group titled `group`."""
    import plotly.graph_objects as go

    for i, (p, x, y) in enumerate(zip(refs, xs, ys, strict=True)):
        color = REF_COLORS[i // len(REF_SYMBOLS) % len(REF_COLORS)]
        fig.add_trace(
            go.Scatter(
                x=[x],
                y=[y],
                mode="markers",
                name=p.label,
                legendgroup="refs",
                legendgrouptitle_text=group if i == 0 else None,
                marker=dict(symbol=REF_SYMBOLS[i % len(REF_SYMBOLS)], size=11, color=color, line=dict(width=1)),
                hovertext=[p.hover],
                hoverinfo="text",
                cliponaxis=False,
            )
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
        _ref_traces(fig, refs, [p.latency_ms for p in refs], [p.score for p in refs], "reference models")
    lat = [shown_latency(t) for t in data.measured + data.infeasible] + [p.latency_ms for p in refs]
    fig.update_xaxes(type=_axis_type(lat))
    fig.update_layout(
        title=f"Pareto front of {data.study.study_name}: latency vs {a.get('score', 'score')}",
        xaxis_title=f"latency, ms (median; {a.get('device')}, batch {a.get('batch')}; {_scale_note(data)})",
        yaxis_title=f"score ({a.get('score')}, higher is better)",
        xaxis=dict(automargin=True),
        yaxis=dict(automargin=True),
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
        ys = [p.latency_ms for p in data.refs]
        _ref_traces(fig, data.refs, xs, ys, "reference models (not in the correlation)")
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
        # the latency scale goes under the title: in the y-axis title it was longer than the plot is high
        title=dict(text=f"{label} vs latency<br><sup>latency: median, {html.escape(_scale_note(data))}</sup>"),
        xaxis_title=label,
        yaxis=dict(title="latency, ms", automargin=True),
        xaxis=dict(automargin=True),
        template="plotly_white",
        legend=dict(orientation="h", y=-0.2),
        margin=dict(t=110),
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
