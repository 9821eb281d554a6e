"""The default score, capacity: equal to its definition computed from the built torch module (MAdds from
torch's FlopCounterMode, activations from forward hooks, depth from the networks' published layer counts and
the conv/linear modules of plain chains), the same value for one network whatever config, storage or search
scores it, scoring a network of a space nasx does not ship, its spreads those the named samples give, and the
default of `nasx search` and `nasx score`."""

import math

import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasx
from nasx.arch import zoo_arch
from nasx.cli.main import main
from nasx.score import capacity as cap
from nasx.score.cached import Scorer
from nasx.search.budgets import Budgets
from nasx.search.objective import Objective
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space, parse_space
from nasx.store.db import Store

# the layer counts the networks are named for, or their papers' tables: conv and fully connected layers on the
# longest path (MobileNetV1: 27 conv + 1 fc; MobileNetV2: stem, 17 bottlenecks of 3 convs but the first of 2,
# the last 1x1 conv, fc)
PUBLISHED_DEPTH = {"resnet18": 18, "resnet50": 50, "mobilenet_v1": 28, "mobilenet_v2": 53}


def torch_counts(arch):
    """(MAdds, activations) of the built module, measured by torch: FlopCounterMode's FLOPs / 2, and the
    output elements of every Conv2d and Linear seen by forward hooks."""
    torch.manual_seed(0)
    model = nasx.build(arch).eval()
    outputs = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, out: outputs.append(out.numel()))
        for m in model.modules()
        if isinstance(m, nn.Conv2d | nn.Linear)
    ]
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, *arch.input))
    for h in hooks:
        h.remove()
    return counter.get_total_flops() // 2, sum(outputs)


@pytest.mark.parametrize("name", ["mobilenet_v2", "shufflenet_v2_1.0", "resnet18", "fasternet_t0"])
def test_capacity_is_its_definition_on_counts_torch_measures(name):
    arch = zoo_arch(name)
    madds, activations = torch_counts(arch)
    depth = PUBLISHED_DEPTH.get(name, nasx.cost(arch).depth)
    expect = (
        math.log(madds) / cap.SPREADS["madds"]
        + math.log(activations) / cap.SPREADS["activations"]
        + math.log(depth) / cap.SPREADS["depth"]
    )
    assert cap.TERMS == ("madds", "activations", "depth")
    assert cap.capacity(None, arch.input, 0, arch=arch) == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("name", sorted(PUBLISHED_DEPTH))
def test_depth_equals_the_published_layer_count(name):
    assert nasx.cost(name).depth == PUBLISHED_DEPTH[name]


def test_depth_of_a_chain_is_its_conv_and_linear_modules():
    # without branches every weighted module lies on the one path
    for name in ("mobilenet_v1",):
        model = nasx.build(zoo_arch(name))
        n = sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules())
        assert nasx.cost(name).depth == n
    # a residual block's shortcut adds no layer to the longest path: resnet18's 3 projection convs are off it
    model = nasx.build(zoo_arch("resnet18"))
    assert sum(isinstance(m, nn.Conv2d | nn.Linear) for m in model.modules()) == 18 + 3


def test_one_network_one_value_whatever_config_storage_or_search(tmp_path):
    """A function of the network alone: the same architecture scored from two configs' searches, two
    storages, `nasx score` and the bare function gives one value; a space nasx does not ship scores too."""
    own = tmp_path / "own.yaml"
    own.write_text(load_space("cifar32").text.replace("name: cifar32", "name: own"))
    arch = load_space("cifar32").random_arch(__import__("random").Random(4))
    values = []
    for config, db in ((load_space("cifar32"), "a.db"), (parse_space(own.read_text(), str(own)), "b.db")):
        url = f"sqlite:///{tmp_path}/{db}"
        settings = SearchSettings(space=config, budgets=Budgets(), storage=url, measure_time_s=0.1, progress=False)
        assert settings.score == "capacity"
        values.append(Objective(settings, Store(url)).scorer.score(Store(url), arch).value)
    values.append(Scorer("capacity").score(None, arch).value)
    values.append(cap.capacity(None, arch.input, 0, arch=arch))
    assert len(set(values)) == 1 and math.isfinite(values[0])
    # order among any networks follows from the values: a bigger network (wider everywhere) scores higher
    wide = nasx.Arch.from_dict({**zoo_arch("mobilenet_v2_1.4").to_dict()})
    assert cap.capacity(None, wide.input, 0, arch=wide) > cap.capacity(
        None, (3, 224, 224), 0, arch=zoo_arch("mobilenet_v2")
    )


def test_nasx_score_defaults_to_capacity_and_opens_no_database(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["score", "mobilenet_v2", "--json"]) == 0
    row = __import__("json").loads(capsys.readouterr().out)[0]
    arch = zoo_arch("mobilenet_v2")
    assert row["score_name"] == "capacity"
    assert row["score"] == cap.capacity(None, arch.input, 0, arch=arch)
    assert not (tmp_path / "studies").exists()  # a free score reads no cache


def test_spreads_are_what_their_named_samples_give():
    """The shipped constants are the label-free statistic scripts/score_spreads.py prints: a change to a
    space or to the sampler that moved them must come with a new VERSION, never a silent change of value."""
    import statistics

    from nasx.cost import cost
    from nasx.space.sample import sample_archs

    for term in cap.TERMS:
        per_space = []
        for name in cap.SPREAD_SPACES:
            logs = [math.log(getattr(cost(a), term)) for a in sample_archs(load_space(name), 200, seed=0)]
            per_space.append(statistics.pstdev(logs))
        assert statistics.fmean(per_space) == pytest.approx(cap.SPREADS[term], abs=6e-4), term
    assert cap.VERSION in cap.capacity.key


def test_a_free_score_neither_waits_for_the_host_lock_nor_writes_a_cache_row(tmp_path, monkeypatch):
    """capacity builds nothing: waiting for another process's timing to finish (the host lock) would put
    that process's measurement into this search's score time, and a cache row per trial is a write for
    microseconds of arithmetic."""
    import nasx.score.cache

    def no_lock(*args, **kwargs):
        raise AssertionError("a free score took the host lock")

    monkeypatch.setattr(nasx.score.cache, "host_lock", no_lock)
    store = Store(f"sqlite:///{tmp_path}/c.db")
    arch = zoo_arch("mobilenet_v2")
    assert Scorer("capacity").score(store, arch).value == cap.capacity(None, arch.input, 0, arch=arch)
    assert store.get_score(arch.content_hash(), Scorer("capacity").key(arch.input)) is None
