"""dwsep: MobileNetV1 depthwise-separable unit and MobileNetV2 inverted residual, optional SE
(MnasNet, MobileNetV3)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nasx.errors import ArchError
from nasx.layers import Family, conv, register, squeeze_excite
from nasx.ops import Add, kind


@register
@dataclass(frozen=True)
class DwsepBlock(Family):
    """[1x1 expand to mid -BN-act] -> k x k depthwise (stride) -BN-act -> [SE] -> 1x1 project -BN[-act].

    mid = `mid` if given, else round(in * expansion); the expand conv is skipped when mid == in and
    expansion == 1 (MobileNetV1 unit, MobileNetV2's first block). linear=true leaves the projection without
    activation (V2's linear bottleneck); linear=false is the V1 unit. SE squeezes mid channels to `se_mid`,
    else max(1, floor(mid * se)) (se=0: no SE). Identity residual when stride 1, in == out and residual."""

    name = family = "dwsep"
    kernel: int = field(default=3, metadata=kind("int+", short="k"))
    expansion: float = field(default=1.0, metadata=kind("float+", short="e"))
    mid: int | None = field(default=None, metadata=kind("int+?", quiet=True))
    act: str = field(default="relu6", metadata=kind("act", quiet=True))
    linear: bool = field(default=True, metadata=kind("bool", quiet=True))
    se: float = field(default=0.0, metadata=kind("float0", short="se", trivial=(0,)))
    se_mid: int | None = field(default=None, metadata=kind("int+?", quiet=True))
    se_gate: str = field(default="sigmoid", metadata=kind("act", quiet=True))
    residual: bool = field(default=True, metadata=kind("bool", quiet=True))

    def expand(self, g, x):
        cin = g.shape(x)[0]
        mid = self.mid or max(1, round(cin * self.expansion))
        if self.kernel % 2 == 0:
            raise ArchError(f"dwsep kernel must be odd, got {self.kernel}")
        y = x if (mid == cin and self.mid is None and self.expansion == 1) else conv(g, x, mid, act=self.act)
        y = conv(g, y, mid, self.kernel, self.stride, groups=mid, act=self.act)
        if self.se > 0 or self.se_mid:
            y = squeeze_excite(g, y, self.se_mid or max(1, int(mid * self.se)), "relu", self.se_gate)
        y = conv(g, y, self.out, act=None if self.linear else self.act)
        if self.residual and self.stride == 1 and cin == self.out:
            y = g.add(Add(), x, y)
        return y
