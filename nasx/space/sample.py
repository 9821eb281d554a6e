"""Distinct architectures drawn uniformly from a search space: validation samples, reference pools."""

from __future__ import annotations

import random

from nasx.cost import cost
from nasx.errors import NasxError


def sample_archs(space, n: int, seed: int = 0, budget: int | None = None, max_draws: int | None = None) -> list:
    """N distinct architectures (by content hash) drawn uniformly, each under `budget` MAdds if given."""
    rng = random.Random(seed)
    seen, out = set(), []
    max_draws = max_draws or 200 * n
    for _ in range(max_draws):
        arch = space.random_arch(rng)
        h = arch.content_hash()
        if h in seen:
            continue
        seen.add(h)
        if budget is not None and cost(arch).madds > budget:
            continue
        out.append(arch)
        if len(out) == n:
            return out
    raise NasxError(
        f"found only {len(out)} distinct architectures of {space.name} under the budget in "
        f"{max_draws} draws; raise --budget or lower --n"
    )
