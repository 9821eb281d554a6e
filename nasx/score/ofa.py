"""`--truth ofa-mbv3`: 2,223 Once-for-All MobileNetV3 subnets with their ImageNet top-1, a third truth for
scores (nasx/score/ofa-mbv3/ holds the five tables of DyNAS-T's search runs, unchanged, with their licence
and citation).

Each row names a subnet of OFA's `ofa_mbv3_d234_e346_k357_w1.0` supernet by its kernel sizes (`ks`), expansion
ratios (`e`) and stage depths (`d`); `subnet_arch` writes it in nasx's vocabulary (README.md beside the tables
gives the structure), and nasx's cost core reproduces every row's `Model Parameters` and `MACs` (tested).
The accuracy is the subnet's with the supernet's shared weights after BN recalibration, not a stand-alone
training, and the rows come from search runs, so they lean towards the accuracy/MACs front: a truth about
how a score orders networks of one inverted-residual family at 224x224 that differ mostly in size.

May import: nasx.errors, core (nasx.arch)."""

from __future__ import annotations

import ast
import csv
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from nasx.errors import NasxError

NAME = "ofa-mbv3"
FOLDER = "ofa-mbv3"  # inside the nasx.score package
TABLES = (
    "mbnv3w10_evoga_acc.csv",
    "mbnv3w10_evonsga2_acc_macs.csv",
    "mbnv3w10_evounsga3_acc_macs_params.csv",
    "mbnv3w10_linasga_acc.csv",
    "mbnv3w10_linasnsga2_acc_macs.csv",
)
WIDTHS = (24, 40, 80, 112, 160)
STRIDES = (2, 2, 2, 1, 2)
ACTS = ("relu", "relu", "hswish", "hswish", "hswish")
SE = (False, True, False, True, True)
MAX_DEPTH = 4


def make_divisible(v: float, divisor: int = 8) -> int:
    """OFA's (and MobileNetV3's) channel rounding: to the nearest multiple of 8, at least 8, never below 90%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


@dataclass(frozen=True)
class Subnet:
    ks: tuple[int, ...]  # 20 kernel sizes, 4 per stage
    e: tuple[int, ...]  # 20 expansion ratios
    d: tuple[int, ...]  # 5 stage depths
    params: int  # the table's Model Parameters
    macs: int  # the table's MACs (multiply-accumulates, batch 1, 224x224)
    top1: float  # ImageNet top-1 (%), the mean over the rows naming this subnet

    @property
    def code(self) -> str:
        """A short, stable label: depths, then each kept block's kernel and expansion."""
        blocks = [f"{self.ks[4 * s + j]}{self.e[4 * s + j]}" for s, n in enumerate(self.d) for j in range(n)]
        return "d" + "".join(map(str, self.d)) + "-" + ".".join(blocks)


def _parse(text: str) -> tuple[tuple, tuple, tuple]:
    # a Python literal in the CSV: read as data with literal_eval, never evaluated as code
    spec = ast.literal_eval(text)
    ks, e, d = (tuple(int(v) for v in spec[k]) for k in ("ks", "e", "d"))
    if len(ks) != 4 * len(WIDTHS) or len(e) != len(ks) or len(d) != len(WIDTHS) or spec.get("r", [224]) != [224]:
        raise NasxError(f"{NAME}: unexpected subnet {text[:80]}")
    return ks, e, d


@lru_cache(maxsize=1)
def subnets() -> list[Subnet]:
    """Every distinct subnet of the five tables, in a fixed order (by code), its accuracy the mean of its rows."""
    rows: dict[tuple, list] = {}
    folder = resources.files("nasx.score").joinpath(FOLDER)
    for name in TABLES:
        with folder.joinpath(name).open(encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f):
                key = _parse(row["Sub-network"])
                params, macs = int(row["Model Parameters"]), int(row["MACs"])
                got = rows.setdefault(key, [params, macs, []])
                if (got[0], got[1]) != (params, macs):
                    raise NasxError(f"{NAME}: one subnet with two parameter or MAC counts in {name}")
                got[2].append(float(row["Top-1 Acc (%)"]))
    out = [Subnet(ks, e, d, p, m, sum(accs) / len(accs)) for (ks, e, d), (p, m, accs) in rows.items()]
    return sorted(out, key=lambda s: s.code)


def subnet_dict(ks, e, d) -> dict:
    """The subnet as a nasx-arch dict (the structure README.md beside the tables gives)."""
    layers: list[dict] = [{"type": "dwsep", "out": 16, "stride": 1, "kernel": 3, "expansion": 1, "act": "relu"}]
    cin = 16
    for s, (width, stride, act, se) in enumerate(zip(WIDTHS, STRIDES, ACTS, SE)):
        for j in range(d[s]):
            k, ratio = ks[MAX_DEPTH * s + j], e[MAX_DEPTH * s + j]
            mid = make_divisible(round(cin * ratio))
            block = {"type": "dwsep", "out": width, "stride": stride if j == 0 else 1, "kernel": k, "mid": mid}
            block["act"] = act
            if se:
                block |= {"se_mid": make_divisible(mid // 4), "se_gate": "hsigmoid"}
            layers.append(block)
            cin = width
    return {
        "format": "nasx-arch",
        "version": 1,
        "name": "ofa-mbv3",
        "input": [3, 224, 224],
        "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "hswish"}],
        "layers": layers,
        "head": [
            {"type": "conv", "out": 960, "kernel": 1, "act": "hswish"},
            {"type": "gap"},
            {"type": "flatten"},
            # OFA's final expand is a 1x1 conv without BN or bias on the pooled map: a linear layer here
            {"type": "linear", "out": 1280, "bias": False, "act": "hswish"},
            {"type": "linear", "out": 1000},
        ],
    }


def subnet_arch(subnet: Subnet):
    """The subnet as a checked Arch."""
    from nasx.arch import load_arch

    return load_arch(subnet_dict(subnet.ks, subnet.e, subnet.d))
