"""nasx pareto / nasx trials: the stored front as a table and as JSON, study lookup, clear errors."""

import json
import re
import sqlite3

import optuna
import pytest

import nasx
from nasx.store.studies import latency_ms, latest_study_name, load_study, open_storage, study_front

REQUIRED = {"trial", "latency_ms", "score", "madds", "mac_elements", "params", "arch"}


def load(url, name):
    return optuna.load_study(study_name=name, storage=url)


def copy_db(src, dst):
    """A consistent copy of an SQLite database (the file alone can miss what its WAL journal holds)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)


def test_pareto_json_is_the_stored_front(small_study, nasx_cli):
    url, name, d = small_study
    r = nasx_cli("pareto", "--storage", url, "--study", name, "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    study = load(url, name)
    assert [row["trial"] for row in rows] == sorted(
        study.user_attrs["pareto_front"], key=lambda n: latency_ms(study.trials[n])
    )
    assert len(rows) >= 2
    for row in rows:
        assert REQUIRED <= set(row)
        t = study.trials[row["trial"]]
        assert row["latency_ms"] == t.user_attrs["latency_confirmed"]["median_ms"]  # the front was re-timed
        assert row["latency_first_ms"] == t.values[0] == t.user_attrs["latency"]["median_ms"]
        assert row["latency_confirmed"] is True
        assert row["score"] == t.values[1]
        arch = nasx.Arch.from_dict(row["arch"])  # rebuildable, and the costs are the arch's
        report = nasx.cost(arch)
        assert (row["madds"], row["mac_elements"], row["params"]) == (report.madds, report.mac, report.params)


def test_pareto_table_shows_latency_iqr_costs_and_families(small_study, nasx_cli):
    url, name, d = small_study
    r = nasx_cli("pareto", "--storage", url, "--study", name, cwd=d)
    assert r.returncode == 0, r.stderr
    study = load(url, name)
    header = r.stdout.splitlines()
    assert f"study {name!r}" in header[0] and "11 trials" in header[0]
    table = r.stdout[r.stdout.index("trial  ") :]
    for col in ("latency ms", "first ms", "raw ms", "score", "MAdds", "MAC", "params", "families"):
        assert col in table
    for n in study.user_attrs["pareto_front"]:
        lat, first = study.trials[n].user_attrs["latency_confirmed"], study.trials[n].user_attrs["latency"]
        lines = table.splitlines()
        i = next(k for k, row in enumerate(lines) if row.split()[0] == str(n))
        line = lines[i]
        assert re.search(rf"{lat['median_ms']:.2f} ± {lat['iqr_ms']:.2f}\s+{first['median_ms']:.2f}\s", line), line
        # the families column wraps to keep the table within 100 columns: the row goes on in indented lines
        for row in lines[i + 1 :]:
            if row[:1] != " ":
                break
            line += " " + row
        fam, count = next(iter(study.trials[n].user_attrs["families"].items()))
        assert f"{fam} {count}" in line


def test_trials_lists_every_trial_with_its_status(small_study, nasx_cli):
    url, name, d = small_study
    r = nasx_cli("trials", "--storage", url, "--study", name, "--json", cwd=d)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    study = load(url, name)
    assert [row["trial"] for row in rows] == [t.number for t in study.trials]
    by_status = {s: [row for row in rows if row["status"] == s] for s in ("feasible", "rejected", "failed")}
    assert by_status["feasible"] and by_status["rejected"] and len(by_status["failed"]) == 1
    for row in by_status["rejected"]:
        assert row["latency_ms"] is None and row["score"] is None and row["reason"].startswith("over budget")
        assert row["madds"] > 20_000_000
    table = nasx_cli("trials", "--storage", url, "--study", name, cwd=d).stdout
    assert "rejected:" in table and "failed:" in table  # the reasons wrap within the status column
    lines = table[table.index("trial  ") :].splitlines()
    # within 100 columns (+4 where a word of a reason cannot break), the wrapped status and families included
    assert max(map(len, lines)) <= 104, table


def test_front_falls_back_to_recomputing_when_none_is_stored(small_study, tmp_path):
    url, name, d = small_study
    from nasx.util.pareto import nondominated

    copy_db(d / "s.db", tmp_path / "c.db")
    copy = f"sqlite:///{tmp_path}/c.db"
    feasible = [t for t in load_study(copy, name).trials if t.state == optuna.trial.TrialState.COMPLETE]
    points = set(nondominated([tuple(t.values) for t in feasible]))  # a search cut short was never re-timed:
    stored = sorted(
        (t for t in feasible if tuple(t.values) in points),  # the front of the first measurements
        key=lambda t: (t.values[0], t.number),
    )
    stored = [
        t.number
        for t in stored
        if t.number == min(o.number for o in stored if o.user_attrs["arch_hash"] == t.user_attrs["arch_hash"])
    ]
    storage = open_storage(copy)
    storage.set_study_user_attr(load_study(copy, name)._study_id, "pareto_front", None)  # a search cut short
    study = load_study(copy, name)
    assert study.user_attrs["pareto_front"] is None
    assert [t.number for t in study_front(study)] == stored


def test_default_study_is_the_most_recent(small_study, tmp_path):
    url, name, d = small_study
    copy_db(d / "s.db", tmp_path / "m.db")
    url = f"sqlite:///{tmp_path}/m.db"
    storage = open_storage(url)
    assert latest_study_name(storage, url) == name
    # a later study without trials does not displace one with trials ...
    newer = optuna.create_study(storage=url, study_name="newer", directions=["minimize", "maximize"])
    newer.set_user_attr("nasx", "search")
    assert latest_study_name(open_storage(url), url) == name
    # ... until it has the newest trial
    newer.add_trial(optuna.trial.create_trial(values=[1.0, 2.0]))
    assert load_study(url).study_name == "newer"
    # the newest trial decides, not the study id
    load(url, name).add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL))
    assert load_study(url).study_name == name
    # studies not made by nasx are never picked
    other = optuna.create_study(storage=url, study_name="other")
    other.add_trial(optuna.trial.create_trial(value=1.0))
    assert load_study(url).study_name == name
    with pytest.raises(nasx.StorageError, match="not made by `nasx search`"):
        load_study(url, "other")


def test_default_storage_is_used_and_not_created(small_study, nasx_cli, tmp_path):
    url, name, d = small_study
    r = nasx_cli("pareto", cwd=tmp_path)  # no studies/ here
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "no study database" in r.stderr and not (tmp_path / "studies").exists()
    (tmp_path / "studies").mkdir()
    copy_db(d / "s.db", tmp_path / "studies" / "nasx.db")
    r = nasx_cli("pareto", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert [row["trial"] for row in json.loads(r.stdout)] == [t.number for t in study_front(load(url, name))]


@pytest.mark.parametrize(
    "args, text",
    [
        (["--study", "nope"], "no study 'nope'"),
        (["--storage", "notaurl"], "malformed"),
    ],
)
def test_unknown_study_or_storage_is_one_line_exit_2(small_study, nasx_cli, args, text):
    url, name, d = small_study
    full = ["pareto", "--storage", url, *args] if "--storage" not in args else ["pareto", *args]
    r = nasx_cli(*full, cwd=d)
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert text in r.stderr
