#!/usr/bin/env python
"""Benchmark: AZ-NAS's terms (nasx.score.azpass) by batch and input resolution, against two truths.

40 OFA-MobileNetV3 subnets (ImageNet top-1, 224x224 networks; random.Random(0).sample of the table) and 40
NAS-Bench-Macro networks (CIFAR-10, 32x32, which stay at 32x32: only the batch varies there), each built once
with the weights a search scores (build_seeded), then every setting scored side by side on that module. For
each (batch, resolution): the mean seconds per network of az_terms alone (the build is timed apart) and the
Kendall tau-b of each term against the accuracy. torch runs on --threads threads (default 1: the machine is
usually shared, and two threads contend badly with other jobs' there).

    python scripts/bench_azpass.py                            # both truths, the default settings
    python scripts/bench_azpass.py --truth ofa --settings 16x64,8x64 --n 10
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch
from scipy.stats import kendalltau

from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.score import bench, ofa
from nasx.score.azpass import TERMS, az_terms

SETTINGS = "8x224,16x112,16x64,32x64,8x64,4x64,8x32"
MACRO_BATCHES = "8,16,32"


def truth(name: str, n: int):
    """[(label, arch, accuracy)] of n networks drawn with random.Random(0)."""
    if name == "ofa":
        subs = random.Random(0).sample(ofa.subnets(), n)
        return [(s.code, ofa.subnet_arch(s), s.top1) for s in subs]
    codes = random.Random(0).sample(bench.networks(), n)
    return [(c, bench.code_arch(c), bench.accuracy(c)) for c in codes]


def run(nets, settings, init: bool):
    """settings: [(batch, resolution or None)] -> ({setting: [terms per net]}, {setting: [s]}, [build s])."""
    values = {s: [] for s in settings}
    times = {s: [] for s in settings}
    builds = []
    for _, arch, _ in nets:
        t = time.perf_counter()
        module = build_seeded(arch, WEIGHTS_SEED)
        builds.append(time.perf_counter() - t)
        for s in settings:  # side by side on one module: the load of the machine hits every setting alike
            t = time.perf_counter()
            values[s].append(az_terms(module, arch.input, WEIGHTS_SEED, batch=s[0], resolution=s[1], init=init))
            times[s].append(time.perf_counter() - t)
    return values, times, builds


def table(title, nets, settings, init):
    values, times, builds = run(nets, settings, init)
    acc = [a for _, _, a in nets]
    print(f"\n{title}: {len(nets)} networks, build {sum(builds) / len(builds):.3f} s/network (not included below)")
    print(f"{'batch x res':>12} {'s/network':>10} " + " ".join(f"{'tau ' + t[:5]:>10}" for t in TERMS))
    for s in settings:
        taus = [kendalltau([v[t] for v in values[s]], acc).statistic for t in TERMS]
        res = "own" if s[1] is None else s[1]
        # nan: the term is the same for every network (kendalltau of a constant)
        cells = " ".join(f"{'const' if math.isnan(tau) else f'{tau:+.3f}':>10}" for tau in taus)
        print(f"{f'{s[0]} x {res}':>12} {sum(times[s]) / len(times[s]):>10.3f} {cells}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--truth", choices=("ofa", "macro", "both"), default="both")
    ap.add_argument("--n", type=int, default=40, help="networks per truth (default 40)")
    ap.add_argument("--settings", default=SETTINGS, help="OFA: batch x resolution, comma-separated")
    ap.add_argument("--macro-batches", default=MACRO_BATCHES, help="NAS-Bench-Macro: batches at 32x32")
    ap.add_argument("--own-init", action="store_true", help="score the built weights (init=False) instead")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    init = not args.own_init
    print(f"torch {torch.__version__}, {args.threads} thread(s), init={'kaiming (reference)' if init else 'own'}")
    if args.truth in ("ofa", "both"):
        settings = [tuple(int(v) for v in s.split("x")) for s in args.settings.split(",")]
        table("OFA-MobileNetV3 (ImageNet top-1)", truth("ofa", args.n), settings, init)
    if args.truth in ("macro", "both"):
        settings = [(int(b), None) for b in args.macro_batches.split(",")]
        table("NAS-Bench-Macro (CIFAR-10, 32x32)", truth("macro", args.n), settings, init)
    return 0


if __name__ == "__main__":
    sys.exit(main())
