"""partial: the FasterNet block (Chen et al. 2023): PConv -> 1x1 expand -BN-act -> 1x1 -> residual add."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.layers import Family, conv, register
from nasx.ops import Add, PartialConv, kind


@register
@dataclass(frozen=True)
class PartialBlock(Family):
    """When stride is 2 or in != out, a merging conv (2x2 stride 2, or 1x1 at stride 1) -BN first maps the
    input to `out` channels (FasterNet's patch merging). Then PConv (k x k on floor(out * ratio) channels)
    -> 1x1 to out * expansion -BN-act -> 1x1 back to out, added to the block's (merged) input."""

    name = family = "partial"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    ratio: float = field(default=0.25, metadata=kind("ratio", short="r"))
    expansion: float = field(default=2.0, metadata=kind("float+", short="e"))

    def expand(self, g, x):
        if self.stride == 2 or g.shape(x)[0] != self.out:
            x = conv(g, x, self.out, 2 if self.stride == 2 else 1, self.stride)
        hidden = int(self.out * self.expansion)
        if hidden < 1:
            raise ArchError(f"partial block hidden channels out*expansion = {self.out}*{self.expansion} < 1")
        y = g.add(PartialConv(self.kernel, self.ratio), x)
        y = conv(g, y, hidden, act=self.act)
        y = conv(g, y, self.out, bn=False)
        return g.add(Add(), x, y)
