"""nasx.measure.compare / `nasx cost NAME --compare fvcore|ptflops|thop`.

The counters run on the module nasx builds; nasx re-counts its op graphs under each counter's rules
(nasx.measure.compare.COUNTER_RULES, pure arithmetic). Checked: for an arch holding every op type and block mode,
and for zoo models, each counter's total and each category equal nasx's re-count exactly, and the
parameter counts agree; fvcore's total equals nasx's "fvcore" convention preset; a rule nasx got wrong is
reported as a mismatch, not hidden; the CLI prints the table, JSON, and a one-line error when the counter
is not installed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import warnings

import pytest
import torch

import nasx
from nasx.arch import Arch
from nasx.cli.main import main as cli_main
from nasx.measure import compare as cmp


def usable(package: str) -> bool:
    """Installed and importable (thop 0.1.1 imports distutils, gone from Python 3.12 without setuptools)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # thop and fvcore warn about deprecated distutils / torch.jit
            __import__(package)
    except Exception:
        return False
    return True


def needs(package: str):
    return pytest.mark.skipif(not usable(package), reason=f'{package} is not installed (pip install "nasx[compare]")')


COUNTERS = [pytest.param(c, marks=needs(c)) for c in cmp.COUNTERS]

# Every nasx op type and every block mode the counters' rules distinguish: a conv with bias and GELU,
# stand-alone BN and activations of each kind, SE (gap, biased 1x1 convs, multiply; hard-sigmoid and
# sigmoid gates), max and avg pooling, ShuffleNet v1 (avg-pool shortcut, concat, shuffle, add+ReLU) and v2
# (split, concat), FasterNet (PConv, add), ChannelNets (channel-wise and group channel-wise convs), a
# ResNet bottleneck (projection), linear with and without activation.
EVERY_OP = {
    "name": "every_op",
    "input": [3, 32, 32],
    "stem": [{"type": "conv", "out": 16, "kernel": 3, "act": "relu"}],
    "layers": [
        {"type": "bn"},
        {"type": "act", "fn": "hswish"},
        {"type": "conv", "out": 16, "kernel": 3, "bias": True, "bn": False, "act": "gelu"},
        {"type": "dwsep", "out": 24, "stride": 2, "expansion": 4, "act": "relu6", "se": 0.25, "se_gate": "hsigmoid"},
        {"type": "se", "act": "silu", "gate": "sigmoid"},
        {"type": "pool", "mode": "max", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "pool", "mode": "avg", "kernel": 3, "stride": 1, "padding": 1},
        {"type": "group_shuffle", "out": 48, "stride": 2, "groups": 3},
        {"type": "group_shuffle", "out": 48, "groups": 3},
        {"type": "group_shuffle", "version": 2, "out": 48},
        {"type": "partial", "out": 48, "act": "gelu"},
        {"type": "channelwise", "out": 48, "dc": 7},
        {"type": "channelwise", "out": 64, "groups": 4, "dc": 7},
        {"type": "standard", "out": 64, "layout": "bottleneck"},
        {"type": "act", "fn": "sigmoid"},
    ],
    "head": [
        {"type": "gap"},
        {"type": "flatten"},
        {"type": "linear", "out": 32, "act": "silu"},
        {"type": "linear", "out": 10},
    ],
}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def assert_matches(result: cmp.Comparison):
    bad = [(r.category, r.nasx_as_counter, r.counter) for r in result.rows if not r.matches]
    assert not bad, f"{result.counter} disagrees with nasx's re-count: {bad}\n{result.table()}"
    assert result.total_as_counter == result.total_counter
    assert result.params_nasx == result.params_counter
    assert result.matches


@pytest.mark.parametrize("counter", COUNTERS)
def test_every_op_type(counter):
    arch = Arch.from_dict(EVERY_OP)
    result = cmp.compare(arch, counter)
    assert_matches(result)
    assert result.total_nasx == nasx.cost(arch).madds
    assert {t.category for t in cmp.census(arch)} == {"conv", "linear", "bn", "act", "pool", "gap", "elementwise"}
    assert all(r.why for r in result.rows), "every category row says how the counter counts it"


@pytest.mark.parametrize("counter", COUNTERS)
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "shufflenet_v1_g3", "fasternet_t0"])
def test_zoo_models(name, counter):
    """At 224 for MobileNetV3-Small (SE, hswish, hsigmoid); at 96 for ShuffleNetV1 (avg-pool shortcut,
    grouped convs) and FasterNet-T0 (PConv, GELU, 4x4 stem) to keep the test fast: the rules do not depend
    on the resolution."""
    arch = nasx.load_arch(name)
    if name != "mobilenet_v3_small":
        arch = dataclasses.replace(arch, input=(3, 96, 96))
    assert_matches(cmp.compare(arch, counter))


@needs("fvcore")
def test_fvcore_preset_is_fvcores_total():
    """nasx's `fvcore` convention preset (docs/DESIGN.md section 4) is fvcore's own total, and is what the
    FasterNet figures use."""
    for name in ("mobilenet_v3_small",):
        result = cmp.compare(name, "fvcore")
        assert nasx.cost(name, "fvcore").total.ops == result.total_counter == result.total_as_counter
    arch = Arch.from_dict(EVERY_OP)
    assert nasx.cost(arch, "fvcore").total.ops == cmp.compare(arch, "fvcore").total_counter


@needs("thop")
def test_a_wrong_rule_is_reported_not_hidden(monkeypatch):
    """If nasx's model of a counter were wrong (here: thop's BN taken as 2 per element instead of 4),
    the row and the total are flagged."""

    def wrong(t):
        return {"bn": 2 * t.n_out} if t.category == "bn" else cmp._thop_rule(t)

    monkeypatch.setitem(cmp.COUNTER_RULES, "thop", wrong)
    result = cmp.compare(Arch.from_dict(EVERY_OP), "thop")
    assert not result.matches
    assert [r.category for r in result.rows if not r.matches] == ["bn"]
    assert "does NOT match" in result.table() and "!=" in result.table()


def test_census_terms():
    """nasx's side is pure arithmetic on the op graphs: per-category sums of a tiny arch by hand."""
    arch = Arch.from_dict(
        {
            "input": [3, 8, 8],
            "stem": [{"type": "conv", "out": 4, "kernel": 3, "act": "relu"}],
            "layers": [{"type": "pool", "mode": "avg", "kernel": 2, "stride": 2, "padding": 0}],
            "head": [{"type": "gap"}, {"type": "flatten"}, {"type": "linear", "out": 5}],
        }
    )
    conv_madds, n = 3 * 9 * 4 * 64, 4 * 64
    assert cmp.recount(cmp.census(arch), "nasx") == {"conv": conv_madds, "linear": 20}
    assert cmp.recount(cmp.census(arch), "fvcore") == {"conv": conv_madds, "linear": 20, "bn": 2 * n, "gap": 64}
    assert cmp.recount(cmp.census(arch), "thop") == {
        "conv": conv_madds,
        "linear": 20,
        "bn": 4 * n,
        "pool": 64,
        "gap": 64 + 4,
    }
    assert cmp.recount(cmp.census(arch), "ptflops") == {
        "conv": conv_madds,
        "linear": 25,
        "bn": 2 * n,
        "act": n,
        "functional": n + 256 + 64,
        "pool": 256,
        "gap": 64,
    }


# ---- the CLI -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("counter", COUNTERS)
def test_cli_table(counter, capsys):
    assert cli_main(["cost", "mobilenet_v3_small", "--compare", counter]) == 0
    out = capsys.readouterr().out
    assert f"nasx vs {counter}" in out and "why they differ" in out
    assert f"{counter} matches nasx re-counted under its rules exactly" in out
    assert f"{nasx.cost('mobilenet_v3_small').madds:,}" in out


@needs("thop")
def test_cli_json_and_input_override(capsys):
    assert cli_main(["cost", "shufflenet_v2_0.5", "--input", "3x64x64", "--compare", "thop", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["matches"] and d["input"] == [3, 64, 64] and d["counter"] == "thop"
    arch = dataclasses.replace(nasx.load_arch("shufflenet_v2_0.5"), input=(3, 64, 64))
    assert d["total"]["nasx_madds"] == nasx.cost(arch).madds
    assert d["params"]["nasx"] == d["params"]["thop"] == nasx.cost(arch).params


def test_cli_missing_counter_is_one_line_error(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "thop", None)  # import thop -> ImportError
    assert cli_main(["cost", "mobilenet_v3_small", "--compare", "thop"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "nasx[compare]"' in err


def test_unknown_counter():
    with pytest.raises(nasx.NasxError, match="unknown counter"):
        cmp.compare("mobilenet_v3_small", "flopth")
