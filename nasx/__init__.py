"""nasx: hardware-aware neural architecture search and design-space exploration for CNNs.

The public API (`nasx.cost`, `nasx.build`, `nasx.load_arch`, `nasx.measure_latency`, ...) is re-exported
here. The code is layered, lowest first; a package may import only the layers its docstring names
(tests/test_layering.py holds the code to it):

- nasx.errors: the exception types. nasx.util: pure helpers.
- core: nasx.ops, nasx.graph, nasx.layers, nasx.blocks, nasx.arch, nasx.cost, nasx.build, nasx.zoo: ops
  and block families, the arch format, cost, the torch builder. Pure arithmetic but for build (torch,
  imported when building).
- nasx.space (search spaces), nasx.store (the database, and one-line summaries of a trial's JSON),
  nasx.measure (latency, and nasx's counts beside external FLOP counters), nasx.score (accuracy proxies
  and training; above measure, whose device and host lock it uses).
- nasx.search (the engine), nasx.study (faces reading a study), nasx.explore (the explorer): siblings that
  never import one another.
- nasx.cli.

Core may import: nasx.errors, nasx.util.
"""

from nasx.arch import Arch, load_arch
from nasx.build import build
from nasx.cost import CostReport, cost
from nasx.errors import ArchError, BudgetError, ConfigError, NasxError, StorageError
from nasx.measure.latency import measure_latency
from nasx.ops.base import Convention

__version__ = "0.1.0"

__all__ = [
    "Arch",
    "ArchError",
    "BudgetError",
    "ConfigError",
    "Convention",
    "CostReport",
    "NasxError",
    "StorageError",
    "build",
    "cost",
    "load_arch",
    "measure_latency",
]
