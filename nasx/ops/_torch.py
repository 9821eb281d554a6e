"""Torch modules shared by nasx ops. Imported lazily by `Op.module()` so the cost core never loads torch."""

from __future__ import annotations

import torch
from torch import nn

from nasx.ops.base import ACTIVATION_FNS


def activation(name: str, inplace: bool = False) -> nn.Module:
    """The torch module of activation `name`; in place when asked and the function allows it."""
    fn = ACTIVATION_FNS[name]
    cls = getattr(nn, fn.torch_class)
    return cls(inplace=True) if inplace and fn.inplace else cls()


def fused(main: nn.Module, channels: int, bn: bool, act: str | None) -> nn.Module:
    """main -> optional BN -> optional activation, the unit an inference engine fuses. The activation
    works in place: its input is main's (or BN's) fresh output, which nothing else reads and whose
    producer's backward does not need it (conv and BN keep their inputs)."""
    if not bn and act is None:
        return main
    parts = [main]
    if bn:
        parts.append(nn.BatchNorm2d(channels))
    if act is not None:
        parts.append(activation(act, inplace=True))
    return nn.Sequential(*parts)


class LinearAct(nn.Sequential):
    pass


class Add(nn.Module):
    def __init__(self, act: str | None = None):
        super().__init__()
        self.act = activation(act, inplace=True) if act else nn.Identity()  # a + b is a fresh tensor

    def forward(self, a, b):
        return self.act(a + b)


class Multiply(nn.Module):
    def forward(self, a, b):
        return a * b


class Concat(nn.Module):
    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class ChannelSlice(nn.Module):
    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x):
        return x[:, self.start : self.stop]


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x):
        b, c, h, w = x.shape
        return x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class PartialConv(nn.Module):
    """FasterNet PConv: a k x k conv on the first `cp` channels, the rest passed through untouched."""

    def __init__(self, channels: int, cp: int, kernel: int):
        super().__init__()
        self.cp = cp
        self.conv = nn.Conv2d(cp, cp, kernel, 1, kernel // 2, bias=False)

    def forward(self, x):
        return torch.cat((self.conv(x[:, : self.cp]), x[:, self.cp :]), dim=1)


class ChannelwiseConv(nn.Module):
    """ChannelNets channel-wise conv: `out_groups` 1-D kernels of size dc sliding along the channel axis,
    shared over space (a Conv3d over (C, H, W) with kernel (dc, 1, 1)). out_groups > 1 is the group
    channel-wise conv: each kernel strides by the group count and yields C/g maps."""

    def __init__(self, dc: int, stride: int, padding: int, out_groups: int = 1):
        super().__init__()
        self.conv = nn.Conv3d(1, out_groups, (dc, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False)

    def forward(self, x):
        y = self.conv(x.unsqueeze(1))
        b, g, m, h, w = y.shape
        return y.reshape(b, g * m, h, w)


class GraphModule(nn.Module):
    """Runs a nasx Graph: node i+1 is ops[i] applied to the listed earlier nodes (node 0 is the input)."""

    def __init__(self, ops: list[nn.Module], wiring: list[tuple[int, ...]]):
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.wiring = [tuple(w) for w in wiring]

    def forward(self, x):
        values = [x]
        for op, inputs in zip(self.ops, self.wiring, strict=True):
            values.append(op(*[values[i] for i in inputs]))
        return values[-1]
