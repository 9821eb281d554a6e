"""The contract every primitive op keeps: shape, cost and torch module, side by side.

Shapes are tuples without the batch axis: (C, H, W) for feature maps, (F,) for vectors.
Costs are per sample (batch 1), integers, under the conventions of docs/DESIGN.md section 4.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar

Shape = tuple[int, ...]

# Element-wise operation counts for the `exact` convention (per output element).
ACT_EXACT_OPS = {"relu": 1, "relu6": 2, "hswish": 4, "hsigmoid": 3, "sigmoid": 4, "silu": 5, "gelu": 8}
ACTIVATIONS = tuple(ACT_EXACT_OPS)


@dataclass(frozen=True)
class Convention:
    """How arithmetic is counted. `kind` picks the unit; the flags add terms a counter may include."""

    kind: str = "madds"  # madds | flops | exact
    bn: bool = False  # count batch norm (unfolded), 2 ops per element (fvcore's eval-mode rule)
    bias: bool = False  # count bias additions, 1 per output element
    act: bool = False  # count activations, 1 per element
    elementwise: bool = False  # count add / multiply, 1 per output element
    pool: bool = False  # count k x k pooling arithmetic (k^2 - 1 compares for max, k^2 for avg per output)
    gap: bool = False  # count global average pooling, 1 per input element (fvcore's rule)

    KINDS: ClassVar[tuple[str, ...]] = ("madds", "flops", "exact")
    FLAGS: ClassVar[tuple[str, ...]] = ("bn", "bias", "act", "elementwise", "pool", "gap")
    # The settings under which nasx reproduces an external counter's total exactly.
    PRESETS: ClassVar[dict[str, dict]] = {
        "fvcore": {"kind": "madds", "bn": True, "gap": True},  # conv/linear MAdds, BN 2/elem, adaptive pool
        "torch": {"kind": "flops"},  # torch.utils.flop_counter: 2 per MAdd, conv and matmul only
    }

    def __hash__(self) -> int:  # a cache key on every layer lookup: hash once
        try:
            return self.__dict__["_hash"]
        except KeyError:
            h = hash(tuple(getattr(self, f) for f in ("kind",) + self.FLAGS))
            object.__setattr__(self, "_hash", h)
            return h

    @classmethod
    def preset(cls, name: str) -> "Convention":
        if name not in cls.PRESETS:
            from nasx.errors import NasxError

            raise NasxError(f"unknown counter preset {name!r}: use one of {', '.join(cls.PRESETS)}")
        return cls(**cls.PRESETS[name])

    def __post_init__(self) -> None:
        if self.kind not in self.KINDS:
            from nasx.errors import NasxError

            raise NasxError(f"unknown convention {self.kind!r}: use one of {', '.join(self.KINDS)}")

    def describe(self) -> str:
        base = {
            "madds": "MAdds (multiply-accumulates; BN folded, bias and activations excluded)",
            "flops": "FLOPs = 2 x MAdds (torch FlopCounterMode convention)",
            "exact": "exact ops (2*Cin/g*kh*kw-1 per conv output, +1 with bias, BN/act/elementwise counted)",
        }[self.kind]
        extra = [name for name in self.FLAGS if getattr(self, name)]
        return base + (f" + {'+'.join(extra)} terms" if extra and self.kind != "exact" else "")


class Cost:
    """Additive cost record of one op or a group of ops (per sample)."""

    __slots__ = ("madds", "ops", "params", "params_folded", "mac", "activations")

    def __init__(self, madds=0, ops=0, params=0, params_folded=0, mac=0, activations=0):
        self.madds = madds  # multiply-accumulates
        self.ops = ops  # arithmetic under the chosen convention
        self.params = params  # learnable parameters (BN gamma/beta included)
        self.params_folded = params_folded  # parameters after folding BN into the conv
        self.mac = mac  # memory access cost in elements (reads + writes, conv+BN+act fused)
        self.activations = activations  # output elements of conv / linear layers (RegNet)

    def __iadd__(self, other: "Cost") -> "Cost":
        self.madds += other.madds
        self.ops += other.ops
        self.params += other.params
        self.params_folded += other.params_folded
        self.mac += other.mac
        self.activations += other.activations
        return self

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


def numel(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass(frozen=True)
class Op:
    """A primitive op. Subclasses define `out_shape`, `cost` and `module`."""

    name: ClassVar[str] = ""

    def out_shape(self, *ins: Shape) -> Shape:
        raise NotImplementedError

    def cost(self, ins: tuple[Shape, ...], out: Shape, conv: Convention) -> Cost:
        raise NotImplementedError

    def module(self, *ins: Shape):
        """Return the torch module computing this op (torch is imported lazily)."""
        raise NotImplementedError

    def params_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def movement_cost(ins: tuple[Shape, ...], out: Shape, conv: Convention, ops_per_out: int = 0,
                  counted: bool = False) -> Cost:
    """Cost of a data-movement / element-wise op: reads every input, writes the output; its
    `ops_per_out` arithmetic counts under `exact` or when the convention's flag (`counted`) is set."""
    n_out = numel(out)
    arithmetic = ops_per_out * n_out if (conv.kind == "exact" or counted) else 0
    return Cost(ops=arithmetic, mac=sum(numel(s) for s in ins) + n_out)
