"""Does `nasx search --prefilter` save measurements, and does it change the front?

Runs the same search twice on one storage — first without, then with --prefilter — with the same seed and
sampler, sharing the latency cache. With the default random sampler both runs propose exactly the same
architectures (its draws do not depend on results), and the second run reads the first run's latencies
from the cache, so the two fronts differ only through what the prefilter skipped: measurement noise
cannot move them. (With --sampler tpe the proposals diverge after the first skip, and a changed front
may be the sampler's doing; the script says so.) If the storage holds no latency model for this device
fingerprint, `nasx explore` fits one first.

    python scripts/bench_prefilter.py                       # cifar32, 20M MAdds, 60 trials, random sampler
    python scripts/bench_prefilter.py --config mobile224_layers --budget 300M --n-trials 200 --explore-n 2000

Prints: trials, how many needed a latency with and without the prefilter (the measurements saved), the
prefilter's skips, whether the front changed (and, for a skipped architecture that the first run measured,
whether it was on that run's front), and how well the model predicted the candidates the second run did time."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import optuna

from nasx.explore.run import explore
from nasx.explore.settings import ExploreSettings
from nasx.measure.device import fingerprint, fingerprint_hash
from nasx.measure.latency_model import load_model, within_share
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space
from nasx.store.db import Store
from nasx.store.studies import pareto_front
from nasx.util.units import parse_count


def run_search(space, args, study: str, prefilter: bool):
    try:
        optuna.delete_study(study_name=study, storage=args.storage)
    except KeyError:
        pass
    settings = SearchSettings(
        space=space,
        budgets=Budgets(compute=parse_count(args.budget, "--budget")),
        storage=args.storage,
        study_name=study,
        n_trials=args.n_trials,
        sampler=args.sampler,
        seed=args.seed,
        threads=args.threads,
        score=args.score,
        measure_time_s=args.measure_time,
        progress=not args.quiet,
        prefilter=prefilter,
        prefilter_margin=args.margin,
    )
    t = time.perf_counter()
    result = search(settings)
    return result, time.perf_counter() - t


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="cifar32")
    p.add_argument("--budget", default="20M")
    p.add_argument("--n-trials", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", default="random", choices=("random", "tpe", "nsga2"))
    p.add_argument("--score", default="params", help="params (default: cheap, so timing dominates) or naswot")
    p.add_argument("--storage", default="sqlite:///studies/bench_prefilter.db")
    p.add_argument("--threads", type=int, help="torch threads (default: all usable cores)")
    p.add_argument("--measure-time", type=float, default=0.5, help="time cap per measurement, s")
    p.add_argument("--margin", type=float, help="--prefilter-margin (default: from the model)")
    p.add_argument("--explore-n", type=int, default=500, help="nasx explore -n, when a model must be fitted")
    p.add_argument("--explore-measure", type=int, default=40, help="nasx explore --measure, when fitting")
    p.add_argument("--refit", action="store_true", help="fit a new latency model even if one is stored")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)

    space = load_space(args.config)
    store = Store(args.storage)
    fp = fingerprint("cpu", args.threads, 1, space.input)
    fph = fingerprint_hash(fp)
    model = None if args.refit else load_model(store, fph)
    if model is None:
        print(
            f"fitting a latency model: nasx explore --config {args.config} -n {args.explore_n} --measure "
            f"{args.explore_measure}",
            file=sys.stderr,
        )
        model = explore(
            ExploreSettings(
                space,
                n=args.explore_n,
                measure=args.explore_measure,
                seed=args.seed,
                storage=args.storage,
                threads=args.threads,
                progress=not args.quiet,
                blocks=False,  # the prefilter uses the linear model only
            )
        ).model
    print(
        f"model ({model.config}, fingerprint {fph}): {model.formula()}; held out: {model.within10:.0%} within "
        f"±10%, Kendall τb {model.kendall:+.3f}, p90 |error| {model.p90_rel_error:.0%}"
    )

    tag = f"{space.name}-{args.budget}-{args.sampler}-s{args.seed}-{args.score}"
    off, t_off = run_search(space, args, f"bench-prefilter-{tag}-off", False)
    on, t_on = run_search(space, args, f"bench-prefilter-{tag}-on", True)

    def done(r):
        return [t for t in r.study.trials if t.state.is_finished()]

    off_t, on_t = done(off), done(on)
    timed_off = [t for t in off_t if t.state == optuna.trial.TrialState.COMPLETE]
    timed_on = [t for t in on_t if t.state == optuna.trial.TrialState.COMPLETE]
    skipped = [t for t in on_t if t.user_attrs.get("prefiltered")]
    front_off = {t.user_attrs["arch_hash"] for t in pareto_front(off.study)}
    front_on = {t.user_attrs["arch_hash"] for t in pareto_front(on.study)}
    same_proposals = [a.user_attrs.get("arch_hash") for a in off_t] == [b.user_attrs.get("arch_hash") for b in on_t]
    wrongly = [t for t in skipped if t.user_attrs["arch_hash"] in front_off]

    print(
        f"\nsearch: {space.name}, budget {args.budget} MAdds, {args.n_trials} trials, sampler {args.sampler}, seed "
        f"{args.seed}, score {args.score}; shared latency cache in {args.storage}"
    )
    fresh = sum(not t.user_attrs.get("latency_cached") for t in timed_off)
    print(
        f"without --prefilter: {len(timed_off)} candidates needed a latency ({fresh} timed now), "
        f"{len(off_t) - len(timed_off)} rejected over budget; {t_off:.0f} s"
    )
    print(
        f"with --prefilter:    {len(timed_on)} candidates needed a latency, {len(skipped)} prefiltered, "
        f"{len(on_t) - len(timed_on) - len(skipped)} rejected over budget; {t_on:.0f} s (latencies from the cache)"
    )
    print(
        f"measurements saved: {len(timed_off) - len(timed_on)} of {len(timed_off)} "
        f"({(len(timed_off) - len(timed_on)) / max(1, len(timed_off)):.0%})"
    )
    print(f"proposals identical in both runs: {'yes' if same_proposals else 'no (the sampler reacts to the skips)'}")
    if front_on == front_off:
        print(f"front changed: no ({len(front_on)} architectures, the same in both runs)")
    else:
        print(
            f"front changed: yes — {len(front_off - front_on)} of the {len(front_off)} front architectures "
            f"without the prefilter are missing with it, {len(front_on - front_off)} new ones"
            + ("" if same_proposals else " (proposals differ, so part of this is the sampler)")
        )
    print(
        f"skipped architectures that were on the front without the prefilter: {len(wrongly)}"
        + (f" (trials {', '.join(str(t.number) for t in wrongly)})" if wrongly else "")
    )
    pred = [
        (t.user_attrs["predicted_latency_ms"], t.values[0]) for t in timed_on if "predicted_latency_ms" in t.user_attrs
    ]
    if pred:
        pr, y = np.array(pred).T
        print(
            f"model on the {len(pred)} candidates timed with the prefilter: {within_share(pr, y):.0%} within ±10%, "
            f"median |error| {np.median(np.abs(pr - y) / y):.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
