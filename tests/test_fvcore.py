"""nasx's "fvcore" preset against fvcore's FlopCountAnalysis on the models nasx builds.

The preset (nasx/ops/base.py, Convention.PRESETS["fvcore"]) is: conv / linear MAdds (bias excluded),
batch norm 2 per element (fvcore's eval-mode rule, affine BN), adaptive (global) average pooling 1 per
input element; add, mul, cat, activations and k x k pooling are 0 (fvcore has no handle for them and
skips them). Totals must agree exactly, and so must each fvcore operator class, so that a disagreement
names the op that causes it.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

with warnings.catch_warnings():  # fvcore scripts helpers at import: torch.jit.script deprecation warnings
    warnings.simplefilter("ignore")
    from fvcore.nn import FlopCountAnalysis

import nasx
import nasx.zoo
from nasx.blocks import ChannelwiseBlock, DwsepBlock, GroupShuffleBlock, PartialBlock, StandardBlock
from nasx.layers import SqueezeExcite
from nasx.ops import (
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

MAX_ZOO_MADDS = 8e9  # tracing time grows with the model: skip anything bigger than ResNet-50 x 2


def fvcore_counts(arch: nasx.Arch) -> tuple[int, dict[str, int], dict[str, int]]:
    """fvcore's total, per-operator counts and skipped (unsupported) ops for the built arch, batch 1."""
    torch.manual_seed(0)
    model = nasx.build(arch).eval()
    x = torch.randn(1, *arch.input)
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, x)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        return int(analysis.total()), dict(analysis.by_operator()), dict(analysis.unsupported_ops())


def check(arch: nasx.Arch) -> None:
    total, by_op, skipped = fvcore_counts(arch)
    madds = nasx.cost(arch).madds
    # what nasx's optional terms add on top of the MAdds, term by term
    bn = nasx.cost(arch, "madds", bn=True).total.ops - madds
    gap = nasx.cost(arch, "madds", gap=True).total.ops - madds
    # conv (pconv and cwconv included) and linear are MAdds in both; their split between the two fvcore
    # classes does not matter
    assert {
        "dot products": by_op.get("conv", 0) + by_op.get("linear", 0) + by_op.get("addmm", 0),
        "batch_norm": by_op.get("batch_norm", 0),
        "adaptive_avg_pool2d": by_op.get("adaptive_avg_pool2d", 0),
    } == {"dot products": madds, "batch_norm": bn, "adaptive_avg_pool2d": gap}, f"skipped by fvcore: {skipped}"
    assert set(by_op) <= {"conv", "linear", "addmm", "batch_norm", "adaptive_avg_pool2d"}, by_op
    assert total == nasx.cost(arch, "fvcore").total.ops


def zoo_models():
    return list(nasx.zoo.names())


@pytest.mark.parametrize("name", zoo_models())
def test_zoo_model(name):
    arch = nasx.load_arch(name)
    madds = nasx.cost(arch).madds
    if madds > MAX_ZOO_MADDS:
        pytest.skip(f"{name}: {madds / 1e9:.1f} GMAdds takes too long to trace here")
    check(arch)


def test_reference_models_present():
    assert {"mobilenet_v1", "mobilenet_v2", "resnet18", "resnet50"} <= set(zoo_models())


SMALL = {  # every op type and block family, small: fvcore must agree on each
    "conv bias bn": (
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
            act="hswish",
        ),
    ),
    "conv no bn": ((3, 6, 6), Conv2d(out=4, bn=False, act=None)),
    "linear bias, bn1d, act": (
        (4, 3, 3),
        Flatten(),
        Linear(out=6, act="relu"),
        BatchNorm(),
        Activation("gelu"),
        Linear(out=3, bias=False),
    ),
    "stand-alone bn, act, pools": (
        (3, 8, 8),
        BatchNorm(),
        Activation("silu"),
        Pool("max", 3, 2, 1),
        Pool("avg", 2, 2, 0),
        GlobalAvgPool(),
        Flatten(),
    ),
    "shuffle pconv cwconv se": (
        (12, 5, 5),
        ChannelShuffle(3),
        PartialConv(3, 0.5),
        ChannelwiseConv(3, 3),
        SqueezeExcite(mid=3, gate="hsigmoid"),
    ),
    "standard": ((8, 8, 8), StandardBlock(out=8, layout="basic"), StandardBlock(out=16, stride=2, layout="bottleneck")),
    "dwsep": ((8, 8, 8), DwsepBlock(out=8), DwsepBlock(out=12, stride=2, expansion=3, se=0.25)),
    "group_shuffle": (
        (6, 8, 8),
        GroupShuffleBlock(out=12, stride=1, groups=3),
        GroupShuffleBlock(out=24, stride=2, groups=3),
        GroupShuffleBlock(out=24, version=2),
        GroupShuffleBlock(out=32, stride=2, version=2),
    ),
    "partial": ((8, 8, 8), PartialBlock(out=8), PartialBlock(out=16, stride=2)),
    "channelwise": ((8, 8, 8), ChannelwiseBlock(out=8, dc=3), ChannelwiseBlock(out=16, stride=2, dc=3, groups=2)),
}


@pytest.mark.parametrize("name", list(SMALL))
def test_every_layer_type(name):
    shape, *layers = SMALL[name]
    check(nasx.Arch(shape, layers=tuple(layers)))
