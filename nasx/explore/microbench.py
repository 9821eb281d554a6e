"""`nasx microbench`: what a multiply-accumulate costs on this device, op by op and block by block.

FasterNet (Chen et al., "Run, Don't Walk", CVPR 2023) argues that depthwise and group convolutions cut
FLOPs but run at a low throughput (FLOPs per second) because they move much memory per operation, and that
partial convolution keeps the throughput of a regular conv. This is that comparison measured here:

- ops: regular 3x3 conv, group 3x3 conv (16 groups), depthwise 3x3 conv, partial 3x3 conv (r = 1/4, the
  torch module is nasx's: conv on the first C/4 channels, then a concat with the rest — FasterNet's own
  inference path clones the tensor and writes the slice in place, which also touches every channel) and
  ChannelNets' channel-wise conv (dc = 7). No BN, no activation.
- blocks: one block of each of the five families at stride 1, in = out channels, with BN and activations.

At each feature-map shape (width C x resolution H x W; by default the regular conv has the same MAdds at
every shape, as in FasterNet's per-stage comparison) each op or block is stacked L times, L chosen so the
stack has about `target` MAdds: every row does (nearly) the same arithmetic on tensors of the same shape,
so latency differences are differences in how fast this device runs that kind of work. Per row: the
measured latency (median, IQR), the achieved throughput (MAdds per second) and the MAC per MAdd from the
cost core (elements read and written per multiply-accumulate)."""

from __future__ import annotations

import html
import math
import sys
import time
from dataclasses import asdict, dataclass

from nasx.arch import Arch
from nasx.blocks import ChannelwiseBlock, DwsepBlock, GroupShuffleBlock, PartialBlock, StandardBlock
from nasx.build import build_seeded
from nasx.cost import cost
from nasx.errors import NasxError
from nasx.measure.latency import check_measure_time, measure_latency
from nasx.ops import ChannelwiseConv, Conv2d, PartialConv
from nasx.util.fmt import human, render_table
from nasx.util.page import figure_divs, made_with_plotly, page, write_page

DEFAULT_SHAPES = ((32, 56), (64, 28), (128, 14), (256, 7))  # (channels, resolution): 9·C²·H·W constant
DEFAULT_TARGET = 60_000_000
GROUPS = 16

OPS = {
    "conv": lambda c: Conv2d(c, 3, bn=False, act=None),
    f"group conv (g={GROUPS})": lambda c: Conv2d(c, 3, groups=GROUPS, bn=False, act=None),
    "depthwise conv": lambda c: Conv2d(c, 3, groups=c, bn=False, act=None),
    "partial conv (r=1/4)": lambda c: PartialConv(3, 0.25),
    "channel-wise conv (dc=7)": lambda c: ChannelwiseConv(dc=7, groups=1, bn=False),
}
BLOCKS = {
    "standard (3x3 conv-BN-act)": lambda c: StandardBlock(out=c, kernel=3, layout="single"),
    "dwsep (MBConv k3 e4)": lambda c: DwsepBlock(out=c, kernel=3, expansion=4.0),
    "group_shuffle (ShuffleNet V1 g4)": lambda c: GroupShuffleBlock(out=c, kernel=3, groups=4, version=1),
    "partial (FasterNet r1/4 e2)": lambda c: PartialBlock(out=c, kernel=3, ratio=0.25, expansion=2.0),
    "channelwise (dw + cw conv dc7)": lambda c: ChannelwiseBlock(out=c, kernel=3, dc=7, groups=1),
}
PCONV, DWCONV = "partial conv (r=1/4)", "depthwise conv"


@dataclass
class Row:
    level: str  # op | block
    kind: str
    channels: int
    resolution: int
    layers: int
    madds: int
    mac: int
    latency_ms: float
    iqr_ms: float
    repeats: int

    @property
    def gmadds_per_s(self) -> float:
        return self.madds / (self.latency_ms * 1e-3) / 1e9

    @property
    def mac_per_madd(self) -> float:
        return self.mac / self.madds

    @property
    def shape(self) -> str:
        return f"{self.channels}x{self.resolution}x{self.resolution}"

    def as_dict(self) -> dict:
        d = asdict(self)
        d.update(gmadds_per_s=self.gmadds_per_s, mac_per_madd=self.mac_per_madd)
        return d


def parse_shapes(text: str) -> tuple[tuple[int, int], ...]:
    """'32x56,64x28' -> ((32, 56), (64, 28)): channels x resolution."""
    shapes = []
    for part in text.split(","):
        try:
            c, h = (int(v) for v in part.strip().lower().split("x"))
        except ValueError:
            raise NasxError(f"--shapes {text!r}: each shape is CHANNELSxRESOLUTION, e.g. 32x56,64x28") from None
        if c < GROUPS or c % GROUPS or h < 3:
            raise NasxError(
                f"--shapes {part.strip()!r}: channels must be a multiple of {GROUPS} (the group conv "
                f"and ShuffleNet units need it) and resolution at least 3"
            )
        shapes.append((c, h))
    if not shapes:
        raise NasxError("--shapes needs at least one shape")
    return tuple(shapes)


def stack(layer_of, channels: int, resolution: int, target: int) -> Arch:
    """The layer repeated L times on a CxHxW input, L = round(target / MAdds of one layer), at least 1."""
    layer = layer_of(channels)
    one = cost(Arch((channels, resolution, resolution), (), (layer,), ())).madds
    n = max(1, round(target / one)) if one else 1
    return Arch((channels, resolution, resolution), (), (layer,) * n, (), name=f"{layer.name} x{n}")


def plan(shapes=DEFAULT_SHAPES, target: int = DEFAULT_TARGET, blocks: bool = True) -> list[tuple[str, str, Arch]]:
    kinds = [("op", name, f) for name, f in OPS.items()]
    if blocks:
        kinds += [("block", name, f) for name, f in BLOCKS.items()]
    return [(level, name, stack(f, c, h, target)) for c, h in shapes for level, name, f in kinds]


def run(
    shapes=DEFAULT_SHAPES,
    target: int = DEFAULT_TARGET,
    threads: int | None = None,
    device: str = "cpu",
    measure_time_s: float = 1.0,
    blocks: bool = True,
    progress: bool = True,
    out=None,
) -> list[Row]:
    out = sys.stderr if out is None else out  # read now: a caller may have redirected it
    if target < 1:
        raise NasxError(f"--target must be positive, got {target}")
    check_measure_time(measure_time_s)
    if threads is not None and threads < 1:
        raise NasxError(f"--threads must be at least 1, got {threads}")
    rows, items, start = [], plan(shapes, target, blocks), time.perf_counter()
    for i, (level, name, arch) in enumerate(items, 1):
        r = cost(arch)
        lat = measure_latency(
            build_seeded(arch),
            arch.input,
            device=device,
            threads=threads,
            max_time_s=measure_time_s,
            warmup_s=min(0.25, measure_time_s / 2),
        )
        c, h, _ = arch.input
        rows.append(Row(level, name, c, h, len(arch.layers), r.madds, r.mac, lat.median_ms, lat.iqr_ms, lat.repeats))
        if progress:
            out.write(
                f"microbench {i}/{len(items)} | {c}x{h}x{h} {name} x{len(arch.layers)} | "
                f"{lat.median_ms:.2f} ms | {rows[-1].gmadds_per_s:.2f} GMAdds/s | "
                f"{time.perf_counter() - start:.0f}s" + ("\r" if out.isatty() else "\n")
            )
            out.flush()
    if progress and out.isatty():
        out.write("\n")
    return rows


def table(rows: list[Row]) -> str:
    body = [
        [
            r.level,
            r.kind,
            r.shape,
            r.layers,
            human(r.madds),
            f"{r.mac_per_madd:.3f}",
            f"{r.latency_ms:.2f} ± {r.iqr_ms:.2f}",
            f"{r.gmadds_per_s:.2f}",
        ]
        for r in rows
    ]
    return render_table(
        ["level", "kind", "input", "layers", "MAdds", "MAC/MAdd", "latency ms (median ± IQR)", "GMAdds/s"], body
    )


def geomean(values) -> float:
    values = [v for v in values if v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else math.nan


def summary_table(rows: list[Row]) -> str:
    kinds = list(dict.fromkeys((r.level, r.kind) for r in rows))
    body = []
    for level, kind in kinds:
        mine = [r for r in rows if (r.level, r.kind) == (level, kind)]
        body.append(
            [
                level,
                kind,
                f"{geomean([r.gmadds_per_s for r in mine]):.2f}",
                f"{min(r.gmadds_per_s for r in mine):.2f} .. {max(r.gmadds_per_s for r in mine):.2f}",
                f"{geomean([r.mac_per_madd for r in mine]):.3f}",
            ]
        )
    return render_table(["level", "kind", "GMAdds/s (geomean)", "range over shapes", "MAC/MAdd (geomean)"], body)


@dataclass
class Verdict:
    holds: int
    shapes: int
    ratios: list[float]  # partial / depthwise throughput per shape

    def line(self) -> str:
        if not self.shapes:
            return "FasterNet's claim (partial conv runs at a higher throughput than depthwise conv): not measured"
        word = "holds" if self.holds == self.shapes else ("does not hold" if self.holds == 0 else "holds partly")
        return (
            f"FasterNet's claim (partial conv runs at a higher throughput than depthwise conv) {word} here: "
            f"at {self.holds} of {self.shapes} shapes; partial/depthwise throughput "
            f"{min(self.ratios):.2f}x .. {max(self.ratios):.2f}x"
        )


def fasternet_claim(rows: list[Row]) -> Verdict:
    """Partial conv's throughput against depthwise conv's, shape by shape."""
    ratios = []
    for shape in dict.fromkeys(r.shape for r in rows):
        p = [r for r in rows if r.shape == shape and r.kind == PCONV]
        d = [r for r in rows if r.shape == shape and r.kind == DWCONV]
        if p and d:
            ratios.append(p[0].gmadds_per_s / d[0].gmadds_per_s)
    return Verdict(sum(x > 1 for x in ratios), len(ratios), ratios)


def text_report(rows: list[Row], fp: dict, target: int) -> str:
    return "\n".join(
        [
            f"nasx microbench: stacks of about {human(target)} MAdds on {fp['device']} {fp['hardware']}, "
            f"{fp['threads']} threads, batch 1, torch {fp['torch']}",
            "MAdds = multiply-accumulates; MAC/MAdd = elements read + written per MAdd (cost core); GMAdds/s = MAdds / "
            "median latency",
            "",
            table(rows),
            "",
            summary_table(rows),
            "",
            fasternet_claim(rows).line(),
        ]
    )


def figures(rows: list[Row]) -> dict:
    import plotly.graph_objects as go

    figs = {}
    for level in ("op", "block"):
        mine = [r for r in rows if r.level == level]
        if not mine:
            continue
        fig = go.Figure()
        for kind in dict.fromkeys(r.kind for r in mine):
            rs = [r for r in mine if r.kind == kind]
            fig.add_trace(
                go.Bar(
                    name=kind,
                    x=[r.shape for r in rs],
                    y=[r.gmadds_per_s for r in rs],
                    hovertext=[
                        f"{kind} x{r.layers} on {r.shape}<br>{human(r.madds)} MAdds, "
                        f"MAC/MAdd {r.mac_per_madd:.3f}<br>{r.latency_ms:.2f} ± {r.iqr_ms:.2f} ms"
                        for r in rs
                    ],
                    hoverinfo="text",
                )
            )
        fig.update_layout(
            barmode="group",
            template="plotly_white",
            yaxis_type="log",
            title=f"achieved throughput per {level} at matched MAdds",
            xaxis_title="input (channels x resolution)",
            yaxis_title="GMAdds/s (log)",
        )
        figs[f"throughput_{level}"] = fig
    fig = go.Figure()
    for kind in dict.fromkeys(r.kind for r in rows):
        rs = [r for r in rows if r.kind == kind]
        fig.add_trace(
            go.Scatter(
                x=[r.mac_per_madd for r in rs],
                y=[r.gmadds_per_s for r in rs],
                mode="markers",
                name=kind,
                marker=dict(size=10, symbol="circle" if rs[0].level == "op" else "square"),
                text=[r.shape for r in rs],
            )
        )
    fig.update_layout(
        template="plotly_white",
        xaxis_type="log",
        yaxis_type="log",
        title="throughput against memory traffic per MAdd (circles: ops, squares: blocks)",
        xaxis_title="MAC per MAdd (elements)",
        yaxis_title="GMAdds/s",
    )
    figs["mac_throughput"] = fig
    return figs


def write_html(rows: list[Row], text: str, path) -> str:
    body = (
        f'{"".join(figure_divs(figures(rows), "480px"))}<pre id="microbench-text">{html.escape(text)}</pre>\n'
        f"<p>{made_with_plotly()}</p>"
    )
    return str(write_page(path, page("nasx microbench", body, width=1250, small_pre=True)))
