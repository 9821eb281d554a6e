"""channelwise: ChannelNets (Gao et al. 2018) modules built on channel-wise convolution."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.layers import Family, conv, register
from nasx.ops import Add, ChannelwiseConv, Concat, kind

SHORTCUTS = ("auto", "add", "none", "concat")


@register
@dataclass(frozen=True)
class ChannelwiseBlock(Family):
    """module=false (default), the paper's units: k x k depthwise (stride) -BN-act, then the channel mixing:
    - in == out and groups == 1: a channel-wise conv (dc weights along the channel axis, shared over
      space) -BN-act replaces the 1x1 pointwise conv (ChannelNets' depthwise separable channel-wise conv);
    - otherwise: 1x1 group conv (groups) to out -BN-act, then a group channel-wise conv (g kernels of dc,
      channel stride g) -BN-act fuses information across the groups (ChannelNets' GCWConv).

    module=true, the group module of the authors' code (HongyangGao/ChannelNets utils/ops.py: dw_block,
    single_block, simple_group_block, conv_group_block): [gcw=true: a group channel-wise conv of dc, groups
    (channel stride g, no BN, no act; ops.pure_conv2d) fuses the groups first], then `depth` depthwise
    separable layers, each k x k depthwise (stride on the first) -> 1x1 group conv (groups) -BN-act.
    groups=1, depth=1 is the plain depthwise separable unit (ops.dw_block).

    dw_bn=false leaves every depthwise conv without BN and activation (as the authors' code does).
    shortcut: "auto" adds the input when stride 1 and in == out (default); "add" requires that; "none";
    "concat" concatenates the input before the branch output (model.py's add0..add2), so the branch
    yields out - in channels (stride 1, out > in)."""

    name = family = "channelwise"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    dc: int = field(default=7, metadata=kind("int+", short="dc"))
    groups: int = field(default=1, metadata=kind("int+", short="g", trivial=(1,)))
    act: str = field(default="relu6", metadata=kind("act", quiet=True))
    # added for the authors' ChannelNet-v1 (omit_default: archs written before keep their canonical JSON)
    module: bool = field(default=False, metadata=kind("bool", omit_default=True))
    depth: int = field(default=2, metadata=kind("int+", omit_default=True))
    gcw: bool = field(default=False, metadata=kind("bool", omit_default=True))
    dw_bn: bool = field(default=True, metadata=kind("bool", omit_default=True))
    shortcut: str = field(default="auto", metadata=kind("enum", choices=SHORTCUTS, omit_default=True))

    def expand(self, g, x):
        cin = g.shape(x)[0]
        same = self.stride == 1 and cin == self.out
        if self.shortcut == "add" and not same:
            raise ArchError(
                f"channelwise shortcut 'add' needs stride 1 and in == out, got stride {self.stride}, "
                f"in {cin}, out {self.out}"
            )
        if self.shortcut == "concat" and (self.stride != 1 or self.out <= cin):
            raise ArchError(
                f"channelwise shortcut 'concat' appends the branch to the input: it needs stride 1 "
                f"and out ({self.out}) > in ({cin})"
            )
        branch = self.out - cin if self.shortcut == "concat" else self.out
        y = self._module(g, x, cin, branch) if self.module else self._unit(g, x, cin, branch)
        if self.shortcut == "concat":
            return g.add(Concat(), x, y)
        if self.shortcut == "add" or (self.shortcut == "auto" and same):
            y = g.add(Add(), x, y)
        return y

    def _depthwise(self, g, x, c, stride):
        return conv(g, x, c, self.kernel, stride, groups=c, act=self.act if self.dw_bn else None, bn=self.dw_bn)

    def _unit(self, g, x, cin, out):
        y = self._depthwise(g, x, cin, self.stride)
        if self.groups == 1 and cin == out:
            return g.add(ChannelwiseConv(self.dc, 1, True, self.act), y)
        y = conv(g, y, out, groups=self.groups, act=self.act)
        return g.add(ChannelwiseConv(self.dc, self.groups, True, self.act), y)

    def _module(self, g, x, cin, out):
        y, c, stride = x, cin, self.stride
        if self.gcw:
            y = g.add(ChannelwiseConv(self.dc, self.groups, False, None), y)
        for _ in range(self.depth):
            y = self._depthwise(g, y, c, stride)
            y = conv(g, y, out, groups=self.groups, act=self.act)
            c, stride = out, 1
        return y
