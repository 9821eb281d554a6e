#!/usr/bin/env python
"""The spreads of the capacity score (nasx.score.capacity.SPREADS): for each term, the standard deviation of
its log within each search space nasx ships, averaged over the spaces. No accuracy is read: the spreads only
put the terms on one scale, so that none outweighs the others by its units or range.

200 architectures are drawn uniformly from each space (nasx.space.sample.sample_archs, seed 0), as for
capacity v1. Prints a table and the dict to paste; compare it with the shipped SPREADS.

    python scripts/score_spreads.py [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nasx.cost import cost
from nasx.score.capacity import SPREAD_SPACES, SPREADS, TERMS
from nasx.space.config import load_space
from nasx.space.sample import sample_archs
from nasx.util.fmt import render_table


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="architectures per space (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = ap.parse_args()
    per_space = {}
    for name in SPREAD_SPACES:
        reports = [cost(a) for a in sample_archs(load_space(name), args.n, seed=args.seed)]
        per_space[name] = {t: statistics.pstdev(math.log(getattr(r, t)) for r in reports) for t in TERMS}
    mean = {t: statistics.fmean(s[t] for s in per_space.values()) for t in TERMS}
    rows = [[name, *(f"{s[t]:.3f}" for t in TERMS)] for name, s in per_space.items()]
    rows += [["mean", *(f"{mean[t]:.3f}" for t in TERMS)], ["shipped", *(f"{SPREADS[t]:.3f}" for t in TERMS)]]
    print(render_table(["space", *(f"sd log {t}" for t in TERMS)], rows))
    print("SPREADS = {" + ", ".join(f'"{t}": {mean[t]:.3f}' for t in TERMS) + "}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
