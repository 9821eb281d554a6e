"""The device side of a latency measurement: which device and CPU it runs on, how many threads, the device
fingerprint every measurement carries (what a latency number depends on besides the architecture, and its
hash, the latency cache's key), the runtimes nasx can time with, and the conditions a timing runs under: the
host-wide file lock through which workers on one host serialise measurements so they never time each
other's noise, subnormals flushed to zero and the torch thread count. The timing itself is
nasx.measure.latency's."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import tempfile

from nasx.errors import NasxError

LOCK_PATH = os.path.join(tempfile.gettempdir(), "nasx-measure.lock")
CALIBRATION_MODEL = (
    "mobilenet_v3_small"  # zoo network timed around drift-corrected measurements, named in their fingerprint
)
RUNTIMES = ("torch", "onnxruntime")  # torch: eager; onnxruntime: exported once, timed in an InferenceSession


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
