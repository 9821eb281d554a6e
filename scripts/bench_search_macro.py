"""Search quality in true accuracy, on NAS-Bench-Macro's space: a front judged by what its networks really
reach after full CIFAR-10 training, not by the score the search ranked them with.

1. Every distinct network of the table (3,969) is timed once with nasx's own procedure (cached latency,
   drift-corrected, this machine's fingerprint) into the storage's latency cache, which the searches then
   read: the table's true front is the non-dominated set of (measured latency, true accuracy).
2. Methods, each `--trials` trials over `--seeds` seeds, seed-major (a noisy spell hits all alike):
     default    nasx's default search: TPE on (latency, the default score), its first trials the free front of
                2,000 draws (the sweep, nasx.search.sweep), screening by predicted latency
     no-sweep   the same with --no-sweep: the sampler starts alone (the default before the sweep was)
     no-screen  the same with --no-screen: every feasible candidate timed (read from the table)
     random     Optuna's RandomSampler on the same objectives, every candidate timed
     oracle     the default's TPE and sweep on (latency, the table's accuracy: --score bench), every candidate
                timed: the best any score could do
   (plus any score given with --scores, searched like the oracle). No budget: the whole space.
3. Each method's front (by its own objectives: what a user would be shown) is judged by the true accuracy of
   its members: its hypervolume in (latency / the slowest network's, true accuracy), reference point
   (1, the table's worst accuracy), as a share of the true front's; and the best true accuracy among its
   fronts's members under three latency budgets (the 25th, 50th and 75th percentile of the table's
   latencies) beside the best the table holds under each.

    python scripts/bench_search_macro.py [--trials 100] [--seeds 5] [--storage sqlite:///studies/bench_macro.db]
                                         [--scores naswot] [--methods default,random] [--json out.json]

Timing 3,969 networks takes a while on a CPU (about 0.5 s each at --measure-time 0.2): it is done once per
storage and machine, and resumes where it stopped."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import numpy as np
import optuna

from nasx.arch import Arch
from nasx.measure.cached import Timer
from nasx.score import bench
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.store.db import Store
from nasx.store.studies import pareto_front
from nasx.util.pareto import hypervolume, nondominated

BUDGET_PERCENTILES = (25, 50, 75)


def time_table(timer: Timer, codes: list[str]) -> dict[str, float]:
    """Latency (ms) of every code, timed now where the cache does not hold it yet."""
    latency, start, timed = {}, time.perf_counter(), 0
    for i, code in enumerate(codes, 1):
        arch = bench.code_arch(code)
        m = timer.measure(arch)
        latency[code] = m.latency["median_ms"]
        timed += not m.cached
        if i % 100 == 0 or i == len(codes):
            elapsed = time.perf_counter() - start
            # the rest may be cached from an earlier run: the ETA is the worst case
            print(
                f"  latency table: {i}/{len(codes)} ({timed} timed now, {elapsed:.0f} s; "
                f"ETA {elapsed / max(timed, 1) * (len(codes) - i):.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    return latency


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--storage", default="sqlite:///studies/bench_macro.db")
    ap.add_argument("--scores", default="", help="more scores to search with TPE, comma-separated")
    ap.add_argument("--measure-time", type=float, default=0.2, help="seconds per latency measurement")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads of every timing")
    ap.add_argument("--limit", type=int, help="time only the first N networks (a smoke run; not the benchmark)")
    ap.add_argument("--methods", help="run only these methods, comma-separated (default: all)")
    ap.add_argument("--json", help="write every figure as JSON here")
    args = ap.parse_args()

    space = bench.space()
    default_score = SearchSettings(space=space, budgets=Budgets()).score
    store = Store(args.storage)
    timer = Timer.here(store, space.input, threads=args.threads, max_time_s=args.measure_time, warmup_s=0.05)
    codes = bench.networks()[: args.limit]
    t0 = time.perf_counter()
    latency = time_table(timer, codes)
    table_s = time.perf_counter() - t0
    accuracy = {c: bench.accuracy(c) for c in codes}
    slowest, worst = max(latency.values()), min(accuracy.values())
    ref = (1.0, worst)

    def hv(points):
        return hypervolume([(lat / slowest, acc) for lat, acc in points], ref)

    true_front = nondominated((latency[c], accuracy[c]) for c in codes)
    true_hv = hv(true_front)
    budgets = [float(q) for q in np.percentile(list(latency.values()), BUDGET_PERCENTILES)]
    optimum = [max(accuracy[c] for c in codes if latency[c] <= b) for b in budgets]
    print(
        f"{len(codes)} networks timed ({table_s:.0f} s, --measure-time {args.measure_time}, {args.threads} "
        f"thread(s)): latency {min(latency.values()):.2f}..{slowest:.2f} ms, true front {len(true_front)} "
        f"networks, accuracy {worst:.2f}..{max(accuracy.values()):.2f}%",
        flush=True,
    )

    # method: (sampler, score, screening, sweep)
    methods = {
        "default": ("tpe", default_score, True, True),
        "no-sweep": ("tpe", default_score, True, False),
        "no-screen": ("tpe", default_score, False, True),
        "random": ("random", default_score, False, False),
        "oracle": ("tpe", "bench", False, True),
    }
    for extra in filter(None, args.scores.split(",")):
        methods[f"tpe+{extra}"] = ("tpe", extra, False, True)
    if args.methods:
        unknown = set(args.methods.split(",")) - set(methods)
        if unknown:
            print(f"--methods: unknown {', '.join(sorted(unknown))}; use {', '.join(methods)}", file=sys.stderr)
            return 1
        methods = {m: v for m, v in methods.items() if m in args.methods.split(",")}
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for seed in range(args.seeds):
        for method, (sampler, score, screen, sweep) in methods.items():
            name = f"macro-{method}-seed{seed}-n{args.trials}"
            try:
                optuna.delete_study(study_name=name, storage=args.storage)
            except KeyError:
                pass
            settings = SearchSettings(
                space=space,
                budgets=Budgets(),
                storage=args.storage,
                study_name=name,
                n_trials=args.trials,
                sampler=sampler,
                seed=seed,
                score=score,
                screen=screen,
                sweep=sweep,
                threads=args.threads,
                measure_time_s=args.measure_time,
                progress=False,
                retime=False,  # every latency comes from the table timed above
            )
            t = time.perf_counter()
            with open("/dev/null", "w") as devnull:
                result = search(settings, out=devnull)
            front = pareto_front(result.study)
            members = []
            for trial in front:
                code = bench.lookup(Arch.from_dict(trial.user_attrs["arch"]))
                # a --limit smoke run may meet networks it did not time: their trial's own numbers
                members.append((latency.get(code, trial.values[0]), bench.accuracy(code)))
            best = [max((a for lat, a in members if lat <= b), default=None) for b in budgets]
            seconds = time.perf_counter() - t
            screened = sum(1 for t in result.study.trials if t.user_attrs.get("screened"))
            r = {
                "seed": seed,
                "front": len(front),
                "hv_share": hv(members) / true_hv,
                "best_under": best,
                "seconds": seconds,
                "screened": screened,
            }
            results[method].append(r)
            print(
                f"{method:>10} seed {seed}: front {len(front)}, HV {r['hv_share']:.1%} of the true front's, best "
                + ", ".join("-" if a is None else f"{a:.2f}%" for a in best)
                + f" ({seconds:.0f} s{f', {screened} screened' if screened else ''})",
                flush=True,
            )

    print(
        f"\n{args.trials} trials x {args.seeds} seeds; fronts judged by true accuracy (mean of 3 CIFAR-10 "
        f"trainings). HV: share of the true front's hypervolume in (latency / {slowest:.2f} ms, accuracy), "
        f"reference (1, {worst:.2f}%)."
    )
    heads = [f"best <= {b:.2f} ms (p{q})" for b, q in zip(budgets, BUDGET_PERCENTILES, strict=True)]
    print(f"  {'method':<12} {'HV share':>16}  " + "  ".join(f"{h:>24}" for h in heads) + f"  {'wall s':>7}")
    summary = {}
    for method, rs in results.items():
        shares = [r["hv_share"] for r in rs]
        spread = statistics.stdev(shares) if len(shares) > 1 else 0.0
        cells = []
        for k in range(len(budgets)):
            found = [r["best_under"][k] for r in rs if r["best_under"][k] is not None]
            cells.append(f"{statistics.mean(found):.2f}% ({len(found)}/{len(rs)})" if found else "-")
        wall = statistics.mean(r["seconds"] for r in rs)
        summary[method] = {
            "hv_share_mean": statistics.mean(shares),
            "hv_share_std": spread,
            "seconds_mean": wall,
            "runs": rs,
        }
        print(
            f"  {method:<12} {statistics.mean(shares):>8.1%} ± {spread:>5.1%}  "
            + "  ".join(f"{c:>24}" for c in cells)
            + f"  {wall:>7.1f}"
        )
    print(f"  {'true optimum':<12} {'100.0%':>16}  " + "  ".join(f"{f'{o:.2f}%':>24}" for o in optimum))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(
                {
                    "networks": len(codes),
                    "trials": args.trials,
                    "seeds": args.seeds,
                    "measure_time_s": args.measure_time,
                    "threads": args.threads,
                    "table_seconds": table_s,
                    "slowest_ms": slowest,
                    "worst_accuracy": worst,
                    "budgets_ms": budgets,
                    "optimum": optimum,
                    "true_front": true_front,
                    "methods": summary,
                },
                f,
                indent=1,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
