"""Distinct candidates: a proposal whose architecture the study already holds is stored as a repeat of the
trial that holds it (with that trial's results, never listed on the front) and re-sampled without counting
in --n-trials, a bounded number of times in a row, so a search spends its trials on new architectures and
still ends on a space it has exhausted. Checked from the stored trials, by architecture content rather than by
nasx's own counters."""

import collections
import json

import optuna
import pytest

from nasx.errors import NasxError
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space import load_space_function
from nasx.store.studies import feasible_trial, pareto_front, trial_status
from tests.conftest import run_nasx_here

# three widths: exactly three architectures, a space a sampler exhausts at once
TINY = """
def tiny(trial):
    w = trial.suggest_categorical("w", [8, 16, 24])
    return {"input": [3, 16, 16], "stem": [{"type": "conv", "out": w, "kernel": 3, "stride": 2, "act": "relu"}],
            "layers": [], "head": [{"type": "gap"}, {"type": "flatten"}, {"type": "linear", "out": 10}]}
"""


def settings(tmp_path, n_trials, max_resample=10, sampler="random"):
    f = tmp_path / "tiny.py"
    f.write_text(TINY)
    return SearchSettings(
        space=load_space_function(f"{f}:tiny"),
        budgets=Budgets(),
        storage=f"sqlite:///{tmp_path}/s.db",
        n_trials=n_trials,
        sampler=sampler,
        seed=0,
        threads=1,
        measure_time_s=0.02,
        drift_correction=False,
        retime=False,
        progress=False,
        max_resample=max_resample,
    )


def arch_key(t) -> str:
    return json.dumps(t.user_attrs["arch"], sort_keys=True)  # the architecture itself, not nasx's hash of it


def test_repeats_are_resampled_not_counted_and_point_at_the_trial_holding_them(tmp_path):
    result = search(settings(tmp_path, n_trials=3))
    trials = result.study.trials
    counted = [t for t in trials if "repeat_of" not in t.user_attrs]
    repeats = [t for t in trials if "repeat_of" in t.user_attrs]
    assert len(counted) == 3 and len({arch_key(t) for t in counted}) == 3  # three trials, three architectures
    assert repeats, "random sampling of 3 choices 3+ times repeats: the test needs a repeat to check"
    for t in repeats:
        first = trials[t.user_attrs["repeat_of"]]
        assert arch_key(first) == arch_key(t) and first.number < t.number and "repeat_of" not in first.user_attrs
        # TPE learns from a repeat what it would from evaluating the network again: the same values
        assert t.state == first.state and t.values == first.values and trial_status(t) == "repeat"
        assert t.user_attrs["score"] == first.user_attrs["score"] and "worker" in t.user_attrs
        assert not t.user_attrs["repeat_counted"]
    assert all("repeat_of" not in t.user_attrs for t in pareto_front(result.study))
    with pytest.raises(NasxError, match=f"a repeat of trial {repeats[0].user_attrs['repeat_of']}'s architecture"):
        feasible_trial(result.study, repeats[0].number)  # what export, inspect and retrain pick a trial with


def test_an_exhausted_space_still_ends_counting_a_repeat_after_max_resample_in_a_row(tmp_path):
    result = search(settings(tmp_path, n_trials=5, max_resample=2))
    trials = result.study.trials
    distinct = {arch_key(t) for t in trials}
    assert len(distinct) == 3
    counted = [t for t in trials if "repeat_of" not in t.user_attrs or t.user_attrs["repeat_counted"]]
    assert len(counted) == 5  # --n-trials reached: two of them repeats counted after 2 re-samples in a row
    runs = collections.Counter()
    streak = 0
    for t in trials:
        if "repeat_of" in t.user_attrs and not t.user_attrs["repeat_counted"]:
            streak += 1
        else:
            if t.user_attrs.get("repeat_counted"):
                flooded = "as many re-sampled repeats as counted trials" in t.user_attrs["reason"]
                runs["flooded" if flooded else streak] += 1
            streak = 0
    # every counted repeat came after exactly --max-resample re-sampled ones, or once the study held as many
    # re-sampled repeats as counted trials
    assert set(runs) <= {2, "flooded"} and runs[2]


def test_re_sampling_stops_once_the_study_holds_as_many_repeats_as_counted_trials(tmp_path):
    """A sampler that keeps proposing what the study holds (here: a space of three architectures, 30 trials) gets
    at most one re-sampled repeat per counted trial past the first --max-resample, not --max-resample per
    counted trial: stored repeats would only slow the sampler, whose every proposal reads them all."""
    result = search(settings(tmp_path, n_trials=30, max_resample=5))
    trials = result.study.trials
    resampled = [t for t in trials if "repeat_of" in t.user_attrs and not t.user_attrs["repeat_counted"]]
    counted = [t for t in trials if "repeat_of" not in t.user_attrs or t.user_attrs["repeat_counted"]]
    assert len(counted) == 30 and len({arch_key(t) for t in trials}) == 3
    # by --max-resample alone, each of the 27 counted repeats would follow 5 re-sampled ones: 135
    assert len(resampled) <= 30
    assert any("as many re-sampled repeats as counted trials" in t.user_attrs["reason"] for t in counted)


def test_max_resample_0_evaluates_repeats_as_trials_as_before(tmp_path):
    result = search(settings(tmp_path, n_trials=6, max_resample=0))
    trials = result.study.trials
    assert len(trials) == 6 and not any("repeat_of" in t.user_attrs for t in trials)
    assert len({arch_key(t) for t in trials}) < 6  # repeats were run again, as trials


def test_the_summary_counts_distinct_candidates_and_bad_max_resample_is_one_line(tmp_path):
    s = settings(tmp_path, n_trials=3)
    url = s.storage
    base = ("search", "--space", f"{tmp_path}/tiny.py:tiny", "--storage", url, "--sampler", "random", "--seed", "0")
    fast = ("--measure-time", "0.02", "--threads", "1", "--quiet", "--no-retime", "--no-drift-correction")
    (tmp_path / "tiny.py").write_text(TINY)
    r = run_nasx_here(*base, "--n-trials", "3", *fast, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name=optuna.get_all_study_names(url)[0], storage=url)
    repeats = sum("repeat_of" in t.user_attrs for t in study.trials)
    line = f"candidates: 3 distinct architectures (3 feasible, 0 rejected or not timed); {repeats} proposals"
    assert line in r.stdout
    r = run_nasx_here(*base, "--max-resample", "-1", *fast, cwd=tmp_path)
    assert r.returncode == 2 and "--max-resample must be 0" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("state", ["feasible", "rejected"])
def test_a_repeat_carries_the_constraints_of_the_trial_it_repeats(tmp_path, state):
    s = settings(tmp_path, n_trials=3)
    if state == "rejected":  # every architecture over a 1-parameter budget: all rejected, never built
        s.budgets = Budgets(params=1)
    result = search(s)
    trials = result.study.trials
    repeats = [t for t in trials if "repeat_of" in t.user_attrs]
    assert repeats
    for t in repeats:
        assert t.constraints == trials[t.user_attrs["repeat_of"]].constraints
        assert any(v > 0 for v in t.constraints.values()) == (state == "rejected")
