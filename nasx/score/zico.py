"""ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients", ICLR 2023).

Definition: the gradients g_b = dL_b/dtheta of the cross-entropy loss of B mini-batches b = 1..B (B >= 2) at
initialisation, for every weight theta of every layer l. Per weight, mean_b |g_b| and std_b g_b (population
std, ddof 0, over the B batches). Then

    ZiCo = sum over layers l of log( sum over theta in l with std(theta) > 0 of mean|g(theta)| / std(g(theta)) )

A layer whose weights all have zero std (or whose inner sum is 0) adds nothing, as in the reference
implementation; the log is of the per-layer sum (the paper's Eq. and the reference), not a sum of logs.
Higher is better.

As implemented:
- layers: the weights (not biases) of every convolution (nn.Conv1d/2d/3d) and nn.Linear, as the reference
  takes Conv2d and Linear weights;
- data: `batches` mini-batches of `batch` N(0, 1) images with uniform random labels over the network's
  outputs, all drawn under `seed` (nasx proxies are data-free; the reference uses two real batches);
- each mini-batch's gradient is its own (gradients zeroed between batches). The reference accumulates:
  its second "batch gradient" is g_1 + g_2, since it never zeroes them; the paper's definition is the
  per-batch gradient, which is what is used here;
- the module is scored in train mode (batch norm on batch statistics, as the reference) on a deep copy, so
  the caller's module, its running statistics and its gradients are untouched; the global torch RNG is
  forked and seeded (dropout) so the score is a function of (weights, seed).
Returns -inf when no layer contributes (every gradient identical across batches, e.g. all zero)."""

from __future__ import annotations

import math


def zico_from_grads(per_layer) -> float:
    """ZiCo from {layer: array (batches, weights)} of per-batch gradients (see module doc)."""
    import numpy as np

    total, used = 0.0, 0
    for grads in per_layer.values():
        g = np.asarray(grads, dtype=np.float64)
        std = g.std(axis=0)
        nz = std > 0
        s = float(np.sum(np.abs(g).mean(axis=0)[nz] / std[nz]))
        if s > 0:
            total += math.log(s)
            used += 1
    return total if used else -math.inf


def zico(module, input_shape, seed: int = 0, batch: int = 8, batches: int = 2) -> float:
    import copy

    import torch
    from torch import nn

    if batches < 2:
        raise ValueError("zico needs at least two mini-batches (a std over batches)")
    net = copy.deepcopy(module).train()
    layers = {
        name: m
        for name, m in net.named_modules()
        if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) and m.weight is not None
    }
    grads: dict[str, list] = {name: [] for name in layers}
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(batches):
            x = torch.randn((batch, *input_shape), generator=gen)
            net.zero_grad(set_to_none=True)
            logits = net(x).reshape(batch, -1)
            y = torch.randint(logits.shape[1], (batch,), generator=gen)
            nn.functional.cross_entropy(logits, y).backward()
            for name, m in layers.items():
                g = m.weight.grad
                grads[name].append(torch.zeros(m.weight.numel()) if g is None else g.detach().reshape(-1).clone())
    return zico_from_grads({name: torch.stack(gs).numpy() for name, gs in grads.items()})
