"""Primitive ops: each knows its output shape, its cost (pure arithmetic) and its torch module."""

from nasx.ops.base import ACTIVATIONS, Convention, Cost, Op, Shape, numel
from nasx.ops.conv import ChannelwiseConv, Conv2d, Linear, PartialConv
from nasx.ops.elementwise import Activation, Add, BatchNorm, Multiply
from nasx.ops.movement import ChannelShuffle, ChannelSlice, Concat, Flatten, GlobalAvgPool, Pool

__all__ = [
    "ACTIVATIONS", "Activation", "Add", "BatchNorm", "ChannelShuffle", "ChannelSlice", "ChannelwiseConv",
    "Concat", "Conv2d", "Convention", "Cost", "Flatten", "GlobalAvgPool", "Linear", "Multiply", "Op",
    "PartialConv", "Pool", "Shape", "numel",
]
