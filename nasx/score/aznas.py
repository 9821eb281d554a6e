"""AZ-NAS-style rank aggregation (Lee and Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture
Search", CVPR 2024).

AZ-NAS scores a population of N candidates by several proxies and combines them by their ranks, non-linearly:

    score(a) = sum over proxies p of log( rank_p(a) / N )

rank_p(a) in 1..N being a's rank by proxy p in the population, ascending (the best gets N; ties share their
mean rank, scipy.stats.rankdata). The log punishes a candidate that is poor on any one proxy far more than
it rewards one that is excellent on one: the winner has to be good on all of them. The paper's proxies are
its own expressivity, progressivity and trainability plus the FLOPs (complexity); its evolutionary search
re-ranks the whole population after every new candidate.

Design here. A nasx search scores one candidate at a time and caches each score by (arch, score key, seed,
input), so the score must not change as the study grows: re-ranking against the study's trials so far
would make a trial's value depend on when it ran, and would defeat the cache and TPE's model. Each
candidate is therefore ranked against a fixed **reference pool**: `pool` architectures drawn uniformly
(nasx.score.validate.sample_archs, seed `pool_seed`) from the search space of the search, each built with
the weights of the score seed and scored once per process (lazily, on the first candidate) by every proxy.
The candidate's rank is its rank in pool + {candidate} (N = pool + 1, ties averaged as rankdata does):

    rank_p(a) = 1 + #{r in pool: p(r) < p(a)} + #{r in pool: p(r) == p(a)} / 2

so the score lies in [len(proxies) * log(1 / N), 0], 0 for a candidate at least as good as the whole pool on
every proxy. The pool is drawn from the whole space, not only under the search's budget, so the score is a
function of the architecture alone and one cache entry serves every budget; the pool's size, seed and the
space's config hash go into the score cache key (`key`).

Proxies (default): MeCo, ZiCo, NASWOT, synflow (each as defined in its module) and the cost core's MAdds as
the complexity term (AZ-NAS's FLOPs). The activation count was tried in its place, since alone it ranks
NAS-Bench-Macro best of all scores, and measured (README "Which score to trust"): on 120 benchmark networks
it raised Kendall tau-b from +0.66 to +0.69, on the zoo's published ImageNet accuracies it dropped it
from +0.67 to +0.52. MAdds stays: the aggregate with it is the most robust score across both. AZ-NAS's own
expressivity / progressivity / trainability are nasx.score.azpass (scores az_expressivity, az_progressivity,
az_trainability; azpass.az_terms computes the three in one pass), not among the default proxies here. Any
score in nasx.score.proxies.SCORES, or a cost-core count (COST_PROXIES), can be listed instead. Non-finite
values rank naturally (-inf, a degenerate NASWOT kernel, below everything; nan as -inf). The cost-core terms
need the arch, so this score takes it (`needs_arch`)."""

from __future__ import annotations

import math

from nasx.errors import NasxError

PROXIES = ("meco", "zico", "naswot", "synflow", "madds")
COST_PROXIES = ("params", "madds", "mac", "activations")  # read from the cost core: nothing built for them
POOL = 20
POOL_SEED = 2024


def pool_rank(value: float, pool_values) -> float:
    """Mean rank of `value` in pool_values + [value], 1-based ascending (rankdata's 'average')."""
    v = -math.inf if math.isnan(value) else value
    vals = [-math.inf if math.isnan(r) else r for r in pool_values]
    return 1 + sum(r < v for r in vals) + sum(r == v for r in vals) / 2


def aggregate(values: dict, pool: list[dict]) -> float:
    """sum over proxies of log(rank / (len(pool) + 1)) of `values` against the pool's values."""
    n = len(pool) + 1
    return sum(math.log(pool_rank(values[p], [r[p] for r in pool]) / n) for p in values)


class AZNAS:
    """fn(module, input_shape, seed, arch=...) -> AZ-NAS aggregate against a fixed reference pool."""

    needs_arch = True
    uses_store = True  # called with store= (call_score): its proxies and pool go through the score cache

    def __init__(self, pool_archs, fns: dict, proxies=PROXIES, pool_key: str = ""):
        # fns: the registered scores (nasx.score.proxies.SCORES), passed in so this module imports no registry
        self.fns = fns
        unknown = [p for p in proxies if p not in fns and p not in COST_PROXIES]
        self.needs_module = any(p not in COST_PROXIES for p in proxies)
        if unknown or not proxies:
            raise NasxError(
                f"aznas: unknown proxy {', '.join(unknown) or '(none given)'}; use scores of "
                f"{', '.join([*fns, *COST_PROXIES])}"
            )
        if not pool_archs:
            raise NasxError("aznas needs a reference pool of at least one architecture")
        self.pool_archs = list(pool_archs)
        self.proxies = tuple(proxies)
        self.pool_key = pool_key
        self._pool_values: dict = {}  # (input, seed) -> [proxy values of each pool arch]

    @classmethod
    def from_space(cls, space, fns: dict, pool: int = POOL, pool_seed: int = POOL_SEED, proxies=PROXIES) -> AZNAS:
        from nasx.space.sample import sample_archs

        return cls(
            sample_archs(space, pool, seed=pool_seed),
            fns,
            proxies,
            pool_key=f"{space.name}@{space.config_hash}:pool{pool}:seed{pool_seed}",
        )

    @property
    def key(self) -> str:
        return f"{'+'.join(self.proxies)}:{self.pool_key}"

    def proxy_values(self, module, arch, seed: int, store=None) -> dict:
        """Each proxy's value for `arch`; a proxy that needs the network reads the score cache of `store`
        first, under the key a search by that proxy alone uses (`module`: built under `seed`, or None to
        build it only if some proxy is not cached)."""
        from nasx.build import build_seeded
        from nasx.cost import cost
        from nasx.score.cache import cached_score, score_key

        built = [module]

        def network():
            if built[0] is None:
                built[0] = build_seeded(arch, seed)
            return built[0]

        out = {}
        for p in self.proxies:
            if p in COST_PROXIES:
                out[p] = float(getattr(cost(arch), p))
            else:
                key = score_key(p, arch.input, seed=seed)
                # lock=False: the caller holds the host lock (cached_score, Objective.prepare_score)
                compute = lambda fn=self.fns[p]: fn(network(), arch.input, seed)  # noqa: E731 (binds this proxy)
                out[p] = cached_score(store, arch.content_hash(), key, compute, lock=False).value
        return out

    def pool_values(self, input_shape, seed: int, store=None, progress=None) -> list[dict]:
        """The pool's proxy values at `input_shape`: once per process, and through the score cache of `store`,
        so a storage pays for its pool once. `progress(done, total)` is called after each pool architecture."""
        import dataclasses

        key = (tuple(input_shape), seed)
        if key not in self._pool_values:
            rows = []
            for i, a in enumerate(self.pool_archs, 1):
                a = a if tuple(a.input) == key[0] else dataclasses.replace(a, input=key[0])
                rows.append(self.proxy_values(None, a, seed, store))  # weights as a search would score it with
                if progress is not None:
                    progress(i, len(self.pool_archs))
            self._pool_values[key] = rows
        return self._pool_values[key]

    def pool_cached(self, input_shape, seed: int, store) -> bool:
        """Whether the pool's values at `input_shape` are at hand: in this process, or all in `store`'s cache."""
        import dataclasses

        from nasx.score.cache import score_key

        if (tuple(input_shape), seed) in self._pool_values:
            return True
        if store is None:
            return False
        keys = [score_key(p, tuple(input_shape), seed=seed) for p in self.proxies if p not in COST_PROXIES]
        archs = [dataclasses.replace(a, input=tuple(input_shape)) for a in self.pool_archs]
        return all(store.get_score(a.content_hash(), k) is not None for a in archs for k in keys)

    def __call__(self, module, input_shape, seed: int = 0, arch=None, store=None) -> float:
        if arch is None:
            raise NasxError("aznas ranks the cost core's counts too: call it with arch=")
        if tuple(arch.input) != tuple(input_shape):
            raise NasxError(f"aznas: arch takes {tuple(arch.input)}, asked to score at {tuple(input_shape)}")
        return aggregate(self.proxy_values(module, arch, seed, store), self.pool_values(input_shape, seed, store))
