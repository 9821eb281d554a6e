"""The contract every primitive op keeps: shape, cost and torch module, side by side.

Shapes are tuples without the batch axis: (C, H, W) for feature maps, (F,) for vectors.
Costs are per sample (batch 1), integers, under the conventions of docs/DESIGN.md section 4.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar, cast

Shape = tuple[int, ...]
T = TypeVar("T", bound=type)
OpType = TypeVar("OpType", bound="type[Op]")


@dataclass(frozen=True)
class ActivationFn:
    """What nasx knows of one activation function, by its JSON name."""

    exact_ops: int  # arithmetic per element under the `exact` convention
    torch_class: str  # its torch.nn module class
    # The torch module can write its output over its input (`inplace=True`). Only for functions whose output
    # is > 0 exactly where the input is: NASWOT reads an activation's input in a forward hook, after an
    # in-place module has overwritten it, so its codes must not change (hsigmoid is > 0 from -3 on).
    inplace: bool
    # Autograd keeps the output (not the input) to compute the gradient of the in-place module: writing
    # over that output again in place would break the backward pass.
    keeps_output: bool


ACTIVATION_FNS = {
    "relu": ActivationFn(1, "ReLU", inplace=True, keeps_output=True),
    "relu6": ActivationFn(2, "ReLU6", inplace=True, keeps_output=True),  # hardtanh_ keeps its result
    "hswish": ActivationFn(4, "Hardswish", inplace=True, keeps_output=False),
    "hsigmoid": ActivationFn(3, "Hardsigmoid", inplace=False, keeps_output=False),
    "sigmoid": ActivationFn(4, "Sigmoid", inplace=False, keeps_output=True),
    "silu": ActivationFn(5, "SiLU", inplace=True, keeps_output=False),
    "gelu": ActivationFn(8, "GELU", inplace=False, keeps_output=False),
}
ACTIVATIONS = tuple(ACTIVATION_FNS)
ACT_EXACT_OPS = {name: fn.exact_ops for name, fn in ACTIVATION_FNS.items()}

# The JSON value kinds a layer field may declare (nasx.layers.coerce checks a value against its kind).
FIELD_KINDS = ("int+", "int0", "int+?", "pair", "padding", "bool", "act", "act?", "ratio", "float+", "float0", "enum")


def kind(k: str, **extra: Any) -> dict[str, Any]:
    """Field metadata: the JSON value kind the loader checks (see nasx.layers), plus optional facts:
    omit_default (left out of the canonical JSON at its default), and for nasx.store.summary's one-line
    summaries short (the label written before the value, e.g. "k" for a kernel), quiet (left out) and
    trivial (values left out, e.g. groups 1)."""
    return {"kind": k, **extra}


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
    def preset(cls, name: str) -> Convention:
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

    def __iadd__(self, other: Cost) -> Cost:
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
class Term:
    """One piece of arithmetic of one nasx op, described well enough for any external counter's rule
    (nasx.measure.compare re-counts an arch's terms under each counter's rules)."""

    category: str  # a key of nasx.measure.compare.CATEGORIES
    madds: int = 0  # conv / linear multiply-accumulates
    n_in: int = 0  # input elements
    n_out: int = 0  # output elements
    bias: bool = False
    detail: str = ""  # activation function, pooling mode, element-wise op, unknown op name
    channels: int = 0


def epilogue_terms(n_out: int, bn: bool, act: str | None) -> list[Term]:
    """The terms of a fused BN / activation epilogue over `n_out` elements."""
    terms = [Term("bn", n_out=n_out)] if bn else []
    return terms + ([Term("act", n_out=n_out, detail=act)] if act else [])


class Registry(dict[str, T]):
    """Name -> class: a vocabulary extended by decorating a class. A name is taken once: registering a
    second class under it raises instead of silently replacing the first (as torch's
    register_flop_formula does)."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def check_free(self, name: str, cls: type) -> None:
        if name in self:
            old = self[name]
            raise ValueError(
                f"{self.what} {name!r} is already registered by {old.__module__}.{old.__qualname__}: "
                f"give {cls.__module__}.{cls.__qualname__} another name"
            )

    def __setitem__(self, name: str, cls: T) -> None:
        self.check_free(name, cls)
        super().__setitem__(name, cls)


def check_fields(cls: type) -> None:
    """Every field of a layer type says its JSON kind, so the loader can check a file's value for it."""
    for f in fields(cls):
        k = f.metadata.get("kind")
        if k not in FIELD_KINDS:
            problem = "has no kind" if k is None else f"has the unknown kind {k!r}"
            raise TypeError(
                f"{cls.__qualname__}.{f.name} {problem}: declare it as field(..., metadata=kind(K)) "
                f"with K one of {', '.join(FIELD_KINDS)}"
            )


def memo_hash(cls: T) -> T:
    """Compute a frozen dataclass's hash once per instance: specs are cache keys, hashed on every lookup."""
    field_hash = cast(Callable[[Any], int], cls.__hash__)

    def __hash__(self: Any) -> int:
        try:
            return self.__dict__["_hash"]
        except KeyError:
            h = field_hash(self)
            object.__setattr__(self, "_hash", h)
            return h

    setattr(cls, "__hash__", __hash__)  # noqa: B010  (replacing a method: the type checker refuses `cls.__hash__ =`)
    return cls


def check_layer_type(cls: type, *registries: Registry[Any]) -> None:
    """What every registered layer type keeps: a name not taken yet and a kind for each field."""
    name = getattr(cls, "name", "")
    if not isinstance(name, str) or not name:
        raise TypeError(f"{cls.__qualname__} needs a class attribute `name`, its JSON type name")
    for registry in registries:
        registry.check_free(name, cls)
    check_fields(cls)


# Every layer type an arch file may name: the ops registered with layer=True and the blocks (nasx.layers).
LAYER_TYPES: Registry[type] = Registry("layer type")


@dataclass(frozen=True)
class Op:
    """A primitive op: its output shape, its cost, its arithmetic terms for external counters and its torch
    module, side by side. A new op is one file: a frozen dataclass subclass decorated with @register_op."""

    name: ClassVar[str] = ""
    # Loadable as a layer of an arch file (the others, like add, only appear inside blocks).
    layer: ClassVar[bool] = True
    # The output may be a view of the first input (same memory): writing over one changes the other.
    aliases_input: ClassVar[bool] = False
    # `inplace_module` writes the output over the first input (an activation).
    can_work_in_place: ClassVar[bool] = False

    def out_shape(self, *ins: Any) -> Shape:
        raise NotImplementedError

    def cost(self, ins: tuple[Shape, ...], out: Shape, conv: Convention) -> Cost:
        raise NotImplementedError

    def terms(self, ins: tuple[Shape, ...], out: Shape, madds: int) -> list[Term]:
        """The op's arithmetic for nasx.measure.compare; `madds` is its own cost's. Pure data movement returns [].
        An op that does not say is reported as one nasx cannot describe to a counter."""
        return [Term("other", detail=self.name)]

    def module(self, *ins: Any) -> Any:
        """Return the torch module computing this op (import torch inside: the cost core never loads it).
        A fused activation is built in place: its input is the op's own intermediate tensor."""
        raise NotImplementedError

    def inplace_module(self, *ins: Any) -> Any:
        """The module writing its output over its first input; the graph asks for it only when no other node
        needs that input (see Graph.overwritable)."""
        return self.module(*ins)

    def final_act(self) -> str | None:
        """The activation that produces the op's output, if any (autograd may keep that output)."""
        return None

    def keeps_output(self) -> bool:
        """Autograd keeps this op's output for the backward pass, so nothing may overwrite it in place."""
        act = self.final_act()
        return act is not None and ACTIVATION_FNS[act].keeps_output

    def params_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


OPS: Registry[type[Op]] = Registry("op")


def register_op(cls: OpType) -> OpType:
    """Make an op known by its `name` (and loadable from an arch file unless `layer = False`); checked at
    class definition: a taken name or a field without its JSON kind raises."""
    check_layer_type(cls, OPS, *((LAYER_TYPES,) if cls.layer else ()))
    memo_hash(cls)
    OPS[cls.name] = cls
    if cls.layer:
        LAYER_TYPES[cls.name] = cls
    return cls


def movement_cost(
    ins: tuple[Shape, ...], out: Shape, conv: Convention, ops_per_out: int = 0, counted: bool = False
) -> Cost:
    """Cost of a data-movement / element-wise op: reads every input, writes the output; its
    `ops_per_out` arithmetic counts under `exact` or when the convention's flag (`counted`) is set."""
    n_out = numel(out)
    arithmetic = ops_per_out * n_out if (conv.kind == "exact" or counted) else 0
    return Cost(ops=arithmetic, mac=sum(numel(s) for s in ins) + n_out)
