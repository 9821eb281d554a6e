"""A score as every part of nasx takes it (a search's trials, a report's reference models, validate-score): a
registered score function applied to the network built under WEIGHTS_SEED, through the storage's score cache
(nasx.score.cache)."""

from __future__ import annotations

from nasx.arch import Arch
from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.score.base import call_score, needs_module
from nasx.score.cache import CachedScore, cached_score, score_key
from nasx.score.proxies import get_score


class Scorer:
    """A score function (nasx.score.proxies.get_score) under its cache key, applied as a search applies it:
    to the network built under WEIGHTS_SEED, on the CPU, with that seed."""

    def __init__(self, name: str, fn=None):
        self.name = name
        self.fn = get_score(name) if fn is None else fn

    def key(self, input_shape) -> str:
        return score_key(self.name, input_shape, getattr(self.fn, "key", ""))

    def score(self, store, arch: Arch, module=None, arch_hash: str | None = None, lock: bool = True) -> CachedScore:
        """The score of `arch` (or of its already built `module`), through the score cache (`lock`: as
        cached_score). A score that builds nothing (a cost-core count, capacity, a table lookup) takes
        microseconds: it is computed, neither cached nor waiting for the host lock, which guards timings
        from the CPU load of building and running networks."""
        if not needs_module(self.fn):
            return cached_score(None, "", "", lambda: call_score(self.fn, None, arch, WEIGHTS_SEED), lock=False)

        def compute():
            network = (build_seeded(arch) if module is None else module).cpu()
            return call_score(self.fn, network, arch, WEIGHTS_SEED)

        return cached_score(store, arch_hash or arch.content_hash(), self.key(arch.input), compute, lock=lock)
