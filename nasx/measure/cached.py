"""A latency as every part of nasx takes it (a search's trials, the explorer's subset, a report's reference
models): the storage's latency cache first, keyed by (arch hash, device fingerprint); else the network is built
(weights under nasx.build.WEIGHTS_SEED) unless given, timed (nasx.measure.timing) and the result stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nasx.arch import Arch
from nasx.build import build_seeded
from nasx.measure.device import fingerprint, fingerprint_hash
from nasx.measure.latency import DEFAULT_MEASURE_TIME_S
from nasx.measure.timing import timed

# A candidate's one whole timing in a search is a first look: it decides whether the candidate can join the front,
# and the front is then re-timed side by side at the end (nasx.search.retime), so a short warm-up and minimum window
# serve it (the median still runs until it settles, up to --measure-time). scripts/bench_latency.py --windows
# measures it against the longer window used before (0.25 s warm-up, 0.5 s minimum).
FIRST_LOOK = {"warmup_s": 0.1, "min_time_s": 0.2}


@dataclass(frozen=True)
class Measured:
    latency: dict  # the dict the cache stores (median_ms, iqr_ms, ..., fingerprint)
    cached: bool  # read from the cache: nothing was timed
    seconds: float  # spent timing and storing it now (about 0 when cached)


class Timer:
    """Cached timing on one device fingerprint, with fixed measurement settings."""

    def __init__(
        self,
        store,
        fp: dict,
        *,
        device: str = "cpu",
        batch: int = 1,
        threads: int | None = None,
        max_time_s: float = DEFAULT_MEASURE_TIME_S,
        warmup_s: float = FIRST_LOOK["warmup_s"],
        min_time_s: float = FIRST_LOOK["min_time_s"],
    ):
        self.store, self.fp, self.fp_hash = store, fp, fingerprint_hash(fp)
        self.device, self.batch, self.threads = device, batch, threads
        self.max_time_s, self.warmup_s, self.min_time_s = max_time_s, warmup_s, min_time_s

    @classmethod
    def here(
        cls,
        store,
        input_shape,
        *,
        device: str = "cpu",
        threads: int | None = None,
        batch: int = 1,
        drift_correction: bool = True,
        runtime: str = "torch",
        max_time_s: float = DEFAULT_MEASURE_TIME_S,
        warmup_s: float = FIRST_LOOK["warmup_s"],
        min_time_s: float = FIRST_LOOK["min_time_s"],
    ) -> Timer:
        """A timer on this machine's fingerprint for these settings (runtime: nasx.measure.device.RUNTIMES)."""
        fp = fingerprint(device, threads, batch, input_shape, drift_corrected=drift_correction, runtime=runtime)
        windows = {"max_time_s": max_time_s, "warmup_s": warmup_s, "min_time_s": min_time_s}
        return cls(store, fp, device=device, batch=batch, threads=threads, **windows)

    def is_cached(self, arch_hash: str) -> bool:
        return self.store.get_latency(arch_hash, self.fp_hash) is not None

    def time_now(self, arch: Arch, module=None) -> dict:
        """`arch` (or its built `module`) timed whole now under this timer's settings, the cache neither read nor
        written: the latency dict `measure` stores."""
        return timed(
            build_seeded(arch) if module is None else module,
            arch.input,
            self.store,
            self.fp,
            self.fp_hash,
            device=self.device,
            batch=self.batch,
            threads=self.threads,
            max_time_s=self.max_time_s,
            warmup_s=self.warmup_s,
            min_time_s=self.min_time_s,
        )

    def measure(self, arch: Arch, module=None, arch_hash: str | None = None) -> Measured:
        """The latency of `arch` (or of its already built `module`), from the cache or timed now and stored."""
        arch_hash = arch_hash or arch.content_hash()
        cached = self.store.get_latency(arch_hash, self.fp_hash)
        t = time.perf_counter()
        if cached is not None:
            return Measured(cached, True, time.perf_counter() - t)
        lat = self.time_now(arch, module)
        self.store.put_latency(arch_hash, self.fp_hash, self.fp, lat)
        # another process timing the same arch at the same moment may have stored first: its number is the arch's,
        # so every trial of one arch carries one latency (the front lists an arch once, by that number)
        lat = self.store.get_latency(arch_hash, self.fp_hash) or lat
        return Measured(lat, False, time.perf_counter() - t)
