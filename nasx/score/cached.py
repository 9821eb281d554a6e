"""A score as every part of nasx takes it (a search's trials, a report's reference models, validate-score):
the storage's score cache first, keyed by (arch hash, score key); else computed and stored. The score of a
network is a function of (arch, score, weights seed, input) and, for scores that train, of the data set and
the training settings, which is what the key names."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nasx.arch import Arch
from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.measure.latency import host_lock
from nasx.score.proxies import call_score, get_score, needs_module


def score_key(score: str, input_shape, extra: str = "", seed: int = WEIGHTS_SEED) -> str:
    """Score cache key: the score's name, the weights seed, the input and `extra` (a training score's `key`:
    its data set and training settings)."""
    return f"{score}:seed{seed}:{'x'.join(map(str, input_shape))}" + (f":{extra}" if extra else "")


@dataclass(frozen=True)
class CachedScore:
    value: float
    seconds: float  # computing it, now or when it was cached
    cached: bool
    details: dict | None = None  # what the score function attached (a training run's record); None when cached


def cached_score(store, arch_hash: str, key: str, compute: Callable[[], float], *, lock: bool = True) -> CachedScore:
    """The cached score of (arch_hash, key), else compute() and store it (no cache when `store` is None).
    With `lock`, computing holds the host lock shared: never while another process on this host is timing."""
    hit = store.get_score(arch_hash, key) if store is not None else None
    if hit is not None:
        return CachedScore(hit[0], hit[1], True)
    t = time.perf_counter()
    if lock:
        with host_lock(shared=True):
            raw = compute()
    else:
        raw = compute()
    seconds = time.perf_counter() - t
    value = float(raw)
    if store is not None:
        store.put_score(arch_hash, key, value, seconds)
    return CachedScore(value, seconds, False, getattr(raw, "details", None))


class Scorer:
    """A score function (nasx.score.proxies.get_score) under its cache key, applied as a search applies it:
    to the network built under WEIGHTS_SEED, on the CPU, with that seed."""

    def __init__(self, name: str, fn=None, space=None):
        self.name = name
        # space: where a space score (aznas) draws its reference pool from
        self.fn = get_score(name, space=space) if fn is None else fn

    def key(self, input_shape) -> str:
        return score_key(self.name, input_shape, getattr(self.fn, "key", ""))

    def score(self, store, arch: Arch, module=None, arch_hash: str | None = None, lock: bool = True) -> CachedScore:
        """The score of `arch` (or of its already built `module`), through the score cache (`lock`: as
        cached_score)."""

        def compute():
            if not needs_module(self.fn):  # a cost-core count or a table lookup: nothing to build
                return call_score(self.fn, None, arch, WEIGHTS_SEED, store)
            network = (build_seeded(arch) if module is None else module).cpu()
            return call_score(self.fn, network, arch, WEIGHTS_SEED, store)

        return cached_score(store, arch_hash or arch.content_hash(), self.key(arch.input), compute, lock=lock)
