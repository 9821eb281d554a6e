"""Layer specs: the vocabulary of an architecture. A layer is a plain op or a block; each type is a
frozen dataclass registered by name (ops with nasx.ops.register_op, blocks with `register` here), and
expands into ops on a Graph.

JSON values are checked by each field's declared kind, so a loaded file can only ever construct these
dataclasses with checked values: nothing in a file is executed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, ClassVar, TypeVar, cast

from nasx.errors import ArchError
from nasx.graph import Graph
from nasx.ops import ACTIVATIONS, LAYER_TYPES, Conv2d, GlobalAvgPool, Multiply, Op, Registry, kind
from nasx.ops.base import check_layer_type, memo_hash

__all__ = [
    "FAMILIES",
    "LAYER_TYPES",
    "Block",
    "Family",
    "SqueezeExcite",
    "coerce",
    "conv",
    "expand",
    "layer_from_dict",
    "layer_to_dict",
    "register",
    "squeeze_excite",
]


@dataclass(frozen=True)
class Block:
    """Base of composite layers: `expand` adds the block's ops to a graph and returns its output node."""

    name: ClassVar[str] = ""

    def expand(self, g: Graph, x: int) -> int:
        raise NotImplementedError


@dataclass(frozen=True)
class Family(Block):
    """Base of the block families a search space stacks: each maps its input to `out` channels, downsamples by
    `stride` and uses activation `act` (nasx.space builds every family from these three). A family
    re-declares a field to change its default or kind; the field keeps its place, first in every family."""

    family: ClassVar[str] = ""
    out: int = field(metadata=kind("int+"))
    stride: int = field(default=1, metadata=kind("enum", choices=(1, 2)))
    act: str = field(default="relu", metadata=kind("act", quiet=True))


# The block families by family name (nasx.blocks imports the five of nasx; `register` adds each).
FAMILIES: Registry[type[Family]] = Registry("block family")
BlockType = TypeVar("BlockType", bound="type[Block]")


def register(cls: BlockType) -> BlockType:
    """Make a block type loadable by its `name` (a family also by `family`), checked at class definition:
    a taken name or a field without its JSON kind raises. Adding a family is one file plus this decorator."""
    family = cast("type[Family]", cls) if issubclass(cls, Family) else None
    if family is not None and not family.family:
        raise TypeError(f"{cls.__qualname__} needs a class attribute `family`, its family name")
    check_layer_type(cls, LAYER_TYPES)
    if family is not None:
        FAMILIES.check_free(family.family, cls)
    LAYER_TYPES[cls.name] = memo_hash(cls)
    if family is not None:
        FAMILIES[family.family] = family
    return cls


def expand(layer: Any, g: Graph, x: int) -> int:
    return g.add(layer, x) if isinstance(layer, Op) else layer.expand(g, x)


def conv(
    g: Graph,
    x: int,
    out: int,
    k: int = 1,
    s: int = 1,
    groups: int = 1,
    act: str | None = None,
    bn: bool = True,
    bias: bool = False,
) -> int:
    """Shorthand for a fused conv-BN-act node with half padding."""
    return g.add(Conv2d(out, (k, k), (s, s), "same", (1, 1), groups, bias, bn, act), x)


def squeeze_excite(g: Graph, x: int, mid: int, act: str = "relu", gate: str = "sigmoid") -> int:
    """SE (Hu et al. 2018): global pool -> 1x1 reduce (bias) -> act -> 1x1 expand (bias) -> gate -> scale x."""
    c = g.shape(x)[0]
    s = g.add(GlobalAvgPool(), x)
    s = conv(g, s, mid, act=act, bn=False, bias=True)
    s = conv(g, s, c, act=gate, bn=False, bias=True)
    return g.add(Multiply(), x, s)


@register
@dataclass(frozen=True)
class SqueezeExcite(Block):
    """Stand-alone squeeze-excite; `mid` channels, or mid = max(1, floor(C * ratio))."""

    name = "se"
    ratio: float = field(default=0.25, metadata=kind("ratio", short="r"))
    mid: int | None = field(default=None, metadata=kind("int+?", quiet=True))
    act: str = field(default="relu", metadata=kind("act", quiet=True))
    gate: str = field(default="sigmoid", metadata=kind("act"))

    def expand(self, g, x):
        mid = self.mid or max(1, int(g.shape(x)[0] * self.ratio))
        return squeeze_excite(g, x, mid, self.act, self.gate)


# ---- JSON <-> spec ------------------------------------------------------------------------------------

# No real architecture has a number this large; bounding them keeps the shape and cost arithmetic (which
# mixes ints and floats, e.g. round(C * expansion)) from overflowing on hostile input, force or not.
MAX_NUMBER = 2**63


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and -MAX_NUMBER < v < MAX_NUMBER


def _is_num(v) -> bool:
    return _is_int(v) or (isinstance(v, float) and math.isfinite(v) and abs(v) < MAX_NUMBER)


def show(value, limit: int = 80) -> str:
    """repr of a value for an error message: bounded length, safe for ints too long to print."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pair(v, minimum: int):
    if _is_int(v) and v >= minimum:
        return (v, v)
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(_is_int(i) and i >= minimum for i in v):
        return tuple(v)
    return None


def coerce(value: Any, meta: Mapping[str, Any], where: str) -> Any:
    """Check one JSON value against its field kind; return the Python value or raise ArchError."""
    k = meta["kind"]
    ok, out, want = True, value, ""
    if k in ("int+", "int0", "int+?"):
        if k == "int+?" and value is None:
            return None
        lo = 0 if k == "int0" else 1
        ok, want = _is_int(value) and value >= lo, f"an integer >= {lo}"
    elif k == "pair":
        out = _pair(value, 1)
        ok, want = out is not None, "a positive integer or [h, w]"
    elif k == "padding":
        out = "same" if value == "same" else _pair(value, 0)
        ok, want = out is not None, '"same", an integer >= 0 or [h, w]'
    elif k == "bool":
        ok, want = isinstance(value, bool), "true or false"
    elif k in ("act", "act?"):
        if k == "act?" and value is None:
            return None
        ok, want = value in ACTIVATIONS, f"one of {', '.join(ACTIVATIONS)}" + (" or null" if k == "act?" else "")
    elif k == "ratio":
        ok, want = _is_num(value) and 0 < value <= 1, "a number in (0, 1]"
        out = float(value) if ok else value
    elif k in ("float+", "float0"):
        ok = _is_num(value) and (value > 0 if k == "float+" else value >= 0)
        want = "a number > 0" if k == "float+" else "a number >= 0"
        out = float(value) if ok else value
    elif k == "enum":
        # type-exact: true and 1.0 are not the integer 1 (they would give bool or float costs)
        ok = any(type(value) is type(c) and value == c for c in meta["choices"])
        want = f"one of {', '.join(map(str, meta['choices']))}"
    else:  # register refuses a kind outside FIELD_KINDS: this is a kind added there but not here
        raise TypeError(f"{where}: no check for field kind {k!r}")
    if not ok:
        big = isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= MAX_NUMBER
        raise ArchError(f"{where}: expected {want}{' below 2^63' if big else ''}, got {show(value)}")
    return out


def layer_from_dict(d, where: str):
    """Build a layer spec from its JSON object, checking every key and value."""
    if not isinstance(d, dict):
        raise ArchError(f'{where}: a layer must be an object with a "type" key, got {type(d).__name__}')
    type_name = d.get("type")
    cls = LAYER_TYPES.get(type_name) if isinstance(type_name, str) else None
    if cls is None:
        raise ArchError(f"{where}: unknown layer type {show(type_name)}; known types: {', '.join(sorted(LAYER_TYPES))}")
    where = f"{where} ({type_name})"
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known) - {"type"})
    if unknown:
        raise ArchError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(known)}")
    kwargs = {}
    for name, f in known.items():
        if name in d:
            kwargs[name] = coerce(d[name], f.metadata, f"{where}.{name}")
        elif f.default is MISSING:
            raise ArchError(f"{where}: missing required key {name!r}")
    return cls(**kwargs)


def _json_value(v):
    if isinstance(v, tuple):
        return v[0] if v[0] == v[1] else list(v)
    return v


def layer_to_dict(layer) -> dict:
    """Canonical JSON object of a layer: its type and every field (defaults included, pairs folded), except
    a field added to an existing type (metadata omit_default) while at its default: adding an option keeps
    the canonical JSON and content hash of every arch written before it."""
    return {
        "type": layer.name,
        **{
            f.name: _json_value(getattr(layer, f.name))
            for f in fields(layer)
            if not (f.metadata.get("omit_default") and getattr(layer, f.name) == f.default)
        },
    }
