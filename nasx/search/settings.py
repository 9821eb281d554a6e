"""The settings of one search (space, budgets, storage, measurement, score), and their JSON form, from which
each worker process of a multi-worker search (nasx.search.workers) reads them."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from nasx.measure.latency import DEFAULT_MEASURE_TIME_S
from nasx.score.train import TrainSettings
from nasx.search.budgets import Budgets
from nasx.space.config import parse_space
from nasx.space.function import FunctionSpace, load_space_function
from nasx.space.model import SearchSpace
from nasx.store.db import DEFAULT_STORAGE, DEFAULT_TRIALS


@dataclass
class SearchSettings:
    space: SearchSpace | FunctionSpace
    budgets: Budgets
    storage: str = DEFAULT_STORAGE
    study_name: str | None = None
    n_trials: int | None = DEFAULT_TRIALS  # the study's total of finished trials (feasible and rejected)
    more: bool = False  # n_trials counts trials to add to the study, not its total
    timeout: float | None = None
    sampler: str = "tpe"
    seed: int | None = None
    device: str = "cpu"
    threads: int | None = None
    batch: int = 1
    score: str = "capacity"  # the best worst case over three truths of real accuracy (docs/scores.md)
    measure_time_s: float = DEFAULT_MEASURE_TIME_S
    progress: bool = True
    heartbeat_s: int = 10  # a trial whose worker stops beating for 3x this is failed and retried
    data: str | None = None  # data set spec for scores that train (nasx.score.data): digits, cifar10:PATH, folder:PATH
    train: TrainSettings | None = None  # for --score train (None: its defaults)
    screen: bool = True  # time whole only candidates the block table's prediction puts within reach of the front
    sweep: bool = True  # queue a new study's first trials from the free front of many draws (nasx.search.sweep)
    prefilter: bool = False  # skip timing candidates the stored latency model puts far off the front
    prefilter_margin: float | None = None  # None: the model's held-out p90 relative error (nasx.measure.prefilter)
    drift_correction: bool = True  # rescale each latency by a calibration workload timed around it (measure.latency)
    runtime: str = "torch"  # torch (eager) or onnxruntime: what each candidate is timed in (nasx.measure.onnx)
    retime: bool = True  # re-time the front side by side at the end (nasx.search.retime)
    workers: int = 1  # processes of this search running trials of one study at once (nasx.search.workers)
    max_resample: int = 10  # proposals of an architecture already held re-sampled in a row (0: evaluated again)
    force_space: bool = False  # resume a define-by-run study whose function's source changed

    def concurrent(self) -> bool:
        """Whether other processes may run trials of this study meanwhile: several workers, or a server
        database, which is how several hosts share one study."""
        return self.workers > 1 or not self.storage.startswith("sqlite")

    def default_study_name(self) -> str:
        data = f"-{self.data.split(':', 1)[0]}" if self.data else ""
        runtime = "" if self.runtime == "torch" else f"-{self.runtime}"  # eager studies keep their names
        return f"{self.space.name}-{self.budgets.label()}-{self.device}-b{self.batch}-{self.score}{data}{runtime}"

    def to_json(self) -> str:
        """Every setting as JSON: the space as its config text and name (a function's space as its
        FILE.py:function, imported again by the reader), budgets and training settings as their fields.
        from_json reads back equal settings."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.space, FunctionSpace):
            d["space"] = {"function": self.space.spec}
        else:
            d["space"] = {"name": self.space.name, "config": self.space.text}
        d["budgets"] = dataclasses.asdict(self.budgets)
        d["train"] = None if self.train is None else dataclasses.asdict(self.train)
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> SearchSettings:
        d = json.loads(text)
        if "function" in d["space"]:
            # the worker imports the file again: a source changed meanwhile is refused by open_study's hash check
            d["space"] = load_space_function(d["space"]["function"])
        else:
            space = parse_space(d["space"]["config"], d["space"]["name"])
            d["space"] = dataclasses.replace(space, name=d["space"]["name"])
        d["budgets"] = Budgets(**d["budgets"])
        d["train"] = None if d["train"] is None else TrainSettings(**d["train"])
        return cls(**d)
