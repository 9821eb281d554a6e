"""Export a searched architecture: the canonical rebuildable JSON, an ONNX model checked with onnxruntime,
or a torch.export program (.pt2).

Files are written to a temporary file in the target directory and moved into place with os.replace, so an
interrupted or failed export never leaves a partial file at the target path (nasx.util.files). Models carry
freshly initialised weights (torch's defaults under nasx.build.WEIGHTS_SEED, as during search): nasx searches
architectures; training them is the user's job.

ONNX check: onnxruntime (CPU) runs the exported file on a random input of the study's input shape and batch
2 (the batch axis is exported dynamic) and every output element must satisfy
|onnx - torch| <= ONNX_ATOL + ONNX_RTOL * |torch| (numpy.allclose). Float32 kernels differ in the order of
their additions, which moves results by ~1e-7 relative; the bounds leave room for that and catch any
structural mismatch, which is orders of magnitude larger. pt2 is checked the same way by running the
program loaded back from the file."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from nasx.arch import Arch
from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.errors import NasxError
from nasx.measure.onnx import export_onnx, first_line, quiet_exporter, require_onnx
from nasx.store.studies import feasible_trial
from nasx.util.files import atomic_write, atomic_write_text, check_target
from nasx.util.units import parse_count

FORMATS = ("json", "onnx", "pt2")
ONNX_RTOL = 1e-3
ONNX_ATOL = 1e-5
CHECK_BATCH = 2


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float | None = None  # onnx / pt2: largest |exported - torch| on the check input
    max_abs_ref: float | None = None

    def line(self) -> str:
        size = f", {self.path.stat().st_size:,} bytes" if self.path.is_file() else ""  # /dev/null has no size
        text = f"wrote {self.path} ({self.format}{size})"
        if self.max_abs_diff is not None:
            text += (
                f"; checked against torch on a random batch of {CHECK_BATCH}: max |diff| "
                f"{self.max_abs_diff:.2e} (outputs up to {self.max_abs_ref:.2e}; tolerance atol {ONNX_ATOL:g} + "
                f"rtol {ONNX_RTOL:g})"
            )
        return text


def export_arch(arch: Arch, fmt: str, path, name: str = "") -> ExportResult:
    """Write `arch` as json, onnx or pt2 to `path` (atomically); onnx and pt2 are checked against torch."""
    if fmt not in FORMATS:
        raise NasxError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")
    if name:
        arch = dataclasses.replace(arch, name=name)
    path = check_target(path, f".{fmt}")
    if fmt == "onnx":
        require_onnx()
    if fmt == "json":
        atomic_write_text(path, arch.to_json() + "\n", ".json")
        return ExportResult(path, fmt)
    module, x, ref = _reference(arch)
    result = {}
    writer = _write_onnx if fmt == "onnx" else _write_pt2
    atomic_write(path, lambda tmp: result.update(writer(module, x, ref, tmp)), f".{fmt}")
    return ExportResult(path, fmt, result["diff"], float(abs(ref).max()))


def _reference(arch: Arch):
    import torch

    module = build_seeded(arch).eval()
    x = torch.randn((CHECK_BATCH, *arch.input), generator=torch.Generator().manual_seed(WEIGHTS_SEED))
    with torch.inference_mode():
        ref = module(x).numpy()
    return module, x, ref


def _compare(out, ref, what: str) -> float:
    import numpy as np

    out = np.asarray(out)
    if out.shape != ref.shape:
        raise NasxError(f"{what} output has shape {list(out.shape)}, torch {list(ref.shape)}: export is wrong")
    diff = float(np.abs(out - ref).max()) if ref.size else 0.0
    if not np.allclose(out, ref, rtol=ONNX_RTOL, atol=ONNX_ATOL):
        raise NasxError(
            f"{what} output differs from torch by up to {diff:.3g} (tolerance atol {ONNX_ATOL:g} + rtol "
            f"{ONNX_RTOL:g}); nothing was written"
        )
    return diff


def _write_onnx(module, x, ref, tmp: str) -> dict:
    import onnxruntime as ort

    export_onnx(module, x, tmp, dynamic_batch=True, dynamo=True)
    session = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return {"diff": _compare(out, ref, "onnxruntime")}


def _write_pt2(module, x, ref, tmp: str) -> dict:
    import torch

    with quiet_exporter():
        try:
            program = torch.export.export(module, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
        except Exception as e:
            raise NasxError(f"torch.export failed: {first_line(e)}") from None
        torch.export.save(program, tmp)
        loaded = torch.export.load(tmp)
    with torch.inference_mode():
        out = loaded.module()(x).numpy()
    return {"diff": _compare(out, ref, "torch.export program")}


# --- choosing a trial ---------------------------------------------------------------------------------

_LATENCY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[-+]?[0-9]+)?)\s*(ms|us|µs|s)\s*$", re.I)


def parse_target(text: str, budget_metric: str = "madds") -> tuple[str, float]:
    """'5ms' / '800us' / '0.01s' -> ('latency_ms', value in ms); '10M' / '3e8' -> (budget_metric, count)."""
    m = _LATENCY.match(str(text))
    if m:
        scale = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}[m.group(2).lower()]
        value = float(m.group(1)) * scale
        if value <= 0:
            raise NasxError(f"--best {text!r}: a latency target must be positive")
        return "latency_ms", value
    try:
        return budget_metric, float(parse_count(text, "--best"))
    except NasxError:
        raise NasxError(
            f"--best {text!r}: give a latency (5ms, 800us) or a compute budget in {budget_metric} (10M, 3e8)"
        ) from None


def pick_best(front: list, target: str, budget_metric: str = "madds"):
    """(trial, metric, target): the front member nearest to a latency ('5ms') or a compute budget ('10M', in
    the study's budget metric, MAdds or FLOPs): smallest absolute difference, a tie going to the cheaper one."""
    if not front:
        raise NasxError("the study has no feasible trial yet, so --best has nothing to pick from")
    from nasx.store.studies import latency_ms

    key, value = parse_target(target, budget_metric)

    def metric(t):
        return latency_ms(t) if key == "latency_ms" else t.user_attrs[key]

    return min(front, key=lambda t: (abs(metric(t) - value), metric(t))), key, value


def export_trial(study, number: int, fmt: str, path) -> ExportResult:
    """Export a feasible trial of a nasx study (anything else: one clear error, nothing written)."""
    t = feasible_trial(study, number)
    arch = Arch.from_dict(t.user_attrs["arch"])
    return export_arch(arch, fmt, path, name=f"{study.study_name}/trial{number}")
