"""The storage's score cache as every score reads it: keyed by (arch hash, score key), computed and stored on a
miss. The score of a network is a function of (arch, score, weights seed, input) and, for scores that train, of
the data set and the training settings, which is what the key names."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nasx.build import WEIGHTS_SEED
from nasx.measure.device import host_lock


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
