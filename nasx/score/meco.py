"""MeCo (Jiang et al., "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via Minimum Eigenvalue of
Correlation", NeurIPS 2023).

Definition: one input X (batch of one) through the untrained network, one forward pass. For every layer i
with a feature map f_i(X) of C_i channels and H_i x W_i positions, take the C_i x C_i Pearson correlation
matrix P_i of the channels (channels are the variables, the H_i * W_i positions the observations) and its
minimum eigenvalue. MeCo = sum over layers of lambda_min(P_i). Each term lies in [0, 1] (P_i is positive
semi-definite with unit diagonal); higher is better.

As implemented (the plain MeCo of the paper, not MeCo_opt, which samples 8 channels per layer and rescales
by C_i / 8):
- input: one N(0, 1) image drawn under `seed` (the paper shows a random input ranks about as well as a
  real image; nasx proxies are data-free);
- layers: every module whose output is a 4-D (N, C, H, W) tensor, each distinct feature map once. The
  reference hooks every module and so counts a container's output again with its last child's; here a
  module that returns a tensor another module already produced, unchanged (a Sequential, an Identity),
  adds nothing, while an in-place activation (nasx builds them; same tensor, modified, so its version
  counter moved) is a new map, as it is in the reference's out-of-place networks;
- a channel that is constant over the map (zero variance, e.g. a dead ReLU) has an undefined correlation;
  the reference sets those entries to 0, which is what a zero row/column does here: lambda_min = 0;
- where C_i >= H_i * W_i the centred channels span at most H_i * W_i - 1 dimensions, so P_i is singular
  and lambda_min = 0 exactly: returned without an eigendecomposition (deep, narrow-map layers);
- batch norm uses its running statistics (eval mode; at initialisation an affine map per channel, which
  leaves a correlation unchanged). The reference runs the module in its default train mode at batch 1,
  which fails on a 1 x 1 map (a 224 network at 32 x 32); eval mode scores those too, as naswot does.
Correlations and eigenvalues are computed in float64; the module's train/eval flag is restored."""

from __future__ import annotations

import math


def min_corr_eigenvalue(fmap) -> float:
    """lambda_min of the channel Pearson correlation matrix of one (C, H, W) feature map (see module doc)."""
    import torch

    x = fmap.reshape(fmap.shape[0], -1).double()
    c, n = x.shape
    if c >= n:
        return 0.0  # rank <= n - 1 < c
    x = x - x.mean(1, keepdim=True)
    std = x.pow(2).mean(1).sqrt()
    if bool((std == 0).any()):
        return 0.0  # a zero row and column
    z = x / std[:, None]
    corr = (z @ z.T) / n
    return float(torch.linalg.eigvalsh(corr)[0])


def meco(module, input_shape, seed: int = 0) -> float:
    import torch

    from nasx.score.base import forward_hooks

    x = torch.randn((1, *input_shape), generator=torch.Generator().manual_seed(seed))
    # (id, version) -> tensor, kept alive so an id is never reused during the pass
    seen: dict[tuple[int, int], object] = {(id(x), x._version): x}
    total = 0.0

    def hook(_mod, _inputs, out):
        nonlocal total
        if not isinstance(out, torch.Tensor) or out.dim() != 4 or (id(out), out._version) in seen:
            return
        seen[(id(out), out._version)] = out
        total += min_corr_eigenvalue(out[0])

    was_training = module.training
    try:
        # no_grad, not inference_mode: an inference tensor has no version counter
        with forward_hooks(module.modules(), hook), torch.no_grad():
            module.eval()(x)
    finally:
        module.train(was_training)
    return total if math.isfinite(total) else -math.inf
