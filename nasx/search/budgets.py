"""Compute, MAC and parameter budgets of a search, and how far a cost report exceeds them."""

from __future__ import annotations

from dataclasses import dataclass

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
