"""`nasx search --prefilter`: skip timing candidates that the stored latency model says cannot reach the front.

The rule, for a candidate within budget (built and scored, as every feasible candidate is):

    predicted = a·MAdds + b·MAC + c          (the model `nasx explore` stored for this device fingerprint)
    optimistic = predicted · (1 − margin)
    skip  ⇔  some trial on the current front has latency < optimistic and score ≥ the candidate's score

i.e. even if the candidate ran `margin` faster than predicted, a measured front member would still be both
faster and at least as good: it could not join the front. The margin defaults to the model's 90th
percentile of |relative error| on the architectures `nasx explore` held out (at least 10%), so a skip
needs the model to be wrong by more than it was for 9 in 10 held-out architectures. A skipped trial ends
PRUNED with reason "prefiltered: predicted X ms", its score and predicted latency in its attrs, and no
latency: nasx never claims a measured latency it did not measure. The rule depends only on the prediction
and the front, not on what the latency cache holds, so a search makes the same decisions cold or warm."""

from __future__ import annotations

import math
from dataclasses import dataclass

from nasx.errors import NasxError
from nasx.measure.latency_model import LatencyModel, load_model
from nasx.util.pareto import dominated_with_margin

MIN_MARGIN = 0.10
MAX_MARGIN = 0.90


@dataclass(frozen=True)
class Verdict:
    skip: bool
    predicted_ms: float
    optimistic_ms: float
    reason: str = ""
    dominated_by: int | None = None  # the front trial that would still dominate the candidate


def default_margin(model: LatencyModel) -> float:
    p90 = model.p90_rel_error
    if p90 is None or not math.isfinite(p90):
        return 0.5
    return min(MAX_MARGIN, max(MIN_MARGIN, p90))


class Prefilter:
    def __init__(self, model: LatencyModel, margin: float | None = None):
        if margin is not None and not 0 <= margin < 1:
            raise NasxError(f"--prefilter-margin must be in [0, 1), got {margin}")
        self.model = model
        self.margin = default_margin(model) if margin is None else margin

    @classmethod
    def load(cls, store, fingerprint_hash: str, fingerprint: dict, margin: float | None = None) -> Prefilter:
        model = load_model(store, fingerprint_hash)
        if model is None:
            raise NasxError(
                f"--prefilter: no latency model for this device fingerprint ({fingerprint_hash}: "
                f"{fingerprint.get('hardware')}, {fingerprint.get('threads')} threads, batch "
                f"{fingerprint.get('batch')}, input {'x'.join(map(str, fingerprint.get('input', [])))}) in "
                f"{store.url}; fit one first with nasx explore --config <the same space> --storage {store.url} "
                f"(same --device and --threads)"
            )
        return cls(model, margin)

    def check(self, front, madds: int, mac: int, score: float) -> Verdict:
        """`front`: (trial number, latency ms, score) of the current front's measured trials."""
        predicted = self.model.predict(madds=madds, mac=mac)
        optimistic = predicted * (1 - self.margin)
        member = dominated_with_margin(front, predicted, self.margin, score)
        if member is None:
            return Verdict(False, predicted, optimistic)
        number, latency, front_score = member
        return Verdict(
            True,
            predicted,
            optimistic,
            f"prefiltered: predicted {predicted:.2f} ms (≥ {optimistic:.2f} ms with a "
            f"{self.margin:.0%} margin), dominated by trial {number} ({latency:.2f} ms, "
            f"score {front_score:.4g} ≥ {score:.4g})",
            number,
        )
