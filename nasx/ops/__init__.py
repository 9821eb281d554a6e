"""Primitive ops: each knows its output shape, its cost (pure arithmetic), its arithmetic terms for external
counters and its torch module. An op registers itself (`@register_op`) in its own file, imported here."""

from nasx.ops.base import (
    ACTIVATION_FNS,
    ACTIVATIONS,
    LAYER_TYPES,
    OPS,
    ActivationFn,
    Convention,
    Cost,
    Op,
    Registry,
    Shape,
    Term,
    kind,
    numel,
    register_op,
)
from nasx.ops.conv import ChannelwiseConv, Conv2d, Linear, PartialConv
from nasx.ops.elementwise import Activation, Add, BatchNorm, Multiply
from nasx.ops.movement import ChannelShuffle, ChannelSlice, Concat, Flatten, GlobalAvgPool, Pool

__all__ = [
    "ACTIVATIONS",
    "ACTIVATION_FNS",
    "Activation",
    "ActivationFn",
    "Add",
    "BatchNorm",
    "ChannelShuffle",
    "ChannelSlice",
    "ChannelwiseConv",
    "Concat",
    "Conv2d",
    "Convention",
    "Cost",
    "Flatten",
    "GlobalAvgPool",
    "LAYER_TYPES",
    "Linear",
    "Multiply",
    "OPS",
    "Op",
    "PartialConv",
    "Pool",
    "Registry",
    "Shape",
    "Term",
    "kind",
    "numel",
    "register_op",
]
