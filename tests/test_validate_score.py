"""validate-score: rank correlations checked against scipy.stats, synflow against a hand computation, and a
small end-to-end run (API and CLI) that reads its trained accuracies back from the score cache."""

import json
import math

import numpy as np
import pytest
import torch
from accuracy_fixtures import tiny_space
from scipy import stats

from nasx.score.data import load_data
from nasx.score.proxies import get_score, synflow
from nasx.score.train import TrainSettings
from nasx.score.validate import scatter_html, validate_score
from nasx.space.config import load_space
from nasx.space.sample import sample_archs
from nasx.util.stats import kendall_tau_b, spearman

FIXED = [
    ([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]),
    ([1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1]),
    ([0.1, 0.4, 0.4, 0.9, 1.2, 1.2, 1.2, 3.0], [10, 12, 11, 11, 30, 25, 25, 40]),  # ties on both sides
    ([3, 1, 2], [1, 2, 3]),
    ([2.5, -1, 7, 7, 0, 3.3, 9, -4, 2.5, 6], [1, 1, 2, 3, 5, 8, 13, 21, 34, 55]),
    ([1, 1, 1, 2, 2, 2], [1, 2, 3, 1, 2, 3]),  # uncorrelated, tied
    ([-math.inf, 1.0, 2.0, 3.0], [0.1, 0.3, 0.2, 0.5]),  # a degenerate NASWOT value
]


@pytest.mark.parametrize("x, y", FIXED)
def test_rank_correlations_match_scipy(x, y):
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)  # tau-b default


def test_rank_correlations_on_random_ties_match_scipy():
    rng = np.random.default_rng(0)
    for n in (3, 10, 57):
        x, y = rng.integers(0, 5, n).astype(float), rng.normal(size=n).round(1)
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
        assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)


def test_constant_side_gives_nan():
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3])) and math.isnan(kendall_tau_b([1, 2, 3], [4, 4, 4]))


def test_synflow_equals_the_hand_computation_on_a_linear_chain():
    """Chain of L bias-free linear layers, |W|, input ones: R = 1^T |W_L|...|W_1| 1 and every layer's
    sum |theta * dR/dtheta| equals R, so synflow = log(L * R)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(12, 7, bias=False),
        torch.nn.ReLU(),
        torch.nn.Linear(7, 5, bias=False),
        torch.nn.Linear(5, 3, bias=False),
    )
    w = [m.weight.detach().double().abs() for m in net if isinstance(m, torch.nn.Linear)]
    r = float((w[2] @ w[1] @ w[0] @ torch.ones(12, dtype=torch.float64)).sum())
    before = {k: v.clone() for k, v in net.state_dict().items()}
    assert synflow(net, (3, 2, 2)) == pytest.approx(math.log(3 * r), rel=1e-12)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # caller's module untouched


def test_synflow_on_space_members_is_finite_and_deterministic():
    space = load_space("cifar32")
    for arch in sample_archs(space, 2, seed=5):
        torch.manual_seed(0)
        from nasx.build import build

        m = build(arch)
        a, b = synflow(m, arch.input), synflow(m, arch.input)
        assert math.isfinite(a) and a == b


def test_validate_score_small_run_and_cache(tmp_path):
    space = load_space(tiny_space(tmp_path))
    data = load_data("digits", space.input, space.classes)
    train = TrainSettings(steps=4, batch=8)
    url = f"sqlite:///{tmp_path}/v.db"
    first = validate_score(space, 3, data, train, seed=1, budget=1_500_000, storage=url, out=open("/dev/null", "w"))
    assert len(first.rows) == 3 and all(not r.cached for r in first.rows)
    assert all(0 <= r.top1 <= 100 and r.madds <= 1_500_000 for r in first.rows)
    names = [c[0] for c in first.correlations()]
    assert names == ["naswot", "synflow", "meco", "zico", "capacity", "params", "madds"]
    for _, tau, rho, n in first.correlations():
        assert n == 3 and (math.isnan(tau) or -1 <= tau <= 1) and (math.isnan(rho) or -1 <= rho <= 1)
    second = validate_score(space, 3, data, train, seed=1, budget=1_500_000, storage=url, out=open("/dev/null", "w"))
    assert all(r.cached for r in second.rows)  # trained once: the search's score cache, same keys
    assert [r.top1 for r in second.rows] == [r.top1 for r in first.rows]
    assert [r.values for r in second.rows] == [r.values for r in first.rows]
    # the same accuracy a search would use: get_score("train") under the same key
    assert get_score("train", data=data, train=train).key in json.dumps([str(k) for k in _score_keys(url)])
    page = scatter_html(first, tmp_path / "v.html").read_text()
    assert "Kendall" in page and "Spearman" in page and "plotly" in page.lower()


def _score_keys(url):
    from sqlalchemy import create_engine, text

    with create_engine(url).connect() as c:
        return [r[0] for r in c.execute(text("SELECT score_key FROM nasx_score_cache"))]


def test_validate_score_cli(nasx_cli, tmp_path):
    r = nasx_cli(
        "validate-score",
        "--config",
        tiny_space(tmp_path),
        "--n",
        "3",
        "--seed",
        "2",
        "--train-steps",
        "3",
        "--train-batch",
        "8",
        "--storage",
        "none",
        "-o",
        tmp_path / "s.html",
        "--json",
        tmp_path / "s.json",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert "Kendall tau-b" in r.stdout and "Spearman rho" in r.stdout and "synflow" in r.stdout
    assert "[3/3]" in r.stderr and (tmp_path / "s.html").is_file()
    d = json.loads((tmp_path / "s.json").read_text())
    assert len(d["architectures"]) == 3 and {c["proxy"] for c in d["correlations"]} == {
        "naswot",
        "synflow",
        "meco",
        "zico",
        "capacity",
        "params",
        "madds",
    }
    bad = nasx_cli("validate-score", "--n", "3", "--data", "folder:/nonexistent", "--storage", "none", cwd=tmp_path)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "no such folder" in bad.stderr
