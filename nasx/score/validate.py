"""`nasx validate-score`: how well does each cheap score rank architectures the way training does?

Samples N distinct architectures uniformly from a search space (optionally only those under a MAdds budget),
computes every training-free proxy (NASWOT, synflow, MeCo, ZiCo, the default capacity, parameter count,
MAdds) and the trained validation accuracy (`--score train`'s recipe, nasx.score.train) of each, and reports
Kendall's tau-b and Spearman's rho of every proxy against the accuracy, with a plotly scatter per proxy. A
proxy is worth using only where it beats the parameter count and the MAdds, which cost nothing.

The target is the accuracy `nasx search --score train` would record (weights initialised and batches
ordered under seed 0). With `seeds` = K > 1 every architecture is also trained under seeds 1..K-1 (weights
and batch order), and "trained again (seed s)" appears as one more predictor: the rank agreement of two
training runs is the ceiling no cheap score can beat on that data, and it says how much of the ranking is
noise (a small validation split, an easy data set where every architecture ends within a few images).

The rows and tables here (Validation) serve the truths nothing trains for too (nasx.score.truths: the
shipped benchmark tables and the zoo). Beside the rank correlations: tau-b among the better half by accuracy
(a search cares about the top, where most proxies lose their grip) and the mean true accuracy of each
score's top-5% picks, beside the best that picking could reach.

Scores go through the study database's score cache with the same keys `nasx search` uses, so a rerun (or a
run stopped and restarted) trains nothing twice, and a later `nasx search --score train` on the same data
and settings reuses these accuracies (nasx.score.cached). The rank correlations are nasx.util.stats' (numpy;
tau-b and average-rank rho, as scipy.stats computes them)."""

from __future__ import annotations

import dataclasses
import html
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.score.base import call_score
from nasx.score.cache import cached_score, score_key
from nasx.score.proxies import get_score
from nasx.space.sample import sample_archs
from nasx.store.db import Store
from nasx.util.files import atomic_write_text
from nasx.util.fmt import fmt_corr, render_table
from nasx.util.stats import kendall_tau_b, spearman

PROXIES = ("naswot", "synflow", "meco", "zico", "capacity", "params", "madds")
LABELS = {
    "naswot": "NASWOT (log|K|)",
    "synflow": "synflow (log)",
    "meco": "MeCo",
    "zico": "ZiCo",
    "capacity": "capacity (MAdds, activations, depth)",
    "depth": "weighted depth (layers)",
    "az_expressivity": "AZ-NAS expressivity",
    "az_progressivity": "AZ-NAS progressivity",
    "az_trainability": "AZ-NAS trainability",
    "params": "parameters (M)",
    "madds": "MAdds (M)",
    "mac": "MAC (M elements)",
    "activations": "activations (M)",
    "train": "validation top-1 (%)",
    "bench": "CIFAR-10 test top-1 (%), mean of 3 trainings",
    "zoo": "published ImageNet top-1 (%)",
    "ofa-mbv3": "ImageNet top-1 (%), OFA supernet weights",
}
# what validate-score ranks against: short training, a benchmark's table, or the zoo's published accuracy
TRUTHS = ("train", "nas-bench-macro", "ofa-mbv3", "zoo")
# the truths nothing has to train for: `--truth all` ranks every score against each, side by side
TABLE_TRUTHS = ("nas-bench-macro", "ofa-mbv3", "zoo")
TOP = 0.05  # the share of the sample a score "picks": the search's view of a ranking


def label(name: str) -> str:
    if name.startswith("train@seed"):
        return f"trained again (seed {name[len('train@seed') :]})"
    return LABELS.get(name, name)


@dataclass
class Row:
    arch_hash: str
    arch: dict
    madds: int
    params: int
    values: dict  # proxy name -> value
    top1: float
    train_seconds: float
    cached: bool
    code: str = ""  # the benchmark table's code, when the truth is a table


@dataclass
class Validation:
    space: str
    data: str
    train_key: str
    rows: list[Row] = field(default_factory=list)
    seconds: float = 0.0
    target: str = "seed-0 validation top-1"
    score_seconds: dict = field(default_factory=dict)  # score -> seconds spent computing it, all rows
    table_best: float | None = None  # the best accuracy in the whole table, when the truth is one
    truth: str = "train"
    seed: int = 0  # the sampling seed

    def correlations(self) -> list[tuple[str, float, float, int]]:
        """(proxy, Kendall tau-b, Spearman rho, n) against trained accuracy; pairs with a non-finite proxy
        value (a degenerate NASWOT kernel) are left out of that proxy's n."""
        out = []
        proxies = list(self.rows[0].values) if self.rows else []
        for p in proxies:
            pairs = [(r.values[p], r.top1) for r in self.rows if math.isfinite(r.values[p])]
            x, y = [a for a, _ in pairs], [b for _, b in pairs]
            out.append((p, kendall_tau_b(x, y), spearman(x, y), len(pairs)))
        return out

    def search_metrics(self) -> list[tuple[str, float, float]]:
        """(proxy, Kendall tau-b among the better half by accuracy, mean accuracy of its top-5% picks). Picks
        are the rows with the highest values (non-finite values last, ties in sample order)."""
        ranked = sorted(self.rows, key=lambda r: -r.top1)
        better = ranked[: len(ranked) // 2]
        k = self.picks()
        out = []
        for p in list(self.rows[0].values) if self.rows else []:
            pairs = [(r.values[p], r.top1) for r in better if math.isfinite(r.values[p])]
            tau = kendall_tau_b([a for a, _ in pairs], [b for _, b in pairs])
            picked = sorted(self.rows, key=lambda r: -r.values[p] if math.isfinite(r.values[p]) else math.inf)[:k]
            out.append((p, tau, sum(r.top1 for r in picked) / k))
        return out

    def picks(self) -> int:
        return max(1, round(TOP * len(self.rows)))

    def table(self) -> str:
        accs = [r.top1 for r in self.rows]
        if not accs:
            return "no architectures"
        k = self.picks()
        search = {p: (tau, acc) for p, tau, acc in self.search_metrics()}
        per_arch = {p: s / len(self.rows) for p, s in self.score_seconds.items()}
        rows = [
            [label(p), fmt_corr(tau), fmt_corr(rho), fmt_corr(search[p][0]), f"{search[p][1]:.2f}", n]
            + [f"{per_arch[p]:.3f}" if p in per_arch else "-"]
            for p, tau, rho, n in self.correlations()
        ]
        if self.truth == "train":
            source = f"architectures of {self.space}, trained on {self.data} ({self.train_key})"
        elif self.truth == "zoo":
            source = "zoo networks (nasx zoo), trained by their authors on ImageNet"
        elif self.truth == "ofa-mbv3":
            source = f"Once-for-All MobileNetV3 subnets drawn from the {self.data} tables (seed {self.seed})"
        else:
            source = f"networks drawn from the {self.data} table (seed {self.seed})"
        oracle = sum(sorted(accs, reverse=True)[:k]) / k
        best = f"; the table's best {self.table_best:.2f}%" if self.table_best is not None else ""
        head = (
            f"{len(self.rows)} {source}; target: {self.target}, accuracy "
            f"{min(accs):.1f}..{max(accs):.1f}% (median {sorted(accs)[len(accs) // 2]:.1f}%)\n"
            f"top {TOP:.0%} = the {k} best by each score; the {k} truly best average {oracle:.2f}%{best}"
        )
        header = ["score", "Kendall tau-b", "Spearman rho", "tau-b better half", f"top-{TOP:.0%} acc %", "n"]
        return head + "\n" + render_table([*header, "s/arch"], rows)

    def to_json_dict(self) -> dict:
        search = {p: (tau, acc) for p, tau, acc in self.search_metrics()}
        return {
            "space": self.space,
            "data": self.data,
            "train": self.train_key,
            "truth": self.truth,
            "target": self.target,
            "seed": self.seed,
            "seconds": self.seconds,
            "score_seconds": self.score_seconds,
            "table_best": self.table_best,
            "correlations": [
                {
                    "proxy": p,
                    "kendall_tau_b": t,
                    "spearman_rho": r,
                    "n": n,
                    "kendall_tau_b_better_half": search[p][0],
                    "top_picks_mean_top1": search[p][1],
                }
                for p, t, r, n in self.correlations()
            ],
            "architectures": [
                {
                    "arch_hash": r.arch_hash,
                    **({"code": r.code} if r.code else {}),
                    "madds": r.madds,
                    "params": r.params,
                    "top1": r.top1,
                    "train_seconds": r.train_seconds,
                    "cached": r.cached,
                    "scores": r.values,  # apart: the score "madds" (millions) would overwrite the count
                    "arch": r.arch,
                }
                for r in self.rows
            ],
        }


def validate_score(
    space,
    n: int,
    data,
    train_settings,
    proxies=PROXIES,
    seed: int = 0,
    budget: int | None = None,
    storage: str | None = None,
    seeds: int = 1,
    out=None,
) -> Validation:
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    for p in proxies:
        if p not in PROXIES:
            raise NasxError(f"unknown proxy {p!r}: use {', '.join(PROXIES)}")
    if seeds < 1:
        raise NasxError(f"--seeds must be at least 1, got {seeds}")
    store = Store(storage) if storage else None
    trainers = [get_score("train", data=data, train=dataclasses.replace(train_settings, seed=s)) for s in range(seeds)]
    trainer = trainers[0]
    archs = sample_archs(space, n, seed, budget)
    fns = {p: get_score(p) for p in proxies if p not in ("params", "madds")}
    result = Validation(space.name, data.name, train_settings.key, seed=seed)
    start = time.perf_counter()

    def cached(name: str, arch, arch_hash: str, fn, extra: str = "", seed: int = WEIGHTS_SEED):
        """fn(network, input, seed) through the score cache, the network built (only when not cached) under
        `seed`: WEIGHTS_SEED gives the weights every score of `nasx search` sees."""
        r = cached_score(
            store,
            arch_hash,
            score_key(name, arch.input, extra, seed),
            lambda: call_score(fn, build_seeded(arch, seed), arch, seed),
            lock=False,
        )
        return r.value, r.seconds, r.cached

    for i, arch in enumerate(archs, 1):
        report = cost(arch)
        h = arch.content_hash()
        values = {}
        for p in proxies:
            if p == "madds":
                values[p] = report.madds / 1e6
            elif p == "params":
                values[p] = report.params / 1e6
            else:
                values[p] = cached(p, arch, h, fns[p], getattr(fns[p], "key", ""))[0]
        top1, seconds, hit = cached("train", arch, h, trainer, trainer.key)
        for s in range(1, seeds):
            values[f"train@seed{s}"] = cached("train", arch, h, trainers[s], trainers[s].key, seed=s)[0]
        result.rows.append(
            Row(h, arch.to_dict(include_name=False), report.madds, report.params, values, top1, seconds, hit)
        )
        head = f"{h[:10]} MAdds {report.madds / 1e6:.2f}M: top1 {top1:.1f}% ({'cached' if hit else f'{seconds:.1f} s'})"
        _progress(out, i, n, head, values, start)
    result.seconds = time.perf_counter() - start
    return result


def score_networks(result: Validation, networks, scorers: dict, store, out) -> Validation:
    """Rows of `result` for (label, arch, true top-1) networks, every scorer applied as a search applies it
    (Scorer: the network built under WEIGHTS_SEED), through the score cache for those that need a network."""
    start = time.perf_counter()
    for i, (code, arch, top1) in enumerate(networks, 1):
        report, h = cost(arch), arch.content_hash()
        values = {}
        for p, scorer in scorers.items():
            # nothing here times, so no host lock (a score that builds nothing is never cached: Scorer.score)
            r = scorer.score(store, arch, arch_hash=h, lock=False)
            values[p] = r.value
            result.score_seconds[p] += r.seconds
        result.rows.append(
            Row(h, arch.to_dict(include_name=False), report.madds, report.params, values, top1, 0.0, False, code)
        )
        _progress(out, i, len(networks), f"{code} top1 {top1:.2f}%", values, start)
    result.seconds = time.perf_counter() - start
    return result


def _progress(out, i: int, n: int, head: str, values: dict, start: float) -> None:
    """One line per network: what it is, every score, elapsed time and ETA."""
    elapsed = time.perf_counter() - start
    scores = " ".join(f"{p} {v:.3g}" for p, v in values.items())
    out.write(f"[{i}/{n}] {head} | {scores} | {elapsed:.0f} s, ETA {elapsed / i * (n - i):.0f} s\n")
    out.flush()


def scatter_html(result: Validation, path) -> Path:
    """One plotly scatter per proxy (proxy value vs trained accuracy), tau and rho in each title; a single
    standalone HTML file (plotly.js inlined, works offline)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    corr = result.correlations()
    cols = min(len(corr), 2) or 1
    rows = max(1, math.ceil(len(corr) / cols))
    titles = [
        f"{label(p)}: Kendall τ<sub>b</sub> {fmt_corr(t)}, Spearman ρ {fmt_corr(r)} (n={n})" for p, t, r, n in corr
    ]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.1, vertical_spacing=0.14)
    for k, (p, _, _, _) in enumerate(corr):
        pts = [r for r in result.rows if math.isfinite(r.values[p])]
        hover = [
            f"{html.escape(r.arch_hash[:10])}<br>top-1 {r.top1:.2f}%<br>{label(p)} {r.values[p]:.4g}"
            f"<br>MAdds {r.madds / 1e6:.2f}M · params {r.params / 1e6:.3f}M"
            for r in pts
        ]
        fig.add_trace(
            go.Scatter(
                x=[r.values[p] for r in pts],
                y=[r.top1 for r in pts],
                mode="markers",
                name=label(p),
                hovertext=hover,
                hoverinfo="text",
                marker={"size": 8, "opacity": 0.8},
            ),
            row=k // cols + 1,
            col=k % cols + 1,
        )
        fig.update_xaxes(title_text=label(p), row=k // cols + 1, col=k % cols + 1)
        truth = LABELS[{"train": "train", "zoo": "zoo"}.get(result.truth, "bench")]
        fig.update_yaxes(title_text=truth, row=k // cols + 1, col=k % cols + 1)
    fig.update_layout(
        title=f"Scores vs trained accuracy: {len(result.rows)} architectures of {result.space} on "
        f"{html.escape(result.data)}",
        showlegend=False,
        height=420 * rows,
        width=1100,
        template="plotly_white",
    )
    return atomic_write_text(path, fig.to_html(include_plotlyjs=True, full_html=True), ".html")
