"""Latency measured for real: eval mode, inference mode, warm-up, repeats until the median is stable
(or a time cap), median and IQR, threads set explicitly, CUDA timed with events after synchronizing.

Every measurement carries a device fingerprint; workers on one host serialise measurements through a
host-wide file lock so they never time each other's noise.

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
import fcntl
import functools
import hashlib
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass

from nasx import zoo
from nasx.build import build_seeded
from nasx.errors import NasxError

LOCK_PATH = os.path.join(tempfile.gettempdir(), "nasx-measure.lock")
DEFAULT_MEASURE_TIME_S = 2.0  # time cap of one latency measurement (search, report references)
CALIBRATION_MODEL = "mobilenet_v3_small"  # zoo network timed around every drift-corrected measurement
CALIBRATION_S = 0.15  # timed before and after: long enough for ~10 calls at 224x224, short beside the 0.5-2 s
# before and after within 10% of each other, or the speed changed during the measurement: take it again (up to
# CALIBRATION_ATTEMPTS in all, then the attempt whose calibrations agreed best). Steady runs here: within 5%.
CALIBRATION_AGREEMENT = 0.10
CALIBRATION_ATTEMPTS = 3


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

    def as_dict(self) -> dict:
        return asdict(self)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def default_threads() -> int:
    """Physical-core guess: all usable cores (torch.utils.benchmark would default to 1)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def resolve_device(name: str):
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise NasxError(
                "--device cuda: no CUDA device is available here (torch.cuda.is_available() is False); use --device cpu"
            )
        return torch.device("cuda")
    if name == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise NasxError("--device mps: Apple MPS is not available here; use --device cpu")
        return torch.device("mps")
    raise NasxError(f"unknown device {name!r}: use cpu, cuda or mps")


def fingerprint(
    device: str = "cpu",
    threads: int | None = None,
    batch: int = 1,
    input_shape=(3, 224, 224),
    dtype: str = "float32",
    channels_last: bool = False,
    drift_corrected: bool = False,
) -> dict:
    """What a latency number depends on besides the architecture (drift-corrected numbers are on the scale
    of their storage's calibration reference, so they never share a cache entry with raw ones)."""
    import torch

    if device == "cuda":
        hw = torch.cuda.get_device_name()
    elif device == "mps":
        hw = f"Apple MPS ({platform.machine()})"
    else:
        hw = cpu_model()
    fp = {
        "device": device,
        "hardware": hw,
        "threads": threads or default_threads(),
        "torch": torch.__version__,
        "dtype": dtype,
        "batch": batch,
        "input": list(input_shape),
        "channels_last": channels_last,
        "flush_denormal": True,
    }
    if drift_corrected:  # only then: raw fingerprints (and the caches keyed by them) stay as they were
        fp["calibration"] = CALIBRATION_MODEL
    return fp


def calibration_workload(input_shape):
    """The calibration network (CALIBRATION_MODEL at `input_shape`, seeded weights), built once per shape."""
    return _calibration_workload(tuple(input_shape))


@functools.lru_cache(maxsize=4)
def _calibration_workload(input_shape: tuple):
    arch = zoo.get(CALIBRATION_MODEL)
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


def fingerprint_hash(fp: dict) -> str:
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


@contextlib.contextmanager
def host_lock(path: str = LOCK_PATH, shared: bool = False):
    """Host-wide lock over every nasx process (released by the kernel if the process dies).

    Measuring takes it exclusively; heavy compute that would disturb a measurement (scoring) takes it
    shared, so scorers run in parallel with each other but never while a latency is being timed."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def flushed_denormals():
    """Subnormal floats are flushed to zero while timing. An untrained network's random weights can drive
    activations into subnormals, which x86 handles ~100x slower per operation; trained networks and
    inference engines (FTZ/DAZ) do not, and without flushing the timing depends on the input's values
    (seen here: one architecture at 37 ms or 31 ms by input alone, 20 ms with flushing)."""
    import torch

    before = flush_denormal_enabled()  # torch.set_flush_denormal returns whether the CPU supports it, not the old state
    supported = torch.set_flush_denormal(True)
    try:
        yield
    finally:
        if supported:
            torch.set_flush_denormal(before)  # the caller's setting, on or off


def flush_denormal_enabled() -> bool:
    """Whether this thread flushes subnormals to zero now. torch has a setter only (set_flush_denormal), so compute:
    the smallest positive float32 subnormal (bit pattern 1) times 1 is 0 under flush-to-zero / denormals-are-zero."""
    import torch

    tiny = torch.tensor([1], dtype=torch.int32).view(torch.float32)
    return (tiny * 1.0).item() == 0.0


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _iqr(samples: list[float]) -> float:
    if len(samples) < 4:
        return max(samples) - min(samples)
    q = statistics.quantiles(samples, n=4, method="inclusive")
    return q[2] - q[0]


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
) -> Latency:
    """Median forward latency of `module` on a random (batch, *input_shape) input, in milliseconds.

    Repeats in rounds of `min_repeats`; once at least `min_time_s` has been timed (a shorter window is at
    the mercy of one burst of noise on a shared machine), stops when two successive medians agree within
    `rel_tol`, or at `max_time_s` / `max_repeats`. The module is put in eval mode and moved to the device.
    With `calibration` (a module taking the same input), that module is timed for CALIBRATION_S right
    before and right after, under the same lock and settings; `calibration_ms` is the mean of the two
    medians, both kept (see drift_corrected and nasx.measure.timing)."""
    import torch

    threads = threads or default_threads()
    if threads < 1 or batch < 1:
        raise NasxError(f"threads ({threads}) and batch ({batch}) must be positive")
    dev = resolve_device(device)
    torch_dtype = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
    if torch_dtype is None:
        raise NasxError(f"unknown dtype {dtype!r}: use float32, float16 or bfloat16")
    fp = fingerprint(device, threads, batch, input_shape, dtype, channels_last)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    module = module.eval().to(dev, torch_dtype, memory_format=memory_format)
    if calibration is not None:
        calibration = calibration.eval().to(dev, torch_dtype, memory_format=memory_format)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *input_shape), generator=gen).to(dev, torch_dtype, memory_format=memory_format)
    cuda = dev.type == "cuda"

    def timed_call(m=module) -> float:
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            m(x)
            end.record()
            end.synchronize()
            return start.elapsed_time(end)
        if dev.type == "mps":
            t0 = time.perf_counter()
            m(x)
            torch.mps.synchronize()
            return (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        m(x)
        return (time.perf_counter() - t0) * 1e3

    def calibration_median() -> float:
        for _ in range(3):  # its caches and kernels back in place after the other network ran
            timed_call(calibration)
        samples, end = [], time.perf_counter() + CALIBRATION_S
        while len(samples) < 3 or time.perf_counter() < end:
            samples.append(timed_call(calibration))
        return statistics.median(samples)

    with contextlib.ExitStack() as stack:
        if lock:
            stack.enter_context(host_lock())
        stack.enter_context(torch_threads(threads))
        stack.enter_context(flushed_denormals())
        stack.enter_context(torch.inference_mode())
        if cuda:
            torch.cuda.synchronize()
        calibration_before = calibration_median() if calibration is not None else None
        t_end = time.perf_counter() + warmup_s
        n = 0
        while n < 5 or time.perf_counter() < t_end:
            timed_call()
            n += 1
        samples: list[float] = []
        start = time.perf_counter()
        deadline, earliest = start + max_time_s, start + min(min_time_s, max_time_s)  # the cap wins
        prev, stable = None, False
        while len(samples) < max_repeats:
            samples.extend(timed_call() for _ in range(min_repeats))
            med = statistics.median(samples)
            settled = prev is not None and abs(med - prev) <= rel_tol * med
            prev = med
            if settled and time.perf_counter() >= earliest:
                stable = True
                break
            if time.perf_counter() > deadline:
                break
        calibration_after = calibration_median() if calibration is not None else None
    calibration_ms = (calibration_before + calibration_after) / 2 if calibration is not None else None
    return Latency(
        statistics.median(samples),
        _iqr(samples),
        statistics.fmean(samples),
        min(samples),
        len(samples),
        stable,
        fp,
        calibration_ms,
        calibration_before,
        calibration_after,
    )
