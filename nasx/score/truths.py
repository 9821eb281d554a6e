"""The truths nothing has to train for: every registered score ranked against NAS-Bench-Macro's trained
accuracies (`--truth nas-bench-macro`), Once-for-All MobileNetV3 subnets' ImageNet accuracies (`--truth
ofa-mbv3`), the zoo's published ImageNet top-1 (`--truth zoo`), and the three side by side with each score's
worst case (`--truth all`), what the default score is chosen by. Each score is computed as a search computes
it (nasx.score.cached.Scorer: the network built under WEIGHTS_SEED), through the score cache for those that
need a network; the rows and tables are nasx.score.validate's."""

from __future__ import annotations

import math
import random
import sys

from nasx.errors import NasxError
from nasx.score.cached import Scorer
from nasx.score.proxies import SCORES, get_score
from nasx.score.validate import Validation, label, score_networks
from nasx.store.db import Store
from nasx.util.fmt import fmt_corr, render_table


def validation_scores() -> list[str]:
    """The registered scores worth validating against a table: every one but table lookups (the truth itself)
    and the scores that train (DATA_SCORES: `--truth train` is their validation)."""
    return [name for name, fn in SCORES.items() if not getattr(fn, "table", None)]


def validate_bench(n: int, scores=None, seed: int = 0, storage: str | None = None, out=None) -> Validation:
    """Every score in `scores` (default: validation_scores()) against NAS-Bench-Macro's mean accuracy, over N
    distinct networks drawn from the table with `seed`. Each is computed as a search computes it (Scorer: the
    network built under WEIGHTS_SEED), through the score cache for those that need a network."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    from nasx.score import bench

    population = [(code, lambda code=code: bench.code_arch(code), bench.accuracy(code)) for code in bench.networks()]
    target = "CIFAR-10 test top-1, mean of 3 trainings"
    valid = validation_scores()
    return _validate_sample(bench.NAME, target, population, n, scores, valid, seed, storage, "table's", out)


def validate_ofa(n: int, scores=None, seed: int = 0, storage: str | None = None, out=None) -> Validation:
    """Every score in `scores` (default: validation_scores() but the table lookup) against the ImageNet top-1
    of N distinct Once-for-All MobileNetV3 subnets drawn from the shipped tables with `seed`
    (nasx.score.ofa): 224x224 inverted residuals with SE that differ mostly in size."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    from nasx.score import ofa

    population = [(s.code, lambda s=s: ofa.subnet_arch(s), s.top1) for s in ofa.subnets()]
    target = "ImageNet top-1 with the OFA supernet's weights"
    valid = [p for p in validation_scores() if p != "bench"]
    return _validate_sample(ofa.NAME, target, population, n, scores, valid, seed, storage, "tables'", out)


def _validate_sample(truth, target, population, n, scores, valid, seed, storage, whose, out) -> Validation:
    """N of a table's (label, arch factory, accuracy) networks drawn with `seed`, every score applied."""
    scores = _check_scores(scores, valid)
    if not 3 <= n <= len(population):
        raise NasxError(f"--n must be in 3..{len(population)} (the {whose} distinct networks), got {n}")
    store = Store(storage) if storage else None
    scorers = {p: Scorer(p, get_score(p)) for p in scores}
    result = Validation(
        truth,
        truth,
        "",
        target=target,
        score_seconds=dict.fromkeys(scores, 0.0),
        table_best=max(acc for _, _, acc in population),
        truth=truth,
        seed=seed,
    )
    picked = random.Random(seed).sample(population, n)
    return score_networks(result, [(name, arch(), acc) for name, arch, acc in picked], scorers, store, out)


def _check_scores(scores, valid: list[str]) -> list[str]:
    scores = list(scores or valid)
    unknown = [p for p in scores if p not in valid]
    if unknown or not scores:
        raise NasxError(f"unknown score {', '.join(unknown) or '(none given)'} to validate: use {','.join(valid)}")
    return scores


def validate_zoo(scores=None, storage: str | None = None, out=None) -> Validation:
    """Every score in `scores` (default: validation_scores() but the table lookup) against the published
    ImageNet top-1 of the zoo models (nasx.zoo.published.TOP1): networks from other papers, trained with
    other recipes on another data set, where a score fitted to NAS-Bench-Macro would show it."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    from nasx.arch import zoo_arch
    from nasx.zoo.published import TOP1

    scores = _check_scores(scores, [p for p in validation_scores() if p != "bench"])
    store = Store(storage) if storage else None
    scorers = {p: Scorer(p, get_score(p)) for p in scores}
    result = Validation(
        "zoo",
        "ImageNet",
        "",
        target="published ImageNet top-1",
        score_seconds=dict.fromkeys(scores, 0.0),
        truth="zoo",
    )
    networks = [(name, zoo_arch(name), top1) for name, (top1, _) in TOP1.items()]
    return score_networks(result, networks, scorers, store, out)


def validate_all(n: int, scores=None, seed: int = 0, storage: str | None = None, out=None) -> list[Validation]:
    """Every score against each truth nothing trains for (TABLE_TRUTHS): N networks drawn from each table
    (seed `seed`) and the zoo's 18. A score only some truths take (bench: its own table) is left out."""
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    valid = [p for p in validation_scores() if p != "bench"]
    scores = _check_scores(scores, valid)
    return [
        validate_bench(n, scores, seed=seed, storage=storage, out=out),
        validate_ofa(n, scores, seed=seed, storage=storage, out=out),
        validate_zoo(scores, storage=storage, out=out),
    ]


def worst_cases(results: list[Validation]) -> list[tuple[str, list[float], float]]:
    """(score, Kendall tau-b against each result's truth, the lowest of them), best worst case first: what
    `--truth all` ranks scores by, since a score a user trusts on a space unlike any truth here should hold
    up on every one of them, not win one."""
    taus: dict[str, list[float]] = {}
    for result in results:
        for p, tau, _rho, _n in result.correlations():
            taus.setdefault(p, []).append(tau)
    rows = [(p, ts, min(ts)) for p, ts in taus.items() if len(ts) == len(results)]
    return sorted(rows, key=lambda r: -r[2] if math.isfinite(r[2]) else math.inf)


def worst_case_table(results: list[Validation]) -> str:
    """Every score's tau-b against each truth side by side, with its worst case and its seconds per network."""
    seconds: dict[str, list[float]] = {}
    for result in results:
        for p, s in result.score_seconds.items():
            seconds.setdefault(p, []).append(s / max(1, len(result.rows)))
    header = ["score", *(f"{r.truth} (n={len(r.rows)})" for r in results), "worst", "s/arch"]
    rows = [
        [label(p), *(fmt_corr(t) for t in ts), fmt_corr(worst), f"{max(seconds.get(p, [0.0])):.3f}"]
        for p, ts, worst in worst_cases(results)
    ]
    return "Kendall tau-b against each truth; best worst case first\n" + render_table(header, rows)
