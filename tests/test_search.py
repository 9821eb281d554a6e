"""End-to-end search on the small space, constraints, resume, Pareto front, bad input."""

import random
import subprocess

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
    """One small real search (measured latency, the default score: capacity), run twice to test resuming (the
    second time with --more: --n-trials alone is the study's total, which the first run already reached). Only
    the second run re-times: its re-timing of the whole front is what the tests check."""
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
        "--seed",
        "3",
        "--measure-time",
        "0.2",  # the search's path is under test, not a 2 s measurement (tests/test_latency.py's)
        "--quiet",
    ]
    from conftest import run_nasx, run_nasx_here

    # the first run's re-timing would be redone by the second (~2 s a front member)
    first = run_nasx(*args, "--n-trials", "10", "--no-retime", cwd=d)
    second = run_nasx_here(*args, "--n-trials", "4", "--more", cwd=d)
    return url, first, second


def test_search_runs_and_resumes(finished):
    url, first, second = finished
    assert first.returncode == 0, first.stderr
    assert "new study" in first.stderr and "Pareto front" in first.stdout + "no feasible"
    assert second.returncode == 0, second.stderr
    assert "resuming study" in second.stderr and "(10 trials stored)" in second.stderr
    (name,) = optuna.get_all_study_names(url)
    # --n-trials counts architectures the study did not hold yet: re-sampled repeats are stored beside them
    assert sum("repeat_of" not in t.user_attrs for t in trials_of(url, name)) == 14


def test_constraints_hold_and_rejected_trials_are_never_measured(finished):
    url, _, _ = finished
    (name,) = optuna.get_all_study_names(url)
    trials = trials_of(url, name)
    feasible = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    # a repeat of an earlier trial's architecture is PRUNED too, feasible or not (tests/test_repeats.py)
    rejected = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED and "repeat_of" not in t.user_attrs]
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
    # that front was re-timed side by side (nasx.search.retime), and every trial the re-timed numbers left
    # undominated was re-timed too: the stored front is the non-dominated set of the shown latencies (confirmed
    # where re-timed, else the first), one trial per architecture, each of them re-timed
    members = [study.trials[n] for n in first.values()]
    assert all("latency_confirmed" in t.user_attrs for t in members)

    def shown(t):
        c = t.user_attrs.get("latency_confirmed")
        return (c["median_ms"] if c else t.values[0]), t.values[1]

    once = {}
    for t in sorted(feasible, key=lambda t: t.number):
        once.setdefault(t.user_attrs["arch_hash"], t)
    candidates = list(once.values())
    kept = [t.number for t in candidates if not any(dominates_point(shown(o), shown(t)) for o in candidates)]
    assert sorted(study.user_attrs["pareto_front"]) == sorted(kept)
    assert all("latency_confirmed" in study.trials[n].user_attrs for n in kept)


def dominates_point(a, b):
    return a[0] <= b[0] and a[1] >= b[1] and a != b


def test_latency_cache_avoids_remeasuring(tmp_path):
    space = load_space("cifar32")
    settings = SearchSettings(
        space=space,
        budgets=Budgets(),
        storage=f"sqlite:///{tmp_path}/c.db",
        measure_time_s=0.2,
        score="naswot",
        screen=False,  # screening reads the trial's study; a FixedTrial has none
    )
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
        score="naswot",  # stubbed below
        retime=False,  # the latencies are stubbed: re-timing real 224x224 networks would test nothing here
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
    # a proposal is feasible when its architecture is under budget: a re-sampled repeat of one too
    feasible = sum(t.state == optuna.trial.TrialState.COMPLETE or t.user_attrs.get("feasible") for t in second_half)
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
    from nasx.cli.main import main

    url = f"sqlite:///{tmp_path}/keep.db"
    # the stored trials, made in process: the bad commands below are the processes under test
    ok = main(
        [
            "search",
            "--score",
            "naswot",  # the score is not under test here: the cheapest data-free one
            "--config",
            "cifar32",
            "--budget",
            "20M",
            "--storage",
            url,
            "--n-trials",
            "4",
            "--measure-time",
            "0.1",  # stored trials are under test, not their timing
            "--no-retime",
            "--quiet",
            "--study",
            "keep",
        ]
    )
    assert ok == 0
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


# --- inputs that parse but make no sense ---


def cheapest_network_madds(space) -> int:
    """MAdds of the narrowest, shallowest network of `space` with each position's cheapest family and knobs
    (found position by position; positions do not interact given the widths)."""
    from itertools import product

    combos = [
        (fam, dict(zip([p for p, _ in params], values, strict=True)))
        for fam, params in space.families
        for values in product(*[c for _, c in params])
    ]

    class Pick:
        def __init__(self, chosen):
            self.chosen = chosen

        def suggest_categorical(self, name, choices):
            return self.chosen.get(name, min(choices) if all(isinstance(c, int) for c in choices) else choices[0])

    chosen = {}
    for i, stage in enumerate(space.stages, 1):
        keys = [f"s{i}"] if space.choose == "stage" else [f"s{i}_b{j}" for j in range(min(stage.depth))]
        for key in keys:
            options = [
                {**chosen, f"{key}_family": fam, **{f"{key}_{fam}_{p}": v for p, v in knobs.items()}}
                for fam, knobs in combos
            ]
            chosen = min(options, key=lambda c: nasx.cost(space.sample(Pick(c))).madds)
    return nasx.cost(space.sample(Pick(chosen))).madds


@pytest.mark.parametrize("name", ["cifar32", "mobile224"])
def test_cost_bounds_hold_and_the_madds_floor_is_a_real_network(name):
    space = load_space(name)
    bounds = space.cost_bounds()
    assert bounds["madds"][0] == cheapest_network_madds(space)
    rng = random.Random(0)
    for _ in range(100):
        r = nasx.cost(space.random_arch(rng))
        for key, used in (("madds", r.madds), ("params", r.params), ("mac", r.mac)):
            assert bounds[key][0] <= used <= bounds[key][1], (key, used, bounds[key])


@pytest.mark.parametrize(
    "budget,text",
    [
        (["--budget", "300"], "has no suffix and so means 300 (not 300 million); did you mean 300M?"),
        (["--params-budget", "5"], "did you mean 5M?"),
        (["--mac-budget", "20"], "did you mean 20M?"),
        (
            ["--budget", "1M"],
            "--budget 1M is below every network of space 'cifar32' (its smallest network has 2.29M "
            "MAdds; the space spans 2.29M..103M)",
        ),
        (["--budget", "2M", "--budget-metric", "flops"], "smallest network has 4.59M FLOPs"),
        (["--params-budget", "20K"], "no network has fewer than 29.5K params"),
        (["--mac-budget", "100KB"], "no network has fewer than 864K MAC bytes"),
    ],
)
def test_budgets_no_network_meets_are_refused_before_a_study_exists(nasx_cli, tmp_path, budget, text):
    url = f"sqlite:///{tmp_path}/b.db"
    r = nasx_cli("search", "--config", "cifar32", *budget, "--storage", url, "--n-trials", "2", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert text in r.stderr
    assert not (tmp_path / "b.db").exists()  # no junk study for pareto/export to pick up as the most recent


def test_more_threads_than_usable_cores_need_oversubscribe(nasx_cli, tmp_path):
    from nasx.measure.device import default_threads

    many = default_threads() + 1
    for command in (["search", "--budget", "20M"], ["explore", "-n", "10"], ["microbench"]):
        r = nasx_cli(
            *command,
            "--config" if command[0] != "microbench" else "--shapes",
            "cifar32" if command[0] != "microbench" else "32x56",
            "--threads",
            many,
            "--storage" if command[0] != "microbench" else "--quiet",
            *([f"sqlite:///{tmp_path}/t.db"] if command[0] != "microbench" else []),
            cwd=tmp_path,
        )
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (command, r.stderr)
        assert f"--threads {many} is more than the {default_threads()} usable cores" in r.stderr
        assert "--oversubscribe" in r.stderr
    assert not (tmp_path / "t.db").exists()


def test_another_thread_count_or_device_is_refused_on_resume(tmp_path):
    """Latencies timed with other threads or on another device are another workload: one study never mixes."""
    from nasx.measure.device import default_threads

    url = f"sqlite:///{tmp_path}/x.db"
    space = load_space("cifar32")
    open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s", threads=1))
    open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s", threads=1))  # same: fine
    if default_threads() != 1:
        with pytest.raises(
            nasx.StorageError, match="timed with 1 threads, this run would use .*; resume it with --threads 1"
        ):
            open_study(SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s"))
    with pytest.raises(nasx.StorageError, match="was timed on --device cpu; resume it with --device cpu"):
        open_study(
            SearchSettings(space=space, budgets=Budgets(), storage=url, study_name="s", threads=1, device="cuda")
        )


def finished_count(url, name):
    return sum(
        t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED) for t in trials_of(url, name)
    )


def test_n_trials_is_the_study_total_and_more_adds(tmp_path, capsys, monkeypatch):
    """Re-running an interrupted command finishes it (16 + 14 = 30, not 16 + 30); --more runs that many more.
    A budget just above the space's floor rejects nearly every candidate: trials take milliseconds. In process
    (the CLI's main, its stderr captured): four interpreters importing torch took most of this test's time."""
    import sys

    import nasx.search.run
    from nasx.cli.main import main

    real = nasx.search.run.search  # its default `out` is the sys.stderr of its import, not capsys's
    monkeypatch.setattr(nasx.search.run, "search", lambda settings, out=None: real(settings, out or sys.stderr))

    def nasx_cli(*args):
        code = main(list(args))
        return subprocess.CompletedProcess(args, code, *capsys.readouterr())

    url = f"sqlite:///{tmp_path}/n.db"
    args = [
        "search",
        "--config",
        "cifar32",
        "--budget",
        "2.4M",
        "--storage",
        url,
        "--study",
        "n",
        "--quiet",
        "--measure-time",
        "0.05",
        "--score",
        "params",
    ]
    assert nasx_cli(*args, "--n-trials", "4").returncode == 0
    assert finished_count(url, "n") == 4
    again = nasx_cli(*args, "--n-trials", "4")
    assert again.returncode == 0, again.stderr
    assert "it already holds 4 finished of --n-trials 4: nothing to run" in again.stderr
    assert finished_count(url, "n") == 4
    bigger = nasx_cli(*args, "--n-trials", "7")
    assert "running the 3 left of --n-trials 7 (--more runs 7 more instead)" in bigger.stderr, bigger.stderr
    assert finished_count(url, "n") == 7
    more = nasx_cli(*args, "--n-trials", "2", "--more")
    assert "running 2 more (--more: 9 in all)" in more.stderr, more.stderr
    assert finished_count(url, "n") == 9


def test_a_killed_trial_is_retried_and_said_so_without_library_warnings(tmp_path):
    """A trial left RUNNING by a killed process (here: made so, with its heartbeat and a constraint already
    set, as a SIGKILL leaves it) is failed after the grace period and retried: the CLI says which trial became
    which, and optuna's "constraint ... already set" warning about the copied constraint stays off the terminal."""
    import time

    url = f"sqlite:///{tmp_path}/k.db"
    args = [
        "search",
        "--config",
        "cifar32",
        "--budget",
        "2.4M",
        "--storage",
        url,
        "--study",
        "k",
        "--measure-time",
        "0.05",
        "--score",
        "params",
        "--heartbeat",
        "1",
    ]
    from nasx.cli.main import main

    assert main([*args, "--n-trials", "2", "--quiet"]) == 0  # in process: the retrying run is under test
    study = optuna.load_study(study_name="k", storage=optuna.storages.RDBStorage(url, heartbeat_interval=1))
    killed = study.ask()
    study._storage.set_trial_system_attr(killed._trial_id, "constraints:madds", 0.5)
    study._storage.record_heartbeat(killed._trial_id)
    time.sleep(3.5)  # past the grace period: 3 heartbeats
    from conftest import run_nasx

    # a process: library warnings reach its terminal, where this process's are caught by pytest
    r = run_nasx(*args, "--n-trials", "1", "--more", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    retry = [t for t in trials_of(url, "k") if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retry) == 1
    assert f"trial {killed.number} was interrupted (its process stopped); retried as {retry[0].number}" in r.stderr
    assert "Warning" not in r.stderr and "already set" not in r.stderr, r.stderr


def test_a_lone_search_samples_as_with_the_liar_and_reads_the_trials_once_per_trial(tmp_path, monkeypatch):
    """constant_liar only where other processes share the study: alone, TPE proposes exactly the same trials
    (seeded) but reads the storage once per trial instead of once per sampled parameter."""
    from nasx.search.study import make_sampler

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = load_space("cifar32")

    def objective(trial):
        r = nasx.cost(space.sample(trial))
        if r.madds > BUDGET:
            raise optuna.TrialPruned()
        return r.mac / 1e6, r.activations / 1e6

    def run(concurrent: bool):
        study = optuna.create_study(
            storage=f"sqlite:///{tmp_path}/{concurrent}.db",
            directions=["minimize", "maximize"],
            sampler=make_sampler("tpe", 0, concurrent),
        )
        reads = []
        read = study._storage.get_all_trials
        monkeypatch.setattr(study._storage, "get_all_trials", lambda *a, **k: reads.append(1) or read(*a, **k))
        study.optimize(objective, n_trials=30)
        return [t.params for t in study.trials], len(reads), len(study.trials[-1].params)

    lone, lone_reads, n_params = run(False)
    liar, liar_reads, _ = run(True)
    assert lone == liar
    # TPE's first 10 trials are random (no reads); then the liar reads once per parameter (20 here)
    assert n_params >= 5 and lone_reads <= 3 * 30 and liar_reads >= 20 * (n_params - 5), (lone_reads, liar_reads)


def test_which_searches_share_their_study():
    space = load_space("cifar32")
    assert not SearchSettings(space=space, budgets=Budgets()).concurrent()  # the default SQLite, one process
    assert SearchSettings(space=space, budgets=Budgets(), workers=2).concurrent()
    assert SearchSettings(space=space, budgets=Budgets(), storage="postgresql://h/db").concurrent()
    from nasx.search.workers import worker_settings

    assert all(w.concurrent() for w in worker_settings(SearchSettings(space=space, budgets=Budgets()), "s", 3, 9))


def test_sqlite_commits_without_fsync_only_in_wal_mode(tmp_path):
    """Store and the study's engine commit with synchronous=NORMAL (1) in the WAL; a database left in a
    rollback journal keeps FULL (2), where NORMAL could corrupt it on a power cut."""
    import sqlalchemy

    from nasx.store.db import commits_without_fsync

    url = f"sqlite:///{tmp_path}/w.db"
    store = Store(url)
    study, _ = open_study(SearchSettings(space=load_space("cifar32"), budgets=Budgets(), storage=url, study_name="s"))
    for engine in (store.engine, study._storage._backend.engine):
        with engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 1
    plain = sqlalchemy.create_engine(f"sqlite:///{tmp_path}/plain.db")
    commits_without_fsync(plain)
    with plain.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "delete"
        assert c.exec_driver_sql("PRAGMA synchronous").scalar() == 2
