"""group_shuffle: ShuffleNet V1 unit (Zhang et al. 2018) and ShuffleNet V2 unit (Ma et al. 2018)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.layers import Family, conv, register
from nasx.ops import Add, ChannelShuffle, ChannelSlice, Concat, Pool, kind


@register
@dataclass(frozen=True)
class GroupShuffleBlock(Family):
    """version 1: 1x1 group conv (g) -BN-act -> shuffle -> k x k depthwise (stride) -BN -> 1x1 group conv
    -BN; stride 1 with in == out adds the input (then act); stride 2 concatenates a 3x3 avg-pool of the
    input, so the branch yields out - in channels (in < out required). Stride 1 with in != out has no
    shortcut. mid = floor(out * bottleneck_ratio); group_first=false keeps the first 1x1 dense (the
    first unit of ShuffleNet V1's stage 2).

    version 2: stride 1 with in == out splits the channels in half, runs 1x1-BN-act -> depthwise -BN ->
    1x1-BN-act on one half and concatenates; otherwise (stride 2, or in != out) both branches see the whole
    input: depthwise-BN -> 1x1-BN-act, and 1x1-BN-act -> depthwise-BN -> 1x1-BN-act, out/2 channels each.
    Both end with a channel shuffle of 2 groups."""

    name = family = "group_shuffle"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    groups: int = field(default=3, metadata=kind("int+", short="g", trivial=(1,)))
    version: int = field(default=1, metadata=kind("enum", choices=(1, 2), short="v"))
    bottleneck_ratio: float = field(default=0.25, metadata=kind("ratio", quiet=True))
    group_first: bool = field(default=True, metadata=kind("bool", quiet=True))

    def expand(self, g, x):
        if self.kernel % 2 == 0:
            raise ArchError(f"group_shuffle kernel must be odd, got {self.kernel}")
        return self._v1(g, x) if self.version == 1 else self._v2(g, x)

    def _v1(self, g, x):
        cin, grp, act = g.shape(x)[0], self.groups, self.act
        downsample = self.stride == 2
        branch_out = self.out - cin if downsample else self.out
        if branch_out < 1:
            raise ArchError(
                f"group_shuffle v1 with stride 2 concatenates the input: out ({self.out}) must exceed in ({cin})"
            )
        mid = int(self.out * self.bottleneck_ratio)
        g1 = grp if self.group_first else 1
        for what, n, d in (
            ("in channels", cin, g1),
            ("mid channels", mid, grp),
            ("branch out channels", branch_out, grp),
        ):
            if n < 1 or n % d:
                raise ArchError(
                    f"group_shuffle groups={d} must divide the {what} ({n}); pick out so that "
                    f"out, out*{self.bottleneck_ratio} and out-in are multiples of {grp}"
                )
        y = conv(g, x, mid, 1, 1, groups=g1, act=act)
        if grp > 1:
            y = g.add(ChannelShuffle(grp), y)
        y = conv(g, y, mid, self.kernel, self.stride, groups=mid)
        if downsample:
            y = conv(g, y, branch_out, 1, 1, groups=grp, act=act)
            return g.add(Concat(), g.add(Pool("avg", 3, 2, 1), x), y)
        if cin != self.out:
            return conv(g, y, branch_out, 1, 1, groups=grp, act=act)
        y = conv(g, y, branch_out, 1, 1, groups=grp)
        return g.add(Add(act), x, y)

    def _v2(self, g, x):
        cin, act, k = g.shape(x)[0], self.act, self.kernel
        if self.stride == 1 and cin == self.out:
            if cin % 2:
                raise ArchError(f"group_shuffle v2 splits channels in half: in channels ({cin}) must be even")
            half = cin // 2
            keep = g.add(ChannelSlice(0, half), x)
            y = g.add(ChannelSlice(half, cin), x)
            y = conv(g, y, half, act=act)
            y = conv(g, y, half, k, 1, groups=half)
            y = conv(g, y, half, act=act)
        else:
            if self.out % 2:
                raise ArchError(f"group_shuffle v2 concatenates two halves: out ({self.out}) must be even")
            half = self.out // 2
            keep = conv(g, x, cin, k, self.stride, groups=cin)
            keep = conv(g, keep, half, act=act)
            y = conv(g, x, half, act=act)
            y = conv(g, y, half, k, self.stride, groups=half)
            y = conv(g, y, half, act=act)
        return g.add(ChannelShuffle(2), g.add(Concat(), keep, y))
