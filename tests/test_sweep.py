"""The sweep (nasx.search.sweep): a new study's first trials are the free front of many draws. Checked by brute
force apart from the sweep's own front: every queued candidate is within budget and no draw beats it on both
(MAdds, score) or on both (MAC, score); every draw left out is beaten on both; the queue is capped evenly along
MAdds; a search runs the queued candidates first, exactly as queued, and sweeps only a new study."""

from __future__ import annotations

import os
import random

import optuna
import pytest

from nasx.cost import cost
from nasx.score.proxies import get_score
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.search.sweep import SWEEP_DRAWS, SWEEP_DRAWS_PER_TRIAL, SWEEP_SHARE, sweep
from nasx.space import load_space_function
from nasx.space.config import load_space
from tests.conftest import ROOT
from tests.test_screen import fake_timed  # noqa: F401  (the stubbed timings, as a fixture)

CIFAR = load_space("cifar32")
BUDGET = Budgets(compute=12_000_000)
CAPACITY = get_score("capacity")


def counts(space, choices):
    """(MAdds, MAC, capacity) of the network `choices` describe, replayed through Optuna's FixedTrial."""
    arch = space.sample(optuna.trial.FixedTrial(choices))
    r = cost(arch)
    return r.madds, r.mac, CAPACITY(None, arch.input, 0, arch=arch), r


def beaten(p, q, axis):
    """q is at most p's cost on `axis` and at least its score, better in one."""
    return q[axis] <= p[axis] and q[2] >= p[2] and (q[axis] < p[axis] or q[2] > p[2])


def test_the_queue_is_the_free_front_of_the_draws_within_budget():
    swept = sweep(CIFAR, BUDGET, CAPACITY, n_trials=None, seed=3, draws=300)
    rng = random.Random("nasx-sweep:3")
    draws = {}
    for _ in range(300):  # the same 300 draws, costed and scored here
        choices, _ = CIFAR.random_choices(rng)
        draws[repr(sorted(choices.items()))] = choices
    within = {}
    for key, choices in draws.items():
        c = counts(CIFAR, choices)
        if c[3].madds <= BUDGET.compute:
            within[key] = c[:3]
    assert swept.distinct == len(draws) and swept.feasible == len(within) and 0 < swept.queued == swept.front
    queued = {repr(sorted(c.items())) for c in swept.choices}
    assert len(queued) == swept.queued and queued <= set(within)
    for key, p in within.items():
        on_a_front = any(not any(beaten(p, q, axis) for q in within.values()) for axis in (0, 1))
        assert on_a_front == (key in queued), (p, key in queued)


def test_a_long_front_is_cut_evenly_along_madds_keeping_both_ends():
    full = sweep(CIFAR, BUDGET, CAPACITY, n_trials=None, seed=0, draws=400)
    assert full.front > 6
    cut = sweep(CIFAR, BUDGET, CAPACITY, n_trials=24, seed=0, draws=400)
    assert cut.queued == int(24 * SWEEP_SHARE) < full.front and set(map(repr, cut.choices)) <= set(
        map(repr, full.choices)
    )
    madds = sorted(counts(CIFAR, c)[0] for c in full.choices)
    kept = [counts(CIFAR, c)[0] for c in cut.choices]
    assert kept == sorted(kept) and kept[0] == madds[0] and kept[-1] == madds[-1]


def test_no_sweep_with_a_score_that_builds_the_network():
    assert sweep(CIFAR, BUDGET, get_score("naswot"), n_trials=20, seed=0) is None


def test_a_function_space_sweeps_and_its_choices_replay():
    space = load_space_function(f"{os.path.join(ROOT, 'examples', 'channel_bench_macro.py')}:mobilenet")
    swept = sweep(space, Budgets(), CAPACITY, n_trials=40, seed=0, draws=200)
    assert 0 < swept.queued <= 10
    for choices in swept.choices:
        arch = space.sample(optuna.trial.FixedTrial(choices))
        assert arch.input == space.input


def settings(tmp_path, **kw) -> SearchSettings:
    base = dict(
        space=CIFAR,
        budgets=BUDGET,
        storage=f"sqlite:///{tmp_path}/s.db",
        study_name="sweep",
        n_trials=12,
        seed=0,
        threads=1,
        retime=False,  # the end's side-by-side re-timing is not stubbed
        progress=False,
        sweep=True,
    )
    return SearchSettings(**{**base, **kw})


@pytest.mark.usefixtures("fake_timed")
def test_a_new_study_runs_the_queue_first_and_a_resumed_one_sweeps_no_more(tmp_path):
    with open(os.devnull, "w") as devnull:
        study = search(settings(tmp_path), out=devnull).study
        expected = sweep(CIFAR, BUDGET, CAPACITY, n_trials=12, seed=0)
        swept = [t for t in study.trials if t.user_attrs.get("swept")]
        assert study.user_attrs["sweep"]["queued"] == len(swept) == len(expected.choices) == int(12 * SWEEP_SHARE)
        assert [t.number for t in swept] == list(range(len(swept)))  # the first trials
        assert [t.params for t in swept] == list(expected.choices)  # exactly as queued
        assert all(t.state == optuna.trial.TrialState.COMPLETE for t in swept)  # within budget: timed and scored
        before = len(study.trials)
        again = search(settings(tmp_path, n_trials=8, more=True), out=devnull).study
    assert len(again.trials) > before
    assert sum(1 for t in again.trials if t.user_attrs.get("swept")) == len(swept)


@pytest.mark.usefixtures("fake_timed")
@pytest.mark.parametrize("kw", [{"sweep": False}, {"sampler": "random"}, {"score": "naswot"}])
def test_no_sweep_when_turned_off_for_random_search_or_a_built_score(tmp_path, kw):
    with open(os.devnull, "w") as devnull:
        study = search(settings(tmp_path, n_trials=4, **kw), out=devnull).study
    assert "sweep" not in study.user_attrs and not any(t.user_attrs.get("swept") for t in study.trials)


def test_sweep_on_the_command_line():
    from nasx.cli.main import make_parser
    from nasx.cli.settings import search_settings_from_args

    parse = make_parser().parse_args
    assert search_settings_from_args(parse(["search", "--budget", "300M"])).sweep  # the default
    assert search_settings_from_args(parse(["search", "--budget", "300M", "--sweep"])).sweep
    assert not search_settings_from_args(parse(["search", "--budget", "300M", "--no-sweep"])).sweep
    assert SearchSettings(space=CIFAR, budgets=BUDGET).sweep


def test_a_short_run_draws_fewer_and_a_long_one_at_most_the_cap():
    assert sweep(CIFAR, BUDGET, CAPACITY, n_trials=5, seed=0).draws == 5 * SWEEP_DRAWS_PER_TRIAL
    assert sweep(CIFAR, BUDGET, CAPACITY, n_trials=100, seed=0).draws == SWEEP_DRAWS == 100 * SWEEP_DRAWS_PER_TRIAL
    assert sweep(CIFAR, BUDGET, CAPACITY, n_trials=500, seed=0).draws == SWEEP_DRAWS
    assert sweep(CIFAR, BUDGET, CAPACITY, n_trials=None, seed=0).draws == SWEEP_DRAWS
