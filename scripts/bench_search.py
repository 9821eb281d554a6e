"""Search quality: nasx's default sampler against Optuna's RandomSampler on the default space.

Both run the same number of trials over several seeds, in one SQLite file so they share one latency
(and score) cache: an architecture proposed by both is measured once and both see the same numbers.
Prints each front's hypervolume (mean ± std over seeds) and their ratio, then the zoo networks measured
in the same run with the same procedures, and which of them each front dominates.

Hypervolume: objectives normalised by MobileNetV2-1.0 measured in the same run — x = latency /
latency(MobileNetV2), y = score / score(MobileNetV2) — and reference point (x, y) = (2.0, 0.8): the area
of the (latency < 2x MobileNetV2, score > 0.8x MobileNetV2) box that the front dominates.

    python scripts/bench_search.py [--trials 100] [--seeds 3] [--budget 300M]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import optuna

import nasx
from nasx import zoo
from nasx.pareto import dominates, hypervolume, normalised
from nasx.search import Budgets, Objective, SearchSettings, pareto_front, search
from nasx.space import load_space
from nasx.store import Store
from nasx.units import parse_count

REF_POINT = (2.0, 0.8)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", default="300M")
    ap.add_argument("--config", default="mobile224")
    ap.add_argument("--storage", default="sqlite:///studies/bench_search.db")
    ap.add_argument("--samplers", default="tpe,random")
    args = ap.parse_args()
    space = load_space(args.config)
    budget = parse_count(args.budget, "--budget")
    store = Store(args.storage)

    base = SearchSettings(space=space, budgets=Budgets(compute=budget), storage=args.storage, progress=False)
    evaluator = Objective(base, store)
    reference = {}
    candidates = [n for n in zoo.names() if zoo.get(n).input == space.input and nasx.cost(n).madds <= 2 * budget]
    for name in candidates:
        attrs = evaluator.evaluate_arch(zoo.get(name))
        reference[name] = (attrs["latency"]["median_ms"], attrs["score"], nasx.cost(name).madds)
    if "mobilenet_v2" not in reference:
        print("mobilenet_v2 is needed as the normalisation reference", file=sys.stderr)
        return 1
    lat_unit, score_unit = reference["mobilenet_v2"][:2]

    fronts: dict[str, list[list[tuple[float, float]]]] = {}
    for sampler in args.samplers.split(","):
        for seed in range(args.seeds):
            name = f"bench-{args.config}-{args.budget}-{sampler}-seed{seed}-n{args.trials}"
            try:
                optuna.delete_study(study_name=name, storage=args.storage)
            except KeyError:
                pass
            settings = SearchSettings(space=space, budgets=Budgets(compute=budget), storage=args.storage,
                                      study_name=name, n_trials=args.trials, sampler=sampler, seed=seed,
                                      progress=False)
            t0 = time.perf_counter()
            result = search(settings, out=open("/dev/null", "w"))
            front = [(t.values[0], t.values[1]) for t in pareto_front(result.study)]
            fronts.setdefault(sampler, []).append(front)
            feasible = sum(t.state == optuna.trial.TrialState.COMPLETE for t in result.study.trials)
            print(f"{sampler:>6} seed {seed}: {len(front)} on the front, {feasible}/{args.trials} feasible, "
                  f"HV {hypervolume(normalised(front, lat_unit, score_unit), REF_POINT):.4f}, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)

    print(f"\nhypervolume (normalised by MobileNetV2-1.0: {lat_unit:.2f} ms, score {score_unit:.2f}; "
          f"reference point {REF_POINT}), {args.trials} trials, {args.seeds} seeds:")
    hv = {s: [hypervolume(normalised(f, lat_unit, score_unit), REF_POINT) for f in fs] for s, fs in fronts.items()}
    for sampler, values in hv.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"  {sampler:>6}: {statistics.mean(values):.4f} ± {spread:.4f}  ({', '.join(f'{v:.4f}' for v in values)})")
    if "tpe" in hv and "random" in hv and statistics.mean(hv["random"]) > 0:
        print(f"  ratio tpe / random: {statistics.mean(hv['tpe']) / statistics.mean(hv['random']):.2f}")

    print(f"\nzoo networks on the same device (budget {args.budget} MAdds); dominated by a front of ... seeds:")
    header = f"  {'model':<20} {'MAdds':>7} {'latency ms':>10} {'score':>7} " + " ".join(f"{s:>8}" for s in fronts)
    print(header)
    for name, (lat, score, madds) in sorted(reference.items(), key=lambda kv: kv[1][2]):
        cells = [f"{sum(any(dominates(p, (lat, score)) for p in f) for f in fs)}/{len(fs)}" for fs in fronts.values()]
        print(f"  {name:<20} {madds / 1e6:>6.0f}M {lat:>10.2f} {score:>7.2f} " + " ".join(f"{c:>8}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
