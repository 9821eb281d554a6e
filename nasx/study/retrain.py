"""`nasx retrain --trial N`: train one searched architecture for longer and keep the weights.

The trial's architecture is rebuilt (weights initialised under the search's seed), trained with nasx.score.train's
recipe for `steps` steps (default RETRAIN_STEPS) on the study's data set (the one `--score train` used,
else digits, or `--data`), and its validation top-1 accuracy is measured. The weights are written as
safetensors (tensors only: loading them never runs code; the architecture JSON, accuracy and training
settings ride along in the file's string metadata) and uploaded with Optuna's artifact API
(optuna.artifacts.upload_artifact into a FileSystemArtifactStore, by default the folder `artifacts/` beside
the SQLite database) as an artifact of the study. The link to the trial:

- the study user attr `retrain:<trial>` holds the artifact id, file name, accuracy and settings (Optuna's
  public API, visible in optuna-dashboard);
- the trial gets user attrs `retrain_top1` and `retrain_artifact_id`. Optuna refuses attrs on finished
  trials through its API, so these two rows are written into Optuna's own trial_user_attributes table
  (RDB storage, schema of optuna 5) the way Optuna writes them (nasx.store.db.set_finished_trial_user_attr).

Load the weights back with `nasx.study.retrain.load_weights(path)` (safetensors) and `nasx.build(arch)`."""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nasx.arch import Arch
from nasx.build import build_seeded
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.score.data import DEFAULT_DATA, load_data
from nasx.score.train import DEFAULT_BATCH, TrainSettings, train
from nasx.store.db import set_finished_trial_user_attr, sqlite_path
from nasx.store.studies import feasible_trial, trial_id
from nasx.util.files import atomic_write

RETRAIN_STEPS = 2000


@dataclass
class RetrainResult:
    trial: int
    top1: float
    artifact_id: str
    artifact_dir: Path
    filename: str
    seconds: float
    steps: int
    data: str
    copy: Path | None = None

    def line(self) -> str:
        text = (
            f"trial {self.trial}: validation top-1 {self.top1:.2f}% after {self.steps} steps on {self.data} "
            f"({self.seconds:.1f} s); weights stored as artifact {self.artifact_id} ({self.filename}) in "
            f"{self.artifact_dir}"
        )
        if self.copy:
            text += f"; copy written to {self.copy}"
        return text


def default_artifact_dir(url: str) -> Path:
    path = sqlite_path(url)
    if path is None:
        raise NasxError(
            f"storage {url.split('@')[-1]!r} is not a SQLite file: pass --artifacts PATH (a folder for the weights)"
        )
    return path.parent / "artifacts"


def save_weights(module, path, metadata: dict[str, str]) -> None:
    from safetensors.torch import save_file

    tensors = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(tensors, str(path), metadata=metadata)


def load_weights(path) -> tuple[dict, dict]:
    """(state dict, metadata) from a safetensors file written by retrain; no code is executed."""
    from safetensors import safe_open

    tensors = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        for k in f.keys():
            tensors[k] = f.get_tensor(k)
    return tensors, meta


def retrain(
    study,
    url: str,
    number: int,
    data_spec: str | None = None,
    steps: int = RETRAIN_STEPS,
    batch: int | None = None,
    device: str = "cpu",
    artifacts=None,
    output=None,
) -> RetrainResult:
    import torch
    from optuna.artifacts import FileSystemArtifactStore, upload_artifact

    trial = feasible_trial(study, number)
    arch = Arch.from_dict(trial.user_attrs["arch"])
    spec = data_spec or study.user_attrs.get("data") or DEFAULT_DATA
    out = arch.out_shape
    data = load_data(spec, arch.input, out[0] if len(out) == 1 else None)
    settings = TrainSettings(steps=steps, batch=DEFAULT_BATCH if batch is None else batch, device=device)
    folder = Path(artifacts) if artifacts else default_artifact_dir(url)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NasxError(f"cannot create the artifact folder {folder}: {e.strerror or e}") from None

    module = build_seeded(arch)  # the weights the search started from
    t0 = time.perf_counter()
    result = train(module, data, settings, madds=cost(arch).madds)
    seconds = time.perf_counter() - t0
    record = {
        "trial": number,
        "top1": result.top1,
        "data": spec,
        "data_key": data.key,
        "train": settings.as_dict(),
        "steps": result.steps,
        "epochs": result.epochs,
        "seconds": seconds,
        "train_madds": result.train_madds,
        "final_loss": result.final_loss,
        "deterministic": result.deterministic,
        "torch": torch.__version__,
    }
    filename = f"{study.study_name}-trial{number}.safetensors".replace("/", "_")
    metadata = {"nasx": "retrain", "arch": arch.to_json(), "record": json.dumps(record)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / filename
        save_weights(module, path, metadata)
        store = FileSystemArtifactStore(str(folder))
        artifact_id = upload_artifact(
            artifact_store=store, file_path=str(path), study_or_trial=study, mimetype="application/octet-stream"
        )
        copy = None
        if output:
            copy = atomic_write(output, lambda dst: Path(dst).write_bytes(path.read_bytes()), ".safetensors")
    record.update(artifact_id=artifact_id, filename=filename, artifact_dir=str(folder.resolve()))
    study.set_user_attr(f"retrain:{number}", record)
    set_finished_trial_user_attr(study, trial_id(trial), "retrain_top1", result.top1)
    set_finished_trial_user_attr(study, trial_id(trial), "retrain_artifact_id", artifact_id)
    return RetrainResult(number, result.top1, artifact_id, folder, filename, seconds, result.steps, spec, copy)


def download(artifact_dir, artifact_id: str, path) -> Path:
    """Copy an artifact out of the store (optuna.artifacts.download_artifact)."""
    from optuna.artifacts import FileSystemArtifactStore, download_artifact

    path = Path(path)
    if path.exists():
        os.remove(path)
    download_artifact(
        artifact_store=FileSystemArtifactStore(str(artifact_dir)), file_path=str(path), artifact_id=artifact_id
    )
    return path
