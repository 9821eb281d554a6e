#!/usr/bin/env python
"""Benchmark: what does each score cost per network, side by side with the default (capacity)?

Every zoo network and --space-n networks of --space (mobile224 by default: 224x224, the main job's space),
each score called as a search calls it (nasx.score.cached.Scorer's path: the module built under the search's
weights seed when the score needs one, nasx.score.base.call_score), build included, since a search pays
for it:

  capacity   the default: the cost core's MAdds, activations and depth (nothing built)
  naswot     log|K| of 16 inputs' activation codes: one forward of batch 16
  synflow    one float64 forward + backward of batch 1 on a copy
  meco       one forward of batch 1, a channel-correlation eigenvalue per feature map
  zico       two forward + backward passes of batch 8 (train mode, on a copy)
  az_terms   AZ-NAS's expressivity, progressivity and trainability: one pass of 16x3x64x64 (nasx.score.azpass)
  aznas-0.1  what 0.1's default `aznas` paid per candidate: naswot + synflow + meco + zico on one build (its
             reference pool, scored once per storage, not counted)

Median seconds per network over the networks (each timed once per --repeats, the median kept), and the ratio
to capacity's. torch runs on --threads threads (default 1: the machine is usually shared). The issue's
budget: at most 0.25 s per 3x224x224 network.

    python scripts/bench_scores.py                       # the zoo and 20 mobile224 networks, 1 repeat
    python scripts/bench_scores.py --space-n 5 --repeats 3
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
from nasx.score.azpass import az_terms
from nasx.score.base import call_score, needs_module
from nasx.score.proxies import get_score
from nasx.space.config import load_space
from nasx.space.sample import sample_archs
from nasx.util.fmt import render_table
from nasx.zoo import names

PROXIES = ("naswot", "synflow", "meco", "zico")
COLUMNS = ("capacity", *PROXIES, "az_terms", "aznas-0.1")


def timed(arch, column: str) -> float:
    """Seconds to score `arch` by `column` as a search would, the build included where one is needed."""
    t = time.perf_counter()
    if column == "az_terms":
        az_terms(build_seeded(arch), arch.input, WEIGHTS_SEED)
    elif column == "aznas-0.1":
        module = build_seeded(arch)
        for p in PROXIES:
            call_score(get_score(p), module, arch, WEIGHTS_SEED)
    else:
        fn = get_score(column)
        call_score(fn, build_seeded(arch) if needs_module(fn) else None, arch, WEIGHTS_SEED)
    return time.perf_counter() - t


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    ap.add_argument("--space", default="mobile224", help="search space the extra networks are drawn from")
    ap.add_argument("--space-n", type=int, default=20, help="networks drawn from --space (default 20)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    archs = [(n, zoo_arch(n)) for n in names()]
    archs += [(f"{args.space}#{i}", a) for i, a in enumerate(sample_archs(load_space(args.space), args.space_n))]
    for _, arch in archs[:2]:  # warm-up: first-call imports and allocator growth are not a score's cost
        timed(arch, "aznas-0.1")
    per_column: dict[str, list[float]] = {c: [] for c in COLUMNS}
    for i, (label, arch) in enumerate(archs, 1):
        for c in COLUMNS:  # interleaved: a slow patch of the machine hits every score alike
            per_column[c].append(statistics.median(timed(arch, c) for _ in range(args.repeats)))
        print(f"[{i}/{len(archs)}] {label}", file=sys.stderr)
    base = statistics.median(per_column["capacity"])
    rows = [
        [c, f"{statistics.median(v):.4f}", f"{max(v):.4f}", f"{statistics.median(v) / base:,.0f}x"]
        for c, v in per_column.items()
    ]
    print(
        f"{len(archs)} networks (the zoo's {len(names())} and {args.space_n} of {args.space}), torch "
        f"{torch.__version__}, {args.threads} thread(s), median of {args.repeats} per network; build included"
    )
    print(render_table(["score", "median s/network", "max s/network", "vs capacity"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
