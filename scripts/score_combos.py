#!/usr/bin/env python
"""Would a sum of scores beat the default, judged out of sample? Read off `validate-score --truth all --json`.

For every combination of 1..--max terms, the aggregate is a sum of z-scored terms (each term standardised
within each truth's sample: a label-free scale, as capacity's fixed spreads are; the cost-core counts params,
madds, mac, activations and depth enter as logs, read off each row's architecture), ranked against each
truth by Kendall tau-b. Three judgements, because one table can be won by chance:

  worst       the lowest tau-b over the truths (what the default is chosen by)
  vs default  the worst case minus the default's, resampling the networks of every truth with replacement
              (--boot times): the mean and a 90% interval. A term earns its cost only where the interval
              lies above 0.
  held out    leave one truth out: the combination with the best worst case over the other truths, and its
              tau-b on the truth left out. Where the held-out figures fall far below the in-sample ones,
              choosing among combinations overfits the truths at hand.

    nasx validate-score --truth all --n 120 --json all.json -o none
    python scripts/score_combos.py all.json [--max 3] [--top 15] [--boot 300]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from nasx.arch import load_arch
from nasx.cost import cost
from nasx.score.capacity import TERMS as CAPACITY
from nasx.score.capacity import capacity
from nasx.util.fmt import render_table
from nasx.util.stats import kendall_tau_b

COUNTS = ("params", "madds", "mac", "activations", "depth")
DEFAULT = "capacity"


def columns(truth: dict) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every term of one truth's rows (log counts from the cost core, the recorded scores as they are; a
    non-finite score takes the sample's lowest finite value) and the accuracies."""
    rows = truth["architectures"]
    reports = [cost(load_arch(r["arch"])) for r in rows]
    out = {c: np.log([float(getattr(rep, c)) for rep in reports]) for c in COUNTS}
    # the default exactly as shipped (fixed spreads), not as a sum of in-sample z-scores
    out[DEFAULT] = np.array([capacity(None, a.input, 0, arch=a) for a in (load_arch(r["arch"]) for r in rows)])
    for name in rows[0]["scores"]:
        if name in COUNTS or name == DEFAULT:
            continue  # the log of the count is its term; the default is computed above
        v = np.array([r["scores"][name] for r in rows], dtype=float)
        finite = np.isfinite(v)
        out[name] = np.where(finite, v, v[finite].min() if finite.any() else 0.0)
    return out, np.array([r["top1"] for r in rows])


def aggregate(cols: dict[str, np.ndarray], combo: tuple[str, ...], idx=None) -> np.ndarray:
    parts = []
    for term in combo:
        v = cols[term] if idx is None else cols[term][idx]
        sd = v.std()
        parts.append((v - v.mean()) / sd if sd > 0 else v * 0)
    return np.sum(parts, axis=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file", help="the JSON of `nasx validate-score --truth all --json FILE`")
    ap.add_argument("--max", type=int, default=3, help="largest combination (default 3)")
    ap.add_argument("--top", type=int, default=15, help="combinations to print, best worst case first")
    ap.add_argument("--boot", type=int, default=300, help="resamples for the interval (default 300)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = json.loads(Path(args.file).read_text(encoding="utf-8"))
    truths = [(t["truth"], *columns(t)) for t in data["truths"]]
    terms = sorted(set.intersection(*(set(c) for _, c, _ in truths)) - {DEFAULT})
    default = (DEFAULT,)
    components = tuple(CAPACITY)  # the default's terms, z-scored in-sample, to which one more term is added
    combos = {(t,) for t in terms} | {default}
    combos |= {c for k in range(2, args.max + 1) for c in itertools.combinations(terms, k)}
    combos |= {(*components, t) for t in terms if t not in components}  # the default's terms plus one

    def taus(combo, idxs=None):
        return [
            kendall_tau_b(aggregate(c, combo, None if idxs is None else idxs[i]), y if idxs is None else y[idxs[i]])
            for i, (_, c, y) in enumerate(truths)
        ]

    table = {c: taus(c) for c in combos}
    rng = np.random.default_rng(args.seed)
    shortlist = sorted(table, key=lambda c: -min(table[c]))[: args.top]
    if default not in shortlist:
        shortlist.append(default)
    boots: dict[tuple, list[float]] = {c: [] for c in shortlist}
    for _ in range(args.boot):
        idxs = [rng.integers(0, len(y), len(y)) for _, _, y in truths]
        for c in shortlist:
            boots[c].append(min(taus(c, idxs)))
    base = np.array(boots[default])

    def name(combo) -> str:
        return "capacity (default)" if combo == default else " + ".join(combo)

    rows = []
    for c in shortlist:
        diff = np.array(boots[c]) - base
        rows.append(
            [name(c), *(f"{t:+.3f}" for t in table[c]), f"{min(table[c]):+.3f}"]
            + [f"{diff.mean():+.3f}", f"{np.percentile(diff, 5):+.3f}..{np.percentile(diff, 95):+.3f}"]
        )
    labels = [f"{t} (n={len(y)})" for t, _, y in truths]
    print(
        "Kendall tau-b of sums of z-scored terms (counts as logs) against each truth, best worst case first; "
        f"the worst case minus the default's over {args.boot} resamples, mean and 90% interval"
    )
    print(render_table(["terms", *labels, "worst", "vs default", "90%"], rows))
    print("\nLeave one truth out: the best worst case on the others, judged on the one left out")
    held = []
    for i, (t, _, _) in enumerate(truths):
        chosen = max(table, key=lambda c: min(v for j, v in enumerate(table[c]) if j != i))
        others = min(v for j, v in enumerate(table[chosen]) if j != i)
        held.append([t, name(chosen), f"{others:+.3f}", f"{table[chosen][i]:+.3f}"])
    print(render_table(["left out", "chosen on the others", "worst on the others", "on the one left out"], held))
    if any(not math.isfinite(v) for v in table[default]):
        print("note: the default has a non-finite tau on some truth (constant values?)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
