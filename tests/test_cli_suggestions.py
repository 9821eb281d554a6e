"""What the CLI suggests works: the search's closing lines name commands that exist (nasx dashboard, the
resume line also after a Ctrl-C in the first trial), no ETA before it means something, and
`nasx pareto --json` carries what its table shows (the knee, the raw ms)."""

import json
import shlex

import optuna
import pytest

from nasx.cli.main import main, make_parser


def run_main(capsys, args):
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_ctrl_c_in_the_first_trial_prints_the_resume_line_and_a_working_inspect_line(capsys, tmp_path, monkeypatch):
    from nasx.search.objective import Objective

    def interrupted(self, trial):
        raise KeyboardInterrupt

    monkeypatch.setattr(Objective, "__call__", interrupted)
    url = f"sqlite:///{tmp_path}/s.db"
    rc, out, err = run_main(
        capsys, ["search", "--config", "cifar32", "--budget", "20M", "--n-trials", "3", "--storage", url, "--quiet"]
    )
    assert rc == 130, err
    assert "Resume with the same command" in out
    (inspect,) = [line for line in out.splitlines() if line.startswith("inspect: ")]
    argv = shlex.split(inspect.removeprefix("inspect: "))
    assert argv[0] == "nasx"  # on PATH with nasx itself; optuna-dashboard is not after the quick start
    args = make_parser().parse_args(argv[1:])
    assert args.command == "dashboard" and args.storage == url and args.study


def test_no_eta_until_several_trials_and_seconds_then_the_rate_of_the_trials_alone(monkeypatch):
    import nasx.search.progress as progress

    clock = {"now": 0.0}
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock["now"])
    p = progress.Progress(total=100, timeout=None, enabled=False)
    clock["now"] = 600.0  # ten minutes before the first trial (opening a study on a slow server, say)
    p.started()
    clock["now"], p.done = 610.0, 1  # one trial: its rate says nothing yet
    assert "ETA" not in p.line()
    clock["now"], p.done = 615.0, 5  # five trials in 15 s: still under the seconds
    assert "ETA" not in p.line()
    clock["now"], p.done = 650.0, 5  # 5 trials in 50 s: 10 s each, 95 left
    assert p.line().endswith("ETA 15m50s")


def make_study(url):
    """A nasx study with a stored front of four members on an L-shaped curve: trial 1 is its knee (nearly
    the best score at nearly the best latency)."""
    study = optuna.create_study(storage=url, study_name="s", directions=["minimize", "maximize"])
    study.set_user_attr("nasx", "search")
    points = [(1.0, 0.10), (1.2, 0.90), (3.0, 0.93), (9.0, 0.95)]
    for i, (ms, score) in enumerate(points):
        latency = {"median_ms": ms, "iqr_ms": 0.01, "raw_median_ms": ms * 1.5, "drift": 1.5}
        study.add_trial(
            optuna.trial.create_trial(
                values=[ms, score], user_attrs={"feasible": True, "latency": latency, "madds": 10**6 * (i + 1)}
            )
        )
    study.set_user_attr("pareto_front", [0, 1, 2, 3])
    return study


def test_pareto_json_marks_the_knee_and_carries_the_raw_ms_as_the_table_does(capsys, tmp_path):
    url = f"sqlite:///{tmp_path}/s.db"
    make_study(url)
    rc, out, err = run_main(capsys, ["pareto", "--storage", url, "--json"])
    assert rc == 0, err
    rows = json.loads(out)
    assert [r["trial"] for r in rows if r["knee"]] == [1]
    assert [r["latency_raw_ms"] for r in rows] == pytest.approx([1.5, 1.8, 4.5, 13.5])
    rc, out, err = run_main(capsys, ["pareto", "--storage", url])
    marked = [line.split()[0] for line in out.splitlines() if line.rstrip().endswith("knee")]
    assert marked == ["1"]  # the table marks the same member
