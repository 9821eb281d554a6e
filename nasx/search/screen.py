"""Screening, a search's default: predict, then measure. Every feasible candidate gets a predicted latency from
the block table (nasx.measure.blocks: each of its layers timed alone, once per device; the layers the table
lacks are timed on first sight, back to back under one calibration pair), corrected by a block model
(nasx.measure.block_model, form DEFAULT_FORM) that this search fits as it goes on its own candidates timed
whole. A candidate is timed whole only when its prediction, within the model's measured error, could put it
on the current front; otherwise it ends PRUNED as screened (user attrs `screened: true`,
`predicted_latency_ms`, its score), never timed whole, never shown or stored as a measured latency.

The rule is --prefilter's (nasx.util.pareto.dominated_with_margin): skip when some measured front member is faster
than predicted x (1 - margin) at a score at least the candidate's. The margin is the model's own error: the 90th
percentile of its leave-one-out |relative error| over the search's candidates timed whole (at least MIN_MARGIN), so
a skip needs the model to be wrong by more than it was for 9 in 10 networks it has seen. A model whose margin stays
wider than USEFUL_MARGIN once 2 x MIN_FIT candidates are timed whole stops screening for the run (its layer timings
would cost more than the whole timings it saves), and says so. Until MIN_FIT candidates are timed whole there is no
model, and every candidate is timed whole without its layers, as before screening; then the layers of those MIN_FIT
are timed and the model fitted (a search of a few candidates never fills the table for nothing, and a resumed or
shared study's earlier trials count too). The decisions depend on the table, the study's trials and the front, not
on the latency cache, so a search decides the same cold or warm.

May import: nasx.errors, nasx.util, core, nasx.measure, optuna."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import optuna

from nasx.arch import Arch
from nasx.measure.block_model import DEFAULT_FORM, BlockModel, fit_block_model, leave_one_out
from nasx.measure.blocks import BlockTable, LayerTimes
from nasx.util.pareto import dominated_with_margin

MIN_FIT = 8  # candidates timed whole, with their layers, before the search's model screens
MIN_MARGIN = 0.05  # a model that fits its networks to 1% still screens with a 5% margin
MAX_MARGIN = 0.90
# Past 2 x MIN_FIT candidates timed whole, a model whose margin is wider than this stops screening for the run:
# its layers cost about 0.2 s a candidate and a screened one saves a ~0.7 s whole timing (a search's first look,
# its calibration included), so screening pays when over a quarter to a third of candidates are screened; in a
# default search's trials, a 10% margin would have screened 48% of them, a 20% margin 26% (mobile224 @ 300M on
# this project's 2-core VM; a run whose margin ended at 8% screened 40% of its 200 feasible candidates).
USEFUL_MARGIN = 0.15


@dataclass(frozen=True)
class Verdict:
    skip: bool
    predicted_ms: float | None  # None while the model is not fitted yet
    margin: float | None
    n_fit: int  # candidates timed whole the model was fitted on
    reason: str = ""
    dominated_by: int | None = None


def loo_margin(layer_sums, n_layers, measured, form: str) -> float:
    """The 90th percentile of the leave-one-out |relative error| of the block model `form` (clamped to
    [MIN_MARGIN, MAX_MARGIN]): each network predicted by the model fitted on all the others."""
    y = np.asarray(measured, float)
    errors = np.abs(leave_one_out(layer_sums, n_layers, y, form) / y - 1)
    p90 = float(np.percentile(errors, 90)) if len(errors) else math.inf
    return min(MAX_MARGIN, max(MIN_MARGIN, p90)) if math.isfinite(p90) else MAX_MARGIN


class Screen:
    """One search process's screen: its block table (shared by every search on the storage and device) and the
    block model it fits on the study's candidates timed whole, refitted whenever there are more of them."""

    def __init__(self, timer, form: str = DEFAULT_FORM):
        self.table = BlockTable(timer)
        self.form = form
        self._fitted: tuple[int, BlockModel, float] | None = None
        self._sums: dict[int, tuple[float, int]] = {}  # trial number -> (layer sum ms, layer count)
        self.off: str = ""  # why screening stopped for this run (a model too wide to pay for its layers)
        self.backlog: list[LayerTimes] = []  # earlier trials' layers timed for the model: the next trial reports them

    def layer_times(self, arch) -> LayerTimes:
        """`arch`'s layers from the table, the missing ones timed now."""
        return self.table.layer_times(arch)

    def ready(self, study: optuna.Study) -> bool:
        """Whether the study holds MIN_FIT candidates timed whole: before that a candidate is timed whole without
        its layers (a search of a few candidates never fills the table for nothing)."""
        return len(self._timed(study)) >= MIN_FIT

    def _timed(self, study: optuna.Study) -> list:
        return [
            t
            for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if "repeat_of" not in t.user_attrs and "arch" in t.user_attrs and t.values[0] > 0
        ]

    def _layer_sum(self, t) -> tuple[float, int]:
        """A trial's layer sum and count: its attrs, else the table's (its missing layers timed now, once: the
        candidates timed before the model existed, a resumed study's, another worker's)."""
        if "layer_sum_ms" in t.user_attrs:
            return t.user_attrs["layer_sum_ms"], t.user_attrs["n_layers"]
        if t.number not in self._sums:
            times = self.table.layer_times(Arch.from_dict(t.user_attrs["arch"]))
            self._sums[t.number] = (times.total_ms, times.n_layers)
            self.backlog.append(times)
        return self._sums[t.number]

    def model(self, study: optuna.Study) -> tuple[BlockModel, float, int] | None:
        """The block model of the study's candidates timed whole (first measurement against layer sum), its
        margin and the count it was fitted on; None below MIN_FIT of them."""
        timed = self._timed(study)
        if len(timed) < MIN_FIT:
            return None
        if self._fitted is None or self._fitted[0] != len(timed):
            rows = [(*self._layer_sum(t), t.values[0]) for t in timed]
            sums, layers, measured = zip(*rows)
            model = fit_block_model(sums, layers, measured, self.form)
            self._fitted = (len(timed), model, loo_margin(sums, layers, measured, self.form))
        n, model, margin = self._fitted
        if n >= 2 * MIN_FIT and margin > USEFUL_MARGIN and not self.off:
            self.off = (
                f"screening stopped after {n} candidates timed whole: the block model's error on them (p90 "
                f"{margin:.0%}) is wider than the {USEFUL_MARGIN:.0%} at which screening saves time on this "
                f"machine; the rest were timed whole (a noisy machine, or layers that do not add up here)"
            )
        return model, margin, n

    def check(self, study: optuna.Study, front, times: LayerTimes, score: float) -> Verdict:
        """`front`: (trial number, latency ms, score) of the study's measured front."""
        fitted = self.model(study)
        if fitted is None:
            return Verdict(False, None, None, 0)
        model, margin, n = fitted
        predicted = float(model.predict(times.total_ms, times.n_layers))
        member = dominated_with_margin(front, predicted, margin, score)
        if member is None:
            return Verdict(False, predicted, margin, n)
        number, latency, front_score = member
        return Verdict(
            True,
            predicted,
            margin,
            n,
            f"screened: predicted {predicted:.2f} ms (≥ {predicted * (1 - margin):.2f} ms with the block model's "
            f"{margin:.0%} margin), dominated by trial {number} ({latency:.2f} ms, score {front_score:.4g} ≥ "
            f"{score:.4g})",
            number,
        )
