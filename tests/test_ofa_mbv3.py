"""OFA-MobileNetV3 (`--truth ofa-mbv3`): the shipped tables are the benchmark's files unchanged, every distinct
subnet written in nasx's vocabulary has exactly the table's parameter count and MACs (the tables read here
with csv and ast, not through nasx.score.ofa's reader), built modules hold the table's parameters and give
1000 logits, and duplicates take the mean accuracy."""

import ast
import csv
import hashlib
import random
from collections import defaultdict
from importlib import resources
from pathlib import Path

import pytest
import torch

import nasx
from nasx.score import ofa

DATA = Path(str(resources.files("nasx.score").joinpath("ofa-mbv3")))
SHARED = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "ofa-mbv3"


def read_rows():
    """(ks, e, d) -> [(params, macs, top1), ...] over all five files."""
    rows = defaultdict(list)
    for path in sorted(DATA.glob("*.csv")):
        with path.open(newline="") as f:
            for row in csv.DictReader(f):
                spec = ast.literal_eval(row["Sub-network"])
                key = (tuple(spec["ks"]), tuple(spec["e"]), tuple(spec["d"]))
                rows[key].append((int(row["Model Parameters"]), int(row["MACs"]), float(row["Top-1 Acc (%)"])))
    return rows


ROWS = read_rows()


def test_tables_are_the_benchmarks_files_unchanged():
    assert len(list(DATA.glob("*.csv"))) == 5
    assert sum(len(v) for v in ROWS.values()) == 2373 and len(ROWS) == 2223  # the benchmark's README
    readme = (DATA / "README.md").read_text()
    for path in DATA.glob("*.csv"):
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme
        if SHARED.is_dir():  # the project's copy of the benchmark, where the checkout has it
            assert path.read_bytes() == (SHARED / path.name).read_bytes()
    assert (DATA / "LICENSE.md").is_file()
    assert '"ofa-mbv3/*"' in (Path(__file__).parents[1] / "pyproject.toml").read_text()  # package-data


def test_every_subnet_has_the_tables_params_and_macs():
    subnets = {(s.ks, s.e, s.d): s for s in ofa.subnets()}
    assert set(subnets) == set(ROWS)
    for key, rows in ROWS.items():
        params, macs = rows[0][:2]
        report = nasx.cost(ofa.subnet_arch(subnets[key]))
        assert (report.params, report.madds) == (params, macs), key
        assert abs(subnets[key].top1 - sum(r[2] for r in rows) / len(rows)) < 1e-9


def test_built_subnets_hold_the_tables_parameters():
    for key in random.Random(0).sample(sorted(ROWS), 3):
        model = nasx.build(nasx.load_arch(ofa.subnet_dict(*key))).eval()
        assert sum(p.numel() for p in model.parameters()) == ROWS[key][0][0]
        with torch.no_grad():
            assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_make_divisible_matches_ofa():
    # OFA's make_divisible(v, 8): the nearest multiple of 8, at least 8, plus 8 when below 90% of v
    assert [ofa.make_divisible(v) for v in (16 * 3, 16 * 4, 24 * 6, 40 * 3, 10, 3, 44, 36)] == [
        48,
        64,
        144,
        120,
        16,
        8,
        48,
        40,
    ]


def test_validate_ofa_ranks_scores_as_scipy_does_on_the_table():
    import io

    from scipy import stats

    from nasx.score.truths import validate_ofa

    result = validate_ofa(40, ["params", "madds"], seed=3, out=io.StringIO())
    by_counts = {(r[0][0], r[0][1]): sum(x[2] for x in r) / len(r) for r in ROWS.values()}
    for row in result.rows:
        assert row.top1 == pytest.approx(by_counts[(row.params, row.madds)])
    taus = {p: t for p, t, _, _ in result.correlations()}
    for p, key in (("params", "params"), ("madds", "madds")):
        x = [getattr(r, key) for r in result.rows]
        assert taus[p] == pytest.approx(stats.kendalltau(x, [r.top1 for r in result.rows]).statistic, abs=1e-12)


def test_truth_all_prints_every_score_against_three_truths_with_its_worst_case(tmp_path, capsys, monkeypatch):
    import json

    from nasx.cli.main import main

    monkeypatch.chdir(tmp_path)
    argv = ["validate-score", "--truth", "all", "--n", "12", "--proxies", "params,capacity", "--storage", "none"]
    assert main([*argv, "-o", "none", "--json", str(tmp_path / "all.json")]) == 0
    out = capsys.readouterr().out
    assert "nas-bench-macro (n=12)" in out and "ofa-mbv3 (n=12)" in out and "zoo (n=18)" in out and "worst" in out
    data = json.loads((tmp_path / "all.json").read_text())
    assert [t["truth"] for t in data["truths"]] == ["nas-bench-macro", "ofa-mbv3", "zoo"]
    for row in data["worst_cases"]:
        assert row["worst"] == min(row["kendall_tau_b"].values())
    assert data["worst_cases"][0]["worst"] >= data["worst_cases"][-1]["worst"]  # best worst case first
