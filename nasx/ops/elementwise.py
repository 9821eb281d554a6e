"""Element-wise ops: batch norm, activations, add, multiply. They move data and do little arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.ops.base import ACT_EXACT_OPS, Op, Shape, movement_cost, numel
from nasx.ops.conv import kind


@dataclass(frozen=True)
class BatchNorm(Op):
    """Stand-alone batch norm (one not fused into a preceding conv): scale and shift per channel."""

    name = "bn"

    def out_shape(self, x: Shape) -> Shape:
        return x

    def cost(self, ins, out, conv):
        c = movement_cost(ins, out, conv)
        if conv.kind == "exact" or conv.bn:
            c.ops += 2 * numel(out)
        c.params += 2 * out[0]
        c.params_folded += 2 * out[0]
        c.mac += 2 * out[0]
        return c

    def module(self, x):
        from torch import nn

        return nn.BatchNorm2d(x[0]) if len(x) == 3 else nn.BatchNorm1d(x[0])


@dataclass(frozen=True)
class Activation(Op):
    name = "act"
    fn: str = field(default="relu", metadata=kind("act"))

    def out_shape(self, x: Shape) -> Shape:
        return x

    def cost(self, ins, out, conv):
        c = movement_cost(ins, out, conv)
        if conv.kind == "exact" or conv.act:
            c.ops += (ACT_EXACT_OPS[self.fn] if conv.kind == "exact" else 1) * numel(out)
        return c

    def module(self, x):
        from nasx.ops._torch import activation

        return activation(self.fn)


@dataclass(frozen=True)
class Add(Op):
    """Residual add of two equal shapes, with an optional fused activation."""

    name = "add"
    act: str | None = field(default=None, metadata=kind("act?"))

    def out_shape(self, a: Shape, b: Shape) -> Shape:
        if a != b:
            raise ArchError(f"add needs equal shapes, got {list(a)} and {list(b)}")
        return a

    def cost(self, ins, out, conv):
        c = movement_cost(ins, out, conv, 1, conv.elementwise)
        if self.act and (conv.kind == "exact" or conv.act):
            c.ops += (ACT_EXACT_OPS[self.act] if conv.kind == "exact" else 1) * numel(out)
        return c

    def module(self, a, b):
        from nasx.ops._torch import Add as TorchAdd

        return TorchAdd(self.act)


@dataclass(frozen=True)
class Multiply(Op):
    """Element-wise product; the second input may be a per-channel (C, 1, 1) gate (squeeze-excite)."""

    name = "mul"

    def out_shape(self, a: Shape, b: Shape) -> Shape:
        if a != b and b != (a[0], 1, 1):
            raise ArchError(f"mul needs equal shapes or a (C, 1, 1) gate, got {list(a)} and {list(b)}")
        return a

    def cost(self, ins, out, conv):
        return movement_cost(ins, out, conv, 1, conv.elementwise)

    def module(self, a, b):
        from nasx.ops._torch import Multiply as TorchMultiply

        return TorchMultiply()
