"""End-to-end search on the small space, constraints, resume, Pareto front, bad input."""

import random

import optuna
import pytest

import nasx
from nasx.search.budgets import Budgets
from nasx.search.objective import Objective
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.search.study import open_study
from nasx.space.config import load_space
from nasx.store.db import Store

BUDGET = 12_000_000
MAC_BUDGET = 1_500_000


def trials_of(url, name):
    return optuna.load_study(study_name=name, storage=url).trials


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One small real search (measured latency, NASWOT score), run twice to test resuming."""
    d = tmp_path_factory.mktemp("search")
    url = f"sqlite:///{d}/s.db"
    args = [
        "search",
        "--config",
        "cifar32",
        "--budget",
        "12M",
        "--mac-budget",
        "1.5M",
        "--storage",
        url,
        "--n-trials",
        "10",
        "--seed",
        "3",
        "--quiet",
    ]
    from conftest import run_nasx

    first = run_nasx(*args, cwd=d)
    second = run_nasx(*args, cwd=d)
    return url, first, second


def test_search_runs_and_resumes(finished):
    url, first, second = finished
    assert first.returncode == 0, first.stderr
    assert "new study" in first.stderr and "Pareto front" in first.stdout + "no feasible"
    assert second.returncode == 0, second.stderr
    assert "resuming study" in second.stderr and "(10 trials stored)" in second.stderr
    (name,) = optuna.get_all_study_names(url)
    assert len(trials_of(url, name)) == 20


def test_constraints_hold_and_rejected_trials_are_never_measured(finished):
    url, _, _ = finished
    (name,) = optuna.get_all_study_names(url)
    trials = trials_of(url, name)
    feasible = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    rejected = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
    assert feasible and rejected, "the budgets should both admit and reject candidates of cifar32"
    for t in feasible:
        arch = nasx.Arch.from_dict(t.user_attrs["arch"])
        report = nasx.cost(arch)  # recomputed, not read back
        assert report.madds <= BUDGET and report.mac <= MAC_BUDGET
        assert t.user_attrs["madds"] == report.madds and t.user_attrs["feasible"] is True
        assert t.values[0] == t.user_attrs["latency"]["median_ms"] > 0
        lat = t.user_attrs["latency"]  # drift-corrected by default: raw / drift, with what the drift came from
        assert lat["median_ms"] == pytest.approx(lat["raw_median_ms"] / lat["drift"])
        assert 1 <= lat["attempts"] <= 3 and lat["calibration_before_ms"] > 0 and lat["calibration_after_ms"] > 0
        assert set(t.user_attrs["fingerprint"]) >= {"hardware", "threads", "torch", "dtype", "batch", "input"}
        assert all(v <= 0 for v in t.constraints.values())
    for t in rejected:
        report = nasx.cost(nasx.Arch.from_dict(t.user_attrs["arch"]))
        assert report.madds > BUDGET or report.mac > MAC_BUDGET
        assert "latency" not in t.user_attrs and "score" not in t.user_attrs and t.values is None
        assert t.user_attrs["feasible"] is False and t.user_attrs["reason"].startswith("over budget")
        assert any(v > 0 for v in t.constraints.values())
        # optuna-dashboard 0.21 reads the list form
        assert any(v > 0 for v in t.system_attrs["constraints"])


def test_pareto_front_is_exactly_the_nondominated_feasible_set(finished):
    url, _, _ = finished
    (name,) = optuna.get_all_study_names(url)
    study = optuna.load_study(study_name=name, storage=url)
    feasible = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]

    def dominates(a, b):  # latency minimised, score maximised
        return (a.values[0] <= b.values[0] and a.values[1] >= b.values[1]) and a.values != b.values

    nondominated = [t for t in feasible if not any(dominates(o, t) for o in feasible)]
    first = {}  # one trial per architecture: the first that proposed it
    for t in sorted(nondominated, key=lambda t: t.number):
        first.setdefault(t.user_attrs["arch_hash"], t.number)
    # that front was re-timed side by side (nasx.search.retime): the stored front is its members that no other
    # member dominates under the confirmed latencies
    members = [study.trials[n] for n in first.values()]
    assert all("latency_confirmed" in t.user_attrs for t in members)

    def confirmed(t):
        return t.user_attrs["latency_confirmed"]["median_ms"], t.values[1]

    kept = [t.number for t in members if not any(dominates_point(confirmed(o), confirmed(t)) for o in members)]
    assert sorted(study.user_attrs["pareto_front"]) == sorted(kept)


def dominates_point(a, b):
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def test_latency_cache_avoids_remeasuring(tmp_path):
    space = load_space("cifar32")
    settings = SearchSettings(space=space, budgets=Budgets(), storage=f"sqlite:///{tmp_path}/c.db", measure_time_s=0.2)
    store = Store(settings.storage)
    objective = Objective(settings, store)
    arch = space.random_arch(random.Random(0))
    trial = optuna.trial.FixedTrial({})
    attrs = {"arch_hash": arch.content_hash()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(trial, "set_user_attr", lambda k, v: attrs.__setitem__(k, v), raising=False)
        first = objective._evaluate(trial, arch, dict(attrs))
        assert attrs["latency_cached"] is False
        second = objective._evaluate(trial, arch, dict(attrs))
        assert attrs["latency_cached"] is True
    assert first == second


def test_sampler_learns_from_rejections_on_default_space(tmp_path, monkeypatch):
    """Default space and sampler at 300M: in the second half at least 80% of proposals are feasible.
    Latency and score are stubbed (cheap functions of the costs) so only the sampler is under test."""
    space = load_space("mobile224")
    settings = SearchSettings(
        space=space,
        budgets=Budgets(compute=300_000_000),
        storage=f"sqlite:///{tmp_path}/l.db",
        n_trials=100,
        seed=0,
        progress=False,
    )

    def fake_evaluate(self, trial, arch, attrs):
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        trial.set_user_attr("feasible", True)
        return attrs["madds"] / 1e7 + attrs["mac_elements"] / 1e6, attrs["params"] / 1e6

    monkeypatch.setattr(Objective, "_evaluate", fake_evaluate)
    result = search(settings, out=open("/dev/null", "w"))
    trials = sorted(result.study.trials, key=lambda t: t.number)
    second_half = trials[len(trials) // 2 :]
    feasible = sum(t.state == optuna.trial.TrialState.COMPLETE for t in second_half)
    uniform = sum(nasx.cost(space.random_arch(random.Random(i))).madds <= 300e6 for i in range(200)) / 200
    assert uniform < 0.5, "the budget must bite for this test to mean anything"
    assert feasible / len(second_half) >= 0.8, (feasible, len(second_half), uniform)


def test_changed_space_is_refused_on_resume(tmp_path):
    url = f"sqlite:///{tmp_path}/x.db"
    a = SearchSettings(space=load_space("cifar32"), budgets=Budgets(), storage=url, study_name="s")
    open_study(a)
    text = load_space("cifar32").text.replace("head: {out: [256]}", "head: {out: [512]}")
    from nasx.space.config import parse_space

    b = SearchSettings(space=parse_space(text, "edited.yaml"), budgets=Budgets(), storage=url, study_name="s")
    with pytest.raises(nasx.StorageError, match="different search space"):
        open_study(b)


def test_changed_drift_correction_is_refused_on_resume(tmp_path):
    """Drift-corrected and raw latencies are on different scales: one study never mixes them."""
    url = f"sqlite:///{tmp_path}/x.db"
    space = load_space("cifar32")
    open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s"))
    raw = SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s", drift_correction=False)
    with pytest.raises(nasx.StorageError, match="timed with drift correction; resume it without --no-drift"):
        open_study(raw)
    open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="r", drift_correction=False))
    with pytest.raises(nasx.StorageError, match="timed without drift correction; resume it with --no-drift"):
        open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="r"))


@pytest.mark.parametrize("budget", ["300X", "-5M", "0", "abc", "1e999"])
def test_bad_budget_one_line_exit_2(nasx_cli, tmp_path, budget):
    r = nasx_cli(
        "search", "--config", "cifar32", "--budget", budget, "--storage", f"sqlite:///{tmp_path}/b.db", cwd=tmp_path
    )
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert "--budget" in r.stderr


def test_bad_inputs_do_not_lose_stored_trials(nasx_cli, tmp_path):
    url = f"sqlite:///{tmp_path}/keep.db"
    ok = nasx_cli(
        "search",
        "--config",
        "cifar32",
        "--budget",
        "20M",
        "--storage",
        url,
        "--n-trials",
        "4",
        "--quiet",
        "--study",
        "keep",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr
    before = len(trials_of(url, "keep"))
    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text(load_space("cifar32").text.replace("partial:", "hyperconv:"))
    cases = [
        ["--config", str(bad_config)],
        ["--config", "cifar32", "--storage", "postgresql://nobody@127.0.0.1:1/nodb"],
        ["--config", "cifar32", "--storage", "notaurl"],
        ["--config", "cifar32", "--budget", "300X"],
        ["--config", str(tmp_path / "missing.yaml")],
        ["--config", "cifar32", "--n-trials", "0"],
    ]
    for extra in cases:
        args = ["search", "--storage", url, "--study", "keep", "--quiet", *extra]
        r = nasx_cli(*args, cwd=tmp_path)
        assert r.returncode == 2, (extra, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, (extra, r.stderr)
    assert "hyperconv" in nasx_cli("search", "--config", str(bad_config), cwd=tmp_path).stderr
    assert len(trials_of(url, "keep")) == before


def test_only_a_table_creation_race_is_retried():
    from nasx.store.db import created_by_one_of_racing_workers

    calls = []

    def lost_twice():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError('duplicate key value violates unique constraint "pg_type_typname_nsp_index"')
        return "tables"

    assert created_by_one_of_racing_workers(lost_twice) == "tables" and len(calls) == 3
    calls.clear()

    def refused():
        calls.append(1)
        raise RuntimeError("connection refused")

    with pytest.raises(RuntimeError, match="refused"):
        created_by_one_of_racing_workers(refused)
    assert len(calls) == 1  # another error is not a race: reported at once
