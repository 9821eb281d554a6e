"""The sweep (on by default; `--no-sweep`): a new study's first trials chosen from many candidates seen for free.

Before a new study's first trial, uniform draws from the space (SWEEP_DRAWS_PER_TRIAL per trial, at most
SWEEP_DRAWS) are costed by the cost core and scored by the search's score when that score builds nothing
(capacity, a cost count, a table): about a second for 2,000 draws on mobile224. Over the distinct draws within
the budgets, the non-dominated set of (cost, score) with cost in MAdds and in MAC (each a free stand-in for
latency; neither is latency, so both fronts are taken) is queued as the study's first trials, at most
SWEEP_SHARE of the run's trials, spread evenly along MAdds when there are more. Each is then a trial like any
other: timed whole (or screened), scored, stored; the sampler starts from them instead of from a few random
proposals.

Measured (scripts/bench_search_macro.py, NAS-Bench-Macro, 100 trials x 5 seeds, docs/benchmarks.md): the
search with the sweep covered 96.6% +- 1.2% of the true front's hypervolume (95.2% at worst), above random
search in 5 of 5 seeds; without it 89.0%, random 91.0% (an earlier table: 97.3% against 91.8% and 92.0%). The
share 1/4 was chosen there among 1/5, 1/4 and 1/3. On mobile224 @ 300M (scripts/bench_search.py, three fresh
seeds side by side) 200 trials with the sweep gave better fronts than 300 without it in all three, in about
two thirds of the time: hence the default (nasx.store.db.DEFAULT_TRIALS). `--no-sweep` turns it off.

Skipped (the sampler starts as before) when the study already holds trials (a resumed study, a second
worker: nasx.search.run.sweeps), the sampler is random (the baseline stays uniform) or the score needs a
built network (nothing is free then). A space written as a function sweeps like a YAML one: each draw
records what its suggest_* calls returned (nasx.space.model.RandomChooser).

May import: nasx core, nasx.space, nasx.score (below the search layer)."""

from __future__ import annotations

import random
import time
from dataclasses import asdict, dataclass

from nasx.cost import cost
from nasx.errors import ArchError
from nasx.score.base import call_score, needs_module
from nasx.util.pareto import nondominated

SWEEP_DRAWS = 2000  # about a second of cost core on mobile224, at most
SWEEP_DRAWS_PER_TRIAL = 20  # a short run queues a few: 2,000 draws from 100 trials up (bench_search_macro's runs)
SWEEP_SHARE = 1 / 4  # of the run's trials, at most: the sampler keeps the rest (chosen above)
SWEEP_MAX = 100  # queued at most when the run has no trial count (--timeout alone)


@dataclass(frozen=True)
class Sweep:
    """What a sweep saw and queued (stored on the study as its `sweep` user attr)."""

    draws: int
    distinct: int
    feasible: int
    front: int
    queued: int
    seconds: float
    choices: tuple = ()  # the queued candidates' choices, in order

    def summary(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "choices"}

    def line(self) -> str:
        return (
            f"sweep: {self.draws} draws ({self.distinct} distinct, {self.feasible} within budget) costed and "
            f"scored in {self.seconds:.1f} s; their front holds {self.front}, the first {self.queued} trials "
            f"are queued from it"
        )


def sweep(space, budgets, score_fn, n_trials: int | None, seed: int | None, draws: int | None = None) -> Sweep | None:
    """The candidates to queue as a new study's first trials, or None where a sweep does not apply. `draws`:
    SWEEP_DRAWS_PER_TRIAL per trial of the run, at most SWEEP_DRAWS (all of them with no trial count)."""
    if needs_module(score_fn):
        return None
    if draws is None:
        draws = SWEEP_DRAWS if n_trials is None else min(SWEEP_DRAWS, SWEEP_DRAWS_PER_TRIAL * n_trials)
    t0 = time.perf_counter()
    rng = random.Random(f"nasx-sweep:{seed}")
    seen: set[str] = set()
    feasible = []
    for _ in range(draws):
        choices, arch = space.random_choices(rng)
        try:
            key = arch.content_hash()
            if key in seen:
                continue
            report = cost(arch)
        except ArchError:
            continue
        seen.add(key)
        if any(v > 0 for v in budgets.violations(report).values()):
            continue
        score = float(call_score(score_fn, None, arch, 0))
        feasible.append((report.madds, report.mac, score, choices))
    picked: set[int] = set()
    for axis in (0, 1):
        index: dict[tuple[float, float], int] = {}  # a point's first draw: ties keep the earlier one
        for i, f in enumerate(feasible):
            index.setdefault((f[axis], f[2]), i)
        picked.update(index[p] for p in nondominated(index))
    front = sorted(picked, key=lambda i: (feasible[i][0], feasible[i][1]))
    cap = SWEEP_MAX if n_trials is None else max(1, int(n_trials * SWEEP_SHARE))
    if len(front) > cap:  # evenly along MAdds, both ends kept
        front = [front[round(k * (len(front) - 1) / (cap - 1))] for k in range(cap)] if cap > 1 else front[:1]
    return Sweep(
        draws,
        len(seen),
        len(feasible),
        len(picked),
        len(front),
        time.perf_counter() - t0,
        tuple(feasible[i][3] for i in front),
    )
