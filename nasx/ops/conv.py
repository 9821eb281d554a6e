"""Ops with weights: conv2d (fused BN/activation epilogue), linear, partial conv, channel-wise conv."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.ops.base import (
    ACT_EXACT_OPS,
    Convention,
    Cost,
    Op,
    Shape,
    Term,
    epilogue_terms,
    kind,
    numel,
    register_op,
)

__all__ = ["ChannelwiseConv", "Conv2d", "Linear", "PartialConv", "kind"]  # kind: its old home, still imported


def out_len(size: int, kernel: int, stride: int, pad: int, dilation: int = 1) -> int:
    """Output size: floor((H + 2p - d(k-1) - 1) / s) + 1."""
    return (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1


def feature_map(shape: Shape, op: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise ArchError(f"{op} needs a (C, H, W) feature map, got shape {list(shape)}: insert it before flatten")
    return shape


def epilogue(cost: Cost, n_out: int, cout: int, bias: bool, bn: bool, act: str | None, conv: Convention) -> Cost:
    """Adds the fused bias / BN / activation terms of a weighted op to `cost`."""
    exact = conv.kind == "exact"
    if bias and (exact or conv.bias):
        cost.ops += n_out
    if bn and (exact or conv.bn):
        cost.ops += 2 * n_out
    if act and (exact or conv.act):
        cost.ops += (ACT_EXACT_OPS[act] if exact else 1) * n_out
    cost.params += (cout if bias else 0) + (2 * cout if bn else 0)
    folded_bias = cout if (bias or bn) else 0
    cost.params_folded += folded_bias
    cost.mac += folded_bias
    return cost


def dot_cost(madds: int, n_out: int, dot_len: int, conv: Convention) -> int:
    """Arithmetic of `n_out` dot products of length `dot_len` (madds = n_out * dot_len)."""
    if conv.kind == "madds":
        return madds
    if conv.kind == "flops":
        return 2 * madds
    return (2 * dot_len - 1) * n_out


@register_op
@dataclass(frozen=True)
class Conv2d(Op):
    """k x k convolution with optional fused BN and activation (conv-BN-act, one inference kernel)."""

    name = "conv"
    out: int = field(metadata=kind("int+"))
    kernel: tuple[int, int] = field(default=(3, 3), metadata=kind("pair", short="k"))
    stride: tuple[int, int] = field(default=(1, 1), metadata=kind("pair"))
    padding: tuple[int, int] | str = field(default="same", metadata=kind("padding", quiet=True))
    dilation: tuple[int, int] = field(default=(1, 1), metadata=kind("pair", quiet=True))
    groups: int = field(default=1, metadata=kind("int+", short="g", trivial=(1,)))
    bias: bool = field(default=False, metadata=kind("bool", quiet=True))
    bn: bool = field(default=True, metadata=kind("bool", quiet=True))
    act: str | None = field(default="relu", metadata=kind("act?", quiet=True))

    def __post_init__(self) -> None:
        for name in ("kernel", "stride", "dilation", "padding"):
            v = getattr(self, name)
            if type(v) is not tuple and v != "same":
                object.__setattr__(self, name, (v, v) if isinstance(v, int) else tuple(v))

    def pads(self) -> tuple[int, int]:
        # "same" = half padding d*(k-1)//2 (PyTorch models' convention; exact "same" at stride 1, odd k)
        if self.padding == "same":
            (kh, kw), (dh, dw) = self.kernel, self.dilation
            return (dh * (kh - 1) // 2, dw * (kw - 1) // 2)
        return self.padding  # type: ignore[return-value]

    def out_shape(self, x: Shape) -> Shape:
        cin, h, w = feature_map(x, "conv")
        if cin % self.groups or self.out % self.groups:
            raise ArchError(f"conv groups={self.groups} must divide both in channels {cin} and out channels {self.out}")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel, self.stride, self.pads(), self.dilation
        ho, wo = out_len(h, kh, sh, ph, dh), out_len(w, kw, sw, pw, dw)
        if ho < 1 or wo < 1:
            raise ArchError(f"conv kernel {kh}x{kw} stride {sh}x{sw} leaves no output from a {h}x{w} input")
        return (self.out, ho, wo)

    def cost(self, ins, out, conv):
        cin = ins[0][0]
        n_out = out[0] * out[1] * out[2]
        dot_len = cin // self.groups * self.kernel[0] * self.kernel[1]
        weights = dot_len * self.out
        madds = n_out * dot_len
        c = Cost(
            madds,
            dot_cost(madds, n_out, dot_len, conv),
            weights,
            weights,
            ins[0][0] * ins[0][1] * ins[0][2] + n_out + weights,
            n_out,
        )
        return epilogue(c, n_out, self.out, self.bias, self.bn, self.act, conv)

    def terms(self, ins, out, madds):
        return [Term("conv", madds, numel(ins[0]), numel(out), self.bias)] + epilogue_terms(
            numel(out), self.bn, self.act
        )

    def final_act(self):
        return self.act

    def module(self, x):
        from torch import nn

        from nasx.ops._torch import fused

        conv = nn.Conv2d(x[0], self.out, self.kernel, self.stride, self.pads(), self.dilation, self.groups, self.bias)
        return fused(conv, self.out, self.bn, self.act)


@register_op
@dataclass(frozen=True)
class Linear(Op):
    """Fully connected layer on a flat vector, with optional fused activation."""

    name = "linear"
    out: int = field(metadata=kind("int+"))
    bias: bool = field(default=True, metadata=kind("bool", quiet=True))
    act: str | None = field(default=None, metadata=kind("act?", quiet=True))

    def out_shape(self, x: Shape) -> Shape:
        if len(x) != 1:
            raise ArchError(f"linear needs a flat vector, got shape {list(x)}: add a 'flatten' or 'gap' layer first")
        return (self.out,)

    def cost(self, ins, out, conv):
        fin = ins[0][0]
        madds = fin * self.out
        c = Cost(madds, dot_cost(madds, self.out, fin, conv), madds, madds, fin + self.out + madds, self.out)
        return epilogue(c, self.out, self.out, self.bias, False, self.act, conv)

    def terms(self, ins, out, madds):
        return [Term("linear", madds, ins[0][0], out[0], self.bias)] + epilogue_terms(out[0], False, self.act)

    def final_act(self):
        return self.act

    def module(self, x):
        from torch import nn

        from nasx.ops._torch import activation

        linear = nn.Linear(x[0], self.out, self.bias)
        return nn.Sequential(linear, activation(self.act, inplace=True)) if self.act else linear


@register_op
@dataclass(frozen=True)
class PartialConv(Op):
    """FasterNet PConv: k x k conv over the first Cp = floor(ratio * C) channels; the others are aliased
    (in-place slicing at inference), so they cost no memory traffic."""

    name = "pconv"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    ratio: float = field(default=0.25, metadata=kind("ratio", short="r"))

    def conv_channels(self, c: int) -> int:
        return max(1, int(c * self.ratio + 1e-9))

    def out_shape(self, x: Shape) -> Shape:
        feature_map(x, "pconv")
        if self.kernel % 2 == 0:
            raise ArchError(f"pconv kernel must be odd to keep the spatial size, got {self.kernel}")
        return x

    def cost(self, ins, out, conv):
        c, h, w = ins[0]
        cp = self.conv_channels(c)
        dot_len = cp * self.kernel * self.kernel
        weights = dot_len * cp
        n_out = cp * h * w
        madds = n_out * dot_len
        return Cost(madds, dot_cost(madds, n_out, dot_len, conv), weights, weights, 2 * n_out + weights, n_out)

    def terms(self, ins, out, madds):
        return [Term("conv", madds, numel(ins[0]), numel(out))]

    def module(self, x):
        from nasx.ops._torch import PartialConv as TorchPartialConv

        return TorchPartialConv(x[0], self.conv_channels(x[0]), self.kernel)


@register_op
@dataclass(frozen=True)
class ChannelwiseConv(Op):
    """ChannelNets channel-wise conv: one kernel of dc weights sliding along channels, shared over space.

    groups > 1 is the group channel-wise conv (GCWConv): g kernels, each with channel stride g, together
    producing C outputs that fuse information across the g groups of a preceding group conv."""

    name = "cwconv"
    dc: int = field(default=7, metadata=kind("int+", short="dc"))
    groups: int = field(default=1, metadata=kind("int+", short="g", trivial=(1,)))
    bn: bool = field(default=True, metadata=kind("bool", quiet=True))
    act: str | None = field(default=None, metadata=kind("act?", quiet=True))

    def geometry(self, c: int) -> tuple[int, int]:
        """(channel stride, channel padding) that give C outputs in total."""
        g = self.groups
        return g, max(0, -(-(self.dc - g) // 2))

    def out_shape(self, x: Shape) -> Shape:
        c, h, w = feature_map(x, "cwconv")
        if c % self.groups:
            raise ArchError(f"cwconv groups={self.groups} must divide the channel count {c}")
        if self.dc > c // self.groups:
            raise ArchError(
                f"channel-wise kernel dc={self.dc} is larger than the {c // self.groups} channels per group: "
                f"use dc <= {c // self.groups}"
            )
        stride, pad = self.geometry(c)
        m = out_len(c, self.dc, stride, pad)
        if m * self.groups != c:
            raise ArchError(f"cwconv dc={self.dc} with groups={self.groups} cannot keep {c} channels: use an odd dc")
        return x

    def cost(self, ins, out, conv):
        c, h, w = ins[0]
        n_out = c * h * w
        weights = self.dc * self.groups
        madds = n_out * self.dc
        cost = Cost(madds, dot_cost(madds, n_out, self.dc, conv), weights, weights, 2 * n_out + weights, n_out)
        cost = epilogue(cost, n_out, c, False, self.bn, self.act, conv)
        if self.bn:  # the kernel is shared by all C outputs, so BN's per-channel scale cannot be folded into
            cost.params_folded += c  # it: the fused epilogue reads scale and shift (2C), not a folded bias (C)
            cost.mac += c
        return cost

    def terms(self, ins, out, madds):
        return [Term("conv", madds, numel(ins[0]), numel(out))] + epilogue_terms(numel(out), self.bn, self.act)

    def final_act(self):
        return self.act

    def module(self, x):
        from nasx.ops._torch import ChannelwiseConv as TorchChannelwiseConv
        from nasx.ops._torch import fused

        stride, pad = self.geometry(x[0])
        return fused(TorchChannelwiseConv(self.dc, stride, pad, self.groups), x[0], self.bn, self.act)
