"""AZ-NAS's own proxies (Lee and Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search",
CVPR 2024): expressivity, progressivity and trainability, all three from ONE forward and ONE backward pass of
one random batch. `az_terms` returns the three (a future aggregate calls it once); SCORES registers each as
az_expressivity / az_progressivity / az_trainability (nasx.score.proxies).

Definitions (paper, Sec. 3; higher is better for each). A batch X of B N(0, 1) images goes through the
network at initialisation; f_0, ..., f_K are the feature maps at the block boundaries, f_k of shape
(B, C_k, H_k, W_k), f_k = F_k(f_{k-1}).

- expressivity. For each boundary, the C_k x C_k covariance Sigma_k of the channels over the B*H_k*W_k
  positions (each position's C_k-vector an observation, centred by the mean over positions, divided by
  B*H_k*W_k), its eigenvalues s_i normalised to a distribution p_i = s_i / sum_j s_j, and the entropy
  E_k = -sum_i p_i log p_i: high when the features spread over many directions, low when a few dominate.
  expressivity = sum_k E_k (deeper networks with isotropic features score higher).
- progressivity = min_k (E_k - E_{k-1}): the smallest expressivity increase from one boundary to the next
  (a network whose every block widens the spectrum scores high; one block that narrows it decides).
- trainability. For each block F_k, g_out a Rademacher (+-1) tensor shaped like f_k and g_in = J_k^T g_out
  (a vector-Jacobian product, the backward pass of <g_out, F_k(f_{k-1})>). Where the block downsamples by s,
  g_in is pixel-unshuffled by s (C_{k-1} s^2 channels on f_k's grid). M_k = (1 / B H_k W_k) sum over
  positions p of g_in(p) g_out(p)^T, a C_{k-1} s^2 x C_k matrix. What it estimates: E[g_out g_out^T] = I, so
  E[M_k] is the Jacobian of f_k(p) with respect to f_{k-1}'s cell at p (the same position), averaged over the
  positions and the batch, transposed: the block's position-local channel Jacobian. One sample of g_out adds
  zero-mean noise that shrinks as B H_k W_k grows. sigma_k = its largest singular value (spectral norm) and
  T_k = 2 - sigma_k - 1 / sigma_k <= 0, 0 exactly at sigma_k = 1 (neither exploding nor vanishing).
  trainability = mean_k T_k.
Each non-finite value (nan, a constant feature map's empty spectrum) is returned as -inf.

As implemented, and where it differs from the reference (github.com/cvlab-yonsei/AZ-NAS, ZeroShotProxy/
compute_az_nas_score.py; nasx's code is its own):
- boundaries: nasx.build returns an nn.Sequential of the stem's, each layer's and the head's modules; the
  boundaries are the outputs of the top-level children that have weights and output a 4-D map: the stem,
  every layer (an inverted residual, a residual block), the head's 1x1 conv before pooling. The reference
  takes each block's output (the ReLU after each residual block of its MobileNetV2 space, each cell of
  NAS-Bench-201), which is what one nasx layer is. Children without weights are no blocks and chain into the
  next block: global pooling (its (B, C, 1, 1) output would be a "map" of one position per image) and an
  identity layer. The pass stops at the first child whose output is not 4-D (flatten, then the classifier:
  no boundary can follow, and their weights are half an OFA subnet's). The reference gives an identity
  block T = -inf (a NAS-Bench-201 cell of skips); here an identity is the absence of a layer
  (NAS-Bench-Macro), so the network scores as the same network without it, as its accuracy lookup does.
- weights: like the reference (init=True), the module is re-initialised for the pass: every Conv and Linear
  weight Kaiming-normal (fan_in, ReLU gain), biases 0, batch/group norm affine 1 and 0, drawn under `seed`.
  The score is then a function of the architecture and the seed only. init=False scores the module's own
  weights.
- mode: train mode, as the reference (model.train()): batch norm normalises by the batch's statistics
  (which is what lets the terms see the network's structure rather than the running statistics of a fresh
  module, 0 and 1). Dropout, which the reference's networks do not have, is kept in eval mode so the pass is
  deterministic. The module's weights, running statistics and modes are restored after the pass.
- one backward pass: the reference calls autograd.grad once per block, boundary to boundary, on one graph.
  Here each block runs on a detached copy of the previous boundary, so the graph is cut at every boundary,
  and a single autograd.grad over all the blocks (each its own g_out) gives every J_k^T g_out in one
  backward pass; parameters do not require grad, so no weight gradient is computed at all.
- numerics: the covariance and its eigenvalues in float64; where B H W < C, the (B H W)-square Gram matrix
  gives the same nonzero eigenvalues cheaper. Round-off negatives are clipped to 0 and 0 log 0 = 0 (the
  reference adds 1e-8 inside the log; the difference is below 1e-6).
- downsampling by a size that does not divide (a 7x7 map to 4x4 at stride 2): g_in is zero-padded to the
  output's grid times the stride before the unshuffle (the reference's int(H_in / H_out) fails there).
- sigma_k = 0 (a block whose output does not depend on its input) gives T_k = -inf (the reference's
  1 / (sigma + 1e-6) gives about -1e6; the ranking is the same).
- a network with fewer than two boundaries: no boundary raises NasxError (nothing to score, e.g. an MLP);
  one boundary has its expressivity (E_0), and progressivity = trainability = -inf (no block to measure).
- input: `resolution` scores the network at a smaller square input than its own (any network that ends in
  global pooling runs at any size): None takes min(own side, RESOLUTION), so a 224 network runs at
  RESOLUTION and a 32x32 one at its own size. Batch and resolution are chosen by measurement (below).

Measured (python scripts/bench_azpass.py; 40 OFA-MobileNetV3 subnets, ImageNet top-1, and 40
NAS-Bench-Macro networks, CIFAR-10, at their 32x32; Kendall tau-b of each term against accuracy; seconds
per network for az_terms alone, side by side on one module, torch on 1 thread, 2 cores shared with other
jobs at load ~4; build 0.040 s per OFA subnet, 0.015 per NAS-Bench-Macro network, not included):

    OFA-MobileNetV3  batch x res  s/net   tau expr  tau prog  tau train
                       8 x 224    0.720    +0.853    const    -0.322
                      16 x 112    0.419    +0.845    +0.107   -0.155
                      16 x 64     0.218    +0.856    -0.148   +0.217
                      32 x 64     0.336    +0.843    -0.160   +0.148
                       8 x 64     0.150    +0.838    -0.094   +0.355
                       4 x 64     0.108    +0.833    -0.191   +0.373
                       8 x 32     0.103    +0.838    -0.096   +0.384
    NAS-Bench-Macro    8 x 32     0.140    +0.244    +0.166   +0.492
                      16 x 32     0.239    +0.223    +0.337   +0.590
                      32 x 32     0.437    +0.208    +0.311   +0.623

("const": the same value for all 40; at 224 the smallest step is always the stem to the first, fixed,
block.) Defaults: BATCH = 16, RESOLUTION = 64. One batch serves both truths: on NAS-Bench-Macro batch 8 is
clearly worse on progressivity and trainability (both depend on the number of positions), batch 32 gains
+0.03 on trainability at 1.8x the time. On OFA, 64x64 matches 224 on expressivity at a third of the time
(224 and 112 are over the 0.25 s budget); 16 x 64 is within it (0.218 s, 0.258 s with the build).
Trainability's OFA tau is negative where the estimate is most precise (224) and positive at few positions:
the one-sample noise of M, which grows with width, may be what ranks there; do not read it as the term.

May import: nasx.errors, nasx.build (core)."""

from __future__ import annotations

import contextlib
import math

from nasx.errors import NasxError

TERMS = ("expressivity", "progressivity", "trainability")
BATCH = 16
RESOLUTION = 64


def spectral_entropy(fmap) -> float:
    """Entropy of the normalised eigenvalue spectrum of the channel covariance of a (B, C, H, W) map."""
    import torch

    b, c, h, w = fmap.shape
    x = fmap.detach().permute(0, 2, 3, 1).reshape(b * h * w, c).double()
    x = x - x.mean(0, keepdim=True)
    n = x.shape[0]
    # X^T X and X X^T share their nonzero eigenvalues: decompose the smaller one
    gram = (x @ x.T if n < c else x.T @ x) / n
    s = torch.linalg.eigvalsh(gram).clamp_min(0)
    total = s.sum()
    if not bool(total > 0) or not bool(torch.isfinite(total)):
        return math.nan  # a constant map: no spectrum
    p = s / total
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def _unshuffle_to(g, h: int, w: int):
    """g (B, C, H_in, W_in) on an (h, w) grid: each output position's cell of the input, stacked as channels."""
    import torch.nn.functional as F

    _, _, hi, wi = g.shape
    s = max(math.ceil(hi / h), math.ceil(wi / w))
    if (hi, wi) != (h * s, w * s):
        g = F.pad(g, (0, w * s - wi, 0, h * s - hi))  # a size the stride does not divide
    return F.pixel_unshuffle(g, s) if s > 1 else g


def jacobian_term(g_in, g_out) -> float:
    """2 - sigma - 1/sigma, sigma the spectral norm of the position-averaged g_in g_out^T (see module doc)."""
    import torch

    bo, co, ho, wo = g_out.shape
    if g_in is None:  # the block's output does not depend on its input
        return -math.inf
    if g_in.shape[2:] != g_out.shape[2:]:
        if g_in.shape[2] < ho or g_in.shape[3] < wo:  # an upsampling block: the roles swap
            g_out = _unshuffle_to(g_out, *g_in.shape[2:])
        else:
            g_in = _unshuffle_to(g_in, ho, wo)
    a = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
    b = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).double()
    m = a.T @ b / a.shape[0]
    # sigma_max^2 = the largest eigenvalue of the smaller of M M^T, M^T M (an SVD costs far more on CPU)
    sigma = math.sqrt(max(float(torch.linalg.eigvalsh(m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m)[-1]), 0))
    if not sigma > 0:
        return -math.inf if sigma == 0 else math.nan
    return 2 - sigma - 1 / sigma


def _initialise(net, gen) -> None:
    """The reference's initialisation: Kaiming normal (fan_in, ReLU) weights, zero biases, norms 1 and 0."""
    import torch
    from torch import nn

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu", generator=gen)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm)) and m.affine:
                m.weight.fill_(1)
                m.bias.zero_()


def _input_shape(input_shape, resolution):
    c, *hw = input_shape
    if resolution is None:
        return (c, *(min(v, RESOLUTION) for v in hw))
    return (c, resolution, resolution)


def boundaries_and_grads(net, x, gen, init: bool = True):
    """Run the nn.Sequential `net` on x, cutting the graph at every boundary; one backward pass. Returns the
    boundary maps [f_0..f_K] and [(J_k^T g_k, g_k) for k = 1..K]. Each child is re-initialised (init) just
    before it runs; the pass stops at the first child whose output is not a 4-D tensor (the classifier after
    flatten), which is neither run nor initialised (half the weights of an OFA subnet)."""
    import torch

    feats, leaves = [], []
    h = x
    for child in net.children():
        if init:
            _initialise(child, gen)
        h = child(h)
        if not isinstance(h, torch.Tensor) or h.dim() != 4:
            break  # the classifier: no map follows
        if next(child.parameters(), None) is None:
            continue  # a child without weights (identity, pooling): no block
        feats.append(h)
        # the next block runs on a copy that is a leaf of its own graph: the backward of each block stops at
        # its input, and the map kept for expressivity cannot be changed in place by the next block
        leaf = h.detach().requires_grad_()
        leaves.append(leaf)
        h = leaf.clone()
    if not feats:
        raise NasxError("AZ-NAS's terms need 4-D feature maps at block boundaries: this network makes none")
    # blocks 1..K: output feats[k], input leaves[k - 1]
    outs = [(k, f) for k, f in enumerate(feats) if k > 0 and f.requires_grad]
    g_outs = {k: (torch.randint(0, 2, f.shape, generator=gen) * 2 - 1).to(f.dtype) for k, f in enumerate(feats) if k}
    grads = {}
    if outs:
        ins = [leaves[k - 1] for k, _ in outs]
        res = torch.autograd.grad([f for _, f in outs], ins, [g_outs[k] for k, _ in outs], allow_unused=True)
        grads = {k: g for (k, _), g in zip(outs, res, strict=True)}
    return feats, [(grads.get(k), g_outs[k]) for k in range(1, len(feats))]


@contextlib.contextmanager
def _restored(module):
    """The module's parameters, buffers, requires_grad and train/eval flags as they were, after the block.
    Cheaper than a deep copy (a third of the pass's time on an OFA subnet at 64x64, measured): the values are
    cloned, the modules are not."""
    import torch

    saved = {k: v.clone() for k, v in module.state_dict().items()}
    modes = [(m, m.training) for m in module.modules()]
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        yield module
    finally:
        with torch.no_grad():
            for k, v in module.state_dict().items():
                v.copy_(saved[k])
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            p.requires_grad_(flag)


def az_terms(module, input_shape, seed: int = 0, batch: int = BATCH, resolution=None, init: bool = True) -> dict:
    """{'expressivity', 'progressivity', 'trainability'} of `module` (an nn.Sequential, as nasx.build makes)
    from one forward and one backward pass of a batch of `batch` N(0, 1) images drawn under `seed`. The
    module's weights, buffers, gradients and modes are as they were afterwards. See the module docstring."""
    import torch
    from torch import nn

    if batch < 2:
        raise NasxError("AZ-NAS's terms run batch norm on the batch's statistics: batch must be at least 2")
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn((batch, *_input_shape(input_shape, resolution)), generator=gen)
    with _restored(module) as net:
        # no parameter requires grad: the backward computes input gradients only, and no .grad is touched
        for p in net.parameters():
            p.requires_grad_(False)
        net.train()
        for m in net.modules():
            if isinstance(m, nn.modules.dropout._DropoutNd):
                m.eval()
        feats, grads = boundaries_and_grads(net, x, gen, init)
    # the matrices are small (at most a few hundred rows): threads gain nothing there, and on a shared
    # machine torch's two threads made eigvalsh 10 to 100 times slower than one (measured)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        entropies = [spectral_entropy(f) for f in feats]
        jac = [jacobian_term(g_in, g_out) for g_in, g_out in grads]
    finally:
        torch.set_num_threads(threads)
    out = {
        "expressivity": sum(entropies),
        "progressivity": min((b - a for a, b in zip(entropies, entropies[1:])), default=-math.inf),
        "trainability": sum(jac) / len(jac) if jac else -math.inf,
    }
    return {k: v if math.isfinite(v) else -math.inf for k, v in out.items()}


def term_score(term: str):
    """A SCORES function (module, input_shape, seed) -> az_terms(...)[term]."""

    def score(module, input_shape, seed: int = 0) -> float:
        return az_terms(module, input_shape, seed)[term]

    score.__name__ = score.__qualname__ = f"az_{term}"
    score.__doc__ = f"AZ-NAS's {term} (nasx.score.azpass), one forward/backward pass at the default batch/input."
    return score
