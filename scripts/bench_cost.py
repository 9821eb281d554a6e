#!/usr/bin/env python
"""Benchmark: how long does it take to know an architecture's cost?

On MobileNetV2-size architectures (mobilenet_v2 itself plus distinct random architectures of similar size
built from nasx's five block families, fixed seed), side by side in one run:

  nasx cold     nasx.cost(arch) after nasx.cost.clear_caches(): nothing memoised
  nasx search   nasx.cost(arch) on an architecture not seen before, with the caches filled by all the
                *other* architectures (what a search sees: new candidates that share most layers)
  nasx hit      nasx.cost(arch) again on the same architecture (everything memoised)
  fvcore        FlopCountAnalysis(module, x).total() on the built module (construction excluded; it is
                the separate "build" column)
  FCM           torch.utils.flop_counter.FlopCounterMode around a forward pass (real CPU tensors)
  FCM meta      the same on the meta device (no arithmetic is run; the counter's own overhead)

Medians per architecture (over repeats), then the median over architectures. The torch counters run on one
thread by default, like nasx (--threads 0 for torch's default). Before any timing is
reported the counts are checked to agree: nasx's "fvcore" preset == fvcore's total, and nasx MAdds x 2 ==
FlopCounterMode's total, for every architecture.

    python scripts/bench_cost.py            # ~20 random architectures + mobilenet_v2
    python scripts/bench_cost.py --quick    # 4 random architectures, fewer repeats (~10 s on a quiet machine)
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import platform
import random
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nasx  # noqa: E402
from nasx.arch import Arch, layer_graph  # noqa: E402
from nasx.cost import clear_caches, cost  # noqa: E402
from nasx.errors import ArchError  # noqa: E402

# MobileNetV2's stage plan at 224x224: (out channels, blocks, first stride)
STAGES = [(16, 1, 1), (24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)]
STEM = [{"type": "conv", "out": 32, "kernel": 3, "stride": 2, "act": "relu6"}]
HEAD = [
    {"type": "conv", "out": 1280, "kernel": 1, "act": "relu6"},
    {"type": "gap"},
    {"type": "flatten"},
    {"type": "linear", "out": 1000},
]
FAMILIES = ("standard", "dwsep", "group_shuffle", "partial", "channelwise")
MADDS_RANGE = (200e6, 450e6)  # "MobileNetV2-size" (it has 301M)


def random_block(rng: random.Random, family: str, out: int, stride: int) -> dict:
    """A block spec drawn from small per-family choice lists (as a search space would), so that
    different architectures share many identical layers."""
    b = {"type": family, "out": out, "stride": stride}
    if family == "standard":
        b.update(layout=rng.choice(["single", "single", "basic"]), kernel=3)
    elif family == "dwsep":
        b.update(expansion=rng.choice([3, 6]), kernel=rng.choice([3, 5]), se=rng.choice([0, 0, 0.25]))
        if b["se"]:
            b["act"] = "hswish"
    elif family == "group_shuffle":
        b.update(version=rng.choice([1, 2]), groups=rng.choice([2, 4]))
    elif family == "partial":
        b.update(ratio=rng.choice([0.25, 0.5]), expansion=2)
    else:
        b.update(dc=rng.choice([3, 5, 7]), groups=rng.choice([1, 2]))
    return b


def random_arch(rng: random.Random, index: int) -> Arch:
    """One random architecture on MobileNetV2's stage plan; every block is re-drawn until it is valid
    on its input shape."""
    layers = []
    base = Arch.from_dict({"input": [3, 224, 224], "stem": STEM})
    shape = base.out_shape
    for out, n, first_stride in STAGES:
        for i in range(n):
            for _ in range(100):
                block = random_block(rng, rng.choice(FAMILIES), out, first_stride if i == 0 else 1)
                try:
                    layer = nasx.layers.layer_from_dict(dict(block), "bench")
                    shape_next = layer_graph(layer, shape).out_shape
                except ArchError:
                    continue
                layers.append(block)
                shape = shape_next
                break
            else:
                raise RuntimeError(f"no valid block for stage out={out}")
    return Arch.from_dict(
        {"name": f"random_{index:02d}", "input": [3, 224, 224], "stem": STEM, "layers": layers, "head": HEAD}
    )


def make_archs(n_random: int, seed: int) -> list[Arch]:
    rng = random.Random(seed)
    archs, seen = [nasx.load_arch("mobilenet_v2")], set()
    seen.add(archs[0].content_hash())
    tries = 0
    while len(archs) < n_random + 1:
        tries += 1
        if tries > 50 * (n_random + 1):
            raise RuntimeError("could not draw enough MobileNetV2-size architectures")
        a = random_arch(rng, len(archs))
        if a.content_hash() in seen or not MADDS_RANGE[0] <= cost(a).madds <= MADDS_RANGE[1]:
            continue
        seen.add(a.content_hash())
        archs.append(a)
    clear_caches()
    return archs


def layer_keys(arch: Arch) -> list:
    """(layer, input shape) pairs: what nasx memoises."""
    keys, shape = [], arch.input
    for _, _, layer in arch.sections():
        keys.append((layer, shape))
        shape = layer_graph(layer, shape).out_shape
    return keys


# ---- timers (seconds) --------------------------------------------------------------------------------


def time_nasx_cold(arch: Arch, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        clear_caches()
        t0 = time.perf_counter()
        cost(arch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_nasx_search(archs: list[Arch], rounds: int) -> list[float]:
    """For each arch: caches cleared, filled by costing every other arch, then this one is timed."""
    per_arch = [[] for _ in archs]
    for _ in range(rounds):
        for i, arch in enumerate(archs):
            clear_caches()
            for j, other in enumerate(archs):
                if j != i:
                    cost(other)
            t0 = time.perf_counter()
            cost(arch)
            per_arch[i].append(time.perf_counter() - t0)
    clear_caches()
    return [statistics.median(t) for t in per_arch]


def time_nasx_hit(arch: Arch, repeats: int) -> float:
    cost(arch)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        cost(arch)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def quiet_fvcore():
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def fvcore_total(module, x) -> int:
    from fvcore.nn import FlopCountAnalysis

    fa = FlopCountAnalysis(module, (x,)).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return fa.total()


def fcm_total(module, x) -> int:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


# ---- report ------------------------------------------------------------------------------------------


def fmt_time(s: float) -> str:
    if s < 1e-3:
        return f"{s * 1e6:.0f} us"
    if s < 1:
        return f"{s * 1e3:.1f} ms"
    return f"{s:.2f} s"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="4 random architectures, fewer repeats")
    p.add_argument("--n", type=int, help="number of random architectures (default 20, 4 with --quick)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--torch-repeats",
        type=int,
        help="timed runs per architecture of fvcore / FlopCounterMode (default 3, 1 with --quick)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads for the torch counters (default 1: nasx is single-threaded, and one thread "
        "keeps the timing steady on a shared machine; 0 = torch's default)",
    )
    args = p.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    quiet_fvcore()
    t_start = time.perf_counter()
    n_random = args.n if args.n is not None else (4 if args.quick else 20)
    nasx_repeats, search_rounds = (50, 5) if args.quick else (200, 15)
    if args.torch_repeats is None:
        args.torch_repeats = 1 if args.quick else 3
    archs = make_archs(n_random, args.seed)

    print(
        f"nasx cost benchmark: {len(archs)} architectures (mobilenet_v2 + {n_random} random, seed {args.seed}), "
        f"3x224x224, batch 1"
    )
    print(
        f"python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} torch threads, "
        f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, load average before the run "
        f"{os.getloadavg()[0]:.1f} (a busy machine slows the multi-threaded torch counters most)"
    )
    keys = [layer_keys(a) for a in archs]
    shared = []
    for i, k in enumerate(keys):
        others = {key for j, ks in enumerate(keys) if j != i for key in ks}
        shared.append(sum(key in others for key in k) / len(k))
    fams: dict[str, int] = {}
    for a in archs[1:]:
        for f, c in a.families().items():
            fams[f] = fams.get(f, 0) + c
    print(
        f"blocks per family in the random set: {fams}; layers shared with the other architectures: "
        f"median {statistics.median(shared):.0%}"
    )

    # correctness first: the counts agree
    torch.manual_seed(0)
    rows = []
    for a in archs:
        t_build, module = timed(lambda arch=a: nasx.build(arch).eval())
        x = torch.randn(1, *a.input)
        rows.append({"arch": a, "module": module, "x": x, "build": t_build})
    fcm_total(rows[0]["module"], rows[0]["x"])  # one-time warm-ups, untimed
    fvcore_total(rows[0]["module"], rows[0]["x"])
    problems = []
    for r in rows:
        a = r["arch"]
        madds, fv_preset = cost(a).madds, cost(a, "fvcore").total.ops
        t_fv, fv = timed(fvcore_total, r["module"], r["x"])
        t_fcm, fcm = timed(fcm_total, r["module"], r["x"])
        meta = copy.deepcopy(r["module"]).to("meta")
        x_meta = torch.empty(1, *a.input, device="meta")
        fcm_total(meta, x_meta)
        t_meta, fcm_meta = timed(fcm_total, meta, x_meta)
        r.update(madds=madds, fvcore=[t_fv], fcm=[t_fcm], meta=[t_meta])
        for _ in range(args.torch_repeats - 1):
            r["fvcore"].append(timed(fvcore_total, r["module"], r["x"])[0])
            r["fcm"].append(timed(fcm_total, r["module"], r["x"])[0])
            r["meta"].append(timed(fcm_total, meta, x_meta)[0])
        if fv != fv_preset:
            problems.append(f"{a.name}: nasx fvcore preset {fv_preset:,} != fvcore {fv:,}")
        if fcm != 2 * madds or fcm_meta != 2 * madds:
            problems.append(f"{a.name}: nasx MAdds x 2 = {2 * madds:,} != FlopCounterMode {fcm:,} (meta {fcm_meta:,})")
    for r in rows:
        r["cold"] = time_nasx_cold(r["arch"], nasx_repeats)
        r["hit"] = time_nasx_hit(r["arch"], nasx_repeats)
    for r, t in zip(rows, time_nasx_search([r["arch"] for r in rows], search_rounds)):
        r["search"] = t

    cols = ["cold", "search", "hit", "build", "fvcore", "fcm", "meta"]
    names = {
        "cold": "nasx cold",
        "search": "nasx search",
        "hit": "nasx hit",
        "build": "build (torch)",
        "fvcore": "fvcore",
        "fcm": "FCM",
        "meta": "FCM meta",
    }
    med = {r["arch"].name: {c: statistics.median(r[c]) if isinstance(r[c], list) else r[c] for c in cols} for r in rows}
    header = ["architecture", "MAdds"] + [names[c] for c in cols]
    table = [
        [r["arch"].name, f"{r['madds'] / 1e6:.0f}M"] + [fmt_time(med[r["arch"].name][c]) for c in cols] for r in rows
    ]
    overall = {c: statistics.median(m[c] for m in med.values()) for c in cols}
    table.append(
        ["median", f"{statistics.median(r['madds'] for r in rows) / 1e6:.0f}M"] + [fmt_time(overall[c]) for c in cols]
    )
    widths = [max(len(str(row[i])) for row in [header] + table) for i in range(len(header))]

    def line(row):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print()
    print(
        f"median seconds per architecture (nasx: {nasx_repeats} repeats, search: {search_rounds} rounds; "
        f"fvcore/FCM: {args.torch_repeats} run(s) after a warm-up)"
    )
    print(line(header))
    print("  ".join("-" * w for w in widths))
    for row in table[:-1]:
        print(line(row))
    print("  ".join("-" * w for w in widths))
    print(line(table[-1]))
    print()
    print("ratios of the medians (how many times longer than nasx):")
    for mode in ("cold", "search"):
        ratio = {c: overall[c] / overall[mode] for c in ("fvcore", "fcm", "meta")}
        print(
            f"  vs nasx {mode:<6}  fvcore {ratio['fvcore']:>9,.0f}x   FlopCounterMode {ratio['fcm']:>9,.0f}x   "
            f"FlopCounterMode meta {ratio['meta']:>7,.0f}x"
        )
    print()
    if problems:
        print("MISMATCH:\n  " + "\n  ".join(problems))
    assert not problems, f"{len(problems)} count mismatches"
    print(
        f"OK: for all {len(rows)} architectures nasx's fvcore preset equals fvcore's total and nasx MAdds x 2 "
        f"equals FlopCounterMode's total (CPU and meta)"
    )
    print(f"total run time {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
