"""Element-wise ops: batch norm, activations, add, multiply. They move data and do little arithmetic."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.ops.base import ACT_EXACT_OPS, Op, Shape, Term, epilogue_terms, kind, movement_cost, numel, register_op


@register_op
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

    def terms(self, ins, out, madds):
        return [Term("bn", n_out=numel(out))]

    def module(self, x):
        from torch import nn

        return nn.BatchNorm2d(x[0]) if len(x) == 3 else nn.BatchNorm1d(x[0])


@register_op
@dataclass(frozen=True)
class Activation(Op):
    """A stand-alone activation (one not fused into the op before it)."""

    name = "act"
    can_work_in_place = True
    fn: str = field(default="relu", metadata=kind("act"))

    def out_shape(self, x: Shape) -> Shape:
        return x

    def cost(self, ins, out, conv):
        c = movement_cost(ins, out, conv)
        if conv.kind == "exact" or conv.act:
            c.ops += (ACT_EXACT_OPS[self.fn] if conv.kind == "exact" else 1) * numel(out)
        return c

    def terms(self, ins, out, madds):
        return [Term("act", n_out=numel(out), detail=self.fn)]

    def final_act(self):
        return self.fn

    def module(self, x):
        from nasx.ops._torch import activation

        return activation(self.fn)

    def inplace_module(self, x):
        from nasx.ops._torch import activation

        return activation(self.fn, inplace=True)


@register_op
@dataclass(frozen=True)
class Add(Op):
    """Residual add of two equal shapes, with an optional fused activation."""

    name = "add"
    layer = False
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

    def terms(self, ins, out, madds):
        return [Term("elementwise", n_out=numel(out), detail="add")] + epilogue_terms(numel(out), False, self.act)

    def final_act(self):
        return self.act

    def module(self, a, b):
        from nasx.ops._torch import Add as TorchAdd

        return TorchAdd(self.act)


@register_op
@dataclass(frozen=True)
class Multiply(Op):
    """Element-wise product; the second input may be a per-channel (C, 1, 1) gate (squeeze-excite)."""

    name = "mul"
    layer = False

    def out_shape(self, a: Shape, b: Shape) -> Shape:
        if a != b and b != (a[0], 1, 1):
            raise ArchError(f"mul needs equal shapes or a (C, 1, 1) gate, got {list(a)} and {list(b)}")
        return a

    def cost(self, ins, out, conv):
        return movement_cost(ins, out, conv, 1, conv.elementwise)

    def terms(self, ins, out, madds):
        return [Term("elementwise", n_out=numel(out), detail="mul")]

    def module(self, a, b):
        from nasx.ops._torch import Multiply as TorchMultiply

        return TorchMultiply()
