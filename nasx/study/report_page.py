"""The HTML page of `nasx report` (nasx.study.report): the figures, the front and reference tables, the
correlations and the notes, and the PNGs beside it."""

from __future__ import annotations

import html
import math
from pathlib import Path

from nasx.store.studies import front_table
from nasx.store.studies import latency_ms as shown_latency  # the re-timed latency of a front member
from nasx.study.inspect import study_header
from nasx.study.report_data import ReportData
from nasx.util.files import atomic_write
from nasx.util.fmt import fmt_corr, human, render_table
from nasx.util.page import figure_divs, made_with_plotly, page


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


def activations_sentence(score: str, rho: float, n: int) -> str:
    """What the activations-vs-score correlation shown on the page says, for the study's own score."""
    if n < 3 or not math.isfinite(rho):
        return f"too few measured trials ({n}) to say how activations track the study's score, {score}."
    strength = "closely" if abs(rho) >= 0.8 else "partly" if abs(rho) >= 0.5 else "hardly"
    way = "" if rho >= 0 or strength == "hardly" else " (inversely: more activations, a lower score)"
    return (
        f"here activations {strength} track the study's score, {score} (Spearman ρ = {fmt_corr(rho)} "
        f"over {n} trials){way}."
    )


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
        f'much of a training-free score a cost count already predicts: <span id="activations-says">'
        f"{html.escape(activations_sentence(data.study.user_attrs.get('score', 'naswot'), rho_a, n))}</span></p>"
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


def write_png(figs: dict, html_path: Path, notes: list[str]) -> list[Path]:
    """One PNG per figure beside the page (report-front.png, ...) where kaleido works; a note in `notes`
    (the page's, which the command prints too) otherwise."""
    written = []
    try:
        import kaleido  # noqa: F401
    except ImportError:
        notes.append('PNG export skipped: kaleido is not installed (pip install "nasx[report]")')
        return written
    for key, fig in figs.items():
        png = html_path.with_name(f"{html_path.stem}-{key}.png")
        try:
            atomic_write(png, lambda tmp, fig=fig: fig.write_image(tmp, format="png", width=1100, height=560), ".png")
        except Exception as e:  # kaleido needs a Chrome/Chromium; any failure only skips the PNGs
            text = str(e).strip().splitlines()
            notes.append(f"PNG export skipped: {text[0][:200] if text else type(e).__name__}")
            return written
        written.append(png)
    return written
