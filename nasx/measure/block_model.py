"""A network's latency predicted from its layers timed alone (nasx.measure.blocks): a correction, fitted on
networks timed whole, applied to the sum of its layer times S and its layer count L.

The forms (each a relative least-squares fit, as nasx.measure.latency_model fits, so the ±10% criterion is
what the fit minimises):

- `scale`: latency ≈ a·S (the whole network runs its layers back to back, warm: a single factor);
- `scale+const`: latency ≈ a·S + c (plus a per-network constant);
- `scale+layer+const`: latency ≈ a·S + b·L + c (plus a per-layer overhead: each layer timed alone pays a call
  and, in ONNX Runtime, a session run that the whole network pays once).

`nasx explore` fits each on one half of its measured networks and judges it on the other (`--json FILE`
writes the judgement); DEFAULT_FORM is the one `nasx explore` stores for the device fingerprint and names
`blocks`. Measured (scripts/bench_block_model.py, leave-one-out over 40 networks a space, eager, 2 threads,
docs/latency.md): `scale+const` is best or tied on each space (within ±10%: mobile224 72%, mobile224_layers 98%,
cifar32 92%; `scale` 68/98/92%, `scale+layer+const` 72/98/92%); no form reaches the goal (90% within ±10%,
Kendall tau-b 0.9) on mobile224, where whole networks ran 1.08-1.74x their layer sums; there a network timed
whole twice agrees with itself within ±10% for only 72-80% of networks (`bench_block_model.py --repeat`), the
ceiling of any predictor judged against one timing.
Under ONNX Runtime a whole network ran 0.58-1.01x its layer sum (fusion, one session run instead of one per
layer); there the goal is met on mobile224 (95% leave-one-out) and missed on cifar32 (72%).

`predict_latency(arch, timer)` is the one entry point for a caller that holds a Timer (a search screening its
candidates, `nasx latency --predict`): it reads the stored model of the timer's fingerprint, times the layers
the table lacks and returns a Prediction (always flagged predicted)."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from nasx.errors import NasxError
from nasx.measure.blocks import BlockTable
from nasx.store.db import fitted_models_table, load_fitted, save_fitted

# form -> the terms of its fit: the layer sum (ms), the layer count, a constant
FORMS = {
    "scale": ("layer_sum",),
    "scale+const": ("layer_sum", "const"),
    "scale+layer+const": ("layer_sum", "layers", "const"),
}
DEFAULT_FORM = "scale+const"  # best or tied in every space's judgement: see the module docstring

block_models = fitted_models_table("nasx_block_model")


def _design(form: str, layer_sums, n_layers) -> np.ndarray:
    if form not in FORMS:
        raise NasxError(f"unknown block model form {form!r}: use {', '.join(FORMS)}")
    cols = {"layer_sum": np.asarray(layer_sums, float), "layers": np.asarray(n_layers, float)}
    cols["const"] = np.ones(len(cols["layer_sum"]))
    return np.column_stack([cols[t] for t in FORMS[form]])


@dataclass(frozen=True)
class BlockModel:
    """latency_ms ≈ scale·(sum of the layer times) + per_layer_ms·(layer count) + constant_ms."""

    form: str
    scale: float
    per_layer_ms: float = 0.0
    constant_ms: float = 0.0
    n_train: int = 0
    n_test: int = 0
    kendall: float = math.nan  # on the held-out networks
    within5: float = math.nan
    within10: float = math.nan
    config: str = ""
    fingerprint_hash: str = ""
    fingerprint: dict = field(default_factory=dict)

    def predict(self, layer_sum_ms, n_layers) -> np.ndarray | float:
        out = self.scale * np.asarray(layer_sum_ms, float) + self.per_layer_ms * np.asarray(n_layers, float)
        out = out + self.constant_ms
        return float(out) if np.ndim(out) == 0 else out

    def formula(self) -> str:
        text, terms = f"latency ms ≈ {self.scale:.4g}·Σlayers", FORMS[self.form]
        for value, term, unit in ((self.per_layer_ms, "layers", "·layers"), (self.constant_ms, "const", "")):
            if term in terms:
                text += f" {'+' if value >= 0 else '-'} {abs(value):.3g}{unit}"
        return text

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> BlockModel:
        return cls(**{k: (math.nan if v is None else v) for k, v in d.items() if k in cls.__dataclass_fields__})


def fit_block_model(layer_sums, n_layers, measured, form: str = DEFAULT_FORM) -> BlockModel:
    """The correction of `form` fitted by least squares on relative residuals to networks timed whole."""
    y = np.asarray(measured, float)
    A = _design(form, layer_sums, n_layers)
    if len(y) < A.shape[1] + 1:
        raise NasxError(f"a {form} block model needs at least {A.shape[1] + 1} networks timed whole, got {len(y)}")
    if np.any(y <= 0):
        raise ValueError("relative least squares needs positive latencies")
    A, b = A / y[:, None], np.ones(len(y))
    scale = np.abs(A).max(axis=0)
    scale[scale == 0] = 1.0
    sol = dict(zip(FORMS[form], np.linalg.lstsq(A / scale, b, rcond=None)[0] / scale))
    return BlockModel(form, float(sol["layer_sum"]), float(sol.get("layers", 0.0)), float(sol.get("const", 0.0)))


def leave_one_out(layer_sums, n_layers, measured, form: str = DEFAULT_FORM) -> np.ndarray:
    """Each network's latency predicted by `form` fitted on all the other networks."""
    sums, layers, y = (np.asarray(v, float) for v in (layer_sums, n_layers, measured))
    pred = np.empty(len(y))
    for i in range(len(y)):
        rest = np.arange(len(y)) != i
        pred[i] = fit_block_model(sums[rest], layers[rest], y[rest], form).predict(sums[i], layers[i])
    return pred


def save_block_model(store, model: BlockModel) -> None:
    """Store `model` for its fingerprint (the newest one is the one `load_block_model` returns)."""
    save_fitted(store, block_models, model.fingerprint_hash, model.fingerprint, model.to_dict())


def load_block_model(store, fingerprint_hash: str) -> BlockModel | None:
    """The most recent block model fitted on networks timed with this fingerprint, or None."""
    d = load_fitted(store, block_models, fingerprint_hash)
    return None if d is None else BlockModel.from_dict(d)


def require_block_model(store, fp: dict, fp_hash: str) -> BlockModel:
    """The stored block model of a fingerprint, or one NasxError saying which `nasx explore` makes it."""
    model = load_block_model(store, fp_hash)
    if model is None:
        runtime = fp.get("runtime", {}).get("name", "torch")
        raise NasxError(
            f"no block latency model for fingerprint {fp_hash} ({fp['device']} {fp['hardware']}, {fp['threads']} "
            f"threads, batch {fp['batch']}, input {'x'.join(map(str, fp['input']))}, runtime {runtime}"
            f"{'' if 'calibration' in fp else ', raw timing'}) in {store.url}: fit one with `nasx explore --config "
            f"SPACE` on a space of that input with the same --threads, --runtime and drift setting"
        )
    return model


@dataclass(frozen=True)
class Prediction:
    """A latency predicted from the block table: never a measurement (`predicted` is always True)."""

    latency_ms: float
    layer_sum_ms: float
    n_layers: int
    layers_timed: int  # distinct layers the table lacked, timed for this prediction
    seconds: float
    model: BlockModel
    predicted: bool = True

    def as_dict(self) -> dict:
        d = asdict(self)
        d["model"] = self.model.formula()
        return d


def predict_latency(arch, timer, model: BlockModel | None = None, *, table: BlockTable | None = None) -> Prediction:
    """`arch`'s latency under `timer`'s fingerprint (a nasx.measure.cached.Timer), predicted from its layers:
    those the block table lacks are timed now and stored; the correction is `model`, else the one stored for
    the fingerprint (NasxError when there is none). Pass one `table` to many calls to keep its reads in memory."""
    t0 = time.perf_counter()
    model = model or require_block_model(timer.store, timer.fp, timer.fp_hash)
    times = (table or BlockTable(timer)).layer_times(arch)
    return Prediction(
        float(model.predict(times.total_ms, times.n_layers)),
        times.total_ms,
        times.n_layers,
        times.timed_now,
        time.perf_counter() - t0,
        model,
    )
