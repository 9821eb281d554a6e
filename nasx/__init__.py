"""nasx: hardware-aware neural architecture search and design-space exploration for CNNs."""

from nasx.arch import Arch, load_arch
from nasx.build import build
from nasx.cost import CostReport, cost
from nasx.errors import ArchError, BudgetError, ConfigError, NasxError, StorageError
from nasx.latency import measure_latency
from nasx.ops.base import Convention

__version__ = "0.1.0"

__all__ = ["Arch", "ArchError", "BudgetError", "ConfigError", "Convention", "CostReport", "NasxError",
           "StorageError", "build", "cost", "load_arch", "measure_latency"]
