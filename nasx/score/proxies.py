"""Quality scores, the second objective (maximised), registered by name. SCORES maps a name to a function
(module, input_shape, seed) -> float; DATA_SCORES maps the scores that train to a factory (data set, training
settings) -> fn.

Default: `capacity` (nasx.score.capacity): the cost core's MAdds, activation count and weighted depth, each
log divided by a fixed spread, summed. It is a function of the network alone, costs microseconds (nothing is
built), and has the best worst case of every score nasx has over the three truths it ships (docs/scores.md,
"Against real accuracy": `nasx validate-score --truth all`).

The training-free proxies, each one forward (and backward) pass of the untrained network: NASWOT (Mellor et
al., ICML 2021; log|K| of the activation codes of a small batch, defined below), synflow (Tanaka et al.,
NeurIPS 2020, below), MeCo (nasx.score.meco), ZiCo (nasx.score.zico) and AZ-NAS's expressivity,
progressivity and trainability (nasx.score.azpass). The free counts: params, madds, mac, activations and
depth from the cost core. `bench` is the accuracy the shipped NAS-Bench-Macro table holds
(nasx.score.bench), and `train` (nasx.score.train) the honest score: validation top-1 after a short seeded
training on a real data set. `nasx validate-score` measures how well each ranks architectures against real
accuracy.

A score function that needs the architecture (cost-core counts) sets `needs_arch = True` and is called with
`arch=` (nasx.score.base.call_score); one that needs no network at all (the counts, capacity, bench) also sets
`needs_module = False` and gets module=None."""

from __future__ import annotations

import math

from nasx.errors import NasxError
from nasx.score.azpass import term_score
from nasx.score.base import forward_hooks
from nasx.score.bench import bench_score
from nasx.score.capacity import capacity
from nasx.score.meco import meco
from nasx.score.train import TrainScore, TrainSettings
from nasx.score.zico import zico


def naswot(module, input_shape, seed: int = 0, batch: int = 16) -> float:
    import torch
    from torch import nn

    activations = (nn.ReLU, nn.ReLU6, nn.Hardswish, nn.GELU, nn.SiLU, nn.Hardsigmoid, nn.Sigmoid)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *input_shape), generator=gen)
    kernel = torch.zeros(batch, batch, dtype=torch.float64)

    def hook(_mod, inputs, _out):
        # agreements(i, j) = units - hamming(i, j) = units - (s_i + s_j - 2 c_i.c_j); one float32 matmul is
        # exact while a layer has fewer than 2**24 units
        codes = (inputs[0].detach().reshape(batch, -1) > 0).float()
        ones = codes.sum(1, dtype=torch.float64)
        both = (codes @ codes.T).double()
        kernel.add_(codes.shape[1] - (ones[:, None] + ones[None, :] - 2 * both))

    with (
        forward_hooks([m for m in module.modules() if isinstance(m, activations)], hook) as handles,
        torch.inference_mode(),
    ):
        module.eval()(x)
    if not handles:
        raise NasxError("naswot needs activation layers; use --score params for a network without any")
    sign, logdet = torch.linalg.slogdet(kernel)
    return float(logdet) if sign > 0 else -math.inf


def synflow(module, input_shape, seed: int = 0) -> float:
    """log of SynFlow (Tanaka et al. 2020): every parameter replaced by its absolute value, batch norm in eval
    mode, an all-ones input of batch 1, R = sum of the outputs, score = sum over the weights of the conv,
    linear and channel-wise conv layers (biases and normalisation parameters excluded) of
    |theta * dR/dtheta|. Computed in float64 on a copy (the caller's module is untouched). The natural log
    is returned (same ranking; the raw value is a product over layers and spans hundreds of orders of
    magnitude). Data-free and label-free; `seed` is unused (the score is deterministic)."""
    import copy

    import torch
    from torch import nn

    net = copy.deepcopy(module).double().eval()
    norms = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm)
    norm_params = {id(p) for m in net.modules() if isinstance(m, norms) for p in m.parameters(recurse=False)}
    with torch.no_grad():
        for t in net.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    params = [p for name, p in net.named_parameters() if id(p) not in norm_params and not name.endswith("bias")]
    for p in net.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    x = torch.ones((1, *input_shape), dtype=torch.float64)
    net.zero_grad(set_to_none=True)
    torch.sum(net(x)).backward()
    total = 0.0
    for p in params:
        if p.grad is not None:
            total += float((p.detach() * p.grad).abs().sum())
    if not math.isfinite(total):
        return math.inf
    return math.log(total) if total > 0 else -math.inf


def _cost_count(attr: str, doc: str, unit: float = 1e6):
    """A cost-core count (in millions unless `unit` says otherwise) as a score: free, a baseline like the
    parameter count."""

    def score(module, input_shape, seed: int = 0, arch=None) -> float:
        from nasx.cost import cost

        return getattr(cost(arch), attr) / unit

    score.__doc__, score.needs_arch, score.needs_module = doc, True, False  # type: ignore[attr-defined]
    return score


SCORES = {
    "naswot": naswot,
    "synflow": synflow,
    "meco": meco,
    "zico": zico,
    # AZ-NAS's own terms (nasx.score.azpass): each runs the pass; an aggregate calls az_terms once for all three
    "az_expressivity": term_score("expressivity"),
    "az_progressivity": term_score("progressivity"),
    "az_trainability": term_score("trainability"),
    # the cost core's count equals torch's (tests/test_cost_vs_torch.py, every NAS-Bench-Macro entry): free
    "params": _cost_count("params", "Parameter count, millions: the baseline every training-free proxy should beat."),
    "madds": _cost_count("madds", "MAdds (millions) from the cost core."),
    "mac": _cost_count("mac", "Memory access, millions of elements read + written (conv+BN+act fused)."),
    "activations": _cost_count("activations", "Output elements of conv and linear layers, millions (RegNet)."),
    "depth": _cost_count("depth", "Weighted depth: the most conv and linear layers on any input-to-output path.", 1),
    # the default: madds, activations and depth on one scale, a function of the network alone
    "capacity": capacity,
    "bench": bench_score,
}


def _train_score(data, settings=None):
    return TrainScore(data, settings or TrainSettings())


# Scores that need a data set: name -> factory(data set, training settings) -> fn(module, input_shape, seed),
# whose `key` attribute goes into the score cache key.
DATA_SCORES = {"train": _train_score}


def check_score(name: str) -> None:
    names = [*SCORES, *DATA_SCORES]
    if name not in names:
        raise NasxError(f"unknown score {name!r}: use one of {', '.join(names)}")


def needs_data(name: str) -> bool:
    return name in DATA_SCORES


def get_score(name: str, data=None, train=None):
    """The score function `name`; a data score (train) needs `data` (a nasx.score.data.Dataset) and takes
    optional training settings."""
    check_score(name)
    if name in DATA_SCORES:
        if data is None:
            raise NasxError(f"score {name!r} needs a data set: pass --data (e.g. --data digits)")
        return DATA_SCORES[name](data, train)
    return SCORES[name]
