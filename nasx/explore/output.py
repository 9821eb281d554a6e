"""The explorer's text report, plotly figures and HTML page."""

from __future__ import annotations

import html
import math

import numpy as np

from nasx.explore.predictors import COSTS, PREDICTOR_HEADER, _share, predictor_rows
from nasx.explore.run import ExploreResult
from nasx.explore.sampling import ALL, Sample, edf, quotas
from nasx.measure.latency_model import relative_errors
from nasx.util.fmt import fmt_corr, human, render_table
from nasx.util.page import figure_divs, made_with_plotly, page, write_page
from nasx.util.stats import kendall_tau_b, spearman


def _q(values, qs=(0.1, 0.5, 0.9)) -> str:
    return " / ".join(human(float(v)) for v in np.quantile(np.asarray(values, float), qs))


def edf_table(populations: dict[str, list[Sample]]) -> str:
    rows = []
    for name, samples in populations.items():
        ratio = np.median([s.mac / s.madds for s in samples])
        rows.append(
            [
                name,
                f"{len(samples):,}",
                _q([s.madds for s in samples]),
                _q([s.mac for s in samples]),
                _q([s.params for s in samples]),
                f"{ratio:.4f}",
            ]
        )
    return render_table(
        [
            "population",
            "archs",
            "MAdds p10 / p50 / p90",
            "MAC p10 / p50 / p90",
            "params p10 / p50 / p90",
            "MAC/MAdd p50",
        ],
        rows,
    )


def text_report(result: ExploreResult) -> str:
    s, sp = result.settings, result.settings.space
    fams = [f for f, _ in sp.families]
    total = sum(len(v) for v in result.populations.values())
    rate = total / result.sample_s if result.sample_s else math.inf
    lines = [
        f"nasx explore: space {sp.name} ({'x'.join(map(str, sp.input))}), seed {s.seed}",
        f"sampled {s.n:,} architectures uniformly from the whole space"
        + (f" and {s.n:,} from each single-family sub-space ({total:,} in all)" if len(fams) > 1 else "")
        + f", costed in {result.sample_s:.1f} s ({rate:,.0f} architectures/s)",
        "",
        "cost distributions (the EDFs, as quantiles; MAC in elements):",
        edf_table(result.populations),
    ]
    if result.subset:
        fp = result.fingerprint
        q = quotas(list(result.populations), s.measure)
        split = f"{q[ALL]} from the whole space" + (
            f", {', '.join(f'{q[f]} {f}' for f in fams)}" if len(fams) > 1 else ""
        )
        lines += [
            "",
            f"measured {len(result.subset)} ({split}; spread over each population's MAdds range) on "
            f"{fp['device']} {fp['hardware']}, {fp['threads']} threads, batch {fp['batch']}, torch "
            f"{fp['torch']}: {result.measured_now} timed now, {len(result.subset) - result.measured_now} "
            f"from the latency cache, in {result.measure_s:.0f} s",
        ]
        lat = [x.latency_ms for x in result.subset]
        lines.append(f"latency {min(lat):.2f} .. {max(lat):.2f} ms (median {np.median(lat):.2f} ms)")
        if result.layers:
            ratio = [x.latency_ms / x.layer_sum_ms for x in result.subset if x.layer_sum_ms]
            lines.append(
                f"block table: their {result.layers} distinct layers timed alone ({result.layers_timed_now} timed now, "
                f"{result.layers - result.layers_timed_now} from the table, in {result.layers_s:.0f} s); whole / sum "
                f"of layers {min(ratio):.2f} .. {max(ratio):.2f} (median {np.median(ratio):.2f})"
            )
    if result.predictors:
        n_test = len(result.test)
        lines += [
            "",
            f"predictors of latency, judged on the {n_test} held-out architectures (fitted on the other "
            f"{len(result.train)}; rank statistics of the raw cost for single costs):",
            render_table(PREDICTOR_HEADER, predictor_rows(result.predictors)),
        ]
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
        lines += [
            "",
            f"too few measured architectures to fit on one half and judge on the other "
            f"({len(result.train)} + {len(result.test)}): use --measure 12 or more (default 40)",
        ]
    if result.model:
        lines += [
            "",
            f"latency model for fingerprint {result.fingerprint_hash} "
            f"({'stored; nasx search --prefilter uses it' if s.store_model else 'not stored'}): "
            f"{result.model.formula()}",
        ]
    if result.block_model:
        lines.append(
            f"block model for fingerprint {result.fingerprint_hash} "
            f"({'stored; nasx latency --predict uses it' if s.store_model else 'not stored'}): "
            f"{result.block_model.formula()}"
        )
    lines.append(f"run {result.run_id} stored in {s.storage} ({total:,} architectures, {len(result.subset)} measured)")
    return "\n".join(lines)


def judgement(result: ExploreResult) -> dict:
    """The JSON document of `nasx explore --json`: the run, every predictor fitted on the training half and judged
    on the held-out half (each with name, n_heldout, within_5pct, within_10pct, kendall_tau_b and its fit), and
    the stored models."""
    return {
        "run": result.run_id,
        "config": result.settings.space.name,
        "fingerprint_hash": result.fingerprint_hash,
        "populations": {k: len(v) for k, v in result.populations.items()},
        "measured": len(result.subset),
        "layers": result.layers,
        "predictors": [p.as_dict() for p in result.predictors],
        "model": result.model.to_dict() if result.model else None,
        "block_model": result.block_model.to_dict() if result.block_model else None,
    }


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
            edf_fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=fs,
                    mode="lines",
                    line=dict(shape="hv", color=colors[name], width=3 if name == ALL else 1.8),
                    name=name,
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    edf_fig.update_xaxes(type="log")
    edf_fig.update_yaxes(title_text="cumulative share of architectures", row=1, col=1, range=[0, 1.02])
    edf_fig.update_layout(
        title=f"EDFs of cost in {result.settings.space.name}: the whole space and each "
        f"single-family sub-space ({result.settings.n:,} each)",
        template="plotly_white",
    )
    figs["edf"] = edf_fig
    if result.subset:

        def split_of(x) -> str:  # no model fitted: no half was held out, every point is filled
            return (x.split or "train") if result.predictors else "train"

        for key, label in (("madds", "MAdds"), ("mac", "MAC (elements)")):
            fig = go.Figure()
            for name in result.populations:
                for split, symbol in (("train", "circle"), ("test", "circle-open")):
                    pts = [x for x in result.subset if x.population == name and split_of(x) == split]
                    if not pts:
                        continue
                    fig.add_trace(
                        go.Scatter(
                            x=[getattr(x, key) for x in pts],
                            y=[x.latency_ms for x in pts],
                            mode="markers",
                            name=name,
                            legendgroup=name,
                            showlegend=split == "train"
                            or not any(x.population == name and split_of(x) != "test" for x in result.subset),
                            marker=dict(color=colors[name], size=10, symbol=symbol, line=dict(width=2)),
                            error_y=dict(type="data", array=[x.iqr_ms / 2 for x in pts], visible=True, thickness=1),
                            hovertext=[
                                f"{name} #{x.index}<br>{human(x.madds)} MAdds, MAC {human(x.mac)}, params "
                                f"{human(x.params)}<br>{x.latency_ms:.2f} ± {x.iqr_ms:.2f} ms"
                                + (f" ({split})" if result.predictors else "")
                                for x in pts
                            ],
                            hoverinfo="text",
                        )
                    )
            xs = [getattr(x, key) for x in result.subset]
            ys = [x.latency_ms for x in result.subset]
            fig.update_layout(
                title=f"latency vs {label} (all {len(xs)} measured: Kendall τb "
                f"{fmt_corr(kendall_tau_b(xs, ys))}, Spearman ρ {fmt_corr(spearman(xs, ys))}); "
                + (
                    "filled: train half, open: held out"
                    if result.predictors
                    else f"no latency model fitted: {len(result.subset)} measured are too few (--measure 12 or more)"
                ),
                template="plotly_white",
                xaxis_title=label,
                yaxis_title="latency, ms (median; bars: IQR)",
                xaxis_type="log",
                yaxis_type="log",
            )
            figs[f"latency_{key}"] = fig
    if result.predictors:
        comb = result.predictors[len(COSTS)]
        y = [x.latency_ms for x in result.test]
        fig = go.Figure()
        lo, hi = min(y + comb.predictions), max(y + comb.predictions)
        fig.add_trace(go.Scatter(x=[lo, hi], y=[lo, hi], mode="lines", line=dict(color="#888"), name="exact"))
        for f, dash in ((1.1, "dot"), (0.9, "dot")):
            fig.add_trace(
                go.Scatter(
                    x=[lo, hi],
                    y=[lo * f, hi * f],
                    mode="lines",
                    name="±10%",
                    line=dict(color="#bbb", dash=dash),
                    showlegend=f > 1,
                )
            )
        for name in result.populations:
            idx = [i for i, x in enumerate(result.test) if x.population == name]
            if idx:
                fig.add_trace(
                    go.Scatter(
                        x=[y[i] for i in idx],
                        y=[comb.predictions[i] for i in idx],
                        mode="markers",
                        name=name,
                        marker=dict(color=colors[name], size=9),
                    )
                )
        fig.update_layout(
            title=f"held-out architectures: a·MAdds + b·MAC + c (relative least squares) — "
            f"{_share(comb.within10, comb.n_test)} within ±10%",
            xaxis_title="measured latency, ms",
            yaxis_title="predicted latency, ms",
            xaxis_type="log",
            yaxis_type="log",
            template="plotly_white",
        )
        figs["prediction"] = fig
    return figs


def render_html(result: ExploreResult, figs: dict) -> str:
    body = (
        f"{''.join(figure_divs(figs, '520px'))}\n"
        f'<h2>Numbers</h2><pre id="explore-text">{html.escape(text_report(result))}</pre>\n'
        f'<p class="small">{made_with_plotly()}. MAdds = conv + linear multiply-accumulates\n'
        "(BN folded); MAC = elements read + written, conv+BN+act fused. Sampling is uniform over every choice of "
        "the\nspace. Fits: least squares on relative residuals, on one half of the measured subset; judged on the "
        "other.</p>"
    )
    return page(f"nasx explore: {result.settings.space.name}", body, width=1250, small_pre=True)


def write_html(result: ExploreResult, path) -> str:
    return str(write_page(path, render_html(result, figures(result))))
