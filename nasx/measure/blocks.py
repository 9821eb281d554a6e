"""The block latency table: every distinct layer of a network, on its input shape, timed alone, once per device.

A layer is a top-level child of the built network: one entry of the arch's stem, layers or head (nasx.build
makes an `nn.Sequential` of exactly these, each the module of its op graph, nasx.arch.layer_graph). Its key is
its spec as the arch JSON writes it (nasx.layers.layer_to_dict) and its input shape, so two networks sharing a
block share the entry, whatever space or search they came from. The module is built from that graph under
nasx.build.WEIGHTS_SEED and timed by the harness that times whole networks (nasx.measure.timing.timed_batch:
the host lock, the thread count, subnormals flushed, the runtime, and drift correction with the calibration
workload run on the *network's* input against the same reference, so a layer's milliseconds are on its
network's scale; a network's missing layers share one calibration pair). The result is stored in the
storage's `nasx_block_latency` table (nasx.store.db) under the fingerprint of the Timer it was timed with, its
runtime, threads and batch: the table grows across searches and explorations, and an entry is never read
under another device, runtime, thread count or setting.

The sum of a network's layer times is not its latency (the whole network saves per-call overheads and runs
its layers back to back in warm caches); nasx.measure.block_model fits the correction."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nasx.arch import Arch, layer_graph
from nasx.build import WEIGHTS_SEED
from nasx.errors import NasxError
from nasx.layers import layer_to_dict
from nasx.measure.device import runtime_of
from nasx.measure.timing import timed_batch

# A layer is timed for LAYER_MIN_TIME_S (at least 10 calls after a LAYER_WARMUP_S warm-up), up to LAYER_MAX_TIME_S
# while its median moves: a layer runs in micro- to milliseconds, so 0.05 s holds tens to hundreds of calls. The
# layers a network lacks are timed back to back, up to LAYER_BATCH of them between one calibration pair
# (nasx.measure.timing.timed_batch): the pair (2 x 0.15 s) would otherwise cost more than the layer itself.
LAYER_WARMUP_S = 0.02
LAYER_MIN_TIME_S = 0.05
LAYER_MAX_TIME_S = 0.25
LAYER_BATCH = 16


@functools.lru_cache(maxsize=1 << 14)
def layer_key(layer, in_shape: tuple[int, ...]) -> str:
    """The canonical JSON of (layer spec, input shape): what a table entry is keyed by, and stored beside it."""
    return json.dumps({"layer": layer_to_dict(layer), "input": list(in_shape)}, sort_keys=True, separators=(",", ":"))


def layer_hash(layer, in_shape: tuple[int, ...]) -> str:
    return hashlib.sha256(layer_key(layer, tuple(in_shape)).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class LayerEntry:
    """One top-level layer of a network: where it sits (section, index: the built module's child
    f"{section}{index}"), its spec and its input shape (without the batch)."""

    section: str
    index: int
    layer: object
    in_shape: tuple[int, ...]

    @property
    def hash(self) -> str:
        return layer_hash(self.layer, self.in_shape)

    @property
    def key(self) -> dict:
        return json.loads(layer_key(self.layer, self.in_shape))


def arch_layers(arch: Arch) -> list[LayerEntry]:
    """The layers of `arch` in forward order, each with the input shape it runs on."""
    return [LayerEntry(section, i, layer, tuple(g.shapes[0])) for section, i, layer, g in arch.graphs()]


def layer_module(layer, in_shape, seed: int = WEIGHTS_SEED):
    """The torch module of one layer on `in_shape` (what nasx.build puts in the network), weights under `seed`."""
    import torch

    torch.manual_seed(seed)
    return layer_graph(layer, tuple(in_shape)).module()


@dataclass(frozen=True)
class LayerTimes:
    """A network's layers, timed alone: per layer in forward order (ms), and what it cost now."""

    ms: tuple[float, ...]
    timed_now: int  # distinct layers timed for this call (0: all from the table)
    seconds: float
    timing: dict = field(default_factory=dict)  # of `seconds`: calibration_s, lock_wait_s, export_s

    @property
    def total_ms(self) -> float:
        return float(sum(self.ms))

    @property
    def n_layers(self) -> int:
        return len(self.ms)


Progress = Callable[[int, int, LayerEntry, float], None]  # (i, n, entry, median ms) after each layer timed


class BlockTable:
    """The block latency table of one Timer (nasx.measure.cached.Timer): its storage, its fingerprint (device,
    threads, batch, input, runtime, drift correction) and its measurement settings. Layers are timed on demand
    and stored; medians already read are kept in memory."""

    def __init__(self, timer, *, max_time_s: float | None = None, warmup_s: float | None = None):
        self.timer, self.store, self.fp, self.fp_hash = timer, timer.store, timer.fp, timer.fp_hash
        self.key = (timer.fp_hash, runtime_of(timer.fp), int(timer.fp["threads"]), int(timer.fp["batch"]))
        self.input = tuple(timer.fp["input"])
        self.max_time_s = min(timer.max_time_s, LAYER_MAX_TIME_S) if max_time_s is None else max_time_s
        self.warmup_s = LAYER_WARMUP_S if warmup_s is None else warmup_s
        self._known: dict[str, float] = {}

    def check(self, arch: Arch) -> None:
        if tuple(arch.input) != self.input:
            raise NasxError(
                f"{arch.name or 'the architecture'} takes input {list(arch.input)}, but this block table is kept "
                f"for networks of input {list(self.input)} (fingerprint {self.fp_hash}): use a timer for its input"
            )

    def lookup(self, hashes: Iterable[str]) -> dict[str, float]:
        """The stored median (ms) of each layer hash found in the table under this fingerprint."""
        hashes = set(hashes)
        missing = hashes - set(self._known)
        if missing:
            self._known.update(self.store.get_block_latencies(self.key, missing))
        return {h: self._known[h] for h in hashes if h in self._known}

    def missing(self, archs: Iterable[Arch]) -> list[LayerEntry]:
        """The distinct layers of `archs` the table lacks, in first-seen order."""
        entries: dict[str, LayerEntry] = {}
        for arch in archs:
            self.check(arch)
            for e in arch_layers(arch):
                entries.setdefault(e.hash, e)
        known = self.lookup(entries)
        return [e for h, e in entries.items() if h not in known]

    def time_layers(self, entries: list[LayerEntry]) -> list[dict]:
        """Time `entries` alone (as a whole network is timed under this fingerprint: host lock, threads, runtime,
        drift correction), LAYER_BATCH at a time between one calibration pair, and store them; one latency dict
        per entry, its median the stored one."""
        out = []
        t = self.timer
        for i in range(0, len(entries), LAYER_BATCH):
            chunk = entries[i : i + LAYER_BATCH]
            lats = timed_batch(
                [layer_module(e.layer, e.in_shape) for e in chunk],
                [e.in_shape for e in chunk],
                self.input,
                self.store,
                self.fp,
                self.fp_hash,
                device=t.device,
                batch=t.batch,
                threads=t.threads,
                warmup_s=self.warmup_s,
                min_time_s=min(LAYER_MIN_TIME_S, self.max_time_s),
                max_time_s=self.max_time_s,
            )
            for entry, lat in zip(chunk, lats):
                self.store.put_block_latency(self.key, entry.hash, entry.key, self.fp, lat)
                # another worker may have stored it first: the stored one is what every reader sees
                self._known.pop(entry.hash, None)
            stored = self.lookup(e.hash for e in chunk)
            out += [{**lat, "median_ms": stored.get(e.hash, lat["median_ms"])} for e, lat in zip(chunk, lats)]
        return out

    def time_layer(self, entry: LayerEntry) -> dict:
        """Time one layer alone and store it (time_layers of one)."""
        return self.time_layers([entry])[0]

    def fill(self, archs: Iterable[Arch], progress: Progress | None = None) -> int:
        """Time every layer of `archs` the table lacks; returns how many were timed."""
        todo = self.missing(list(archs))
        for start in range(0, len(todo), LAYER_BATCH):
            chunk = todo[start : start + LAYER_BATCH]
            for i, (entry, lat) in enumerate(zip(chunk, self.time_layers(chunk)), start + 1):
                if progress is not None:
                    progress(i, len(todo), entry, lat["median_ms"])
        return len(todo)

    def layer_times(self, arch: Arch, time_missing: bool = True) -> LayerTimes:
        """Each layer of `arch` timed alone, from the table; the layers it lacks are timed now (or, without
        `time_missing`, a NasxError says how many are missing)."""
        t0 = time.perf_counter()
        entries = arch_layers(arch)
        self.check(arch)
        known = self.lookup(e.hash for e in entries)
        todo = {e.hash: e for e in entries if e.hash not in known}
        if todo and not time_missing:
            raise NasxError(
                f"the block table of fingerprint {self.fp_hash} lacks {len(todo)} of the {len(entries)} layers of "
                f"{arch.name or 'the architecture'}"
            )
        lats = self.time_layers(list(todo.values()))
        known = self.lookup(e.hash for e in entries)
        timing = {k: sum(lat.get(k) or 0.0 for lat in lats) for k in ("calibration_s", "lock_wait_s", "export_s")}
        return LayerTimes(tuple(known[e.hash] for e in entries), len(todo), time.perf_counter() - t0, timing)
