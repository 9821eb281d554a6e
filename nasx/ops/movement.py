"""Data-movement ops: pooling, concat, channel slice (split), channel shuffle, flatten."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.ops.base import Cost, Op, Shape, Term, kind, movement_cost, numel, register_op
from nasx.ops.conv import feature_map, out_len


@register_op
@dataclass(frozen=True)
class Pool(Op):
    """k x k max or average pooling (average counts padding, PyTorch's default)."""

    name = "pool"
    mode: str = field(default="max", metadata=kind("enum", choices=("max", "avg")))
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    stride: int = field(default=2, metadata=kind("int+"))
    padding: int = field(default=1, metadata=kind("int0", quiet=True))

    def out_shape(self, x: Shape) -> Shape:
        c, h, w = feature_map(x, "pool")
        if 2 * self.padding > self.kernel:
            raise ArchError(f"pool padding {self.padding} must be at most half the kernel {self.kernel}")
        ho, wo = out_len(h, self.kernel, self.stride, self.padding), out_len(w, self.kernel, self.stride, self.padding)
        if ho < 1 or wo < 1:
            raise ArchError(f"pool kernel {self.kernel} leaves no output from a {h}x{w} input")
        return (c, ho, wo)

    def cost(self, ins, out, conv):
        # max: k^2 - 1 comparisons per output; avg: k^2 - 1 additions and one division
        k2 = self.kernel * self.kernel
        return movement_cost(ins, out, conv, k2 - 1 if self.mode == "max" else k2, conv.pool)

    def terms(self, ins, out, madds):
        return [Term("pool", n_in=numel(ins[0]), n_out=numel(out), detail=self.mode)]

    def module(self, x):
        from torch import nn

        cls = nn.MaxPool2d if self.mode == "max" else nn.AvgPool2d
        return cls(self.kernel, self.stride, self.padding)


@register_op
@dataclass(frozen=True)
class GlobalAvgPool(Op):
    """Average over the spatial axes: (C, H, W) -> (C, 1, 1)."""

    name = "gap"

    def out_shape(self, x: Shape) -> Shape:
        c, _, _ = feature_map(x, "gap")
        return (c, 1, 1)

    def cost(self, ins, out, conv):
        c = movement_cost(ins, out, conv)
        if conv.kind == "exact" or conv.gap:
            c.ops += numel(ins[0])  # H*W - 1 additions and one division per channel
        return c

    def terms(self, ins, out, madds):
        return [Term("gap", n_in=numel(ins[0]), n_out=out[0], channels=out[0])]

    def module(self, x):
        from torch import nn

        return nn.AdaptiveAvgPool2d(1)


@register_op
@dataclass(frozen=True)
class Flatten(Op):
    """(C, H, W) -> (C*H*W,): a view, no data moves."""

    name = "flatten"
    aliases_input = True

    def out_shape(self, x: Shape) -> Shape:
        return (numel(x),)

    def cost(self, ins, out, conv):
        return Cost()

    def terms(self, ins, out, madds):
        return []  # a view: no counter counts arithmetic for it

    def module(self, x):
        from torch import nn

        return nn.Flatten(1)


@register_op
@dataclass(frozen=True)
class Concat(Op):
    """Concatenation along channels."""

    name = "concat"
    layer = False

    def out_shape(self, *xs: Shape) -> Shape:
        if len({x[1:] for x in xs}) != 1:
            raise ArchError(f"concat needs equal spatial sizes, got {[list(x) for x in xs]}")
        return (sum(x[0] for x in xs),) + xs[0][1:]

    def cost(self, ins, out, conv):
        return movement_cost(ins, out, conv)

    def terms(self, ins, out, madds):
        return []  # pure data movement

    def module(self, *xs):
        from nasx.ops._torch import Concat as TorchConcat

        return TorchConcat()


@register_op
@dataclass(frozen=True)
class ChannelSlice(Op):
    """Channels [start, stop) of the input: one output of a channel split (each piece is copied out)."""

    name = "slice"
    layer = False
    aliases_input = True  # torch's x[:, start:stop] is a view
    start: int = field(default=0, metadata=kind("int0"))
    stop: int = field(default=1, metadata=kind("int+"))

    def out_shape(self, x: Shape) -> Shape:
        if not 0 <= self.start < self.stop <= x[0]:
            raise ArchError(f"channel slice [{self.start}, {self.stop}) is outside the {x[0]} input channels")
        return (self.stop - self.start,) + x[1:]

    def cost(self, ins, out, conv):
        return Cost(mac=2 * numel(out))

    def terms(self, ins, out, madds):
        return []  # pure data movement

    def module(self, x):
        from nasx.ops._torch import ChannelSlice as TorchChannelSlice

        return TorchChannelSlice(self.start, self.stop)


@register_op
@dataclass(frozen=True)
class ChannelShuffle(Op):
    """ShuffleNet channel shuffle: (g, C/g) -> (C/g, g) transpose of the channel axis."""

    name = "shuffle"
    aliases_input = True  # with one group torch's reshape returns a view
    groups: int = field(default=2, metadata=kind("int+", short="g", trivial=(1,)))

    def out_shape(self, x: Shape) -> Shape:
        c, _, _ = feature_map(x, "shuffle")
        if c % self.groups:
            raise ArchError(f"channel shuffle groups={self.groups} must divide the channel count {c}")
        return x

    def cost(self, ins, out, conv):
        return movement_cost(ins, out, conv)

    def terms(self, ins, out, madds):
        return []  # pure data movement

    def module(self, x):
        from nasx.ops._torch import ChannelShuffle as TorchChannelShuffle

        return TorchChannelShuffle(self.groups)
