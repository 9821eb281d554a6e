"""Search quality: nasx's default sampler against Optuna's RandomSampler, and the zoo, on one device.

Every sampler (and every space, when several are given) runs the same number of trials over several
seeds, seed-major so that a noisy spell on a shared machine hits all of them alike, in one storage so
they share one latency (and score) cache: an architecture proposed twice is measured once and every run
sees the same numbers. Prints each front's hypervolume (mean ± std over seeds) and the ratio, then the
zoo networks near the budget measured in the same run with the same procedures (the set and the
procedure `nasx report` uses), and which of them each front dominates.

Hypervolume: objectives normalised by MobileNetV2-1.0 measured in the same run — x = latency /
latency(MobileNetV2), y = score / score(MobileNetV2) — and reference point (x, y) = (2.0, 0.8): the area
of the (latency < 2x MobileNetV2, score > 0.8x MobileNetV2) box that the front dominates.

A front's win over MobileNetV2 rests on two single measurements, and this kind of shared machine has
bursts of noise; so every front member that dominates it is timed again, interleaved with MobileNetV2
(`--confirm` rounds of member, MobileNetV2), and counts as confirmed when the median of its per-round
latency ratios stays below 1 (scores are deterministic: same seed, same network, same score).

    python scripts/bench_search.py [--trials 200] [--seeds 5] [--budget 300M] [--config mobile224[,other]]
                                   [--score naswot] [--report report.html]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import optuna

import nasx
from nasx.arch import zoo_arch
from nasx.measure.latency import DEFAULT_MEASURE_TIME_S
from nasx.search.budgets import Budgets
from nasx.search.objective import Objective, is_uncounted_repeat
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space
from nasx.store.db import DEFAULT_TRIALS, Store
from nasx.store.studies import pareto_front
from nasx.study.report import budget_refs, dominated_by
from nasx.util.pareto import dominates, hypervolume, normalised
from nasx.util.stats import kendall_tau_b, spearman
from nasx.util.units import parse_count

REF_POINT = (2.0, 0.8)
BASELINE = "mobilenet_v2"


def points(study: optuna.Study, first: int | None = None) -> list[tuple[float, float]]:
    """(latency, score) of the feasible, measured trials among the study's first `first` trials."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)[:first]
    return [
        tuple(t.values) for t in trials if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("feasible")
    ]


def confirm(objective: Objective, members: list, rounds: int) -> dict[int, float]:
    """Median over `rounds` of latency(member) / latency(MobileNetV2), timed back to back in each round."""
    from nasx.arch import Arch
    from nasx.build import build_seeded as built  # the weights a trial is timed with
    from nasx.measure.latency import measure_latency

    s = objective.s
    baseline = built(zoo_arch(BASELINE))
    modules = {t.number: built(Arch.from_dict(t.user_attrs["arch"])) for t in members}
    ratios: dict[int, list[float]] = {n: [] for n in modules}

    def time_it(module):
        return measure_latency(
            module, s.space.input, device=s.device, batch=s.batch, threads=s.threads, max_time_s=s.measure_time_s
        ).median_ms

    for _ in range(rounds):
        for number, module in modules.items():
            ratios[number].append(time_it(module) / time_it(baseline))
    return {n: statistics.median(r) for n, r in ratios.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=DEFAULT_TRIALS)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--seed-start", type=int, default=0, help="first seed (more seeds later without re-running these)")
    ap.add_argument("--budget", default="300M")
    ap.add_argument(
        "--config",
        default="mobile224",
        help="space(s) to search, comma-separated: several are compared side by side in one run",
    )
    ap.add_argument("--storage", default="sqlite:///studies/bench_search.db")
    ap.add_argument(
        "--samplers",
        default="tpe,random",
        help="samplers compared, comma-separated; NAME@N searches with --max-resample N (tpe@0: repeats "
        "evaluated as trials, as before nasx re-sampled them); NAME:noscreen with --no-screen (every feasible "
        "candidate timed whole, as before screening); NAME:nosweep with --no-sweep (the sampler starts alone, as "
        "before the sweep was the default); NAME=N runs N trials instead of --trials (tpe:nosweep=300,tpe=200)",
    )
    ap.add_argument(
        "--score",
        default="naswot",
        help="second objective (default naswot, which the README's figures were measured with; it must be "
        "positive, as the hypervolume divides by MobileNetV2's: capacity and naswot are)",
    )
    ap.add_argument(
        "--measure-time",
        type=float,
        default=DEFAULT_MEASURE_TIME_S,
        help=f"time cap of one latency measurement, s (default {DEFAULT_MEASURE_TIME_S}, as a search)",
    )
    ap.add_argument(
        "--confirm",
        type=int,
        default=5,
        metavar="ROUNDS",
        help="re-time each front member that dominates MobileNetV2 interleaved with it (0: off)",
    )
    ap.add_argument(
        "--report",
        metavar="HTML",
        help="also write `nasx report` of the first tpe study here: its "
        "reference table must repeat this script's zoo numbers",
    )
    args = ap.parse_args()
    spaces = [load_space(c) for c in args.config.split(",")]
    samplers = args.samplers.split(",")
    space = spaces[0]
    if any(s.input != space.input for s in spaces):
        print("--config: the spaces compared must share one input shape", file=sys.stderr)
        return 1
    budget = parse_count(args.budget, "--budget")
    store = Store(args.storage)

    base = SearchSettings(
        space=space,
        budgets=Budgets(compute=budget),
        storage=args.storage,
        progress=False,
        measure_time_s=args.measure_time,
        score=args.score,
    )
    evaluator = Objective(base, store)
    reference = {}
    for name in budget_refs(space.input, budget):
        attrs = evaluator.evaluate_arch(zoo_arch(name))
        reference[name] = (attrs["latency"]["median_ms"], attrs["score"], nasx.cost(name).madds)
    if BASELINE not in reference:
        print(
            f"{BASELINE} is needed as the normalisation reference: use a 3x224x224 space and a budget of at least 150M",
            file=sys.stderr,
        )
        return 1
    lat_unit, score_unit = reference[BASELINE][:2]

    def label(sp, sampler):
        return sampler if len(spaces) == 1 else f"{sp.name}/{sampler}"

    fronts: dict[str, list[list]] = {}
    studies: dict[str, list[optuna.Study]] = {}
    trials_of: dict[str, int] = {}  # a front's key: its runs' trial count
    seeds = range(args.seed_start, args.seed_start + args.seeds)
    for seed in seeds:  # seed-major: see the module docstring
        for sp in spaces:
            for sampler in samplers:
                spec, _, count = sampler.partition("=")
                n_trials = int(count or args.trials)
                variant, _, option = spec.partition(":")
                sampler_name, _, resample = variant.partition("@")
                tag = spec.replace("@", "r").replace(":", "-")
                run = f"{args.budget}-{args.score}-{tag}-seed{seed}-n{n_trials}"
                name = f"bench-{sp.name}-{sp.config_hash}-{run}"
                try:
                    optuna.delete_study(study_name=name, storage=args.storage)
                except KeyError:
                    pass
                settings = SearchSettings(
                    space=sp,
                    budgets=Budgets(compute=budget),
                    storage=args.storage,
                    study_name=name,
                    n_trials=n_trials,
                    sampler=sampler_name,
                    max_resample=int(resample) if resample else SearchSettings.max_resample,
                    screen=option != "noscreen",
                    sweep=option != "nosweep",
                    seed=seed,
                    progress=False,
                    measure_time_s=args.measure_time,
                    score=args.score,
                    retime=False,  # --confirm re-times what this script's verdicts rest on
                )
                t0 = time.perf_counter()
                with open("/dev/null", "w") as devnull:
                    result = search(settings, out=devnull)
                front = pareto_front(result.study)
                fronts.setdefault(label(sp, sampler), []).append(front)
                trials_of[label(sp, sampler)] = n_trials
                studies.setdefault(label(sp, sampler), []).append(result.study)
                trials = [t for t in result.study.trials if "repeat_of" not in t.user_attrs]
                counted = [t for t in result.study.trials if not is_uncounted_repeat(t)]
                feasible = sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
                distinct = len({t.user_attrs.get("arch_hash") for t in counted})
                hv = hypervolume(normalised([tuple(t.values) for t in front], lat_unit, score_unit), REF_POINT)
                print(
                    f"{label(sp, sampler):>6} seed {seed}: {len(front)} on the front, {feasible}/{n_trials} "
                    f"feasible, {distinct}/{len(counted)} distinct, {len(result.study.trials) - len(trials)} "
                    f"re-sampled repeats, HV {hv:.4f}, {time.perf_counter() - t0:.0f} s",
                    flush=True,
                )

    print(
        f"\nhypervolume (normalised by MobileNetV2-1.0: {lat_unit:.2f} ms, score {score_unit:.2f}; "
        f"reference point {REF_POINT}), {'/'.join(sorted(set(map(str, trials_of.values()))))} trials, seeds "
        f"{seeds.start}-{seeds.stop - 1}:"
    )
    hv = {
        k: [hypervolume(normalised([tuple(t.values) for t in f], lat_unit, score_unit), REF_POINT) for f in fs]
        for k, fs in fronts.items()
    }
    width = max(map(len, hv))
    for key, values in hv.items():
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        print(
            f"  {key:>{width}}: {statistics.mean(values):.4f} ± {spread:.4f}  ({', '.join(f'{v:.4f}' for v in values)})"
        )
    # a run of N trials holds the run of k < N trials with the same seed: same cache, same path (but a sweep
    # queues a quarter of N, so its first k trials are not a k-trial run's)
    if max(trials_of.values()) > 100:
        print("  after the first 100, 200, ... trials of the same runs:")
        for key, sts in studies.items():
            cells = []
            for k in range(100, trials_of[key], 100):
                at_k = [hypervolume(normalised(points(st, k), lat_unit, score_unit), REF_POINT) for st in sts]
                beat = sum(any(dominates(p, (lat_unit, score_unit)) for p in points(st, k)) for st in sts)
                cells.append(f"{k}: {statistics.mean(at_k):.4f} (dominates {BASELINE} in {beat}/{len(sts)})")
            print(f"  {key:>{width}}: " + "; ".join(cells))
    for sp in spaces:
        tpe, rnd = hv.get(label(sp, "tpe")), hv.get(label(sp, "random"))
        if tpe and rnd and statistics.mean(rnd) > 0:
            print(
                f"  {label(sp, 'tpe')} / random: ratio {statistics.mean(tpe) / statistics.mean(rnd):.2f}; "
                f"{sum(v > max(rnd) for v in tpe)}/{len(tpe)} tpe seeds above random's best seed"
            )

    print(
        f"\nzoo networks on the same device (within 2x the {args.budget} MAdds budget); dominated by a front "
        f"of ... seeds:"
    )
    print(
        f"  {'model':<20} {'MAdds':>7} {'latency ms':>10} {'score':>7} "
        + " ".join(f"{k:>{max(8, len(k))}}" for k in fronts)
    )
    for name, (lat, score, madds) in sorted(reference.items(), key=lambda kv: kv[1][2]):
        cells = [(k, sum(bool(dominated_by(f, lat, score)) for f in fs), len(fs)) for k, fs in fronts.items()]
        print(
            f"  {name:<20} {madds / 1e6:>6.0f}M {lat:>10.2f} {score:>7.2f} "
            + " ".join(f"{f'{n}/{m}':>{max(8, len(k))}}" for k, n, m in cells)
        )

    measured = {
        t.user_attrs["arch_hash"]: t
        for sts in studies.values()
        for st in sts
        for t in st.get_trials(deepcopy=False)
        if t.state == optuna.trial.TrialState.COMPLETE
    }
    act, sc = [t.user_attrs["activations"] for t in measured.values()], [t.values[1] for t in measured.values()]
    print(
        f"\nscore vs activations (conv output elements, from the cost core) over the {len(measured)} distinct "
        f"measured architectures: Spearman {spearman(act, sc):+.3f}, Kendall tau-b {kendall_tau_b(act, sc):+.3f}"
    )

    if args.confirm > 0:
        print(
            f"\nre-timed: front members dominating {BASELINE}, {args.confirm} interleaved rounds each "
            f"(median latency ratio to {BASELINE}; confirmed when < 1):"
        )
        for key, fs in fronts.items():
            held = 0
            for seed, front in zip(seeds, fs):
                members = [t for t in front if dominates(tuple(t.values), (lat_unit, score_unit))]
                if not members:
                    print(f"  {key} seed {seed}: no member dominates it")
                    continue
                ratios = confirm(evaluator, members, args.confirm)
                held += any(r < 1 for r in ratios.values())
                best = min(members, key=lambda t: ratios[t.number])
                print(
                    f"  {key} seed {seed}: {sum(r < 1 for r in ratios.values())}/{len(members)} confirmed; "
                    f"best #{best.number} score {best.values[1]:.2f}, ratio {ratios[best.number]:.3f} "
                    f"(recorded {best.values[0] / lat_unit:.3f})",
                    flush=True,
                )
            print(f"  {key}: {held}/{len(fs)} fronts still dominate {BASELINE} after re-timing")

    if args.report:
        from nasx.study.report import make_report
        from nasx.study.report_page import refs_table

        key = next(k for k in studies if k.endswith("tpe"))
        _, _, data = make_report(studies[key][0], args.storage, args.report, png=False)
        print(
            f"\nnasx report of {key} seed {seeds.start} -> {args.report}; its reference table (same caches, so "
            f"the same numbers as above):\n{refs_table(data)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
