"""MeCo, ZiCo and the AZ-NAS rank aggregate, each against an independent numpy / plain-torch computation of its
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
from scipy import stats
from torch import nn

import nasx
from nasx import zoo
from nasx.arch import zoo_arch
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.score import proxies
from nasx.score.aznas import AZNAS, aggregate, pool_rank
from nasx.score.base import call_score
from nasx.score.meco import meco
from nasx.score.proxies import SCORES, check_score, get_score, naswot, synflow
from nasx.score.validate import PROXIES
from nasx.score.zico import zico
from nasx.space.config import load_space
from nasx.space.sample import sample_archs

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


def test_pool_rank_and_aggregate_match_scipy_rankdata():
    rng = np.random.default_rng(0)
    for n in (1, 5, 20):
        pool = [{"a": float(v), "b": float(w)} for v, w in zip(rng.integers(0, 4, n), rng.normal(size=n), strict=True)]
        pool[0]["b"] = -math.inf  # a degenerate NASWOT value
        cand = {"a": 2.0, "b": float(rng.normal())}
        expect = sum(math.log(stats.rankdata([r[p] for r in pool] + [cand[p]])[-1] / (n + 1)) for p in cand)
        assert aggregate(cand, pool) == pytest.approx(expect, rel=1e-12)
    assert pool_rank(-math.inf, [-math.inf, 0.0]) == 1.5 and pool_rank(math.nan, [1.0]) == 1.0
    assert aggregate({"a": 9.0, "b": 9.0}, [{"a": 1.0, "b": 1.0}]) == 0.0  # better than the pool on all


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return load_space(tiny_space(tmp_path_factory.mktemp("space")))


def test_aznas_equals_its_definition_on_a_space_pool(tiny):
    score = AZNAS.from_space(tiny, SCORES, pool=4, pool_seed=7)
    assert score.key == f"meco+zico+naswot+synflow+madds:tiny16@{tiny.config_hash}:pool4:seed7"
    pool = sample_archs(tiny, 4, seed=7)
    rows = []
    for a in pool:
        torch.manual_seed(0)
        m = nasx.build(a)
        rows.append(
            [
                meco(m, a.input, 0),
                zico(m, a.input, 0),
                naswot(m, a.input, 0),
                synflow(m, a.input, 0),
                cost(a).madds,
            ]
        )
    cand = sample_archs(tiny, 1, seed=99)[0]
    torch.manual_seed(0)
    m = nasx.build(cand)
    values = [
        meco(m, cand.input, 0),
        zico(m, cand.input, 0),
        naswot(m, cand.input, 0),
        synflow(m, cand.input, 0),
        cost(cand).madds,
    ]
    expect = sum(math.log(stats.rankdata([r[i] for r in rows] + [values[i]])[-1] / 5) for i in range(5))
    got = call_score(score, m, cand, 0)
    assert got == pytest.approx(expect, rel=1e-12) and 5 * math.log(1 / 5) <= got <= 0
    assert call_score(score, m, cand, 0) == got  # deterministic; the pool is scored once
    assert len(score._pool_values) == 1


def test_aznas_refuses_without_arch_or_space(tiny):
    score = AZNAS.from_space(tiny, SCORES, pool=2)
    a = sample_archs(tiny, 1, seed=1)[0]
    with pytest.raises(NasxError, match="arch="):
        score(nasx.build(a), a.input, 0)
    with pytest.raises(NasxError, match="space"):
        get_score("aznas")
    with pytest.raises(NasxError, match="unknown proxy"):
        AZNAS(sample_archs(tiny, 1), SCORES, proxies=("naswot", "nope"))


def zoo_at_32():
    for name in zoo.names():
        arch = dataclasses.replace(zoo_arch(name), input=(3, 32, 32))
        torch.manual_seed(0)
        yield name, arch, nasx.build(arch)


def test_finite_on_every_zoo_network_at_32(tiny):
    # zico is checked directly; the aggregate's own finiteness needs only a cheap set of proxies
    pooled = AZNAS.from_space(tiny, SCORES, pool=3, proxies=("meco", "naswot", "synflow", "madds", "activations"))
    for name, arch, m in zoo_at_32():
        for fn in (meco, zico):
            assert math.isfinite(fn(m, arch.input, 0)), (name, fn.__name__)
        assert math.isfinite(call_score(pooled, m, arch, 0)), name


def test_registered_where_search_and_validate_score_find_them(tiny):
    assert SCORES["meco"] is meco and SCORES["zico"] is zico
    for name in ("meco", "zico", "aznas"):
        check_score(name)
        assert name in PROXIES
    assert get_score("meco") is meco
    assert isinstance(get_score("aznas", space=tiny), AZNAS)
    assert get_score("aznas", space=tiny) is get_score("aznas", space=tiny)  # one pool per space per process
    names = [*proxies.SCORES, *proxies.DATA_SCORES, *proxies.SPACE_SCORES]
    assert len(names) == len(set(names))  # no name in two registries
    with pytest.raises(NasxError, match="unknown score"):
        check_score("mecoo")


def test_search_objective_scores_aznas_with_the_arch(tmp_path, tiny):
    from nasx.score.cache import score_key
    from nasx.score.cached import Scorer
    from nasx.search.budgets import Budgets
    from nasx.search.objective import Objective
    from nasx.search.settings import SearchSettings
    from nasx.store.db import Store

    url = f"sqlite:///{tmp_path}/s.db"
    settings = SearchSettings(
        space=tiny, budgets=Budgets(), storage=url, score="aznas", measure_time_s=0.1, progress=False
    )
    obj = Objective(settings, Store(url))
    arch = sample_archs(tiny, 1, seed=3)[0]
    attrs = obj.evaluate_arch(arch)
    key = score_key("aznas", arch.input, obj.score_fn.key)
    assert ":pool20:" in key and math.isfinite(attrs["score"]) and attrs["score"] <= 0
    assert Store(url).get_score(arch.content_hash(), key)[0] == attrs["score"]
    # a report's reference models are scored by a Scorer given the study's space: the same pool, same value
    assert Scorer("aznas", space=tiny).score(None, arch).value == attrs["score"]


def test_aznas_pool_is_scored_once_per_storage_under_the_single_scores_keys(tmp_path, tiny, monkeypatch):
    """A second process (a fresh AZNAS) on the same storage computes its pool's proxies not again, and each
    proxy value is cached under the key a search by that proxy alone uses: one naswot search's cache serves
    aznas and the other way round."""
    from nasx.score.cached import Scorer
    from nasx.store.db import Store

    calls = []
    for p in ("naswot", "synflow"):
        fn = proxies.SCORES[p]
        monkeypatch.setitem(proxies.SCORES, p, lambda m, shape, seed, fn=fn, p=p: calls.append(p) or fn(m, shape, seed))
    store = Store(f"sqlite:///{tmp_path}/c.db")
    chosen = ("naswot", "synflow", "madds")
    first = AZNAS.from_space(tiny, SCORES, pool=3, proxies=chosen)
    a, b = sample_archs(tiny, 2, seed=5)
    assert not first.pool_cached(tiny.input, 0, store)
    value = Scorer("aznas", first).score(store, a).value
    assert len(calls) == 2 * 4  # the pool's 3 and the candidate, by each of the two network proxies
    second = AZNAS.from_space(tiny, SCORES, pool=3, proxies=chosen)
    assert second.pool_cached(tiny.input, 0, store)
    calls.clear()
    Scorer("aznas", second).score(store, b)
    assert calls == ["naswot", "synflow"]  # only the new candidate
    for arch in [*first.pool_archs, a]:
        hit = Scorer("naswot").score(store, arch)
        torch.manual_seed(0)
        assert hit.cached and hit.value == naswot(nasx.build(arch), arch.input, 0)
    assert Scorer("aznas", second).score(store, a).value == value
