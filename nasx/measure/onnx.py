"""ONNX: exporting a torch module (the one exporter `nasx export` and the ONNX Runtime timing path share) and
the ONNX Runtime session nasx times a network in (`--runtime onnxruntime`).

The timing session is built with explicit options, so a latency says which runtime configuration produced
it (all of them go into the device fingerprint, nasx.measure.device.fingerprint):

- intra-op threads = the measurement's threads (--threads), inter-op threads 1, ORT_SEQUENTIAL execution:
  one network, one operator at a time, parallel inside each operator, as torch eager runs it;
- ORT_ENABLE_ALL graph optimisation (ORT's default for deployment: constant folding, conv+BN+activation fusion,
  layout changes);
- intra-op thread spinning on, as ONNX Runtime documents for fast inference (session.intra_op.allow_spinning
  "1", its default, set explicitly): workers wait for the next operator busy instead of sleeping, which is how a
  latency-bound deployment runs it. Inter-op spinning off (no inter-op pool in sequential mode);
- subnormals flushed to zero in ORT's threads (session.set_denormal_as_zero), as torch eager is timed.

Export for timing uses torch's TorchScript-based exporter (a static input shape, opset TIMING_OPSET): here it
exported a MobileNetV3-Small in 1/4 the time of the dynamo exporter, and every candidate is exported once. The
export time is kept apart from the latency (`export_s`)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import time
import warnings

from nasx.errors import NasxError

TIMING_OPSET = 17
TIMING_EXPORTER = "torchscript"
PROVIDER = "CPUExecutionProvider"


def require_onnx(what: str = "ONNX export", modules=("onnx", "onnxruntime", "onnxscript")) -> None:
    """One clear NasxError naming the extra to install when an ONNX package is missing."""
    for name in modules:
        try:
            __import__(name)
        except ImportError:
            raise NasxError(f'{what} needs {name}: pip install "nasx[export]"') from None


def require_onnxruntime() -> None:
    require_onnx("--runtime onnxruntime", ("onnxruntime", "onnx"))


@contextlib.contextmanager
def quiet_exporter():
    """torch.onnx / torch.export log warnings (e.g. torchvision ops it skips) that say nothing to users."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(open(os.devnull, "w")):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:300]


def export_onnx(module, x, path=None, *, dynamic_batch: bool = False, dynamo: bool = True) -> bytes | None:
    """`module` exported on example input `x`: written to `path`, or returned as bytes when path is None.
    dynamo=True: torch's dynamo exporter (what `nasx export` writes); False: the faster TorchScript exporter at
    TIMING_OPSET (what timing uses). Any exporter failure is one NasxError naming it."""
    import torch

    with quiet_exporter():
        try:
            if dynamo:
                program = torch.onnx.export(
                    module,
                    (x,),
                    dynamo=True,
                    verbose=False,
                    input_names=["input"],
                    output_names=["output"],
                    dynamic_shapes=({0: "batch"},) if dynamic_batch else None,
                )
                if path is not None:
                    program.save(path)
                    return None
                return program.model_proto.SerializeToString()
            f = io.BytesIO() if path is None else path
            torch.onnx.export(
                module,
                (x,),
                f,
                dynamo=False,
                opset_version=TIMING_OPSET,
                input_names=["input"],
                output_names=["output"],
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}} if dynamic_batch else None,
            )
            return f.getvalue() if path is None else None
        except NasxError:
            raise
        except Exception as e:  # the exporters raise many types; one line says which op failed
            raise NasxError(f"torch.onnx.export failed: {first_line(e)}") from None


def timing_options(threads: int) -> dict:
    """The session settings a latency is timed under, as they go into the fingerprint."""
    return {
        "intra_op_threads": threads,
        "inter_op_threads": 1,
        "graph_optimization": "ORT_ENABLE_ALL",
        "execution_mode": "ORT_SEQUENTIAL",
        "intra_op_spinning": True,
        "inter_op_spinning": False,
        "denormal_as_zero": True,
        "provider": PROVIDER,
        "exporter": TIMING_EXPORTER,
        "opset": TIMING_OPSET,
    }


def session_options(threads: int):
    """onnxruntime.SessionOptions carrying timing_options(threads)."""
    import onnxruntime as ort

    opts = timing_options(threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = opts["intra_op_threads"]
    so.inter_op_num_threads = opts["inter_op_threads"]
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if opts["intra_op_spinning"] else "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "1" if opts["inter_op_spinning"] else "0")
    so.add_session_config_entry("session.set_denormal_as_zero", "1" if opts["denormal_as_zero"] else "0")
    so.log_severity_level = 3  # errors only
    return so


class OrtModel:
    """A torch module exported once (static shape (batch, *input_shape)) and loaded into an InferenceSession
    with session_options(threads). Call it with a numpy array of that shape."""

    def __init__(self, module, input_shape, batch: int = 1, threads: int = 1, seed: int = 0):
        require_onnxruntime()
        import onnxruntime as ort
        import torch

        module = module.eval().cpu().float()
        x = torch.randn((batch, *input_shape), generator=torch.Generator().manual_seed(seed))
        t0 = time.perf_counter()
        with torch.inference_mode(False), torch.no_grad():
            self.model_bytes = export_onnx(module, x, dynamo=False)
        self.export_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        self.session = ort.InferenceSession(self.model_bytes, session_options(threads), providers=[PROVIDER])
        self.session_s = time.perf_counter() - t0
        self.input_name = self.session.get_inputs()[0].name
        self.key = (tuple(input_shape), batch, threads)

    def __call__(self, x):
        return self.session.run(None, {self.input_name: x})
