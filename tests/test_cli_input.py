"""Bad command-line input that once ended in a traceback, a misleading message or a silent default: each is
one line on stderr naming the problem, exit 2, and nothing is created."""

import os

import pytest

from nasx.cli.main import main


def run_main(capsys, args):
    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def search_args(tmp_path, *extra):
    return ["search", "--config", "cifar32", "--budget", "20M", "--n-trials", "1", "--quiet", *extra]


@pytest.mark.parametrize(
    "args, text",
    [
        (["search", "--storage", "sqlite:///:memory:"], "in-memory database, which cannot hold a study"),
        (["search", "--storage", "sqlite://"], "in-memory database"),
        (["pareto", "--storage", "sqlite:///:memory:"], "in-memory database"),
        (["score", "mobilenet_v2", "--score", "params", "--storage", "sqlite:///:memory:"], "in-memory database"),
        (["search", "--seed", "-1"], "--seed must be in 0..4294967295, got -1"),
        (["search", "--seed", str(2**32)], "--seed must be in 0..4294967295"),
        (["search", "--study", ""], "--study is empty"),
        (["pareto", "--study", " "], "--study is empty"),
        (["search", "--mac-budget", "0M"], "--mac-budget '0M' must be positive"),
        (["search", "--mac-budget", "-5M"], "--mac-budget '-5M' must be positive"),
        (["search", "--budget", "-5M"], "--budget '-5M' must be positive"),
    ],
)
def test_bad_input_is_one_line_exit_2(args, text, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default storage would land here: nothing may be made
    if args[0] == "search":
        storage = [] if "--storage" in args else ["--storage", f"sqlite:///{tmp_path}/s.db"]
        args = search_args(tmp_path, *args[1:], *storage)
    rc, _, err = run_main(capsys, args)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert text in err, err
    assert os.listdir(tmp_path) == []


def test_a_missing_arch_file_is_said_to_be_missing_before_the_models_are_listed(capsys, tmp_path):
    missing = tmp_path / "nonexistent.json"
    rc, _, err = run_main(capsys, ["score", missing, "--score", "params", "--storage", "none"])
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert err.index(f"{missing} does not exist") < err.index("mobilenet_v2")
