"""Short, seeded training of a candidate network: the honest score (`--score train`) and `nasx retrain`.

Recipe (TrainSettings defaults): a fixed budget of `steps` optimizer steps on mini-batches of `batch`
images drawn without replacement from the training split (a fresh seeded permutation each epoch), SGD with
Nesterov momentum 0.9, peak learning rate 0.1 reached by a linear warm-up over the first 5% of the steps
and then a cosine decay to zero, weight decay 5e-4 on conv/linear weights only (not on biases or batch-norm
parameters), cross-entropy with optional label smoothing (off by default). `--train-optimizer adamw`
switches to AdamW (peak 2e-3, weight decay 0.05) with the same schedule. No data augmentation: the
score ranks architectures under one fixed recipe, it is not a tuned final accuracy.

The result is top-1 accuracy (percent) on the validation split, measured in eval mode (batch norm uses its
running statistics). Training cost is counted as 3 x forward MAdds x images seen (forward, plus a backward
pass of about twice the forward cost), next to the wall time.

Determinism: every run seeds torch (weights are built by the caller under its own seed; the batch order
and anything random inside training come from `seed`), turns on torch.use_deterministic_algorithms with
warn_only=True and, on CUDA, cudnn.deterministic and a fixed cuBLAS workspace. On CPU a rerun reproduces
the same accuracy bit for bit with the same torch build and thread count; where torch has only a
nondeterministic kernel the run goes on and the trial records `deterministic: false` with the op's name."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field

from nasx.errors import NasxError
from nasx.measure.device import resolve_device

OPTIMIZERS = {"sgd": {"lr": 0.1, "weight_decay": 5e-4}, "adamw": {"lr": 2e-3, "weight_decay": 0.05}}
DEFAULT_STEPS = 200
DEFAULT_BATCH = 64
WARMUP_FRACTION = 0.05
EVAL_BATCH = 500


@dataclass(frozen=True)
class TrainSettings:
    steps: int = DEFAULT_STEPS
    batch: int = DEFAULT_BATCH
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default peak (OPTIMIZERS)
    weight_decay: float | None = None
    label_smoothing: float = 0.0
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise NasxError(f"unknown optimizer {self.optimizer!r}: use {' or '.join(OPTIMIZERS)}")
        if type(self.steps) is not int or self.steps < 1:
            raise NasxError(f"training steps must be a positive integer, got {self.steps!r}")
        if type(self.batch) is not int or self.batch < 2:
            raise NasxError(f"training batch must be an integer of at least 2, got {self.batch!r}")
        if self.lr is not None and not (self.lr > 0 and math.isfinite(self.lr)):
            raise NasxError(f"learning rate must be positive, got {self.lr}")
        if not 0 <= self.label_smoothing < 1:
            raise NasxError(f"label smoothing must be in [0, 1), got {self.label_smoothing}")

    @property
    def peak_lr(self) -> float:
        return self.lr if self.lr is not None else OPTIMIZERS[self.optimizer]["lr"]

    @property
    def decay(self) -> float:
        return self.weight_decay if self.weight_decay is not None else OPTIMIZERS[self.optimizer]["weight_decay"]

    @property
    def key(self) -> str:
        """Everything the trained accuracy depends on besides the architecture and the data."""
        return (
            f"{self.optimizer}-lr{self.peak_lr:g}-wd{self.decay:g}-ls{self.label_smoothing:g}-s{self.steps}-"
            f"b{self.batch}-seed{self.seed}-{self.device}"
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(
            lr=self.peak_lr,
            weight_decay=self.decay,
            warmup_steps=warmup_steps(self.steps),
            schedule="linear warm-up then cosine to 0",
        )
        return d


@dataclass
class TrainResult:
    top1: float  # validation top-1 accuracy, percent
    steps: int  # optimizer steps taken (fewer than asked only when the loss diverged)
    samples: int  # training images seen
    epochs: float  # samples / training-split size
    seconds: float  # wall time, training and validation
    train_madds: int | None  # 3 x forward MAdds x samples (None when the forward MAdds were not given)
    final_loss: float  # mean training loss over the last 10% of steps
    diverged: bool = False
    deterministic: bool = True
    nondeterministic_ops: list = field(default_factory=list)
    device: str = "cpu"

    def as_dict(self) -> dict:
        return asdict(self)


def warmup_steps(steps: int) -> int:
    return max(1, int(round(WARMUP_FRACTION * steps)))


def lr_factor(step: int, steps: int) -> float:
    """Multiplier of the peak learning rate at `step` (0-based): linear warm-up, then cosine to 0."""
    w = warmup_steps(steps)
    if step < w:
        return (step + 1) / w
    return 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


@contextlib.contextmanager
def deterministic(device):
    import torch
    import torch.utils.deterministic as td

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        td.fill_uninitialized_memory,
    )
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS reproducibility (read at init)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    torch.use_deterministic_algorithms(True, warn_only=True)
    # filling every new tensor with NaN is a debugging aid of deterministic mode that costs ~20% of a CPU
    # training step; training never reads uninitialised memory
    td.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[2], before[3]
        td.fill_uninitialized_memory = before[4]


def evaluate(module, data, idx=None, device=None) -> float:
    """Top-1 accuracy (percent) of `module` on the validation split (or on `idx`)."""
    import torch

    idx = data.val_idx if idx is None else idx
    device = device or next(module.parameters()).device
    module.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(idx), EVAL_BATCH):
            x, y = data.batch(idx[i : i + EVAL_BATCH])
            correct += int((module(x.to(device)).argmax(1).cpu() == y).sum())
    return 100.0 * correct / max(1, len(idx))


def train(module, data, settings: TrainSettings = TrainSettings(), madds: int | None = None) -> TrainResult:
    """Train `module` in place on `data` under `settings`; its validation top-1 accuracy and cost."""
    import torch
    import torch.nn.functional as F

    dev = resolve_device(settings.device)
    t0 = time.perf_counter()
    module.to(dev)
    batch = min(settings.batch, data.n_train)
    if batch < 2:
        raise NasxError(f"the training split of {data.name} has {data.n_train} image(s); training needs at least 2")
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim > 1 else no_decay).append(p)
    groups = [
        g
        for g in ({"params": decay, "weight_decay": settings.decay}, {"params": no_decay, "weight_decay": 0.0})
        if g["params"]
    ]
    seen_warnings: list[str] = []
    losses: list[float] = []
    diverged, steps_done = False, 0
    with deterministic(dev), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.manual_seed(settings.seed)
        gen = torch.Generator().manual_seed(settings.seed)
        if groups:
            if settings.optimizer == "sgd":
                opt = torch.optim.SGD(groups, lr=settings.peak_lr, momentum=0.9, nesterov=True)
            else:
                opt = torch.optim.AdamW(groups, lr=settings.peak_lr)
            sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, settings.steps))
        order, pos = data.train_idx[torch.randperm(data.n_train, generator=gen)], 0
        module.train()
        for _step in range(settings.steps):
            if pos + batch > len(order):  # next epoch: a fresh permutation (the short tail is dropped)
                order, pos = data.train_idx[torch.randperm(data.n_train, generator=gen)], 0
            x, y = data.batch(order[pos : pos + batch])
            pos += batch
            loss = F.cross_entropy(module(x.to(dev)), y.to(dev), label_smoothing=settings.label_smoothing)
            value = float(loss.detach())
            if not math.isfinite(value):
                diverged = True
                break
            losses.append(value)
            if groups:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
            steps_done += 1
        top1 = evaluate(module, data, device=dev)
        for w in caught:
            text = str(w.message)
            if "deterministic" in text and text not in seen_warnings:
                seen_warnings.append(text.splitlines()[0][:200])
    samples = steps_done * batch
    tail = losses[-max(1, len(losses) // 10) :] if losses else [math.nan]
    return TrainResult(
        top1=top1,
        steps=steps_done,
        samples=samples,
        epochs=samples / data.n_train,
        seconds=time.perf_counter() - t0,
        train_madds=3 * madds * samples if madds else None,
        final_loss=sum(tail) / len(tail),
        diverged=diverged,
        deterministic=not seen_warnings,
        nondeterministic_ops=seen_warnings,
        device=str(dev),
    )


class Scored(float):
    """A score value (a float) that carries the details of how it was obtained."""

    details: dict

    def __new__(cls, value: float, details: dict):
        obj = super().__new__(cls, value)
        obj.details = details
        return obj


class TrainScore:
    """`--score train`: fn(module, input_shape, seed) -> validation top-1 (percent) after a short training
    on a fixed data set. `key` goes into the score cache key; `expected_cost` is what the trial records
    about a training run (also when the score came from the cache)."""

    def __init__(self, data, settings: TrainSettings = TrainSettings()):
        self.data = data
        self.settings = settings

    @property
    def key(self) -> str:
        return f"{self.data.key}:{self.settings.key}"

    def expected_cost(self, madds: int) -> dict:
        batch = min(self.settings.batch, self.data.n_train)
        samples = self.settings.steps * batch
        return {
            "data": self.data.name,
            "steps": self.settings.steps,
            "batch": batch,
            "samples": samples,
            "epochs": round(samples / self.data.n_train, 3),
            "train_madds": 3 * madds * samples,
        }

    def __call__(self, module, input_shape, seed: int = 0) -> Scored:
        import dataclasses

        if tuple(input_shape) != tuple(self.data.input_shape):
            raise NasxError(f"data delivered at {self.data.input_shape}, network takes {tuple(input_shape)}")
        settings = dataclasses.replace(self.settings, seed=seed) if seed != self.settings.seed else self.settings
        result = train(module, self.data, settings)
        return Scored(result.top1, result.as_dict())
