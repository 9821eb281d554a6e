"""Dominance and hypervolume against hand-computed cases."""

import random

import pytest

from nasx.util.pareto import dominates, hypervolume, nondominated


def test_dominance():
    assert dominates((1, 5), (2, 5)) and dominates((1, 5), (1, 4)) and dominates((1, 5), (2, 4))
    assert not dominates((1, 5), (1, 5)) and not dominates((1, 4), (2, 5)) and not dominates((2, 5), (1, 5))


def test_front():
    pts = [(3, 3), (1, 1), (2, 2), (2, 1), (1.5, 0.5), (4, 3), (2, 2)]
    assert nondominated(pts) == [(1, 1), (2, 2), (3, 3)]


def test_hypervolume_single_point():
    # rectangle from latency 1 to ref 4, score 2 down to ref 0: 3 x 2
    assert hypervolume([(1, 2)], (4, 0)) == 6


def test_hypervolume_staircase_by_hand():
    # points (1,1), (2,3), (3,4), ref (5,0): strips by score:
    # score 0..1 -> widest from latency 1: 4 x 1 = 4; 1..3 -> from latency 2: 3 x 2 = 6; 3..4 -> from 3: 2 x 1 = 2
    assert hypervolume([(1, 1), (2, 3), (3, 4)], (5, 0)) == pytest.approx(12)


def test_dominated_and_outside_points_add_nothing():
    base = hypervolume([(1, 1), (2, 3)], (5, 0))
    assert hypervolume([(1, 1), (2, 3), (2.5, 2), (6, 10), (0.5, -1)], (5, 0)) == pytest.approx(base)


def test_hypervolume_matches_grid_count():
    """Independent check: count cells of a fine grid dominated by some point."""
    rng = random.Random(0)
    pts = [(rng.uniform(0, 10), rng.uniform(0, 10)) for _ in range(12)]
    ref, n = (10, 0), 400
    step = 10 / n
    covered = 0
    for i in range(n):
        for j in range(n):
            x, y = (i + 0.5) * step, (j + 0.5) * step
            covered += any(p[0] <= x and p[1] >= y for p in pts)
    assert hypervolume(pts, ref) == pytest.approx(covered * step * step, rel=0.02)


@pytest.mark.parametrize("seed", range(6))
def test_a_studys_front_is_optunas_best_trials_without_the_copies(seed):
    """nasx.store.studies.pareto_front reads the study without copying it; Optuna's own Study.best_trials is the
    reference: ties, repeated points, rejected (constraint-violating) and pruned trials, infeasible attrs."""
    import optuna

    from nasx.store.studies import pareto_front

    rng = random.Random(seed)
    study = optuna.create_study(directions=["minimize", "maximize"])
    for _ in range(60):
        state = rng.choice([optuna.trial.TrialState.COMPLETE] * 4 + [optuna.trial.TrialState.PRUNED])
        values = [float(rng.randint(1, 12)), float(rng.randint(1, 12))] if state.is_finished() else None
        violated = rng.random() < 0.2
        study.add_trial(
            optuna.trial.create_trial(
                state=state,
                values=values if state == optuna.trial.TrialState.COMPLETE else None,
                user_attrs={"feasible": not violated and rng.random() < 0.95, "arch_hash": f"a{rng.randint(0, 40)}"},
                system_attrs={"constraints:madds": 1.0 if violated else -1.0},
            )
        )
    seen, expected = set(), []
    for t in sorted(study.best_trials, key=lambda t: (t.values[0], t.number)):
        if t.user_attrs["feasible"] and t.user_attrs["arch_hash"] not in seen:
            seen.add(t.user_attrs["arch_hash"])
            expected.append(t.number)
    assert [t.number for t in pareto_front(study)] == expected
    assert expected  # the case is not empty
