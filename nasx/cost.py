"""The cost core: per-layer and total MAdds, FLOPs, params, MAC and activations of an Arch.

Pure arithmetic: importing this module never imports torch."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from nasx.arch import Arch, layer_graph, load_arch
from nasx.errors import ArchError
from nasx.ops.base import Convention, Cost

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "int8": 1, "float64": 8}


@dataclass
class LayerCost:
    section: str
    index: int
    type: str
    out_shape: tuple
    cost: Cost

    def as_dict(self, dtype_bytes: int) -> dict:
        c = self.cost
        return {
            "section": self.section,
            "index": self.index,
            "type": self.type,
            "out_shape": list(self.out_shape),
            "madds": c.madds,
            "flops": 2 * c.madds,
            "ops": c.ops,
            "params": c.params,
            "params_folded": c.params_folded,
            "mac_elements": c.mac,
            "mac_bytes": c.mac * dtype_bytes,
            "activations": c.activations,
        }


@dataclass
class CostReport:
    arch: Arch
    convention: Convention
    layers: list[LayerCost]
    total: Cost
    dtype_bytes: int = 4
    convention_name: str = ""  # a preset's name (fvcore, torch) when one was asked for

    @property
    def madds(self) -> int:
        return self.total.madds

    @property
    def flops(self) -> int:
        return 2 * self.total.madds

    @property
    def params(self) -> int:
        return self.total.params

    @property
    def mac(self) -> int:
        return self.total.mac

    @property
    def mac_bytes(self) -> int:
        return self.total.mac * self.dtype_bytes

    @property
    def activations(self) -> int:
        return self.total.activations

    @property
    def depth(self) -> int:
        """Weighted depth: the most conv and linear layers on any input-to-output path (Graph.depth, summed
        over the layers, which run one after another)."""
        return sum(g.depth() for _, _, _, g in self.arch.graphs())

    def totals(self) -> dict[str, int]:
        t = self.total
        return {
            "madds": t.madds,
            "flops": 2 * t.madds,
            "ops": t.ops,
            "params": t.params,
            "params_folded": t.params_folded,
            "mac_elements": t.mac,
            "mac_bytes": t.mac * self.dtype_bytes,
            "activations": t.activations,
        }

    def to_json_dict(self) -> dict:
        return {
            "convention": self.convention_name or self.convention.kind,
            "convention_text": self.convention.describe(),
            "input": list(self.arch.input),
            "totals": self.totals(),
            "layers": [row.as_dict(self.dtype_bytes) for row in self.layers],
        }

    def table(self) -> str:
        """A readable per-layer table; its header names the convention."""
        from nasx.util.fmt import human, render_table

        unit = {"madds": "MAdds", "flops": "FLOPs", "exact": "ops"}[self.convention.kind]
        rows = [
            [
                f"{r.section}[{r.index}]",
                r.type,
                "x".join(map(str, r.out_shape)),
                human(r.cost.ops),
                human(r.cost.params),
                human(r.cost.mac),
                human(r.cost.activations),
            ]
            for r in self.layers
        ]
        t = self.total
        rows.append(
            [
                "total",
                "",
                "x".join(map(str, self.layers[-1].out_shape)) if self.layers else "",
                human(t.ops),
                human(t.params),
                human(t.mac),
                human(t.activations),
            ]
        )
        header = [
            f"{self.arch.name or 'arch'} @ {'x'.join(map(str, self.arch.input))}",
            "type",
            "output",
            unit,
            "params",
            "MAC (elem)",
            "acts",
        ]
        title = (
            f"convention: {self.convention.describe()}\n"
            f"MAC: elements read + written, conv+BN+act fused; {t.mac * self.dtype_bytes:,} bytes at "
            f"{self.dtype_bytes} B/element\n"
        )
        counted = "" if t.ops in (t.madds, 2 * t.madds) else f"  {unit} {t.ops:,}"
        summary = (
            f"\nMAdds {t.madds:,}  FLOPs {2 * t.madds:,}{counted}  params {t.params:,} "
            f"(folded {t.params_folded:,})  MAC {t.mac:,} elements  activations {t.activations:,}"
        )
        return title + render_table(header, rows, footer=True) + summary


@lru_cache(maxsize=1 << 16)
def layer_cost(layer, in_shape: tuple[int, ...], conv: Convention) -> tuple[Cost, tuple[int, ...]]:
    """(cost, output shape) of one layer on one input shape (memoised; treat the result as read-only)."""
    g = layer_graph(layer, in_shape)
    return g.cost(conv), g.out_shape


@lru_cache(maxsize=64)
def _convention(name: str, flags: tuple) -> Convention:
    """One Convention object per setting: cache lookups then match it by identity, not field by field."""
    return Convention.preset(name) if name in Convention.PRESETS else Convention(name, **dict(flags))


def clear_caches() -> None:
    """Forget memoised layer graphs and costs (benchmarks use it to time the cold path)."""
    layer_graph.cache_clear()
    layer_cost.cache_clear()


def cost(arch, convention: str | Convention = "madds", *, dtype: str = "float32", **flags: bool) -> CostReport:
    """Analytic costs of `arch` (an Arch, a JSON path or a reference model name), per layer and in total.

    `convention`: "madds", "flops", "exact", a counter preset ("fvcore", "torch") or a Convention;
    flags (bn, bias, act, elementwise, pool, gap) add optional terms to the `ops` column."""
    arch = load_arch(arch)
    if isinstance(convention, Convention):
        conv = convention
    else:
        conv = _convention(convention, tuple(sorted(flags.items())))
    if dtype not in DTYPE_BYTES:
        raise ArchError(f"unknown dtype {dtype!r}: use one of {', '.join(DTYPE_BYTES)}")
    total, rows, shape = Cost(), [], arch.input
    for section, i, layer in arch.sections():
        try:
            c, shape = layer_cost(layer, shape, conv)
        except ArchError as e:
            raise ArchError(f"{section}[{i}] ({layer.name}) on input {list(shape)}: {e}") from None
        total += c
        rows.append(LayerCost(section, i, layer.name, shape, c))
    name = convention if isinstance(convention, str) else ""
    return CostReport(arch, conv, rows, total, DTYPE_BYTES[dtype], name)
