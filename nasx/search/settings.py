"""The settings of one search (space, budgets, storage, measurement, score)."""

from __future__ import annotations

from dataclasses import dataclass

from nasx.measure.latency import DEFAULT_MEASURE_TIME_S
from nasx.search.budgets import Budgets
from nasx.space.config import SearchSpace
from nasx.store.db import DEFAULT_STORAGE, DEFAULT_TRIALS


@dataclass
class SearchSettings:
    space: SearchSpace
    budgets: Budgets
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    n_trials: int | None = DEFAULT_TRIALS
    timeout: float | None = None
    sampler: str = "tpe"
    seed: int | None = None
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    score: str = "naswot"
    measure_time_s: float = DEFAULT_MEASURE_TIME_S
    progress: bool = True
    heartbeat_s: int = 10  # a trial whose worker stops beating for 3x this is failed and retried
    data: str | None = None  # data set spec for scores that train (nasx.score.data): digits, cifar10:PATH, folder:PATH
    train: object = None  # nasx.score.train.TrainSettings for --score train (None: its defaults)
    prefilter: bool = False  # skip timing candidates the stored latency model puts far off the front
    prefilter_margin: float | None = None  # None: the model's held-out p90 relative error (nasx.measure.prefilter)
    drift_correction: bool = True  # rescale each latency by a calibration workload timed around it (nasx.measure.latency)

    def default_study_name(self) -> str:
        data = f"-{self.data.split(':', 1)[0]}" if self.data else ""
        return f"{self.space.name}-{self.budgets.label()}-{self.device}-b{self.batch}-{self.score}{data}"
