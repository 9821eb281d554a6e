"""`nasx score ARCH...`: each architecture's score as a search computes it (weights seed 0, the arch's input),
in input order, as a table or JSON; bad input is one line and exit 2."""

import json
import statistics
from importlib import resources

import pytest
import torch

import nasx
from nasx.cli.main import main
from nasx.score.proxies import naswot

TABLE = json.loads(
    resources.files("nasx.score").joinpath("nas-bench-macro", "nas-bench-macro_cifar10.json").read_text()
)


def _json(capsys, *argv, storage="none"):
    # --storage none: nothing written to the default studies/nasx.db of the working directory
    assert main(["score", *argv, "--json", "--storage", storage]) == 0
    return json.loads(capsys.readouterr().out)


def test_params_of_zoo_models_in_input_order(capsys):
    rows = _json(capsys, "resnet18", "mobilenet_v2", "--score", "params")
    assert [r["arch"] for r in rows] == ["resnet18", "mobilenet_v2"]
    for r in rows:
        expected = sum(p.numel() for p in nasx.build(r["arch"]).parameters()) / 1e6
        assert r["score"] == pytest.approx(expected, rel=1e-12) and r["score_name"] == "params"


def test_naswot_is_the_searchs_on_seed_0_weights(capsys, tmp_path):
    """The search builds under torch.manual_seed(0) and scores the module with the arch's input and seed 0."""
    arch = nasx.load_arch("mobilenet_v3_small")
    small = nasx.Arch.from_dict({**arch.to_dict(), "input": [3, 64, 64]})
    path = tmp_path / "small.json"
    path.write_text(small.to_json())
    torch.manual_seed(123)  # whatever the global state, the weights are seed 0's
    (row,) = _json(capsys, str(path), "--score", "naswot")
    torch.manual_seed(0)
    assert row["score_name"] == "naswot"
    assert row["score"] == naswot(nasx.build(small), (3, 64, 64), 0)
    assert row["arch"] == str(path) and row["arch_hash"] == small.content_hash()


def test_bench_scores_a_table_network_from_a_file_and_prints_a_table(capsys, tmp_path):
    from nasx.score.bench import code_arch

    paths = []
    for code in ("22111221", "00000000"):
        paths.append(tmp_path / f"{code}.json")
        paths[-1].write_text(code_arch(code).to_json())
    rows = _json(capsys, *map(str, paths), "--score", "bench")
    assert [r["score"] for r in rows] == [
        pytest.approx(statistics.mean(TABLE[c]["test_acc"]), abs=1e-9) for c in ("22111221", "00000000")
    ]
    assert main(["score", str(paths[0]), "--score", "bench"]) == 0
    out = capsys.readouterr().out
    assert "score: bench" in out and f"{TABLE['22111221']['mean_acc']:.6g}" in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["no-such-arch"], "'no-such-arch' is neither an architecture file nor a reference model"),
        (["resnet18", "--score", "nope"], "unknown score 'nope'"),
        (["resnet18", "--score", "bench"], "resnet18 is not a nas-bench-macro network"),
        (["resnet18", "--score", "train"], "--score train trains on a data set"),
        (["resnet18", "--score", "aznas"], "unknown score 'aznas'"),  # removed in 0.2: it said so in the CHANGELOG
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, expected):
    assert main(["score", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith("nasx score: error: ") and expected in captured.err


def test_as_a_user_runs_it(nasx_cli, tmp_path):
    ok = nasx_cli("score", "mobilenet_v2", "resnet18", "--score", "madds", "--json", cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    rows = json.loads(ok.stdout)
    assert [r["arch"] for r in rows] == ["mobilenet_v2", "resnet18"]
    assert rows[0]["score"] == pytest.approx(300_774_272 / 1e6)  # the zoo table's MAdds (README)
    bad = nasx_cli("score", "mobilenet_v2", "--score", "bench", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
