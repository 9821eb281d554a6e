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
import weakref
from dataclasses import asdict, dataclass

from nasx.arch import zoo_arch
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
RUNTIMES = ("torch", "onnxruntime")  # torch: eager; onnxruntime: exported once, timed in an InferenceSession


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
    runtime: str = "torch",
) -> dict:
    """What a latency number depends on besides the architecture (drift-corrected numbers are on the scale
    of their storage's calibration reference, so they never share a cache entry with raw ones; numbers timed
    in ONNX Runtime carry its version and session options, so they never share one with eager ones, and their
    calibrations are timed in ONNX Runtime too)."""
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
    if runtime != "torch":  # eager fingerprints stay as they were, so their caches and references still count
        check_runtime(runtime, device)
        import onnxruntime

        from nasx.measure.onnx import timing_options

        fp["runtime"] = {"name": runtime, "version": onnxruntime.__version__, **timing_options(fp["threads"])}
    return fp


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


def check_runtime(runtime: str, device: str = "cpu") -> None:
    """One clear NasxError for a runtime nasx cannot time with here."""
    if runtime not in RUNTIMES:
        raise NasxError(f"unknown runtime {runtime!r}: use {' or '.join(RUNTIMES)}")
    if runtime == "onnxruntime":
        if device != "cpu":
            raise NasxError(
                f"--runtime onnxruntime times on the CPU (CPUExecutionProvider), not {device}; use "
                f"--device cpu or --runtime torch"
            )
        from nasx.measure.onnx import require_onnxruntime

        require_onnxruntime()


def runtime_of(fp: dict) -> str:
    """The runtime a fingerprint's latencies were timed in (fingerprints without one: torch eager)."""
    return fp.get("runtime", {}).get("name", "torch")


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
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn((batch, *input_shape), generator=gen)
        if runtime == "onnxruntime":
            self.x = x.numpy()
        else:
            self.x = x.to(self.dev, self.torch_dtype, memory_format=self.memory_format)
        self.cuda = self.dev.type == "cuda"
        self.lock_wait_s = 0.0

    def prepare(self, module):
        """In eval mode on the device (torch), or exported into an ONNX Runtime session (onnxruntime)."""
        if self.runtime == "onnxruntime":
            module.eval()
            return ort_model(module, self.input_shape, self.batch, self.threads)
        return module.eval().to(self.dev, self.torch_dtype, memory_format=self.memory_format)

    def call(self, m) -> float:
        import torch

        x = self.x
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
        for _ in range(3):  # its caches and kernels back in place after the other network ran
            self.call(calibration)
        samples, end = [], time.perf_counter() + CALIBRATION_S
        while len(samples) < 3 or time.perf_counter() < end:
            samples.append(self.call(calibration))
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
    ) -> tuple[list[float], bool]:
        """Warm-up, then rounds of `min_repeats` calls until the median settles (see measure_latency)."""
        t_end = time.perf_counter() + warmup_s
        n = 0
        while n < 5 or time.perf_counter() < t_end:
            self.call(m)
            n += 1
        samples: list[float] = []
        start = time.perf_counter()
        deadline, earliest = start + max_time_s, start + min(min_time_s, max_time_s)  # the cap wins
        prev, stable = None, False
        while len(samples) < max_repeats:
            samples.extend(self.call(m) for _ in range(min_repeats))
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
) -> Latency:
    """Median forward latency of `module` on a random (batch, *input_shape) input, in milliseconds.

    Repeats in rounds of `min_repeats`; once at least `min_time_s` has been timed (a shorter window is at
    the mercy of one burst of noise on a shared machine), stops when two successive medians agree within
    `rel_tol`, or at `max_time_s` / `max_repeats`. The module is put in eval mode and moved to the device.
    With `calibration` (a module taking the same input), that module is timed for CALIBRATION_S right
    before and right after, under the same lock and settings; `calibration_ms` is the mean of the two
    medians, both kept (see drift_corrected and nasx.measure.timing).

    runtime "onnxruntime": the module (and the calibration workload) is exported to ONNX once and timed in
    an ONNX Runtime session with explicit options (nasx.measure.onnx); `export_s` says what the export cost,
    outside the timed window."""
    threads = threads or default_threads()
    timer = _Timer(input_shape, device, batch, threads, dtype, channels_last, runtime, seed)
    fp = fingerprint(device, threads, batch, input_shape, dtype, channels_last, runtime=runtime)
    m = timer.prepare(module)
    export_s = getattr(m, "export_s", None)
    if calibration is not None:
        calibration = timer.prepare(calibration)
    with timer.settings(lock):
        t0 = time.perf_counter()
        calibration_before = timer.calibration_median(calibration) if calibration is not None else None
        t1 = time.perf_counter()
        samples, stable = timer.samples(m, warmup_s, min_repeats, max_repeats, min_time_s, max_time_s, rel_tol)
        t2 = time.perf_counter()
        calibration_after = timer.calibration_median(calibration) if calibration is not None else None
        calibration_s = (t1 - t0) + (time.perf_counter() - t2) if calibration is not None else None
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
        runtime,
        export_s,
        calibration_s,
        timer.lock_wait_s,
    )


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
) -> list[list[dict]]:
    """Several networks timed side by side: `rounds` rounds, each timing every module once for about `time_s`
    (round-robin, under one host lock per round), so a slow spell hits them alike instead of one of them.
    With `calibration`, the calibration workload is timed between consecutive modules; each measurement gets
    the calibrations right before and after it (calibration_ms their mean, for drift_corrected).
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
            for i, m in enumerate(prepared):
                samples, stable = timer.samples(m, warmup_s, 10, 500, time_s, time_s, 0.02)
                after = timer.calibration_median(calibration) if calibration is not None else None
                rec = {
                    "median_ms": statistics.median(samples),
                    "iqr_ms": _iqr(samples),
                    "mean_ms": statistics.fmean(samples),
                    "min_ms": min(samples),
                    "repeats": len(samples),
                }
                if calibration is not None:
                    rec.update(
                        calibration_before_ms=before, calibration_after_ms=after, calibration_ms=(before + after) / 2
                    )
                out[i].append(rec)
                before = after
    return out
