"""Would an AZ-NAS-style rank aggregate of scores beat the best single one? Read off `validate-score --json`.

For every combination of 2..--max scores recorded in one or more `nasx validate-score --json` files, the
in-sample aggregate sum of log(rank / N) (AZ-NAS's non-linear rank aggregation, ranks within the sample,
ties averaged) is ranked against the file's truth, and Kendall tau-b is printed beside the best single
score, per file. In-sample ranks are what `--score aznas` approximates with its fixed reference pool; a
combination worth shipping must win in every file (every truth), not in one.

    python scripts/score_combos.py nbm.json zoo.json [--max 3] [--top 12]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys

from nasx.util.stats import kendall_tau_b


def ranks(values: list[float]) -> list[float]:
    """1-based ascending ranks, ties averaged (scipy.stats.rankdata 'average'); nan/-inf lowest."""
    keyed = [(-math.inf if not math.isfinite(v) and not v > 0 else v, i) for i, v in enumerate(values)]
    keyed.sort()
    out = [0.0] * len(values)
    i = 0
    while i < len(keyed):
        j = i
        while j + 1 < len(keyed) and keyed[j + 1][0] == keyed[i][0]:
            j += 1
        for k in range(i, j + 1):
            out[keyed[k][1]] = (i + j) / 2 + 1
        i = j + 1
    return out


def aggregate(columns: list[list[float]]) -> list[float]:
    n = len(columns[0])
    rs = [ranks(c) for c in columns]
    return [sum(math.log(r[i] / n) for r in rs) for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--max", type=int, default=3, help="largest combination (default 3)")
    ap.add_argument("--top", type=int, default=12, help="combinations to print, best worst-case first")
    args = ap.parse_args()
    data = [json.load(open(f, encoding="utf-8")) for f in args.files]
    names = [
        n for n in data[0]["architectures"][0]["scores"] if all(n in d["architectures"][0]["scores"] for d in data)
    ]
    names = [n for n in names if n != "aznas"]  # already an aggregate
    truths = [[a["top1"] for a in d["architectures"]] for d in data]
    cols = [{n: [a["scores"][n] for a in d["architectures"]] for n in names} for d in data]
    labels = [f"{d['truth']} (n={len(t)})" for d, t in zip(data, truths, strict=True)]

    def taus(combo):
        return [
            kendall_tau_b(aggregate([c[n] for n in combo]) if len(combo) > 1 else c[combo[0]], t)
            for c, t in zip(cols, truths, strict=True)
        ]

    singles = {(n,): taus((n,)) for n in names}
    combos = {c: taus(c) for k in range(2, args.max + 1) for c in itertools.combinations(names, k)}
    width = max(len(" + ".join(c)) for c in [*singles, *combos])
    print(
        f"Kendall tau-b against each file's truth; ranked by the worst file\n{'scores':<{width}}  "
        + "  ".join(f"{lab:>22}" for lab in labels)
    )
    for title, rows in (("single scores", singles), ("rank aggregates", combos)):
        print(f"-- {title}")
        for combo, ts in sorted(rows.items(), key=lambda kv: -min(kv[1]))[: args.top]:
            print(f"{' + '.join(combo):<{width}}  " + "  ".join(f"{t:>+22.3f}" for t in ts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
