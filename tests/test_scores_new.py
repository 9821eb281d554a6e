"""MeCo and ZiCo, each against an independent numpy / plain-torch computation of its
paper's formula on a small hand-written torch network (not built by nasx), deterministic under a seed, finite
on every zoo network at 3x32x32, and registered where `nasx search --score` and validate-score find them."""

import copy
import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from accuracy_fixtures import tiny_space
from torch import nn

import nasx
from nasx import zoo
from nasx.arch import zoo_arch
from nasx.errors import NasxError
from nasx.score import proxies
from nasx.score.meco import meco
from nasx.score.proxies import SCORES, check_score, get_score
from nasx.score.validate import PROXIES
from nasx.score.zico import zico
from nasx.space.config import load_space

SHAPE = (3, 12, 12)


class Small(nn.Module):
    """conv-relu, a (conv-relu in place) block in a Sequential, conv, identity, batch norm, GAP, linear."""

    def __init__(self, classes=7):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.relu1 = nn.ReLU()
        # in place, as nasx builds its activations
        self.block = nn.Sequential(nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.conv3 = nn.Conv2d(6, 5, 3, padding=1, bias=False)
        self.same = nn.Identity()
        self.bn = nn.BatchNorm2d(5)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, classes)

    def forward(self, x):
        x = self.bn(self.same(self.conv3(self.block(self.relu1(self.conv1(x))))))
        return self.fc(self.pool(x).flatten(1))


def small(seed=0):
    torch.manual_seed(seed)
    return Small()


def plain_feature_maps(net, x):
    """Each distinct 4-D feature map of Small, computed by hand (no hooks)."""
    with torch.no_grad():
        c1 = net.conv1(x)
        r1 = torch.relu(c1)
        c2 = net.block[0](r1)
        r2 = torch.relu(c2)
        c3 = net.conv3(r2)
        b = nn.functional.batch_norm(
            c3, net.bn.running_mean, net.bn.running_var, net.bn.weight, net.bn.bias, training=False, eps=net.bn.eps
        )
        p = b.mean((2, 3), keepdim=True)
    return [c1, r1, c2, r2, c3, b, p]


def meco_by_hand(net, seed=0):
    """sum of lambda_min of np.corrcoef over channels, nan -> 0 as the reference implementation does."""
    x = torch.randn((1, *SHAPE), generator=torch.Generator().manual_seed(seed))
    total = 0.0
    for f in plain_feature_maps(net, x):
        a = f[0].reshape(f.shape[1], -1).double().numpy()
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a 1 x 1 map: one observation per channel
            corr = np.atleast_2d(np.corrcoef(a))
        corr[~np.isfinite(corr)] = 0
        total += float(np.linalg.eigvalsh(corr).min())
    return total


def test_meco_matches_the_formula_by_hand():
    net = small()
    by_hand = meco_by_hand(net)
    assert by_hand > 0.05  # some layers have more positions than channels: a non-trivial check
    assert meco(net, SHAPE, 0) == pytest.approx(by_hand, rel=1e-9, abs=1e-9)
    assert meco(net, SHAPE, 3) == pytest.approx(meco_by_hand(net, 3), rel=1e-9, abs=1e-9)


def test_meco_counts_an_in_place_activation_as_its_out_of_place_twin():
    net = small()
    twin = copy.deepcopy(net)
    twin.block[1] = nn.ReLU()
    assert meco(net, SHAPE, 0) == meco(twin, SHAPE, 0)


def test_meco_singular_and_dead_maps_give_zero():
    from nasx.score.meco import min_corr_eigenvalue

    g = torch.Generator().manual_seed(1)
    assert min_corr_eigenvalue(torch.randn(8, 2, 2, generator=g)) == 0.0  # 8 channels, 4 positions
    dead = torch.randn(3, 5, 5, generator=g)
    dead[1] = 0
    assert min_corr_eigenvalue(dead) == 0.0
    a = torch.randn(3, 5, 5, generator=g)
    assert min_corr_eigenvalue(a) == pytest.approx(np.linalg.eigvalsh(np.corrcoef(a.reshape(3, -1).numpy())).min())


def test_meco_leaves_the_module_as_it_was():
    net = small().train()
    before = copy.deepcopy(net.state_dict())
    meco(net, SHAPE, 0)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def zico_by_hand(net, seed=0, batch=8, batches=2):
    """Per-batch weight gradients by torch.autograd.grad on a copy in train mode, then numpy: per conv/linear
    layer log(sum over weights with std > 0 of mean|g| / std(g)), summed."""
    net = copy.deepcopy(net).train()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    gen = torch.Generator().manual_seed(seed)
    grads = []
    for _ in range(batches):
        x = torch.randn((batch, *SHAPE), generator=gen)
        logits = net(x)
        y = torch.randint(logits.shape[1], (batch,), generator=gen)
        loss = -torch.log_softmax(logits, 1)[torch.arange(batch), y].mean()
        grads.append([g.reshape(-1).double().numpy() for g in torch.autograd.grad(loss, [m.weight for m in layers])])
    total = 0.0
    for i in range(len(layers)):
        g = np.stack([b[i] for b in grads])
        if batches == 2:  # closed form: mean|g| / std = (|g1| + |g2|) / |g1 - g2|
            d = np.abs(g[0] - g[1])
            ratio = (np.abs(g[0]) + np.abs(g[1]))[d > 0] / d[d > 0]
        else:
            sd = g.std(axis=0)
            ratio = np.abs(g).mean(axis=0)[sd > 0] / sd[sd > 0]
        if ratio.sum() > 0:
            total += math.log(ratio.sum())
    return total


@pytest.mark.parametrize("batch, batches", [(8, 2), (4, 3)])
def test_zico_matches_the_formula_by_hand(batch, batches):
    net = small()
    assert zico(net, SHAPE, 0, batch=batch, batches=batches) == pytest.approx(
        zico_by_hand(net, 0, batch, batches), rel=1e-6
    )


def test_zico_leaves_the_module_untouched_and_needs_two_batches():
    net = small().eval()
    before = copy.deepcopy(net.state_dict())
    zico(net, SHAPE, 0)
    assert not net.training and all(p.grad is None for p in net.parameters())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # running stats too
    with pytest.raises(ValueError):
        zico(net, SHAPE, 0, batches=1)


def test_zico_of_a_network_without_gradient_signal_is_minus_inf():
    net = small()
    with torch.no_grad():
        net.fc.weight.zero_()  # nothing reaches the convs; fc's gradient differs by batch, zero it too
    net.fc.weight.requires_grad_(False)
    assert zico(net, SHAPE, 0) == -math.inf


@pytest.mark.parametrize("fn", [meco, zico])
def test_deterministic_under_a_seed(fn):
    net = small()
    assert fn(net, SHAPE, 0) == fn(net, SHAPE, 0) == fn(small(), SHAPE, 0)
    assert fn(net, SHAPE, 0) != fn(net, SHAPE, 1)


def test_zico_deterministic_with_dropout():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Dropout(0.5), nn.Flatten(), nn.Linear(400, 5))
    assert zico(net, SHAPE, 0) == zico(net, SHAPE, 0)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_space(tiny_space(tmp_path_factory.mktemp("space")))


def zoo_at_32():
    for name in zoo.names():
        arch = dataclasses.replace(zoo_arch(name), input=(3, 32, 32))
        torch.manual_seed(0)
        yield name, arch, nasx.build(arch)


def test_finite_on_every_zoo_network_at_32():
    for name, arch, m in zoo_at_32():
        for fn in (meco, zico):
            assert math.isfinite(fn(m, arch.input, 0)), (name, fn.__name__)


def test_registered_where_search_and_validate_score_find_them():
    assert SCORES["meco"] is meco and SCORES["zico"] is zico
    for name in ("meco", "zico", "capacity"):
        check_score(name)
        assert name in PROXIES
    assert get_score("meco") is meco
    names = [*proxies.SCORES, *proxies.DATA_SCORES]
    assert len(names) == len(set(names))  # no name in two registries
    with pytest.raises(NasxError, match="unknown score"):
        check_score("mecoo")
