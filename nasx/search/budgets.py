"""Compute, MAC and parameter budgets of a search, and how far a cost report exceeds them."""

from __future__ import annotations

from dataclasses import dataclass

from nasx.errors import BudgetError
from nasx.util.fmt import human


@dataclass
class Budgets:
    """Upper bounds; None means unbounded. `metric` is what `compute` bounds: madds or flops."""

    compute: int | None = None
    metric: str = "madds"
    mac: int | None = None
    mac_unit: str = "elements"  # or bytes
    params: int | None = None

    def label(self) -> str:
        parts = []
        if self.compute:
            parts.append(f"{self.metric}{human(self.compute)}")
        if self.mac:
            parts.append(f"mac{human(self.mac)}{'B' if self.mac_unit == 'bytes' else ''}")
        if self.params:
            parts.append(f"params{human(self.params)}")
        return "-".join(parts) or "unbounded"

    def violations(self, report) -> dict[str, float]:
        """Relative excess per constraint: value / budget - 1 (feasible when <= 0)."""
        out = {}
        if self.compute:
            used = report.madds if self.metric == "madds" else report.flops
            out[self.metric] = used / self.compute - 1
        if self.mac:
            used = report.mac if self.mac_unit == "elements" else report.mac_bytes
            out["mac"] = used / self.mac - 1
        if self.params:
            out["params"] = report.params / self.params - 1
        return out

    def refuse_unreachable(self, space) -> None:
        """A budget below the space's smallest network would reject every trial and leave a junk study behind
        (the most recent one, which pareto and export then read): refuse it, naming the space's range."""
        from nasx.cost import DTYPE_BYTES

        bounds = space.cost_bounds()
        if bounds is None:  # a define-by-run space cannot be enumerated (nasx.space.function): nothing to check
            return
        checks = []  # (flag, budget, unit, bounds key, factor from that key's unit to the budget's)
        if self.compute:
            checks.append(
                (
                    "--budget",
                    self.compute,
                    "MAdds" if self.metric == "madds" else "FLOPs",
                    "madds",
                    1 if self.metric == "madds" else 2,
                )
            )
        if self.mac:
            in_bytes = self.mac_unit == "bytes"  # searches price MAC bytes at float32, cost()'s default
            checks.append(
                (
                    "--mac-budget",
                    self.mac,
                    "MAC bytes" if in_bytes else "MAC elements",
                    "mac",
                    DTYPE_BYTES["float32"] if in_bytes else 1,
                )
            )
        if self.params:
            checks.append(("--params-budget", self.params, "params", "params", 1))
        for flag, budget, unit, key, factor in checks:
            lo, hi = (factor * v for v in bounds[key])
            if budget < lo:
                least = "its smallest network has" if key == "madds" else "no network has fewer than"
                raise BudgetError(
                    f"{flag} {human(budget)} is below every network of space {space.name!r} ({least} "
                    f"{human(lo)} {unit}; the space spans {human(lo)}..{human(hi)}): every trial would "
                    f"be rejected"
                )
