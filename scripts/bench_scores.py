#!/usr/bin/env python
"""Benchmark: what does each training-free score cost, next to NASWOT?

On a few zoo networks at their own input (224x224), side by side in one run, each score called as a search
calls it (weights seeded, module built by nasx.build, nasx.score.proxies.call_score):

  naswot    log|K| of 16 inputs' activation codes: one forward of batch 16
  synflow   one float64 forward + backward of batch 1 on a copy
  meco      one forward of batch 1, a channel-correlation eigenvalue per feature map
  zico      two forward + backward passes of batch 8 (train mode, on a copy)
  aznas     meco + zico + naswot + synflow + the cost core's MAdds, ranked against the reference pool; the pool
            (--pool architectures of --space, scored once per process) is timed separately as "pool once"

Median seconds per network over --repeats, and the ratio to NASWOT on the same network. torch runs on
--threads threads (default 1: the machine is usually shared).

    python scripts/bench_scores.py                    # mobilenet_v2, resnet18, shufflenet_v2_1.0; 3 repeats
    python scripts/bench_scores.py --repeats 1 --pool 4 --nets mobilenet_v2
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from nasx.arch import zoo_arch
from nasx.build import WEIGHTS_SEED, build_seeded
from nasx.score.aznas import AZNAS
from nasx.score.base import call_score
from nasx.score.proxies import get_score
from nasx.space.config import load_space

SCORES = ("naswot", "synflow", "meco", "zico", "aznas")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--nets", default="mobilenet_v2,resnet18,shufflenet_v2_1.0", help="zoo names, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--space", default="mobile224", help="search space the AZ-NAS pool is drawn from")
    ap.add_argument("--pool", type=int, default=20, help="AZ-NAS reference pool size (default 20, as a search)")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    space = load_space(args.space)
    fns = {s: get_score(s) for s in SCORES if s != "aznas"}
    fns["aznas"] = AZNAS.from_space(space, pool=args.pool)
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]

    t = time.perf_counter()
    fns["aznas"].pool_values(space.input, WEIGHTS_SEED)
    pool_s = time.perf_counter() - t
    print(
        f"torch {torch.__version__}, {args.threads} thread(s); AZ-NAS pool: {args.pool} archs of {space.name} "
        f"at {'x'.join(map(str, space.input))}, scored once in {pool_s:.1f} s"
    )

    rows = []
    for name in nets:
        arch = zoo_arch(name)
        times = {}
        for s, fn in fns.items():
            if s == "aznas" and tuple(arch.input) != tuple(space.input):
                fn.pool_values(arch.input, WEIGHTS_SEED)  # a network at another input: its pool, untimed
            runs = []
            for _ in range(args.repeats):
                module = build_seeded(arch)  # the weights a search scores
                t = time.perf_counter()
                call_score(fn, module, arch, WEIGHTS_SEED)
                runs.append(time.perf_counter() - t)
            times[s] = statistics.median(runs)
        rows.append((name, times))

    head = f"{'network':<20}" + "".join(f"{s:>18}" for s in SCORES)
    print(head)
    for name, times in rows:
        base = times["naswot"]
        print(f"{name:<20}" + "".join(f"{times[s]:>8.2f} s {times[s] / base:>5.1f}x" for s in SCORES))
    print(f"{'pool once':<20}" + " " * 18 * 4 + f"{pool_s:>8.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
