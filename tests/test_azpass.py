"""AZ-NAS's terms (nasx.score.azpass): each term recomputed by hand with numpy on tiny plain-torch networks whose
maps and Jacobians are known, the caller's module untouched, seeded, zoo networks at 64x64 and a
NAS-Bench-Macro network, and networks with too few block boundaries."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from nasx import zoo
from nasx.arch import zoo_arch
from nasx.build import build_seeded
from nasx.errors import NasxError
from nasx.score import azpass, bench
from nasx.score.azpass import TERMS, az_terms
from nasx.score.proxies import SCORES


@pytest.fixture(autouse=True)
def one_thread():
    # the machine is shared: torch's default threads contend with other jobs (10x slower measured)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def entropy_by_hand(fmap: np.ndarray) -> float:
    """-sum p log p of the normalised eigenvalues of the channel covariance over every (batch, y, x)."""
    b, c, h, w = fmap.shape
    x = fmap.transpose(0, 2, 3, 1).reshape(-1, c).astype(np.float64)
    x = x - x.mean(0)
    s = np.clip(np.linalg.eigvalsh(x.T @ x / len(x)), 0, None)
    p = s / s.sum()
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def plain_net(k=2, c=4):
    """stem 1x1 conv 3 -> c, a k x k stride-k conv c -> c (its Jacobian at an output position, on its k x k
    input cell, is its kernel), global pooling and a classifier."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, c, 1, bias=False),
        nn.Conv2d(c, c, k, stride=k, bias=False),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(c, 10),
    )


def test_expressivity_and_progressivity_by_hand():
    net = plain_net()
    shape, batch, seed = (3, 16, 16), 4, 3
    got = az_terms(net, shape, seed, batch=batch, resolution=16, init=False)
    # the batch az_terms draws: N(0, 1) from a generator seeded with `seed`, the first draw
    x = torch.randn((batch, *shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        f0 = net[0](x)
        f1 = net[1](f0)
    e0, e1 = entropy_by_hand(f0.numpy()), entropy_by_hand(f1.numpy())
    assert 0 < e0 <= math.log(4) and 0 < e1 <= math.log(4)
    assert got["expressivity"] == pytest.approx(e0 + e1, rel=1e-6)
    assert got["progressivity"] == pytest.approx(e1 - e0, abs=1e-6)


def test_entropy_of_a_known_spectrum():
    # channels independent with variances 4, 1, 1, 0 (one dead): p = (2/3, 1/6, 1/6), exactly the sample's
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4096, 3))
    q, _ = np.linalg.qr(z - z.mean(0))  # orthonormal, centred columns: the sample covariance is diagonal
    cols = np.stack([2 * q[:, 0], q[:, 1], q[:, 2], np.zeros(4096)], 1) * 64
    fmap = torch.from_numpy(cols.reshape(4, 32, 32, 4).transpose(0, 3, 1, 2).copy())
    p = np.array([4, 1, 1]) / 6
    assert azpass.spectral_entropy(fmap) == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-9)
    # fewer positions than channels takes the Gram matrix: same nonzero spectrum
    wide = torch.randn(2, 50, 3, 3, generator=torch.Generator().manual_seed(1))
    assert azpass.spectral_entropy(wide) == pytest.approx(entropy_by_hand(wide.numpy()), rel=1e-9)
    assert math.isnan(azpass.spectral_entropy(torch.ones(2, 3, 4, 4)))  # a constant map has no spectrum


@pytest.mark.parametrize("k", [1, 2])
def test_trainability_is_the_spectral_norm_of_the_local_jacobian(k):
    """A linear k x k stride-k conv: its Jacobian at every output position is its kernel W (c_out x c_in k k,
    flattened in pixel_unshuffle's channel order), so M estimates W^T; with 65,536 positions one Rademacher
    sample is within a few percent of it. Kernel scaled to spectral norm 0.5: T = 2 - 0.5 - 2 = -0.5."""
    net = plain_net(k=k)
    with torch.no_grad():
        w = net[1].weight
        w /= torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2) * 2
    got = az_terms(net, (3, 32, 32), 0, batch=64 * k * k, resolution=32, init=False)["trainability"]
    assert got == pytest.approx(2 - 0.5 - 1 / 0.5, abs=0.05)


def test_trainability_exactly_as_defined():
    """The same net recomputed exactly: g_out is the generator's next draw after the batch (Rademacher),
    g_in = W^T g_out at each cell, M = mean over positions of g_in g_out^T."""
    net = plain_net(k=2)
    batch, seed = 2, 5
    got = az_terms(net, (3, 8, 8), seed, batch=batch, resolution=8, init=False)["trainability"]
    gen = torch.Generator().manual_seed(seed)
    torch.randn((batch, 3, 8, 8), generator=gen)
    g_out = (torch.randint(0, 2, (batch, 4, 4, 4), generator=gen) * 2 - 1).numpy().astype(np.float64)
    w = net[1].weight.detach().numpy().astype(np.float64).reshape(4, -1)  # (c_out, c_in * 2 * 2)
    go = g_out.transpose(0, 2, 3, 1).reshape(-1, 4)  # (positions, c_out)
    gi = go @ w  # each position's input cell gradient, in (c_in, dy, dx) order
    sigma = np.linalg.svd(gi.T @ go / len(go), compute_uv=False).max()
    assert got == pytest.approx(2 - sigma - 1 / sigma, rel=1e-6)


def test_batch_norm_runs_on_batch_statistics():
    """Train mode, as the reference: running statistics are not used, so a module whose running statistics
    are far off scores as a fresh one."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.Conv2d(8, 8, 3), nn.ReLU())
    fresh = az_terms(net, (3, 16, 16))
    net[1].running_mean.fill_(100.0)
    net[1].running_var.fill_(1e-4)
    assert az_terms(net, (3, 16, 16)) == fresh


def test_callers_module_is_untouched():
    arch = zoo_arch("mobilenet_v3_small")
    net = build_seeded(arch).eval()
    before = copy.deepcopy(net.state_dict())
    az_terms(net, arch.input, batch=4, resolution=32)
    assert not net.training and not any(m.training for m in net.modules())
    assert all(p.grad is None for p in net.parameters())
    assert all(p.requires_grad for p in net.parameters())
    after = net.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    net.train()
    grad = torch.ones_like(net[0][0].weight)
    net[0][0].weight.grad = grad
    net[-1].weight.requires_grad_(False)
    az_terms(net, arch.input, batch=4, resolution=32)
    assert all(m.training for m in net.modules())
    assert net[0][0].weight.grad is grad and bool((grad == 1).all())
    assert not net[-1].weight.requires_grad and net[0][0].weight.requires_grad
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_seeded():
    arch = bench.code_arch(bench.networks()[1234])
    net = build_seeded(arch)
    a, b, c = (az_terms(net, arch.input, seed=s, batch=4) for s in (0, 0, 1))
    assert a == b
    assert all(a[t] != c[t] for t in TERMS)


# every zoo network takes 25 s on two shared cores: one of each family (SE + hard-swish, channel split and
# shuffle, residual blocks, partial convolutions)
ZOO_SAMPLE = ("mobilenet_v3_large", "shufflenet_v2_1.0", "resnet18", "fasternet_t0")


def test_zoo_networks_at_64():
    assert set(ZOO_SAMPLE) <= set(zoo.names())
    for name in ZOO_SAMPLE:
        arch = zoo_arch(name)
        terms = az_terms(build_seeded(arch), arch.input, batch=4, resolution=64)
        assert set(terms) == set(TERMS)
        assert all(math.isfinite(v) for v in terms.values()), (name, terms)
        assert terms["trainability"] <= 0, name  # 2 - s - 1/s <= 0


def test_nas_bench_macro_network_and_registered_scores():
    code = bench.networks()[400]
    arch = bench.code_arch(code)
    net = build_seeded(arch)
    terms = az_terms(net, arch.input)  # the defaults: a 32x32 network stays at 32x32
    assert all(math.isfinite(v) for v in terms.values())
    for t in TERMS:
        assert SCORES[f"az_{t}"](net, arch.input, 0) == terms[t]


def test_default_resolution_caps_only_larger_inputs():
    assert azpass._input_shape((3, 224, 224), None) == (3, azpass.RESOLUTION, azpass.RESOLUTION)
    assert azpass._input_shape((3, 32, 32), None) == (3, 32, 32)
    assert azpass._input_shape((3, 32, 32), 48) == (3, 48, 48)


def test_too_few_boundaries():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    with pytest.raises(NasxError, match="4-D feature maps"):
        az_terms(mlp, (3, 8, 8))
    # identity and pooling children are no blocks: one boundary, the stem's
    one = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Identity(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))
    terms = az_terms(one, (3, 8, 8))
    assert math.isfinite(terms["expressivity"]) and terms["expressivity"] > 0
    assert terms["progressivity"] == terms["trainability"] == -math.inf
    with pytest.raises(NasxError, match="batch"):
        az_terms(one, (3, 8, 8), batch=1)
