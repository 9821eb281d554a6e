"""The front re-timed side by side at the end of a search, and its knee: the one recommendation."""

import math
import os
import random
import re
import statistics

import optuna
import pytest

import nasx
from nasx.util.pareto import knee


def test_knee_by_hand_geometry():
    # normalised: (0, 0), (1/9, 0.9), (1, 1); the line of the extremes is y = x, distances (y - x) / sqrt(2)
    assert knee([(1.0, 0.0), (2.0, 0.9), (10.0, 1.0)]) == 1
    # (0, 0), (0.25, 0.5) at 0.25/sqrt2, (0.5, 0.9) at 0.4/sqrt2, (1, 1): the third point
    assert knee([(0.0, 10.0), (1.0, 12.0), (2.0, 13.6), (4.0, 14.0)]) == 2
    # the extremes are not where the front was given: order does not matter
    assert knee([(4.0, 14.0), (2.0, 13.6), (0.0, 10.0), (1.0, 12.0)]) == 1
    # scaling either objective changes nothing (normalised to [0, 1])
    assert knee([(1000.0, 0.0), (2000.0, 90.0), (10000.0, 100.0)]) == 1


def test_knee_tie_goes_to_the_faster_and_small_fronts_have_none():
    # normalised (0, 0), (0.25, 0.625), (0.5, 0.875), (1, 1): both middle points 0.375 / sqrt2 from y = x (exact
    # in binary floating point)
    assert knee([(0.0, 0.0), (1.0, 5.0), (2.0, 7.0), (4.0, 8.0)]) == 1
    assert knee([(2.0, 7.0), (4.0, 8.0), (0.0, 0.0), (1.0, 5.0)]) == 3
    assert knee([]) is None and knee([(1.0, 1.0)]) is None and knee([(1.0, 1.0), (2.0, 2.0)]) is None
    assert knee([(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]) is None  # no latency spread: no trade-off


def test_knee_of_a_straight_front_is_on_the_line():
    pts = [(float(i), float(i)) for i in range(5)]
    i = knee(pts)
    assert i is not None and abs(pts[i][0] - pts[i][1]) < 1e-12  # every point is at distance 0: the fastest wins
    assert i == 0


def test_the_stored_front_carries_confirmed_and_first_latencies(small_search):
    """On the shared small search (tests/conftest.py), re-timed at its end as every search is by default."""
    from nasx.search.retime import RETIME_ROUNDS
    from nasx.store.studies import latency_ms, load_study, study_front
    from nasx.util.pareto import dominates

    url, name, _, result = small_search
    assert result.retime is not None and result.front
    study = load_study(url, name)
    front = study_front(study)
    assert [t.number for t in front] == [t.number for t in result.front]
    for t in front:
        c = t.user_attrs["latency_confirmed"]
        assert len(c["rounds_ms"]) == RETIME_ROUNDS and c["median_ms"] == statistics.median(c["rounds_ms"])
        assert latency_ms(t) == c["median_ms"] != t.values[0]  # shown: confirmed; Optuna's value: the first
        assert t.values[0] == t.user_attrs["latency"]["median_ms"]
    assert [latency_ms(t) for t in front] == sorted(latency_ms(t) for t in front)
    points = [(latency_ms(t), t.values[1]) for t in front]
    assert not any(dominates(p, q) for p in points for q in points)  # non-dominated under the confirmed numbers
    ref = study.user_attrs["retime_reference"]
    assert ref["median_ms"] > 0 and len(ref["rounds_ms"]) == RETIME_ROUNDS and ref["name"]
    summary = result.retime.summary()
    assert "re-timed side by side" in summary and f"reference {ref['name']}" in summary
    assert ("no member changed rank" in summary) != bool(result.retime.moved)
    for number, first, confirmed in result.retime.moved:
        assert f"#{number} {first} -> {confirmed}" in summary
    assert result.time_split().startswith("time: build") and "re-time" in result.time_split()


def test_pareto_shows_confirmed_numbers(small_search, capsys):
    from nasx.cli.main import main

    url, name, _, result = small_search
    assert main(["pareto", "--storage", url, "--study", name]) == 0
    out = capsys.readouterr().out
    assert "re-timed side by side" in out and "first ms" in out
    for t in result.front:
        confirmed, first = t.user_attrs["latency_confirmed"], t.user_attrs["latency"]
        cells = rf"{confirmed['median_ms']:.2f} ± {confirmed['iqr_ms']:.2f}\s+{first['median_ms']:.2f}\s"
        assert re.search(cells, out), out


def test_no_retime_keeps_the_first_numbers(tmp_path):
    from nasx.search.budgets import Budgets
    from nasx.search.run import search
    from nasx.search.settings import SearchSettings
    from nasx.space.config import load_space

    settings = SearchSettings(
        score="naswot",  # the score is not under test here: the cheapest data-free one
        space=load_space("cifar32"),
        budgets=Budgets(compute=20_000_000),
        storage=f"sqlite:///{tmp_path}/s.db",
        study_name="n",
        n_trials=3,
        seed=2,
        measure_time_s=0.05,
        threads=1,
        progress=False,
        retime=False,
    )
    with open(os.devnull, "w") as devnull:
        result = search(settings, out=devnull)
    assert result.retime is None
    assert not any("latency_confirmed" in t.user_attrs for t in result.study.trials)


def hand_made_study(url, points):
    """A nasx study whose feasible trials sit at the given (latency, score) points, each a real cifar32 arch."""
    from nasx.space.config import load_space

    space = load_space("cifar32")
    study = optuna.create_study(storage=url, study_name="hand", directions=["minimize", "maximize"])
    study.set_user_attr("nasx", "search")
    for i, (lat, score) in enumerate(points):
        arch = space.random_arch(random.Random(i))
        attrs = {
            "arch": arch.to_dict(include_name=False),
            "arch_hash": arch.content_hash(),
            "feasible": True,
            "latency": {"median_ms": lat, "iqr_ms": 0.0},
            "madds": 1,
            "mac_elements": 1,
            "params": 1,
            "families": {},
        }
        study.add_trial(optuna.trial.create_trial(values=[lat, score], user_attrs=attrs))
    study.set_user_attr("pareto_front", list(range(len(points))))
    return study


def test_export_knee_exports_the_knee_trial(tmp_path, capsys):
    from nasx.cli.main import main

    url = f"sqlite:///{tmp_path}/h.db"
    study = hand_made_study(url, [(1.0, 0.0), (2.0, 0.9), (10.0, 1.0)])  # knee: trial 1 (by hand above)
    out = tmp_path / "knee.json"
    assert main(["export", "--storage", url, "--study", "hand", "--knee", "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert "--knee: trial 1" in err
    assert nasx.load_arch(str(out)).to_dict(include_name=False) == study.trials[1].user_attrs["arch"]
    assert main(["pareto", "--storage", url, "--study", "hand"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.rstrip().endswith("knee")]
    assert len(rows) == 1 and rows[0].split()[0] == "1"


def test_export_knee_of_a_small_front_is_one_clear_line(tmp_path, capsys):
    from nasx.cli.main import main

    url = f"sqlite:///{tmp_path}/h.db"
    hand_made_study(url, [(1.0, 0.0), (2.0, 0.9)])
    assert main(["export", "--storage", url, "--study", "hand", "--knee", "-o", str(tmp_path / "k.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs 3 or more" in err[0] and not (tmp_path / "k.json").exists()
    assert (
        main(["export", "--storage", url, "--study", "hand", "--knee", "--trial", "0", "-o", str(tmp_path / "k.json")])
        == 2
    )


def test_report_front_figure_marks_the_knee(tmp_path):
    from nasx.study.report_data import collect
    from nasx.study.report_figures import front_figure

    url = f"sqlite:///{tmp_path}/h.db"
    study = hand_made_study(url, [(1.0, 0.0), (2.0, 0.9), (10.0, 1.0)])
    data = collect(study, url)
    assert data.knee.number == 1
    (trace,) = [tr for tr in front_figure(data).data if tr.name and tr.name.startswith("knee")]
    assert list(trace.x) == [2.0] and list(trace.y) == [0.9] and not math.isnan(trace.x[0])


def test_time_split_by_hand():
    from nasx.search.progress import add_times, time_split

    times = {}
    add_times(
        times,
        {
            "time_build_s": 1.0,
            "time_score_s": 2.0,
            "time_measure_s": 10.0,
            "latency": {"calibration_s": 1.0, "lock_wait_s": 3.0, "export_s": 0.5},
        },
    )
    add_times(times, {"time_measure_s": 0.01, "latency_cached": True, "latency": {"calibration_s": 9.0}})  # a hit
    # a repeat carries its first trial's latency and screening times: only its own sampling counts
    repeat = {"repeat_of": 0, "time_sample_s": 0.25, "time_layers_s": 7.0, "time_screen_s": 7.0}
    add_times(times, {**repeat, "latency": {"calibration_s": 9.0}, "layer_timing": {"calibration_s": 9.0}})
    # screening: its layer timing, its calibration pairs and lock waits apart
    add_times(times, {"time_layers_s": 2.0, "time_screen_s": 0.5, "layer_timing": {"calibration_s": 0.5}})
    assert times["measure"] == pytest.approx(10.0 - 1.0 - 3.0 - 0.5 + 0.01) and times["calibrate"] == 1.5
    assert times["layer timing"] == 1.5 and times["screen"] == 0.5 and times["sample"] == 0.25
    line = time_split(times, 20.0, retime_s=1.5)
    assert line == (
        "time: build 1.0 s (5%), score 2.0 s (10%), layer timing 1.5 s (8%), screen 0.5 s (2%), measure 5.5 s "
        "(28%), calibrate 1.5 s (8%), export 0.5 s (2%), lock wait 3.0 s (15%), re-time 1.5 s (8%), rest 3.0 s (15%)"
    )


def test_a_score_that_cannot_score_the_reference_retimes_without_it(nasx_cli, tmp_path):
    """`--score bench` scores only NAS-Bench-Macro's networks: the zoo reference the re-timing adds cannot be
    scored, so the front is re-timed without it, said in one line, and the search exits 0 (it exited 2)."""
    r = nasx_cli(
        "search", "--config", "nas-bench-macro", "--score", "bench", "--budget", "1G", "--n-trials", "4",
        "--seed", "1", "--measure-time", "0.05", "--no-drift-correction", "--storage", f"sqlite:///{tmp_path}/b.db",
        cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    notes = [line for line in (r.stdout + r.stderr).splitlines() if "no reference:" in line]
    assert len(notes) == 1 and "--score bench cannot score" in notes[0] and "re-timed without it" in notes[0]
    assert "Traceback" not in r.stderr


def test_retiming_readmits_what_its_slower_numbers_leave_undominated(tmp_path, monkeypatch):
    """Member 1 re-times slower (2.0 -> 4.0 ms): trials 2 and 4, which it dominated by the first numbers, are
    undominated under the shown ones and are re-timed; trial 2 re-times slower too (3.0 -> 3.3), which frees
    trial 5 (3.2 ms, dominated by trial 2's first 3.0) in a second pass. The stored front is then the
    non-dominated set of the latencies `nasx trials` shows, computed here by brute force."""
    import importlib
    import types

    import nasx.measure.latency
    from nasx.search.retime import retime_front
    from nasx.store.studies import latency_ms, pareto_front
    from nasx.util.pareto import dominates

    points = [(1.0, 0.50), (2.0, 0.90), (3.0, 0.80), (1.5, 0.40), (3.5, 0.85), (3.2, 0.79)]
    retimed_ms = {0: 1.0, 1: 4.0, 2: 3.3, 3: 1.5, 4: 3.6, 5: 3.25}
    url = f"sqlite:///{tmp_path}/s.db"
    study = hand_made_study(url, points)
    number_of = {t.user_attrs["arch_hash"]: t.number for t in study.trials}
    timed_sets = []

    def measure_interleaved(modules, shape, rounds, **_):  # the stubbed re-timing: modules are the archs
        numbers = [number_of[arch.content_hash()] for arch in modules]
        timed_sets.append(numbers)
        return [[{"median_ms": retimed_ms[n], "iqr_ms": 0.0}] * rounds for n in numbers]

    build = importlib.import_module("nasx.build")  # the module: nasx.build is also the function nasx exports
    monkeypatch.setattr(build, "build_seeded", lambda arch: arch)
    monkeypatch.setattr(nasx.measure.latency, "measure_interleaved", measure_interleaved)
    settings = types.SimpleNamespace(
        space=types.SimpleNamespace(input=(3, 32, 32)),
        budgets=types.SimpleNamespace(compute=None, metric="madds"),
        device="cpu",
        batch=1,
        threads=1,
    )
    objective = types.SimpleNamespace(s=settings, fp={}, store=None, fp_hash="")
    first_front = pareto_front(study)
    assert [t.number for t in first_front] == [0, 1]
    result = retime_front(study, first_front, objective, rounds=3, time_s=0.0)

    assert timed_sets == [[0, 1], [2, 4], [5]]  # until no change
    trials = optuna.load_study(study_name="hand", storage=url).trials
    shown = {t.number: (latency_ms(t), t.values[1]) for t in trials}  # what `nasx trials` prints
    assert shown[1] == (4.0, 0.90) and shown[5] == (3.25, 0.79)
    undominated = {n for n, p in shown.items() if not any(dominates(q, p) for q in shown.values() if q != p)}
    assert {t.number for t in result.front} == undominated == {0, 1, 2, 4, 5}
    assert [t.number for t in result.front] == [0, 5, 2, 4, 1]  # fastest shown first
    assert sorted(result.readmitted) == [2, 4, 5] and "joined the front" in result.summary()
