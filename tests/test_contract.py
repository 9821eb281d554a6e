"""The contract every registered layer type keeps (ops and blocks), and the registries that hold them to it.

For each layer type an arch file may name: its JSON round trip is exact, every op it expands into describes
its arithmetic to nasx.measure.compare's counter rules, and its costs equal the measurements of the torch module
nasx builds (FLOPs by FlopCounterMode, parameter counts, memory traffic: tests/test_cost_vs_torch.py's
`check`), on cases drawn from test_cost_vs_torch's hypothesis strategies (a type with a default for every
field and no strategy there: at its defaults; one with a required field fails until it has a strategy).
Registering a taken name, or a field without its JSON kind, fails at class definition; a new op is one
class (the last test adds one and runs it through cost, build and compare).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from test_cost_vs_torch import (
    EXPLICIT,
    MODULES,
    SPATIAL_SPECS,
    VECTOR_SPECS,
    arch_of,
    cfg,
    channelwise_module_spec,
    check,
    pair,
)

import nasx
from nasx.arch import layer_graph
from nasx.blocks import DwsepBlock
from nasx.graph import Graph
from nasx.layers import FAMILIES, LAYER_TYPES, Block, Family, layer_from_dict, layer_to_dict, register
from nasx.measure import compare
from nasx.ops import OPS, Conv2d, Flatten, Op, Shape, Term, kind, numel, register_op

# test_cost_vs_torch's strategies by the layer type they draw (group_shuffle has one per version)
STRATEGIES: dict[str, list] = {}
for _key, _spec in SPATIAL_SPECS.items():
    STRATEGIES.setdefault(_key.removesuffix("_v1").removesuffix("_v2"), []).append(("spatial", _spec))
for _key, _spec in VECTOR_SPECS.items():
    STRATEGIES.setdefault(_key, []).append(("vector", _spec))
STRATEGIES["channelwise"].append(("spatial", channelwise_module_spec))


def default_only(type_name: str):
    """A type without a strategy is drawn at its defaults, if it has one for every field."""
    try:
        layer = LAYER_TYPES[type_name]()
    except TypeError:
        pytest.fail(
            f"layer type {type_name!r} has required fields and no hypothesis strategy: add one to "
            f"SPATIAL_SPECS or VECTOR_SPECS in tests/test_cost_vs_torch.py"
        )
    return lambda cin: st.just(layer)


def drawn_case(data, type_name: str):
    """A random valid arch holding one layer of `type_name` (after a flatten for a vector-input type)."""
    strategies = STRATEGIES.get(type_name) or [("spatial", default_only(type_name))]
    where, spec_fn = data.draw(st.sampled_from(strategies), "strategy")
    cin = data.draw(st.integers(1, 12), "cin")
    hw = data.draw(pair(2, 7), "hw")
    if where == "vector":
        layer = data.draw(spec_fn(cin * hw[0] * hw[1]), "layer")
        return layer, arch_of((cin, *hw), Flatten(), layer)
    layer = data.draw(spec_fn(cin), "layer")
    return layer, arch_of((cin, *hw), layer)


@pytest.mark.parametrize("type_name", sorted(LAYER_TYPES))
def test_layer_type_keeps_the_contract(type_name):
    @cfg(6)
    @given(st.data())
    def run(data):
        layer, arch = drawn_case(data, type_name)
        assert layer.name == type_name
        # JSON round trip, through text
        d = json.loads(json.dumps(layer_to_dict(layer)))
        again = layer_from_dict(d, "layer")
        assert again == layer and layer_to_dict(again) == d
        # every op it expands into describes its arithmetic to the counters
        for _, _, _, g in arch.graphs():
            check_terms(g)
        # costs == measurements of the built torch module (FlopCounterMode FLOPs, params, shapes, traffic)
        check(arch, f"contract-{type_name}")

    run()


def check_terms(g: Graph) -> None:
    for i, (op, inputs) in enumerate(g.nodes, 1):
        ins, out = tuple(g.shapes[j] for j in inputs), g.shapes[i]
        assert type(op).terms is not Op.terms, f"op {op.name!r} does not describe its arithmetic (Op.terms)"
        madds = op.cost(ins, out, nasx.Convention()).madds
        terms = op.terms(ins, out, madds)
        assert all(isinstance(t, Term) and t.category in compare.CATEGORIES and t.category != "other" for t in terms), (
            op.name,
            terms,
        )
        assert sum(t.madds for t in terms) == madds, f"op {op.name!r}: its terms' MAdds != its cost's"
        for t in terms:
            assert all(compare.COUNTER_RULES[c](t) is not None for c in compare.COUNTER_RULES)


def test_every_op_is_in_a_case():
    """Ops that only appear inside blocks (add, mul, concat, slice) are held to the contract through the
    blocks' cases: each registered op occurs in one of test_cost_vs_torch's explicit cases."""
    seen = set()
    for shape, *layers in list(EXPLICIT.values()) + list(MODULES.values()):
        for _, _, _, g in nasx.Arch(shape, layers=tuple(layers)).graphs():
            check_terms(g)
            seen.update(op.name for op, _ in g.nodes)
    assert seen == set(OPS)


def test_registries_hold_what_the_vocabulary_needs():
    assert set(FAMILIES) == {"standard", "dwsep", "group_shuffle", "partial", "channelwise"}
    assert all(LAYER_TYPES[cls.name] is cls and issubclass(cls, Family) for cls in FAMILIES.values())
    for cls in FAMILIES.values():
        assert [f.name for f in fields(cls)][:3] == ["out", "stride", "act"]
    layer_ops = {name for name, cls in OPS.items() if cls.layer}
    assert layer_ops == {"conv", "linear", "pconv", "cwconv", "bn", "act", "pool", "gap", "flatten", "shuffle"}
    assert layer_ops <= set(LAYER_TYPES) and not ({"add", "mul", "concat", "slice"} & set(LAYER_TYPES))


# ---- registration is checked at class definition -------------------------------------------------------


def test_registering_a_taken_name_raises():
    with pytest.raises(ValueError, match="op 'conv' is already registered by nasx.ops.conv.Conv2d"):

        @register_op
        @dataclass(frozen=True)
        class OtherConv(Op):
            name = "conv"

    with pytest.raises(ValueError, match="layer type 'dwsep' is already registered"):

        @register
        @dataclass(frozen=True)
        class OtherDwsep(Block):
            name = "dwsep"

    with pytest.raises(ValueError, match="block family 'dwsep' is already registered"):

        @register
        @dataclass(frozen=True)
        class Dwsep2(DwsepBlock):
            name = "dwsep2"

    with pytest.raises(ValueError, match="already registered"):
        LAYER_TYPES["conv"] = Conv2d  # the registries refuse plain assignment too
    assert "dwsep2" not in LAYER_TYPES and LAYER_TYPES["conv"] is Conv2d and OPS["conv"] is Conv2d


def test_a_field_without_its_kind_fails_at_class_definition():
    with pytest.raises(TypeError, match=r"NoKind\.size has no kind: declare it as field\(\.\.\., metadata=kind"):

        @register_op
        @dataclass(frozen=True)
        class NoKind(Op):
            name = "no_kind"
            size: int = 3

    with pytest.raises(TypeError, match=r"BadKind\.size has the unknown kind 'integer'"):

        @register
        @dataclass(frozen=True)
        class BadKind(Family):
            name = family = "bad_kind"
            size: int = field(default=3, metadata=kind("integer"))

    with pytest.raises(TypeError, match=r"NoFamilyName needs a class attribute `family`"):

        @register
        @dataclass(frozen=True)
        class NoFamilyName(Family):
            name = "no_family_name"

    assert not {"no_kind", "bad_kind", "no_family_name"} & (set(LAYER_TYPES) | set(OPS) | set(FAMILIES))


def test_a_new_op_is_one_class():
    """An op defined and registered in one place is loadable, costed, built and compared."""

    @register_op
    @dataclass(frozen=True)
    class Scale(Op):
        """Multiplies by a learnt per-channel scale."""

        name = "test_scale"
        quiet_flag: bool = field(default=False, metadata=kind("bool", quiet=True))

        def out_shape(self, x: Shape) -> Shape:
            return x

        def cost(self, ins, out, conv):
            return nasx.ops.Cost(madds=numel(out), ops=numel(out), params=out[0], params_folded=out[0])

        def terms(self, ins, out, madds):
            return [Term("elementwise", n_out=numel(out), detail="mul")]

        def module(self, x):
            from torch import nn

            class ScaleModule(nn.Module):
                def __init__(self):
                    super().__init__()
                    self.scale = nn.Parameter(torch.ones(x[0], 1, 1))

                def forward(self, t):
                    return t * self.scale

            return ScaleModule()

    try:
        arch = nasx.load_arch({"input": [3, 4, 4], "layers": [{"type": "conv", "out": 4}, {"type": "test_scale"}]})
        assert nasx.cost(arch).params == 3 * 9 * 4 + 2 * 4 + 4
        assert sum(p.numel() for p in nasx.build(arch).parameters()) == nasx.cost(arch).params
        assert [t.category for t in compare.census(arch)] == ["conv", "bn", "act", "elementwise"]
        assert layer_graph(arch.layers[1], (4, 4, 4)).out_shape == (4, 4, 4)
        from nasx.store.summary import layer_summary

        assert layer_summary(layer_to_dict(arch.layers[1])) == "test_scale"
    finally:
        del OPS["test_scale"], LAYER_TYPES["test_scale"]
