"""nasx's analytic costs against measurements of the torch module nasx builds from the same arch.

For every op layer type and every block family mode, random small archs are built and run (batch 1, eval
mode) and five numbers are checked against independent references:
  (i)   torch.utils.flop_counter.FlopCounterMode total == 2 * nasx MAdds == nasx "flops" ops
  (ii)  sum of the module's parameter numel == nasx params
  (iii) the real output shape (and every layer's) == nasx's shape
  (iv)  the hook-based memory-traffic counter (tests/memtraffic.py) == nasx MAC elements, per layer
  (v)   summed output numel of conv / linear kernels, measured by hooks == nasx activations
  and, from the same counter, the parameters read after BN folding == nasx params_folded.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import memtraffic
import pytest
import torch
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import nasx
from nasx.arch import layer_graph
from nasx.blocks import ChannelwiseBlock, DwsepBlock, GroupShuffleBlock, PartialBlock, StandardBlock
from nasx.layers import SqueezeExcite
from nasx.ops import (
    ACTIVATIONS,
    Activation,
    BatchNorm,
    ChannelShuffle,
    ChannelwiseConv,
    Conv2d,
    Flatten,
    GlobalAvgPool,
    Linear,
    PartialConv,
    Pool,
)


def cfg(n: int):
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


VALID = Counter()  # valid archs checked, by mode (see `generated`)


# ---- the check ----------------------------------------------------------------------------------------


def arch_of(input_shape, *layers) -> nasx.Arch:
    """An Arch, or a hypothesis rejection when nasx refuses the random settings (ArchError)."""
    arch = nasx.Arch(tuple(input_shape), layers=tuple(layers))
    try:
        arch.graphs()
    except nasx.ArchError as e:
        note(f"rejected: {e}")
        assume(False)
    return arch


def check(arch: nasx.Arch, tag: str) -> None:
    VALID[tag] += 1
    if currently_in_test_context():
        note(f"arch: {arch.to_json(indent=None)}")
    report = nasx.cost(arch)
    torch.manual_seed(0)
    model = nasx.build(arch).eval()
    x = torch.randn(1, *arch.input)

    shapes = {}
    handles = [
        m.register_forward_hook(lambda m, a, y, name=name: shapes.__setitem__(name, tuple(y.shape[1:])))
        for name, m in model.named_children()
    ]
    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        y = model(x)
    for h in handles:
        h.remove()

    # (i) FLOPs
    assert flops.get_total_flops() == 2 * report.madds == nasx.cost(arch, "flops").total.ops
    # (ii) params
    assert sum(p.numel() for p in model.parameters()) == report.params
    # (iii) output shape, per layer and in total
    assert tuple(y.shape[1:]) == tuple(arch.out_shape)
    assert shapes == {f"{r.section}{r.index}": tuple(r.out_shape) for r in report.layers}
    # (iv) memory traffic, per layer and in total
    traffic = memtraffic.measure(model, x)
    measured = traffic.by_layer()
    assert {f"{r.section}{r.index}": measured.get(f"{r.section}{r.index}", 0) for r in report.layers} == {
        f"{r.section}{r.index}": r.cost.mac for r in report.layers
    }
    assert traffic.mac == report.mac
    # (v) activations (RegNet): output elements of conv / linear kernels
    assert traffic.activations == report.activations
    # and the parameters an inference engine reads once BN is folded == nasx's folded parameter count
    assert traffic.params_read == report.total.params_folded


# ---- strategies: one per layer type, given the input channel count ------------------------------------

acts = st.sampled_from(ACTIVATIONS)
opt_acts = st.one_of(st.none(), acts)
small = st.integers(1, 3)
odd_kernel = st.sampled_from((1, 3, 5))
ratios = st.one_of(st.sampled_from((0.25, 0.5, 1.0)), st.floats(0.05, 1.0))


def pair(lo, hi):
    return st.tuples(st.integers(lo, hi), st.integers(lo, hi))


@st.composite
def conv_spec(draw, cin):
    divisors = [g for g in range(1, 4) if cin % g == 0]
    g = draw(st.sampled_from(divisors))
    return Conv2d(
        out=g * draw(small),
        kernel=draw(pair(1, 4)),
        stride=draw(pair(1, 3)),
        padding=draw(st.one_of(st.just("same"), pair(0, 2))),
        dilation=draw(pair(1, 2)),
        groups=g,
        bias=draw(st.booleans()),
        bn=draw(st.booleans()),
        act=draw(opt_acts),
    )


@st.composite
def pool_spec(draw, cin):
    k = draw(st.integers(1, 4))
    return Pool(draw(st.sampled_from(("max", "avg"))), k, draw(st.integers(1, 3)), draw(st.integers(0, k // 2)))


@st.composite
def shuffle_spec(draw, cin):
    return ChannelShuffle(draw(st.sampled_from([g for g in range(1, 5) if cin % g == 0])))


@st.composite
def pconv_spec(draw, cin):
    return PartialConv(draw(odd_kernel), draw(ratios))


@st.composite
def cwconv_spec(draw, cin):
    g = draw(st.sampled_from([g for g in range(1, 4) if cin % g == 0]))
    return ChannelwiseConv(draw(st.integers(1, max(1, cin // g))), g, draw(st.booleans()), draw(opt_acts))


@st.composite
def se_spec(draw, cin):
    return SqueezeExcite(draw(ratios), draw(st.one_of(st.none(), st.integers(1, 6))), draw(acts), draw(acts))


@st.composite
def standard_spec(draw, cin):
    return StandardBlock(
        out=draw(st.integers(1, 12)),
        stride=draw(st.sampled_from((1, 2))),
        kernel=draw(st.sampled_from((1, 2, 3, 5))),
        layout=draw(st.sampled_from(("single", "basic", "bottleneck"))),
        bottleneck_ratio=draw(st.sampled_from((0.25, 0.5, 1.0))),
        act=draw(acts),
        residual=draw(st.booleans()),
    )


@st.composite
def dwsep_spec(draw, cin):
    se = draw(st.sampled_from((0.0, 0.0, 0.25, 0.5)))
    return DwsepBlock(
        out=draw(st.integers(1, 12)),
        stride=draw(st.sampled_from((1, 2))),
        kernel=draw(odd_kernel),
        expansion=draw(st.sampled_from((1.0, 1.0, 0.5, 2.0, 3.0))),
        mid=draw(st.one_of(st.none(), st.integers(1, 12))),
        act=draw(acts),
        linear=draw(st.booleans()),
        se=se,
        se_mid=draw(st.one_of(st.none(), st.none(), st.integers(1, 4))),
        se_gate=draw(acts),
        residual=draw(st.booleans()),
    )


@st.composite
def group_shuffle_v1_spec(draw, cin):
    """Constructed to satisfy the divisibility rules most of the time (out, out*ratio, out-in by g)."""
    g = draw(st.integers(1, 3))
    ratio = draw(st.sampled_from((0.25, 0.5, 1.0)))
    mid = g * draw(st.integers(1, 2))
    out = round(mid / ratio)
    stride = draw(st.sampled_from((1, 2)))
    return GroupShuffleBlock(
        out=out if stride == 2 or draw(st.booleans()) else g * draw(st.integers(1, 4)),
        stride=stride,
        kernel=draw(odd_kernel),
        groups=g,
        version=1,
        bottleneck_ratio=ratio,
        group_first=draw(st.booleans()),
        act=draw(acts),
    )


@st.composite
def group_shuffle_v2_spec(draw, cin):
    out = cin if draw(st.booleans()) else 2 * draw(st.integers(1, 6))
    return GroupShuffleBlock(
        out=out, stride=draw(st.sampled_from((1, 2))), kernel=draw(odd_kernel), version=2, act=draw(acts)
    )


@st.composite
def partial_spec(draw, cin):
    return PartialBlock(
        out=cin if draw(st.booleans()) else draw(st.integers(1, 12)),
        stride=draw(st.sampled_from((1, 2))),
        kernel=draw(odd_kernel),
        ratio=draw(ratios),
        expansion=draw(st.sampled_from((0.5, 1.0, 2.0, 3.0))),
        act=draw(acts),
    )


@st.composite
def channelwise_spec(draw, cin):
    g = draw(st.integers(1, 3))
    out = cin if draw(st.booleans()) else g * draw(st.integers(1, 5))
    return ChannelwiseBlock(
        out=out,
        stride=draw(st.sampled_from((1, 2))),
        kernel=draw(odd_kernel),
        dc=draw(st.integers(1, max(1, out // g))),
        groups=g,
        act=draw(acts),
    )


SPATIAL_SPECS = {  # layer types that take a (C, H, W) input
    "conv": conv_spec,
    "bn": lambda cin: st.just(BatchNorm()),
    "act": lambda cin: st.builds(Activation, acts),
    "pool": pool_spec,
    "gap": lambda cin: st.just(GlobalAvgPool()),
    "flatten": lambda cin: st.just(Flatten()),
    "shuffle": shuffle_spec,
    "pconv": pconv_spec,
    "cwconv": cwconv_spec,
    "se": se_spec,
    "standard": standard_spec,
    "dwsep": dwsep_spec,
    "group_shuffle_v1": group_shuffle_v1_spec,
    "group_shuffle_v2": group_shuffle_v2_spec,
    "partial": partial_spec,
    "channelwise": channelwise_spec,
}
VECTOR_SPECS = {  # layer types that take a flat (F,) input
    "linear": lambda f: st.builds(Linear, st.integers(1, 12), st.booleans(), opt_acts),
    "bn": lambda f: st.just(BatchNorm()),
    "act": lambda f: st.builds(Activation, acts),
}


def spatial(cmax=12, hmin=1, hmax=9):
    return st.tuples(st.integers(1, cmax), st.integers(hmin, hmax), st.integers(hmin, hmax))


# ---- explicit cases: every op type and every block family mode at least once ---------------------------

EXPLICIT = {
    "conv 3x5 s(2,1) p(1,2) d(1,2) g2 bias bn relu": (
        (4, 9, 7),
        Conv2d(
            out=6,
            kernel=(3, 5),
            stride=(2, 1),
            padding=(1, 2),
            dilation=(1, 2),
            groups=2,
            bias=True,
            bn=True,
            act="relu",
        ),
    ),
    "conv 2x4 same dilated, no bn": (
        (3, 6, 8),
        Conv2d(out=5, kernel=(2, 4), padding="same", dilation=(2, 1), bn=False, act=None),
    ),
    "linear": ((4, 2, 2), Flatten(), Linear(out=5), Linear(out=3, bias=False, act="gelu")),
    "bn": ((3, 4, 4), BatchNorm()),
    "bn1d": ((3, 2, 2), Flatten(), BatchNorm()),
    **{f"act {fn}": ((3, 3, 4), Activation(fn)) for fn in ACTIVATIONS},
    "max pool": ((3, 7, 7), Pool("max", 3, 2, 1)),
    "avg pool": ((3, 6, 5), Pool("avg", 2, 2, 0)),
    "gap flatten": ((5, 4, 3), GlobalAvgPool(), Flatten()),
    "shuffle": ((6, 3, 3), ChannelShuffle(3)),
    "pconv": ((8, 5, 5), PartialConv(3, 0.25)),
    "cwconv g1": ((9, 3, 3), ChannelwiseConv(dc=3)),
    "cwconv g3 bn relu6": ((12, 3, 4), ChannelwiseConv(dc=3, groups=3, bn=True, act="relu6")),
    "se": ((8, 4, 4), SqueezeExcite()),
    **{
        f"standard {layout} s{s} {cin}->{out}": ((cin, 6, 6), StandardBlock(out=out, stride=s, layout=layout))
        for layout in ("single", "basic", "bottleneck")
        for s in (1, 2)
        for cin, out in ((8, 8), (4, 8))
    },
    "dwsep v1 unit s2": ((4, 6, 6), DwsepBlock(out=8, stride=2, linear=False)),
    "dwsep v1 unit s1 in==out": ((4, 6, 6), DwsepBlock(out=4, linear=False)),
    "dwsep t=6 s1 residual": ((4, 5, 5), DwsepBlock(out=4, expansion=6)),
    "dwsep t=6 s2": ((4, 5, 5), DwsepBlock(out=6, stride=2, expansion=6)),
    "dwsep explicit mid": ((4, 5, 5), DwsepBlock(out=6, mid=10)),
    "dwsep t=3 SE hswish": ((6, 5, 5), DwsepBlock(out=6, expansion=3, se=0.25, act="hswish", se_gate="hsigmoid")),
    "dwsep se_mid": ((6, 5, 5), DwsepBlock(out=8, stride=2, se_mid=2)),
    "group_shuffle v1 s1 add": ((12, 4, 4), GroupShuffleBlock(out=12, groups=3)),
    "group_shuffle v1 s2 concat": ((12, 6, 6), GroupShuffleBlock(out=24, stride=2, groups=3)),
    "group_shuffle v1 s2 dense first": ((3, 6, 6), GroupShuffleBlock(out=24, stride=2, groups=3, group_first=False)),
    "group_shuffle v1 s1 in!=out": ((6, 4, 4), GroupShuffleBlock(out=12, groups=3)),
    "group_shuffle v2 split": ((8, 4, 4), GroupShuffleBlock(out=8, version=2)),
    "group_shuffle v2 s2": ((8, 6, 6), GroupShuffleBlock(out=16, stride=2, version=2)),
    "group_shuffle v2 s1 in!=out": ((5, 4, 4), GroupShuffleBlock(out=8, version=2)),
    **{
        f"partial s{s} {cin}->{out}": ((cin, 6, 6), PartialBlock(out=out, stride=s))
        for s in (1, 2)
        for cin, out in ((8, 8), (4, 8))
    },
    "channelwise g1 in==out": ((8, 5, 5), ChannelwiseBlock(out=8, dc=5)),
    "channelwise g1 s2 in!=out": ((4, 5, 5), ChannelwiseBlock(out=8, stride=2, dc=3)),
    "channelwise g2": ((8, 5, 5), ChannelwiseBlock(out=8, dc=3, groups=2)),
    "channelwise g4 s2": ((4, 6, 6), ChannelwiseBlock(out=16, stride=2, dc=4, groups=4)),
}


@pytest.mark.parametrize("name", list(EXPLICIT))
def test_explicit(name):
    shape, *layers = EXPLICIT[name]
    check(nasx.Arch(shape, layers=tuple(layers)), "explicit")


# ---- random cases ---------------------------------------------------------------------------------------


def generated(test, minimum: int) -> None:
    """Runs the hypothesis `test` and checks that it checked at least `minimum` valid archs. Random settings
    nasx refuses (ArchError) are rejected with `assume`; hypothesis counts only valid examples towards
    max_examples, but it stops early when it cannot find enough, and this guard makes that a failure."""
    before = sum(VALID.values())
    test()
    n = sum(VALID.values()) - before
    assert n >= minimum, f"only {n} valid cases generated; counts so far: {dict(VALID)}"


def test_conv():
    @cfg(60)
    @given(st.data())
    def run(data):
        cin = data.draw(st.integers(1, 6), "cin")
        spec = data.draw(conv_spec(cin), "spec")
        # the smallest input that leaves an output: H + 2p >= d(k-1) + 1
        (ph, pw), (kh, kw), (dh, dw) = spec.pads(), spec.kernel, spec.dilation
        h = data.draw(st.integers(max(1, dh * (kh - 1) + 1 - 2 * ph), 9), "h")
        w = data.draw(st.integers(max(1, dw * (kw - 1) + 1 - 2 * pw), 9), "w")
        check(arch_of((cin, h, w), spec), "conv")

    generated(run, 55)


def test_linear():
    @cfg(25)
    @given(
        spatial(hmax=4),
        st.booleans(),
        st.lists(VECTOR_SPECS["linear"](0), min_size=1, max_size=2),
        st.one_of(st.none(), st.just(BatchNorm()), st.builds(Activation, acts)),
    )
    def run(shape, pool_first, linears, tail):
        head = (GlobalAvgPool(),) if pool_first else ()
        check(arch_of(shape, *head, Flatten(), *linears, *((tail,) if tail else ())), "linear")

    generated(run, 20)


def test_bn():
    @cfg(10)
    @given(spatial(), st.booleans())
    def run(shape, flat):
        check(arch_of(shape, *((Flatten(),) if flat else ()), BatchNorm()), "bn")

    generated(run, 8)


@pytest.mark.parametrize("fn", ACTIVATIONS)
def test_act(fn):
    @cfg(5)
    @given(spatial(), st.booleans())
    def run(shape, flat):
        check(arch_of(shape, *((Flatten(),) if flat else ()), Activation(fn)), f"act-{fn}")

    generated(run, 4)


def test_pool():
    @cfg(30)
    @given(st.data())
    def run(data):
        cin = data.draw(st.integers(1, 6))
        spec = data.draw(pool_spec(cin))
        lo = max(1, spec.kernel - 2 * spec.padding)
        shape = (cin, data.draw(st.integers(lo, 9)), data.draw(st.integers(lo, 9)))
        check(arch_of(shape, spec), f"pool-{spec.mode}")

    generated(run, 25)


def test_gap_flatten():
    @cfg(10)
    @given(spatial(), st.sampled_from(((GlobalAvgPool(),), (Flatten(),), (GlobalAvgPool(), Flatten()))))
    def run(shape, layers):
        check(arch_of(shape, *layers), "gap/flatten")

    generated(run, 8)


def single_op(spec_fn, tag, hw_max=6):
    @given(st.data())
    def run(data):
        cin = data.draw(st.integers(1, 12), "cin")
        spec = data.draw(spec_fn(cin), "spec")
        arch = arch_of((cin, *data.draw(pair(1, hw_max), "hw")), spec)
        check(arch, tag(spec))

    return run


def test_shuffle():
    generated(cfg(15)(single_op(shuffle_spec, lambda s: "shuffle")), 12)


def test_pconv():
    generated(cfg(20)(single_op(pconv_spec, lambda s: "pconv", 7)), 16)


def test_cwconv():
    generated(cfg(30)(single_op(cwconv_spec, lambda s: f"cwconv-g{s.groups}", 5)), 20)


def test_se():
    generated(cfg(15)(single_op(se_spec, lambda s: "se")), 12)


# ---- block families -------------------------------------------------------------------------------------


def block_tag(spec, cin) -> str:
    b = spec
    extra = {
        "standard": lambda: b.layout,
        "dwsep": lambda: (
            f"t{'>1' if b.expansion > 1 else '<=1'}{'-mid' if b.mid else ''}"
            f"{'-se' if (b.se or b.se_mid) else ''}{'-linear' if b.linear else ''}"
        ),
        "group_shuffle": lambda: f"v{b.version}",
        "partial": lambda: "",
        "channelwise": lambda: f"g{b.groups}",
    }
    return f"{b.family}-{extra[b.family]()}-s{b.stride}-{'same' if cin == b.out else 'diff'}"


def block_test(spec_fn, smin=1):
    @given(st.data())
    def run(data):
        cin = data.draw(st.integers(1, 12), "cin")
        spec = data.draw(spec_fn(cin), "spec")
        arch = arch_of((cin, *data.draw(pair(smin, 7), "hw")), spec)
        check(arch, block_tag(spec, cin))

    return run


def test_standard():
    generated(cfg(45)(block_test(standard_spec)), 25)


def test_dwsep():
    generated(cfg(45)(block_test(dwsep_spec)), 30)


def test_group_shuffle_v1():
    generated(cfg(30)(block_test(group_shuffle_v1_spec)), 20)


def test_group_shuffle_v2():
    generated(cfg(25)(block_test(group_shuffle_v2_spec)), 20)


def test_partial():
    generated(cfg(25)(block_test(partial_spec, smin=2)), 20)


def test_channelwise():
    generated(cfg(30)(block_test(channelwise_spec)), 20)


# ---- deeper archs mixing families ---------------------------------------------------------------------


def test_multi_layer():
    @cfg(60)
    @given(st.data())
    def run(data):
        shape = data.draw(spatial(cmax=8, hmin=6, hmax=12), "input")
        layers, cur = [], shape
        for i in range(data.draw(st.integers(3, 6), "depth")):
            specs = SPATIAL_SPECS if len(cur) == 3 else VECTOR_SPECS
            for _ in range(10):  # a few tries to find a layer that fits the current shape
                kind = data.draw(st.sampled_from(sorted(specs)), f"kind{i}")
                spec = data.draw(specs[kind](cur[0]), f"layer{i}")
                try:
                    g = layer_graph(spec, cur)
                except nasx.ArchError:
                    continue
                if len(g.out_shape) == 3 and g.out_shape[0] > 24:
                    continue  # keep it small
                layers.append(spec)
                cur = g.out_shape
                break
        assume(len(layers) >= 3)
        check(arch_of(shape, *layers), f"multi-{len(layers)}")

    generated(run, 45)


# ---- what a single test cannot show ---------------------------------------------------------------------


def test_cross_layer_fusion_is_not_modelled():
    """A conv layer without BN/act followed by separate `bn` and `act` layers: an inference engine would
    fuse all three, but nasx costs each layer on its own, so the stand-alone BN and activation are charged
    as kernels. The counter reproduces nasx with per-layer fusion, and shows the gap when fusing across
    layers: the BN's and the activation's full read + write (2 * 2 * 288) plus the BN's 2C, minus the
    C-element folded bias."""
    arch = nasx.Arch((4, 6, 6), layers=(Conv2d(out=8, bn=False, act=None), BatchNorm(), Activation("relu")))
    model, x = nasx.build(arch).eval(), torch.randn(1, 4, 6, 6)
    report = nasx.cost(arch)
    n_out = 8 * 6 * 6
    assert report.mac == 4 * 36 + n_out + 4 * 9 * 8 + (2 * n_out + 16) + 2 * n_out
    assert memtraffic.measure(model, x).mac == report.mac
    assert report.mac - memtraffic.measure(model, x, fuse_across_layers=True).mac == 4 * n_out + 16 - 8


# ---- the reference counter against hand-worked formulas (docs/DESIGN.md section 4) ---------------------------


def test_memtraffic_standard_conv_formula():
    h = w = 5
    cin, cout, k = 4, 8, 3
    plain = nn.Sequential(nn.Conv2d(cin, cout, k, padding=1, bias=False))
    x = torch.randn(1, cin, h, w)
    assert memtraffic.measure(plain, x).mac == h * w * (cin + cout) + k * k * cin * cout
    fused = nn.Sequential(
        nn.Sequential(nn.Conv2d(cin, cout, k, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())
    )
    assert memtraffic.measure(fused, x).mac == h * w * (cin + cout) + k * k * cin * cout + cout  # folded bias
    biased = nn.Sequential(nn.Sequential(nn.Conv2d(cin, cout, k, padding=1), nn.BatchNorm2d(cout)))
    assert memtraffic.measure(biased, x).mac == h * w * (cin + cout) + k * k * cin * cout + cout  # bias absorbs


def test_memtraffic_dwsep_formula():
    h = w = 6
    cin, cout, k = 4, 8, 3
    model = nn.Sequential(
        nn.Conv2d(cin, cin, k, padding=1, groups=cin, bias=False), nn.Conv2d(cin, cout, 1, bias=False)
    )
    traffic = memtraffic.measure(model, torch.randn(1, cin, h, w))
    assert traffic.mac == 2 * h * w * cin + cin * k * k + cin * cout + h * w * (cin + cout)
    assert traffic.activations == h * w * (cin + cout)


def test_memtraffic_partial_conv_formula():
    c, h, w, k = 16, 5, 5, 3
    cp = c // 4
    model = nn.Sequential(PartialConv(k, 0.25).module((c, h, w)))
    assert memtraffic.measure(model, torch.randn(1, c, h, w)).mac == h * w * 2 * cp + k * k * cp * cp


def test_memtraffic_standalone_bn_act_and_unknown_modules():
    c, h, w = 3, 4, 4
    x = torch.randn(1, c, h, w)
    assert memtraffic.measure(nn.Sequential(nn.BatchNorm2d(c)), x).mac == 2 * c * h * w + 2 * c
    assert memtraffic.measure(nn.Sequential(nn.ReLU()), x).mac == 2 * c * h * w
    assert memtraffic.measure(nn.Sequential(nn.Flatten()), x).mac == 0
    with pytest.raises(TypeError, match="Upsample"):
        memtraffic.measure(nn.Sequential(nn.Upsample(scale_factor=2)), x)


def test_cost_does_not_import_torch():
    code = (
        "import sys, nasx.cost\n"
        "from nasx.cost import cost\n"
        "import nasx.zoo\n"
        "for name in nasx.zoo.names(): cost(name); cost(name, 'exact'); cost(name, 'fvcore')\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]),
    )
    assert out.returncode == 0, out.stderr


# ---- channelwise module options (the authors' ChannelNet-v1 code: utils/ops.py dw_block / single_block /
# simple_group_block / conv_group_block, model.py's concat and add shortcuts) ------------------------------

MODULES = {
    "dw_block, plain depthwise, concat": (
        (4, 5, 5),
        ChannelwiseBlock(out=10, module=True, depth=1, dw_bn=False, shortcut="concat"),
    ),
    "dw_block s2, no shortcut": (
        (4, 6, 6),
        ChannelwiseBlock(out=8, stride=2, module=True, depth=1, dw_bn=False, shortcut="none"),
    ),
    "group module (GM) g2 add": (
        (8, 5, 5),
        ChannelwiseBlock(out=8, groups=2, module=True, dw_bn=False, shortcut="add"),
    ),
    "GCWM dc8 g2 none": (
        (16, 4, 4),
        ChannelwiseBlock(out=16, groups=2, dc=8, module=True, gcw=True, dw_bn=False, shortcut="none"),
    ),
    "GCWM dc3 g3 depth3 s2 dw_bn hswish": (
        (12, 6, 6),
        ChannelwiseBlock(out=6, stride=2, groups=3, dc=3, depth=3, module=True, gcw=True, act="hswish"),
    ),
    "unit g1 dw_bn=false concat": ((4, 5, 5), ChannelwiseBlock(out=8, dc=3, dw_bn=False, shortcut="concat")),
    "unit g2 shortcut none": ((8, 5, 5), ChannelwiseBlock(out=8, dc=3, groups=2, shortcut="none")),
}


@pytest.mark.parametrize("name", list(MODULES))
def test_channelwise_module_options(name):
    shape, *layers = MODULES[name]
    check(nasx.Arch(shape, layers=tuple(layers)), "channelwise-module")


@st.composite
def channelwise_module_spec(draw, cin):
    g = draw(st.integers(1, 3))
    shortcut = draw(st.sampled_from(("auto", "add", "none", "concat")))
    out = (
        cin + g * draw(st.integers(1, 3))
        if shortcut == "concat"
        else (cin if draw(st.booleans()) else g * draw(st.integers(1, 5)))
    )
    return ChannelwiseBlock(
        out=out,
        stride=draw(st.sampled_from((1, 2))),
        kernel=draw(odd_kernel),
        dc=draw(st.integers(1, 4)),
        groups=g,
        act=draw(acts),
        module=True,
        depth=draw(st.integers(1, 3)),
        gcw=draw(st.booleans()),
        dw_bn=draw(st.booleans()),
        shortcut=shortcut,
    )


def test_channelwise_module():
    generated(cfg(30)(block_test(channelwise_module_spec)), 15)


def test_channelwise_new_options_keep_old_canonical_json():
    """The module options default to the paper's unit and are left out of the canonical JSON at their
    defaults, so archs written before them keep their JSON and content hash (latency cache keys)."""
    old = ChannelwiseBlock(out=8, dc=3, groups=2)
    assert nasx.layers.layer_to_dict(old) == {
        "type": "channelwise",
        "out": 8,
        "stride": 1,
        "kernel": 3,
        "dc": 3,
        "groups": 2,
        "act": "relu6",
    }
    new = nasx.layers.layer_to_dict(ChannelwiseBlock(out=8, module=True, depth=1, shortcut="none"))
    assert (new["module"], new["depth"], new["shortcut"]) == (True, 1, "none") and "gcw" not in new
    with pytest.raises(nasx.ArchError, match="'concat'.*stride 1"):
        nasx.Arch((4, 6, 6), layers=(ChannelwiseBlock(out=8, stride=2, shortcut="concat"),)).graphs()
    with pytest.raises(nasx.ArchError, match="'add' needs stride 1 and in == out"):
        nasx.Arch((4, 6, 6), layers=(ChannelwiseBlock(out=8, shortcut="add"),)).graphs()
