"""Build a torch module from an Arch, walking the same op graphs the cost core walks."""

from __future__ import annotations

from nasx.arch import load_arch
from nasx.errors import ArchError, force_hint

# Refuse to allocate absurd networks from untrusted files (override with force=True / --force).
MAX_PARAMS = 2_000_000_000
# The seed of the weights nasx builds: every score, latency, export and retraining starts from torch's default
# initialisation under it (score cache keys name it), so a trial, a report and an export see the same network.
WEIGHTS_SEED = 0


def build(arch, force: bool = False):
    """A torch `nn.Sequential` (stem, layers, head in order) that runs any (N, C, H, W) input of the
    declared shape. Parameters are initialised by torch's defaults (use a seed for reproducibility)."""
    from collections import OrderedDict

    from torch import nn

    from nasx.cost import cost

    arch = load_arch(arch, force=force)
    params = cost(arch).params
    if params > MAX_PARAMS and not force:
        raise ArchError(
            f"{arch.name or 'architecture'} has {params:,} parameters ({4 * params / 2**30:.0f} GiB "
            f"in float32), over the limit of {MAX_PARAMS:,}; {force_hint('build it')}"
        )
    modules = OrderedDict((f"{section}{i}", g.module()) for section, i, _, g in arch.graphs())
    return nn.Sequential(modules)


def build_seeded(arch, seed: int = WEIGHTS_SEED, force: bool = False):
    """build(arch) with torch's default initialisation under `seed` (default WEIGHTS_SEED)."""
    import torch

    torch.manual_seed(seed)
    return build(arch, force=force)
