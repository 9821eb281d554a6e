"""Latency measured for real: eval mode, inference mode, warm-up, repeats until the median is stable
(or a time cap), median and IQR, threads set explicitly, CUDA timed with events after synchronizing.

Every measurement carries a device fingerprint; workers on one host serialise measurements through a
host-wide file lock so they never time each other's noise (both in nasx.measure.device).

Drift correction: a shared machine changes speed for seconds to minutes at a time (other tenants, host
scheduling; on this project's 2-core VM one network measured 18 ms and 35 ms half an hour apart). Such a
slow spell slows every workload alike, so a fixed calibration workload timed right before and right
after the measurement, inside the same lock, sees it too: `drift_corrected` rescales the measurement by
reference / calibration, where the reference is the first calibration stored for the device fingerprint
in a storage (nasx.measure.timing). The correction is trusted only when the calibrations before and after
agree (within CALIBRATION_AGREEMENT): a burst shorter than the measurement that hits one calibration
window but not the network would otherwise scale a normal measurement down (seen here: 11.0 ms before,
6.7 ms after, the network 25% too fast); such a measurement is taken again. What remains is each
network's own noise (scripts/bench_latency.py --drift measures both side by side)."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import statistics
import time
import weakref
from dataclasses import asdict, dataclass

from nasx.arch import zoo_arch
from nasx.build import build_seeded
from nasx.errors import NasxError
from nasx.measure.device import (
    CALIBRATION_MODEL,
    check_runtime,
    default_threads,
    fingerprint,
    flushed_denormals,
    host_lock,
    resolve_device,
    torch_threads,
)

DEFAULT_MEASURE_TIME_S = 2.0  # time cap of one latency measurement (search, report references)
CALIBRATION_S = 0.15  # timed before and after: long enough for ~10 calls at 224x224, short beside the 0.5-2 s
# before and after within 10% of each other, or the speed changed during the measurement: take it again (up to
# CALIBRATION_ATTEMPTS in all, then the attempt whose calibrations agreed best). Steady runs here: within 5%.
CALIBRATION_AGREEMENT = 0.10
CALIBRATION_ATTEMPTS = 3
# networks timed side by side (measure_interleaved, the end's re-timing of a front) share a calibration pair when
# they take under this together: the machine's speed drifts over seconds to minutes, and a calibration after
# each ~0.3 s member cost ~40% of the re-timing
INTERLEAVED_CALIBRATION_S = 1.0


def check_measure_time(seconds: float | None) -> None:
    """--measure-time, as every command that times takes it: positive seconds (None: the command's default)."""
    if seconds is not None and seconds <= 0:
        raise NasxError(f"--measure-time must be positive seconds, got {seconds}")


@dataclass(frozen=True)
class Latency:
    median_ms: float
    iqr_ms: float
    mean_ms: float
    min_ms: float
    repeats: int
    stable: bool  # False when the time cap ended the run before the median settled
    fingerprint: dict
    calibration_ms: float | None = None  # the calibration workload's median around this measurement: the mean
    calibration_before_ms: float | None = None  # of these two
    calibration_after_ms: float | None = None
    runtime: str = "torch"  # torch (eager) or onnxruntime
    export_s: float | None = None  # onnxruntime: seconds the ONNX export took (once per module; not in the latency)
    calibration_s: float | None = None  # seconds spent timing the calibration workload around this measurement
    lock_wait_s: float = 0.0  # seconds waited for the host lock (another process was timing)

    def as_dict(self) -> dict:
        return asdict(self)


def calibration_workload(input_shape):
    """The calibration network (CALIBRATION_MODEL at `input_shape`, seeded weights), built once per shape."""
    return _calibration_workload(tuple(input_shape))


@functools.lru_cache(maxsize=4)
def _calibration_workload(input_shape: tuple):
    arch = zoo_arch(CALIBRATION_MODEL)
    if tuple(arch.input) != input_shape:
        arch = dataclasses.replace(arch, input=input_shape)
    return build_seeded(arch).eval()


def calibration_disagreement(lat: dict) -> float:
    """|after - before| / min(before, after) of a measurement's two calibrations (0 without them)."""
    before, after = lat.get("calibration_before_ms"), lat.get("calibration_after_ms")
    if before is None or after is None:
        return 0.0
    return abs(after - before) / min(before, after)


def drift_corrected(lat: dict, reference_ms: float) -> dict:
    """A measurement rescaled to the machine speed at which the calibration workload took `reference_ms`:
    every time statistic x reference / calibration. Keeps the raw median and the drift (calibration /
    reference: 1.3 means the machine ran 30% slow)."""
    factor = reference_ms / lat["calibration_ms"]
    out = {**lat, "raw_median_ms": lat["median_ms"], "drift": 1 / factor, "reference_ms": reference_ms}
    for key in ("median_ms", "iqr_ms", "mean_ms", "min_ms"):
        out[key] = lat[key] * factor
    return out


def _summary(samples: list[float]) -> dict:
    """The statistics every measurement reports of its timed calls, in milliseconds."""
    stats = (statistics.median(samples), _iqr(samples), statistics.fmean(samples), min(samples))
    return {**dict(zip(("median_ms", "iqr_ms", "mean_ms", "min_ms"), stats)), "repeats": len(samples)}


def _pair(before: float, after: float) -> dict:
    """A measurement's calibrations, and their mean that drift_corrected divides by."""
    return {"calibration_before_ms": before, "calibration_after_ms": after, "calibration_ms": (before + after) / 2}


def _iqr(samples: list[float]) -> float:
    if len(samples) < 4:
        return max(samples) - min(samples)
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[2] - q[0]


def ort_model(module, input_shape, batch: int, threads: int):
    """`module` exported to ONNX and loaded into a timing session once per (module, shape, batch, threads): the
    retries of a drift-corrected measurement and the calibration workload are never exported twice."""
    from nasx.measure.onnx import OrtModel

    if isinstance(module, OrtModel):
        return module
    key = (tuple(input_shape), batch, threads)
    per_module = _ORT_MODELS.setdefault(module, {})
    if key not in per_module:
        per_module[key] = OrtModel(module, input_shape, batch, threads)
    return per_module[key]


_ORT_MODELS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


class _Timer:
    """Forward calls of modules under one set of measurement settings: `call(prepared)` runs one forward on
    the fixed random input and returns its time in ms (CUDA timed with events, MPS synchronised)."""

    def __init__(
        self,
        input_shape,
        device: str,
        batch: int,
        threads: int,
        dtype: str,
        channels_last: bool,
        runtime: str,
        seed: int,
        calibration_shape=None,
    ):
        import torch

        if threads < 1 or batch < 1:
            raise NasxError(f"threads ({threads}) and batch ({batch}) must be positive")
        check_runtime(runtime, device)
        self.dev = resolve_device(device)
        self.torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
        if self.torch_dtype is None:
            raise NasxError(f"unknown dtype {dtype!r}: use float32, float16 or bfloat16")
        if runtime == "onnxruntime" and dtype != "float32":
            raise NasxError(f"--runtime onnxruntime times float32 networks, not {dtype}")
        self.input_shape, self.batch, self.threads, self.runtime = tuple(input_shape), batch, threads, runtime
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.seed = seed
        self.x = self._input(self.input_shape)
        # the calibration workload runs on its own input when the timed module's differs (a layer of a network:
        # the calibration stays the network's, so a layer's time is on the scale of its network's reference)
        self.calibration_shape = tuple(calibration_shape or input_shape)
        same = self.calibration_shape == self.input_shape
        self.x_calibration = self.x if same else self._input(self.calibration_shape)
        self.cuda = self.dev.type == "cuda"
        self.lock_wait_s = 0.0

    def _input(self, shape):
        """The fixed random input (batch, *shape) under `seed`, as the runtime takes it."""
        import torch

        x = torch.randn((self.batch, *shape), generator=torch.Generator().manual_seed(self.seed))
        if self.runtime == "onnxruntime":
            return x.numpy()
        fmt = self.memory_format if x.dim() == 4 else torch.preserve_format  # a layer's input may be (batch, C)
        return x.to(self.dev, self.torch_dtype, memory_format=fmt)

    def prepare(self, module, calibration: bool = False, shape=None):
        """In eval mode on the device (torch), or exported into an ONNX Runtime session (onnxruntime) for
        `shape` (default: the calibration's or the timed input's)."""
        if self.runtime == "onnxruntime":
            module.eval()
            shape = shape or (self.calibration_shape if calibration else self.input_shape)
            return ort_model(module, shape, self.batch, self.threads)
        return module.eval().to(self.dev, self.torch_dtype, memory_format=self.memory_format)

    def call(self, m, x=None) -> float:
        import torch

        x = self.x if x is None else x
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            m(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        t0 = time.perf_counter()
        m(x)
        if self.dev.type == "mps":
            torch.mps.synchronize()
        return (time.perf_counter() - t0) * 1e3

    @contextlib.contextmanager
    def settings(self, lock: bool = True):
        """The host lock, torch's threads, flushed subnormals and inference mode, for one timed stretch."""
        import torch

        with contextlib.ExitStack() as stack:
            t0 = time.perf_counter()
            if lock:
                stack.enter_context(host_lock())
            self.lock_wait_s = time.perf_counter() - t0
            stack.enter_context(torch_threads(self.threads))
            stack.enter_context(flushed_denormals())
            stack.enter_context(torch.inference_mode())
            if self.cuda:
                torch.cuda.synchronize()
            yield

    def calibration_median(self, calibration) -> float:
        x = self.x_calibration
        for _ in range(3):  # its caches and kernels back in place after the other network ran
            self.call(calibration, x)
        samples, end = [], time.perf_counter() + CALIBRATION_S
        while len(samples) < 3 or time.perf_counter() < end:
            samples.append(self.call(calibration, x))
        return statistics.median(samples)

    def samples(
        self,
        m,
        warmup_s: float,
        min_repeats: int,
        max_repeats: int,
        min_time_s: float,
        max_time_s: float,
        rel_tol: float,
        x=None,
    ) -> tuple[list[float], bool]:
        """Warm-up, then rounds of `min_repeats` calls until the median settles (see measure_latency); on
        input `x` when given (a layer's own input), else the timer's."""
        t_end = time.perf_counter() + warmup_s
        n = 0
        while n < 5 or time.perf_counter() < t_end:
            self.call(m, x)
            n += 1
        samples: list[float] = []
        start = time.perf_counter()
        deadline, earliest = start + max_time_s, start + min(min_time_s, max_time_s)  # the cap wins
        prev, stable = None, False
        while len(samples) < max_repeats:
            samples.extend(self.call(m, x) for _ in range(min_repeats))
            med = statistics.median(samples)
            settled = prev is not None and abs(med - prev) <= rel_tol * med
            prev = med
            if settled and time.perf_counter() >= earliest:
                stable = True
                break
            if time.perf_counter() > deadline:
                break
        return samples, stable


def measure_latency(
    module,
    input_shape=(3, 224, 224),
    *,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    dtype: str = "float32",
    channels_last: bool = False,
    warmup_s: float = 0.25,
    min_repeats: int = 10,
    max_repeats: int = 500,
    min_time_s: float = 0.5,
    max_time_s: float = DEFAULT_MEASURE_TIME_S,
    rel_tol: float = 0.02,
    lock: bool = True,
    seed: int = 0,
    calibration=None,
    runtime: str = "torch",
    calibration_shape=None,
    calibration_before_ms: float | None = None,
) -> Latency:
    """Median forward latency of `module` on a random (batch, *input_shape) input, in milliseconds.

    Repeats in rounds of `min_repeats`; once at least `min_time_s` has been timed (a shorter window is at
    the mercy of one burst of noise on a shared machine), stops when two successive medians agree within
    `rel_tol`, or at `max_time_s` / `max_repeats`. The module is put in eval mode and moved to the device.
    With `calibration` (a module taking the same input), that module is timed for CALIBRATION_S right
    before and right after, under the same lock and settings; `calibration_ms` is the mean of the two
    medians, both kept (see drift_corrected and nasx.measure.timing). `calibration_shape`: the calibration
    module's own input shape when it differs from `input_shape` (a layer timed alone, calibrated as its network).
    `calibration_before_ms`: a calibration taken moments ago (the previous measurement's after) standing for the
    one before, which is then not timed.

    runtime "onnxruntime": the module (and the calibration workload) is exported to ONNX once and timed in
    an ONNX Runtime session with explicit options (nasx.measure.onnx); `export_s` says what the export cost,
    outside the timed window."""
    threads = threads or default_threads()
    timer = _Timer(input_shape, device, batch, threads, dtype, channels_last, runtime, seed, calibration_shape)
    fp = fingerprint(device, threads, batch, input_shape, dtype, channels_last, runtime=runtime)
    m = timer.prepare(module)
    export_s = getattr(m, "export_s", None)
    if calibration is not None:
        calibration = timer.prepare(calibration, calibration=True)
    with timer.settings(lock):
        t0 = time.perf_counter()
        calibration_before = calibration_before_ms
        if calibration is not None and calibration_before is None:
            calibration_before = timer.calibration_median(calibration)
        t1 = time.perf_counter()
        samples, stable = timer.samples(m, warmup_s, min_repeats, max_repeats, min_time_s, max_time_s, rel_tol)
        t2 = time.perf_counter()
        calibration_after = timer.calibration_median(calibration) if calibration is not None else None
        calibration_s = (t1 - t0) + (time.perf_counter() - t2) if calibration is not None else None
    pair = _pair(calibration_before, calibration_after) if calibration is not None else {}
    return Latency(
        **_summary(samples),
        stable=stable,
        fingerprint=fp,
        **pair,
        runtime=runtime,
        export_s=export_s,
        calibration_s=calibration_s,
        lock_wait_s=timer.lock_wait_s,
    )


def measure_batch(
    modules: list,
    input_shapes: list,
    calibration_shape,
    *,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    runtime: str = "torch",
    calibration=None,
    warmup_s: float = 0.02,
    min_time_s: float = 0.05,
    max_time_s: float = 0.25,
    rel_tol: float = 0.02,
    seed: int = 0,
) -> tuple[list[dict], dict]:
    """Small modules (the layers of a network), each on its own input, timed back to back under one host lock
    between one calibration pair (on `calibration_shape`, the network's input): the pair's cost, 2 x
    CALIBRATION_S, is paid once for the batch instead of once per module, which is most of what timing a
    millisecond layer alone costs. Returns one dict per module (median_ms, iqr_ms, mean_ms, min_ms, repeats,
    stable) and one for the batch (calibration_before_ms, calibration_after_ms, calibration_ms, calibration_s,
    lock_wait_s, export_s)."""
    threads = threads or default_threads()
    timer = _Timer(calibration_shape, device, batch, threads, "float32", False, runtime, seed)
    t0 = time.perf_counter()
    prepared = [timer.prepare(m, shape=tuple(s)) for m, s in zip(modules, input_shapes)]
    inputs = [timer._input(tuple(s)) for s in input_shapes]
    export_s = time.perf_counter() - t0 if runtime == "onnxruntime" else None
    if calibration is not None:
        calibration = timer.prepare(calibration, calibration=True)
    out = []
    with timer.settings():
        c0 = time.perf_counter()
        before = timer.calibration_median(calibration) if calibration is not None else None
        calibration_s = time.perf_counter() - c0
        for m, x in zip(prepared, inputs):
            samples, stable = timer.samples(m, warmup_s, 10, 500, min_time_s, max_time_s, rel_tol, x)
            out.append({**_summary(samples), "stable": stable})
        c1 = time.perf_counter()
        after = timer.calibration_median(calibration) if calibration is not None else None
        calibration_s += time.perf_counter() - c1
    shared: dict = {"lock_wait_s": timer.lock_wait_s, "export_s": export_s, "runtime": runtime}
    if calibration is not None:
        shared.update(_pair(before, after), calibration_s=calibration_s)
    return out, shared


def measure_interleaved(
    modules: list,
    input_shape,
    *,
    rounds: int = 3,
    time_s: float = 0.3,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    runtime: str = "torch",
    calibration=None,
    warmup_s: float = 0.05,
    seed: int = 0,
    calibrate_every_s: float = INTERLEAVED_CALIBRATION_S,
) -> list[list[dict]]:
    """Several networks timed side by side: `rounds` rounds, each timing every module once for about `time_s`
    (round-robin, under one host lock per round), so a slow spell hits them alike instead of one of them.
    With `calibration`, the calibration workload is timed between consecutive modules once `calibrate_every_s`
    of timing has passed since the last calibration (and at the end of each round); each measurement gets the
    calibrations that bracket it (calibration_ms their mean, for drift_corrected).
    Returns, per module, one dict per round: median_ms, iqr_ms, mean_ms, min_ms, repeats and the calibrations."""
    threads = threads or default_threads()
    timer = _Timer(input_shape, device, batch, threads, "float32", False, runtime, seed)
    prepared = [timer.prepare(m) for m in modules]
    if calibration is not None:
        calibration = timer.prepare(calibration)
    out: list[list[dict]] = [[] for _ in modules]
    for _ in range(rounds):
        with timer.settings():
            before = timer.calibration_median(calibration) if calibration is not None else None
            since = time.perf_counter()
            bracketed: list[tuple[int, dict]] = []  # measured since the last calibration
            for i, m in enumerate(prepared):
                samples, _ = timer.samples(m, warmup_s, 10, 500, time_s, time_s, 0.02)
                bracketed.append((i, _summary(samples)))
                last = i == len(prepared) - 1
                if calibration is not None and not last and time.perf_counter() - since < calibrate_every_s:
                    continue
                after = timer.calibration_median(calibration) if calibration is not None else None
                for j, rec in bracketed:
                    out[j].append({**rec, **_pair(before, after)} if calibration is not None else rec)
                bracketed, before, since = [], after, time.perf_counter()
    return out
