"""A latency model fitted from the cost core: latency ≈ a·MAdds + b·MAC + c, one per device fingerprint.

The fit is least squares on *relative* residuals: it minimises Σ ((a·MAdds_i + b·MAC_i + c − t_i) / t_i)²,
i.e. ordinary least squares (numpy.linalg.lstsq) on the rows of [MAdds, MAC, 1] and the target t divided
by t_i. Why: the model is judged by the share of architectures predicted within ±10% (nn-Meter's measure),
a relative criterion, and measured latencies span an order of magnitude; plain least squares lets the
slowest few architectures set the line and leaves the fast ones (the interesting end of a front) with
large relative errors. The model stays linear in MAdds and MAC (time = compute / throughput + memory /
bandwidth + a fixed per-network overhead), so its coefficients read as ms per MAdd and ms per element
moved; a log-space power law was the alternative, and gives up that reading. Plain least squares is
still computed by `nasx explore` and reported beside it, so the choice can be checked.

Stored in the study database (table nasx_latency_model, beside Optuna's and the latency cache) keyed by
the fingerprint hash of the measurements it was fitted on; `load_model` returns the most recent one."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from nasx.errors import NasxError
from nasx.store.db import fitted_models_table, load_fitted, save_fitted

WITHIN = 0.10  # nn-Meter's accuracy measure: share of predictions within ±10% of the measured latency

latency_models = fitted_models_table("nasx_latency_model")


def fit_linear(X, y, relative: bool = True) -> tuple[np.ndarray, float]:
    """Least-squares (coefficients, intercept) of y ≈ X·coef + intercept; with `relative`, the residuals
    are divided by y (every y must be positive)."""
    X, y = np.asarray(X, float), np.asarray(y, float)
    if X.ndim == 1:
        X = X[:, None]
    if len(X) != len(y):
        raise ValueError("X and y differ in length")
    if len(y) < X.shape[1] + 1:
        raise NasxError(
            f"a fit of {X.shape[1] + 1} coefficients needs at least {X.shape[1] + 1} measured "
            f"architectures, got {len(y)}"
        )
    A = np.column_stack([X, np.ones(len(X))])
    b = y.copy()
    if relative:
        if np.any(y <= 0):
            raise ValueError("relative least squares needs positive targets")
        A, b = A / y[:, None], np.ones(len(y))
    # columns differ by orders of magnitude (MAdds ~1e8, the intercept 1): scale them for conditioning
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    sol = np.linalg.lstsq(A / scale, b, rcond=None)[0] / scale
    return sol[:-1], float(sol[-1])


def relative_errors(pred, y) -> np.ndarray:
    pred, y = np.asarray(pred, float), np.asarray(y, float)
    return (pred - y) / y


def within_share(pred, y, tol: float = WITHIN) -> float:
    """Share of predictions within ±tol of the measured value (nn-Meter's ±10% accuracy for tol=0.1)."""
    if len(y) == 0:
        return math.nan
    return float(np.mean(np.abs(relative_errors(pred, y)) <= tol + 1e-12))


@dataclass(frozen=True)
class LatencyModel:
    """latency_ms ≈ Σ coef[k]·cost[k] + intercept_ms over `features` (names of cost attributes)."""

    features: tuple[str, ...]
    coef: tuple[float, ...]
    intercept_ms: float
    fit: str = "relative least squares"
    n_train: int = 0
    n_test: int = 0
    kendall: float = math.nan  # on the held-out half
    spearman: float = math.nan
    within10: float = math.nan  # share of the held-out half predicted within ±10%
    p90_rel_error: float = math.nan  # 90th percentile of |relative error| on the held-out half
    config: str = ""
    fingerprint_hash: str = ""
    fingerprint: dict = field(default_factory=dict)

    def predict(self, **costs) -> float:
        """Predicted latency in ms from named costs, e.g. predict(madds=3e8, mac=2e7)."""
        missing = [f for f in self.features if f not in costs]
        if missing:
            raise NasxError(f"the latency model needs {', '.join(missing)}")
        return float(sum(c * costs[f] for c, f in zip(self.coef, self.features, strict=False)) + self.intercept_ms)

    def predict_many(self, X) -> np.ndarray:
        X = np.asarray(X, float)
        if X.ndim == 1:
            X = X[:, None]
        return X @ np.asarray(self.coef) + self.intercept_ms

    def formula(self) -> str:
        text = "latency ms ≈ "
        for i, (c, f) in enumerate(zip(self.coef, self.features, strict=False)):
            text += ("" if i == 0 else (" + " if c >= 0 else " - ")) + f"{(c if i == 0 else abs(c)) * 1e6:.4g}·{f}/1M"
        return text + f" {'+' if self.intercept_ms >= 0 else '-'} {abs(self.intercept_ms):.4g}"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["features"], d["coef"] = list(self.features), list(self.coef)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> LatencyModel:
        d = {
            k: (math.nan if v is None and k in ("kendall", "spearman", "within10", "p90_rel_error") else v)
            for k, v in d.items()
            if k in cls.__dataclass_fields__
        }
        d["features"], d["coef"] = tuple(d["features"]), tuple(d["coef"])
        return cls(**d)


def save_model(store, model: LatencyModel) -> None:
    """Store `model` for its fingerprint (the newest one is the one `load_model` returns)."""
    save_fitted(store, latency_models, model.fingerprint_hash, model.fingerprint, model.to_dict())


def load_model(store, fingerprint_hash: str) -> LatencyModel | None:
    """The most recent model fitted on measurements with this fingerprint, or None."""
    d = load_fitted(store, latency_models, fingerprint_hash)
    return None if d is None else LatencyModel.from_dict(d)
