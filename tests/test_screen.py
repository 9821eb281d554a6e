"""Screening (nasx.search.screen), a search's default: a feasible candidate is timed whole only when its latency
predicted from the block table could put it on the front. Timings are stubbed (tests.test_blocks.FakeTimed: a
layer's time a function of its module, a network's 0.8 x the sum of its children's + 0.02 ms each + 0.3 ms), so
the true latency of every candidate, screened or not, is known apart from nasx and the checks are exact: a
screened trial is never on the front nor exported, a predicted latency is never an objective value, each
screening decision follows the rule from the stored trials alone, and no screened candidate would have joined
the front had it been timed."""

from __future__ import annotations

import optuna
import pytest

import nasx.measure.blocks
import nasx.measure.cached
from nasx.arch import Arch
from nasx.build import build_seeded
from nasx.errors import NasxError
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.screen import MIN_FIT
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space
from nasx.store.studies import feasible_trial, pareto_front, trial_status
from nasx.util.pareto import dominates
from tests.test_blocks import FakeTimed

COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


@pytest.fixture
def fake_timed(monkeypatch):
    fake = FakeTimed()
    monkeypatch.setattr(nasx.measure.blocks, "timed_batch", fake.batch)
    monkeypatch.setattr(nasx.measure.cached, "timed", fake)
    return fake


def true_ms(arch_dict: dict) -> float:
    """What the stub times the whole network at: computed from the built module, apart from the search."""
    module = build_seeded(Arch.from_dict(arch_dict))
    return FakeTimed()(module, None, None, {"hardware": "cpu"}, "")["median_ms"]


def settings(tmp_path, screen: bool = True, n_trials: int = 80) -> SearchSettings:
    return SearchSettings(
        space=load_space("cifar32"),
        budgets=Budgets(compute=12_000_000),
        storage=f"sqlite:///{tmp_path}/s.db",
        study_name="screen" if screen else "no-screen",
        n_trials=n_trials,
        seed=0,
        threads=1,
        retime=False,  # the end's side-by-side re-timing is not stubbed
        progress=False,
        screen=screen,
    )


@pytest.fixture(scope="module")
def screened_study(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    fake = FakeTimed()
    mp.setattr(nasx.measure.blocks, "timed_batch", fake.batch)
    mp.setattr(nasx.measure.cached, "timed", fake)
    try:
        tmp = tmp_path_factory.mktemp("screen")
        result = search(settings(tmp))
        yield tmp, result.study
    finally:
        mp.undo()


def new_trials(study):
    return [t for t in study.trials if t.state.is_finished() and "repeat_of" not in t.user_attrs]


def test_a_screened_trial_is_pruned_never_timed_whole_never_on_the_front_nor_exported(screened_study):
    _, study = screened_study
    trials = new_trials(study)
    screened = [t for t in trials if t.user_attrs.get("screened")]
    timed = [t for t in trials if t.state == COMPLETE]
    assert screened and len(timed) > MIN_FIT, "the test needs both screened and timed candidates"
    front = {t.number for t in pareto_front(study)}
    for t in screened:
        assert t.state == PRUNED and trial_status(t) == "screened" and t.number not in front
        assert "latency" not in t.user_attrs and t.user_attrs["predicted_latency_ms"] > 0
        assert t.user_attrs["feasible"] is True and "score" in t.user_attrs
        assert all(v <= 0 for v in t.constraints.values())  # within budget: screened, not rejected
        with pytest.raises(NasxError, match="screened out"):
            feasible_trial(study, t.number)  # what export, inspect and retrain pick a trial with
    # an objective value is always the whole network's measured latency, never a prediction
    for t in timed:
        assert t.values[0] == pytest.approx(true_ms(t.user_attrs["arch"]))
        assert t.values[0] == t.user_attrs["latency"]["median_ms"]


def test_the_first_candidates_are_timed_whole_until_the_model_has_min_fit_of_them(screened_study):
    _, study = screened_study
    feasible = [t for t in new_trials(study) if t.user_attrs.get("feasible")]
    assert all(t.state == COMPLETE for t in feasible[:MIN_FIT])
    # before the model, a candidate is timed whole without its layers; from then on, every one is predicted
    assert not any("predicted_latency_ms" in t.user_attrs or "layer_sum_ms" in t.user_attrs for t in feasible[:MIN_FIT])
    assert all("predicted_latency_ms" in t.user_attrs for t in feasible[MIN_FIT:])
    # the first predicted one timed the layers of the MIN_FIT before it too, for the model
    first = feasible[MIN_FIT]
    assert first.user_attrs["layers_timed"] > len(first.user_attrs["arch"]["layers"])


def test_each_screening_decision_follows_the_rule_from_the_stored_trials(screened_study):
    """Skip ⇔ a trial finished before it, timed whole, is faster than predicted x (1 - margin) at a score at
    least the candidate's: checked against every trial completed before each screened one."""
    _, study = screened_study
    trials = new_trials(study)
    for t in trials:
        if "predicted_latency_ms" not in t.user_attrs:
            continue
        optimistic = t.user_attrs["predicted_latency_ms"] * (1 - t.user_attrs["screen_margin"])
        earlier = [e for e in trials if e.state == COMPLETE and e.datetime_complete < t.datetime_start]
        beaten = any(e.values[0] < optimistic and e.values[1] >= t.user_attrs["score"] for e in earlier)
        assert bool(t.user_attrs.get("screened")) == beaten, t.number


def test_no_screened_candidate_would_have_joined_the_front(screened_study):
    """Every screened candidate, timed whole by the stub after the fact, is dominated by a trial the search
    timed: screening lost no front member."""
    _, study = screened_study
    timed = [(t.values[0], t.values[1]) for t in new_trials(study) if t.state == COMPLETE]
    for t in new_trials(study):
        if t.user_attrs.get("screened"):
            point = (true_ms(t.user_attrs["arch"]), t.user_attrs["score"])
            assert any(dominates(p, point) for p in timed), t.number


def test_no_screen_times_every_candidate_whole(tmp_path, fake_timed):
    study = search(settings(tmp_path, screen=False, n_trials=20)).study
    trials = new_trials(study)
    assert not any("layer_sum_ms" in t.user_attrs or t.user_attrs.get("screened") for t in trials)
    assert all(t.state == COMPLETE for t in trials if t.user_attrs.get("feasible"))


def test_trials_says_screened_export_refuses_it_and_the_summary_counts_it(screened_study, capsys):
    from nasx.cli.main import main
    from nasx.cli.search_cmds import screen_line

    tmp, study = screened_study
    url = f"sqlite:///{tmp}/s.db"
    screened = next(t for t in new_trials(study) if t.user_attrs.get("screened"))
    assert main(["trials", "--storage", url, "--study", "screen"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"{screened.number} ")]
    assert rows and "screened" in rows[0]
    out = tmp / "x.onnx"
    assert main(["export", "--storage", url, "--study", "screen", "--trial", str(screened.number), "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "screened out" in err and "Traceback" not in err and not out.exists()
    n = sum(bool(t.user_attrs.get("screened")) for t in new_trials(study))
    assert f", {n} screened out by their predicted latency" in screen_line(study.trials)


class NoisyTimed(FakeTimed):
    """A machine whose whole-network timings wander ±30% around the layers' sum: no block model can screen."""

    def __call__(self, module, input_shape, store, fp, fp_hash, calibration_shape=None, **settings):
        lat = super().__call__(module, input_shape, store, fp, fp_hash, calibration_shape, **settings)
        if calibration_shape is None:
            wobble = (sum(p.numel() for p in module.parameters()) * 7919 % 1000) / 1000  # a fixed draw per network
            lat["median_ms"] *= 0.7 + 0.6 * wobble
        return lat


def test_screening_stops_for_the_run_when_its_model_is_too_wide_to_pay(tmp_path, monkeypatch):
    from nasx.cli.search_cmds import screen_line
    from nasx.search.screen import USEFUL_MARGIN

    fake = NoisyTimed()
    monkeypatch.setattr(nasx.measure.blocks, "timed_batch", fake.batch)
    monkeypatch.setattr(nasx.measure.cached, "timed", fake)
    study = search(settings(tmp_path, n_trials=60)).study
    feasible = [t for t in new_trials(study) if t.user_attrs.get("feasible")]
    stop = next(i for i, t in enumerate(feasible) if "screen_off" in t.user_attrs)
    assert stop >= 2 * MIN_FIT and len(feasible) > stop + 3, "the test needs candidates after the stop"
    margins = [t.user_attrs["screen_margin"] for t in feasible[:stop] if "screen_margin" in t.user_attrs]
    assert margins and margins[-1] > USEFUL_MARGIN  # what the stop rests on, as stored
    # from the stop on, no layer is timed and nothing is screened: every candidate is timed whole
    after = feasible[stop:]
    assert all(t.state == COMPLETE and "layer_sum_ms" not in t.user_attrs for t in after)
    assert "screening stopped after" in screen_line(study.trials)
