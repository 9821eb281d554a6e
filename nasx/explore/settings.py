"""The settings of one exploration. Light on purpose (no numpy, no torch): the CLI reads its defaults from
here when it builds its parser."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from nasx.store.db import DEFAULT_STORAGE

if TYPE_CHECKING:
    from nasx.space.model import SearchSpace


@dataclass
class ExploreSettings:
    space: SearchSpace
    n: int = 1000
    measure: int = 40
    seed: int = 0
    storage: str = DEFAULT_STORAGE
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    measure_time_s: float = 0.5
    store_model: bool = True
    progress: bool = True
    drift_correction: bool = True  # as nasx search: its --prefilter finds the model under the same fingerprint
    runtime: str = "torch"  # as nasx search --runtime: the latency model is kept per runtime (its fingerprint)
    blocks: bool = True  # time the measured networks' layers alone into the block table; fit the block model
