"""Activations nasx builds in place (issue "Latency as deployed": out-of-place clamps cost MobileNetV2 5-13%).

An activation fused into an op works in place (its input is the op's own fresh tensor); a stand-alone one
only when its graph shows nothing else needs its input (nasx.graph.Graph.overwritable). Checked: for every
zoo network and every block-family case of tests/test_cost_vs_torch.py, the built module's output is
bit-identical to the same module with every activation switched out of place (same weights, same input),
the backward pass runs (synflow and training use gradients) and gives the same gradients; the activations
after a conv+BN in MobileNetV2 and MobileNetV3 are in place; and the fan-out rules of Graph.overwritable.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch
from test_cost_vs_torch import EXPLICIT, MODULES
from torch import nn

import nasx
from nasx import zoo
from nasx.graph import Graph
from nasx.measure.compare import census
from nasx.ops import ACTIVATION_FNS, Activation, Add, ChannelSlice, Concat, Conv2d, Flatten, GlobalAvgPool
from nasx.score.proxies import synflow


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def out_of_place(model: nn.Module) -> nn.Module:
    twin = copy.deepcopy(model)
    for m in twin.modules():
        if getattr(m, "inplace", False):
            m.inplace = False
    return twin


def inplace_count(model: nn.Module) -> int:
    return sum(1 for m in model.modules() if getattr(m, "inplace", False))


def same_as_out_of_place(arch: nasx.Arch) -> None:
    torch.manual_seed(0)
    model = nasx.build(arch)
    twin = out_of_place(model)
    acts = {t.detail for t in census(arch) if t.category == "act"}  # all fused into an op in these archs
    assert (inplace_count(model) > 0) == any(ACTIVATION_FNS[a].inplace for a in acts)
    x = torch.randn(2, *arch.input)
    with torch.no_grad():
        assert torch.equal(model.eval()(x), twin.eval()(x))
    # training mode: the backward pass runs (no "modified by an inplace operation") and agrees
    grads = []
    for m in (model.train(), twin.train()):
        m.zero_grad()
        m(x).square().sum().backward()
        grads.append([p.grad for p in m.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))
    assert synflow(model, arch.input) == synflow(twin, arch.input)


# zoo networks at 64 x 64 (every one still reaches its head) to keep the test short on two cores
@pytest.mark.parametrize("name", zoo.names())
def test_zoo_network_matches_out_of_place_build(name):
    arch = dataclasses.replace(nasx.load_arch(name), input=(3, 64, 64))
    same_as_out_of_place(arch)


BLOCK_CASES = {
    name: case
    for name, case in {**EXPLICIT, **MODULES}.items()
    if any(isinstance(layer, nasx.layers.Block) for layer in case[1:])
}


@pytest.mark.parametrize("name", list(BLOCK_CASES))
def test_block_matches_out_of_place_build(name):
    shape, *layers = BLOCK_CASES[name]
    same_as_out_of_place(nasx.Arch(shape, layers=tuple(layers)))


def fused_acts(model: nn.Module) -> list[nn.Module]:
    """The activations right after a conv + BN (a Sequential conv, BN, act)."""
    found = []
    for m in model.modules():
        kids = list(m.children()) if isinstance(m, nn.Sequential) else []
        if len(kids) == 3 and isinstance(kids[0], nn.Conv2d) and isinstance(kids[1], nn.BatchNorm2d):
            found.append(kids[2])
    return found


def test_mobilenet_activations_after_conv_bn_are_in_place():
    v2 = fused_acts(nasx.build("mobilenet_v2"))
    assert len(v2) == 35 and all(isinstance(a, nn.ReLU6) and a.inplace for a in v2)
    v3 = fused_acts(nasx.build("mobilenet_v3_large"))
    assert {type(a) for a in v3} == {nn.ReLU, nn.Hardswish} and all(a.inplace for a in v3)


def test_hsigmoid_and_functions_without_an_inplace_form_stay_out_of_place():
    """NASWOT reads an activation's input in a forward hook, after an in-place module overwrote it: only
    functions positive exactly where their input is may work in place (hsigmoid(-1) > 0)."""
    model = nasx.build(
        {"input": [4, 4, 4], "layers": [{"type": "conv", "out": 4, "act": a} for a in ("hsigmoid", "sigmoid", "gelu")]}
    )
    assert inplace_count(model) == 0


# ---- Graph.overwritable: which stand-alone activations may write over their input ---------------------


def graph(*nodes) -> Graph:
    g = Graph((4, 6, 6))
    for op, *inputs in nodes:
        g.add(op, *inputs)
    return g


BARE = Conv2d(4, bn=False, act=None)
FAN_OUT = {
    "after a bare conv": ([(BARE, 0), (Activation("hswish"), 1)], [False, True]),
    "the layer's input": ([(Activation("relu"), 0)], [False]),
    "a residual's input": ([(BARE, 0), (Activation("relu"), 1), (Add(), 1, 2)], [False, False, False]),
    "read again later": ([(BARE, 0), (Activation("relu"), 1), (Conv2d(4), 1)], [False, False, False]),
    "after a ReLU, which autograd keeps": ([(Conv2d(4, act="relu"), 0), (Activation("silu"), 1)], [False, False]),
    "a second activation after an in-place one that keeps its output": (
        [(BARE, 0), (Activation("relu"), 1), (Activation("silu"), 2)],
        [False, True, False],
    ),
    "a second activation after hswish": (
        [(BARE, 0), (Activation("hswish"), 1), (Activation("relu"), 2)],
        [False, True, True],
    ),
    "a view of a conv nothing else reads": (
        [(BARE, 0), (ChannelSlice(0, 2), 1), (Activation("relu"), 2)],
        [False, False, True],
    ),
    "a view of the layer's input": ([(ChannelSlice(0, 2), 0), (Activation("relu"), 1)], [False, False]),
    "one slice of a conv another slice reads": (
        [(BARE, 0), (ChannelSlice(0, 2), 1), (ChannelSlice(2, 4), 1), (Activation("relu"), 3), (Concat(), 2, 4)],
        [False, False, False, False, False],
    ),
    "a view that is the result": ([(BARE, 0), (Activation("relu"), 1), (Flatten(), 1)], [False, False, False]),
    "after a pool": ([(GlobalAvgPool(), 0), (Activation("relu"), 1)], [False, True]),
}


@pytest.mark.parametrize("name", list(FAN_OUT))
def test_overwritable(name):
    nodes, expected = FAN_OUT[name]
    g = graph(*nodes)
    assert g.overwritable() == expected
    torch.manual_seed(0)
    module = g.module()
    modules = list(module.ops) if len(g.nodes) > 1 else [module]
    assert [getattr(m, "inplace", False) for m in modules] == expected
    twin = out_of_place(module)
    x = torch.randn(2, 4, 6, 6, requires_grad=True)
    x_before = x.detach().clone()
    y, y_twin = module(x), twin(x)
    assert torch.equal(y, y_twin) and torch.equal(x.detach(), x_before)
    y.square().sum().backward()  # no in-place error
