"""Define-by-run spaces (--space FILE.py:function): a search end to end through the CLI on the shipped
example, the study's record of the function, resume refused when its source changes, every bad function as
one line and exit 2, and the Python API."""

import hashlib
import json
import os
import random
import shutil

import optuna
import pytest

from nasx.arch import load_arch
from nasx.cli.main import main
from nasx.errors import ConfigError
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space import load_space_function
from tests.conftest import ROOT, counted, run_nasx, run_nasx_here

EXAMPLE = os.path.join(ROOT, "examples", "channel_bench_macro.py")
FAST = ("--measure-time", "0.1", "--threads", "1", "--quiet", "--no-retime", "--seed", "0")


def test_example_ties_stem_and_first_stage_and_picks_each_hidden_width():
    space = load_space_function(f"{EXAMPLE}:mobilenet")
    assert (space.input, space.classes) == ((3, 32, 32), 10)  # learnt from the load-time sample
    stems, mids = set(), set()
    for seed in range(30):
        arch = space.random_arch(random.Random(seed))
        stem = arch.stem[0].out
        assert all(b.out == stem for b in arch.layers[:2])  # the stem's width is the first stage's
        stems.add(stem)
        mids.add(tuple(b.mid for b in arch.layers))
    assert stems == {16, 24, 32}  # one choice for both, and it moves
    assert len({m[0] for m in mids}) > 1 and len({m[-1] for m in mids}) > 1  # each hidden width on its own


def test_search_pareto_export_and_resume_through_the_cli(tmp_path):
    space_file = tmp_path / "cbm.py"
    shutil.copy(EXAMPLE, space_file)
    url = f"sqlite:///{tmp_path}/s.db"
    base = ("search", "--space", f"{space_file}:mobilenet", "--budget", "30M", "--storage", url, "--study", "dbr")
    r = run_nasx(*base, "--n-trials", "3", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="dbr", storage=url)
    a = study.user_attrs
    assert a["space_kind"] == "function" and a["space_function"] == f"{space_file}:mobilenet"
    assert a["space_sha256"] == hashlib.sha256(space_file.read_bytes()).hexdigest()
    assert a["input"] == [3, 32, 32] and a["classes"] == 10
    assert len(counted(study.trials)) == 3

    # pareto and export read the arch JSON the trials hold: the function is not needed, not even present
    hidden = space_file.rename(tmp_path / "elsewhere.py")
    r = run_nasx_here("pareto", "--storage", url, "--study", "dbr", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "space cbm.mobilenet" in r.stdout
    out = tmp_path / "best.json"
    r = run_nasx_here("export", "--storage", url, "--study", "dbr", "--best", "1ms", "-o", out, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    number = int(r.stderr.split("trial ")[1].split()[0])
    exported = load_arch(str(out))
    assert exported.to_dict(include_name=False) == study.trials[number].user_attrs["arch"]
    assert exported.input == (3, 32, 32) and exported.stem[0].out == exported.layers[0].out

    # a changed source is refused in one line naming --force-space, and accepted with it
    hidden.rename(space_file)
    space_file.write_text(space_file.read_text().replace("640", "512"))
    r = run_nasx_here(*base, "--n-trials", "4", *FAST, cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "--force-space" in r.stderr and "source changed" in r.stderr and "Traceback" not in r.stderr
    r = run_nasx_here(*base, "--n-trials", "4", "--force-space", *FAST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name="dbr", storage=url)
    assert len(counted(study.trials)) == 4
    assert study.user_attrs["space_sha256"] == hashlib.sha256(space_file.read_bytes()).hexdigest()
    assert study.user_attrs["space_sha256_before"] == [a["space_sha256"]]
    assert study.trials[3].user_attrs["arch"]["head"][0]["out"] == 512  # the new source made it


BAD = {
    "no_file": (None, "missing.py:space", "no such file"),
    "no_function": ("def other(trial):\n    return {}\n", "space", "no function 'space'"),
    "syntax": ("def space(trial:\n    return {}\n", "space", "syntax error"),
    "signature": ("def space():\n    return {}\n", "space", "must take one argument"),
    "import_raises": ("raise ValueError('no GPU here')\ndef space(trial):\n    pass\n", "space", "ValueError"),
    "raises": ("def space(trial):\n    raise RuntimeError('boom')\n", "space", "raised RuntimeError: boom"),
    "returns_int": ("def space(trial):\n    return 42\n", "space", "returned int, not an Arch"),
    "bad_dict": (
        "def space(trial):\n    return {'input': [3, 32, 32], 'layers': [{'type': 'nope'}]}\n",
        "space",
        "does not load",
    ),
    "no_module": (None, "nasx_no_such_module:space", "cannot import module"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_function_is_one_line_and_exit_2(case, tmp_path, capsys):
    source, target, expect = BAD[case]
    spec = target if source is None else f"{tmp_path / 'bad.py'}:{target}"
    if source is not None:
        (tmp_path / "bad.py").write_text(source)
    rc = main(["search", "--space", spec, "--storage", f"sqlite:///{tmp_path}/s.db", "--n-trials", "1", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert expect in err and "Traceback" not in err
    assert spec.split(":")[0].split(os.sep)[-1] in err  # names the file (or module)
    if case not in ("no_file", "no_module"):
        assert "space" in err  # and the function
    assert not (tmp_path / "s.db").exists()  # refused before any study is made


def test_config_and_space_exclude_each_other(tmp_path, capsys):
    rc = main(["search", "--config", "cifar32", "--space", f"{EXAMPLE}:mobilenet"])
    assert rc == 2 and "not both" in capsys.readouterr().err


def test_python_api_search_settings_round_trip_and_errors_mid_search(tmp_path):
    space = load_space_function(f"{EXAMPLE}:mobilenet")
    settings = SearchSettings(
        space=space,
        budgets=Budgets(compute=30_000_000),
        storage=f"sqlite:///{tmp_path}/api.db",
        study_name="api",
        n_trials=2,
        seed=1,
        threads=1,
        measure_time_s=0.1,
        progress=False,
        retime=False,
    )
    # what a worker process reads back (--workers N: nasx.search.workers): the function imported again, the
    # same space (a two-worker CLI run passed by hand; it costs ~40 s here, too slow for this file)
    back = SearchSettings.from_json(settings.to_json())
    assert back.space.config_hash == space.config_hash and back.space.input == space.input
    assert json.loads(settings.to_json())["space"] == {"function": space.spec}
    with open(os.devnull, "w") as devnull:
        result = search(settings, out=devnull)
    assert (
        len(counted(result.study.trials)) == 2
        and result.study.user_attrs["config_name"] == "channel_bench_macro.mobilenet"
    )

    # a function that fails on a later trial stops the search with one ConfigError naming it
    flaky = tmp_path / "flaky.py"
    flaky.write_text(
        f"import runpy\nCALLS = []\nbase = runpy.run_path({EXAMPLE!r})['mobilenet']\n"
        "def space(trial):\n    CALLS.append(1)\n    if len(CALLS) > 1:\n        raise KeyError('width')\n"
        "    return base(trial)\n"
    )
    flaky_space = load_space_function(f"{flaky}:space")
    with pytest.raises(ConfigError, match=r"flaky\.py:space raised KeyError"), open(os.devnull, "w") as devnull:
        search(
            SearchSettings(**{**vars(settings), "space": flaky_space, "study_name": "flaky", "n_trials": 1}),
            out=devnull,
        )

    # every later network must take the input the first sample had
    shifting = tmp_path / "shifting.py"
    shifting.write_text(
        f"import runpy\nbase = runpy.run_path({EXAMPLE!r})['mobilenet']\nN = [0]\n"
        "def space(trial):\n    N[0] += 1\n    d = base(trial)\n    d['input'] = [3, 32 * N[0], 32]\n    return d\n"
    )
    with pytest.raises(ConfigError, match=r"input \[3, 64, 32\], the space's is \[3, 32, 32\]"):
        load_space_function(f"{shifting}:space").random_arch(random.Random(0))
