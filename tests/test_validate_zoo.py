"""validate-score --truth zoo: scores against the published ImageNet top-1 of the zoo networks.

The correlations are checked against scipy.stats on parameter counts read off the built torch modules, not
against nasx's cost core or its own statistics."""

from __future__ import annotations

import io
import json

import pytest
import torch
from scipy import stats

import nasx
from nasx.arch import zoo_arch as get
from nasx.cli.main import main
from nasx.score.truths import validate_zoo
from nasx.zoo import names
from nasx.zoo.published import TOP1, TOP1_SOURCES


def test_every_zoo_network_has_a_sourced_published_top1():
    assert set(TOP1) == set(names())
    for name, (top1, source) in TOP1.items():
        assert 55.0 < top1 < 80.0, name  # ImageNet top-1 of mobile and ResNet-class networks
        assert source in TOP1_SOURCES, name
    # figures as the papers print them (error rates turned into accuracy where a table gives error)
    assert TOP1["mobilenet_v2"][0] == 72.0 and TOP1["shufflenet_v2_1.0"][0] == pytest.approx(100 - 30.6)
    assert TOP1["resnet50"][0] == 76.130


def test_params_correlation_matches_scipy_on_torch_parameter_counts():
    result = validate_zoo(["params"], out=io.StringIO())
    assert [r.code for r in result.rows] == list(TOP1)
    torch_params = [sum(p.numel() for p in nasx.build(get(r.code)).parameters()) for r in result.rows]
    top1 = [TOP1[r.code][0] for r in result.rows]
    assert [r.top1 for r in result.rows] == top1
    ((name, tau, rho, n),) = result.correlations()
    assert name == "params" and n == len(TOP1)
    assert tau == pytest.approx(stats.kendalltau(torch_params, top1).statistic, abs=1e-12)
    assert rho == pytest.approx(stats.spearmanr(torch_params, top1).statistic, abs=1e-12)


def test_cli_writes_the_zoo_validation_and_refuses_sampling_options(tmp_path, capsys):
    out = tmp_path / "zoo.json"
    argv = ["validate-score", "--truth", "zoo", "--proxies", "madds,activations", "--storage", "none"]
    assert main([*argv, "-o", "none", "--json", str(out)]) == 0
    table = capsys.readouterr().out
    assert "zoo networks" in table and "published ImageNet top-1" in table
    data = json.loads(out.read_text())
    assert data["truth"] == "zoo" and len(data["architectures"]) == len(TOP1)
    assert {a["code"] for a in data["architectures"]} == set(TOP1)
    assert [c["proxy"] for c in data["correlations"]] == ["madds", "activations"]
    assert all(set(a["scores"]) == {"madds", "activations"} for a in data["architectures"])
    # MAdds of the built network, counted by torch: independent of the cost core
    with torch.no_grad():
        from torch.utils.flop_counter import FlopCounterMode

        arch = get("mobilenet_v2")
        with FlopCounterMode(display=False) as counter:
            nasx.build(arch).eval()(torch.zeros(1, *arch.input))
    madds = next(a["madds"] for a in data["architectures"] if a["code"] == "mobilenet_v2")
    assert madds == pytest.approx(counter.get_total_flops() / 2, rel=0.01)

    assert main([*argv, "--n", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--n do not apply with --truth zoo" in err
