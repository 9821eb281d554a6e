"""standard: k x k conv-BN-act, the ResNet basic block and the ResNet bottleneck (He et al. 2016)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.layers import Family, conv, register
from nasx.ops import Add, kind


def shortcut(g, x: int, out: int, stride: int) -> int:
    """Identity when shapes allow; otherwise the ResNet projection, a strided 1x1 conv + BN."""
    if stride == 1 and g.shape(x)[0] == out:
        return x
    return conv(g, x, out, 1, stride)


@register
@dataclass(frozen=True)
class StandardBlock(Family):
    """layout "single": conv-BN-act (+ identity residual when stride 1 and in == out and residual=true);
    "basic": two k x k convs; "bottleneck": 1x1 -> k x k (stride here, torchvision's v1.5) -> 1x1 with
    mid = out * bottleneck_ratio. basic and bottleneck always have a shortcut, projected when needed."""

    name = family = "standard"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    layout: str = field(default="single", metadata=kind("enum", choices=("single", "basic", "bottleneck"), short=""))
    bottleneck_ratio: float = field(default=0.25, metadata=kind("ratio", quiet=True))
    residual: bool = field(default=True, metadata=kind("bool", quiet=True))

    def expand(self, g, x):
        k, s, act = self.kernel, self.stride, self.act
        if self.layout == "single":
            y = conv(g, x, self.out, k, s, act=act)
            identity = self.residual and s == 1 and g.shape(x)[0] == self.out
            return g.add(Add(), x, y) if identity else y
        if self.layout == "basic":
            y = conv(g, x, self.out, k, s, act=act)
            y = conv(g, y, self.out, k, 1)
        else:
            mid = int(self.out * self.bottleneck_ratio)
            if mid < 1:
                raise ArchError(f"bottleneck mid channels out*ratio = {self.out}*{self.bottleneck_ratio} < 1")
            y = conv(g, x, mid, 1, 1, act=act)
            y = conv(g, y, mid, k, s, act=act)
            y = conv(g, y, self.out, 1, 1)
        return g.add(Add(act), shortcut(g, x, self.out, s), y)
