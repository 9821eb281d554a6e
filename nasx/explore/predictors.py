"""Latency predictors from cost-core counts, fitted on one half of the measured subset and judged on the other."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import numpy as np

from nasx.explore.sampling import Sample
from nasx.measure.block_model import DEFAULT_FORM, FORMS, BlockModel, fit_block_model
from nasx.measure.latency_model import fit_linear, relative_errors, within_share
from nasx.util.fmt import fmt_corr
from nasx.util.stats import kendall_tau_b, spearman

COSTS = (("MAdds", "madds"), ("MAC", "mac"), ("params", "params"), ("activations", "activations"))


COMBINATION = ("madds", "mac")


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
    within5: float = math.nan
    formula: str = ""  # what the table prints for the fitted model, when it is not a line in the costs

    def as_dict(self) -> dict:
        """Every field, and the held-out judgement under the names `nasx explore --json` promises."""
        d = dataclasses.asdict(self) | {
            "n_heldout": self.n_test,
            "within_5pct": self.within5,
            "within_10pct": self.within10,
            "kendall_tau_b": self.kendall,
        }
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def evaluate_predictor(
    name: str, features: tuple[str, ...], train: list[Sample], test: list[Sample], relative: bool = True
) -> PredictorResult:
    X = np.array([[s.value(f) for f in features] for s in train], dtype=float)
    y = np.array([s.latency_ms for s in train], dtype=float)
    coef, intercept = fit_linear(X, y, relative=relative)
    Xt = np.array([[s.value(f) for f in features] for s in test], dtype=float)
    yt = np.array([s.latency_ms for s in test], dtype=float)
    pred = Xt @ coef + intercept if len(test) else np.array([])
    # rank statistics of the predictor itself: for one cost, its raw value (a fitted line of positive slope
    # ranks the same); for a combination, the fitted prediction
    ranker = Xt[:, 0] if len(features) == 1 else pred
    method = "relative least squares" if relative else "least squares"
    return judged(name, features, method, tuple(map(float, coef)), intercept, pred, yt, len(train), ranker)


def judged(name, features, method, coef, intercept, pred, yt, n_train: int, ranker=None, formula="") -> PredictorResult:
    """A fitted predictor's held-out judgement: its predictions `pred` against the measured `yt` (ranks by
    `ranker` where given: a single cost ranks as its raw value)."""
    ranker = pred if ranker is None else ranker
    err = np.abs(relative_errors(pred, yt)) if len(yt) else np.array([math.nan])
    return PredictorResult(
        name,
        features,
        method,
        coef,
        intercept,
        kendall_tau_b(ranker, yt),
        spearman(ranker, yt),
        within_share(pred, yt),
        float(np.median(err)),
        float(np.quantile(err, 0.9)),
        n_train,
        len(yt),
        [float(p) for p in pred],
        within_share(pred, yt, 0.05),
        formula,
    )


def blocks_name(form: str) -> str:
    """`blocks`: the block model of DEFAULT_FORM, the one stored; the other forms are named by their form."""
    return "blocks" if form == DEFAULT_FORM else f"blocks ({form})"


def evaluate_blocks(
    train: list[Sample], test: list[Sample], form: str = DEFAULT_FORM
) -> tuple[PredictorResult, BlockModel]:
    """The block model of `form` fitted on the training half's layer sums and judged on the held-out half."""
    model = fit_block_model(
        [s.layer_sum_ms for s in train], [s.n_layers for s in train], [s.latency_ms for s in train], form
    )
    yt = np.array([s.latency_ms for s in test], dtype=float)
    pred = np.asarray(model.predict([s.layer_sum_ms for s in test], [s.n_layers for s in test]), float)
    coef = {"layer_sum": model.scale, "layers": model.per_layer_ms}
    terms = tuple(t for t in FORMS[form] if t != "const")
    result = judged(
        blocks_name(form),
        terms,
        "relative least squares",
        tuple(coef[t] for t in terms),
        model.constant_ms,
        pred,
        yt,
        len(train),
        formula=model.formula().removeprefix("latency ms ≈ "),
    )
    fitted = dataclasses.replace(
        model,
        n_train=len(train),
        n_test=len(test),
        kendall=result.kendall,
        within5=result.within5,
        within10=result.within10,
    )
    return result, fitted


def predictor_table(train: list[Sample], test: list[Sample]) -> list[PredictorResult]:
    """The cost predictors, then (when every measured network has its layer sum) the block model's forms,
    DEFAULT_FORM's (`blocks`) first."""
    rows = [evaluate_predictor(label, (key,), train, test) for label, key in COSTS]
    rows.append(evaluate_predictor("a·MAdds + b·MAC + c", COMBINATION, train, test))
    rows.append(evaluate_predictor("a·MAdds + b·MAC + c", COMBINATION, train, test, relative=False))
    if all(s.layer_sum_ms is not None for s in train + test):
        forms = [DEFAULT_FORM] + [f for f in FORMS if f != DEFAULT_FORM]
        rows += [evaluate_blocks(train, test, f)[0] for f in forms if len(train) > len(FORMS[f])]
    return rows


def _share(v: float, n: int) -> str:
    return "n/a" if math.isnan(v) else f"{v:.0%} ({round(v * n)}/{n})"


def predictor_rows(rows: list[PredictorResult]) -> list[list[str]]:
    out = []
    for r in rows:
        terms = ""
        for i, (c, f) in enumerate(zip(r.coef, r.features, strict=False)):
            terms += ("" if i == 0 else (" + " if c >= 0 else " - ")) + f"{(c if i == 0 else abs(c)) * 1e6:.3g}·{f}/1M"
        out.append(
            [
                r.name,
                r.fit,
                r.formula or f"{terms} {'+' if r.intercept_ms >= 0 else '-'} {abs(r.intercept_ms):.3g}",
                fmt_corr(r.kendall),
                fmt_corr(r.spearman),
                _share(r.within10, r.n_test),
                f"{r.median_abs_rel_error:.0%}",
            ]
        )
    return out


PREDICTOR_HEADER = [
    "predictor",
    "fit (train half)",
    "latency ms ≈",
    "Kendall τb",
    "Spearman ρ",
    "within ±10%",
    "median |err|",
]
