"""NAS-Bench-Macro: the built-in space rebuilds the benchmark's networks (params and MAdds of all 6,561 codes,
checked against the table read here with json, and built modules), the space reaches every code, `--score
bench` returns the table's mean of three trainings for any encoding of a network, `nasx search --score bench`
records it, and `validate-score --truth nas-bench-macro` prints what scipy computes from the table."""

import functools
import hashlib
import io
import json
import math
import random
import statistics
from importlib import resources
from pathlib import Path

import pytest
import torch
from scipy import stats

import nasx
from nasx.errors import NasxError
from nasx.score import bench
from nasx.score.base import call_score
from nasx.score.cached import Scorer
from nasx.score.proxies import SCORES
from nasx.space.config import load_space
from tests.conftest import counted

DATA = Path(str(resources.files("nasx.score").joinpath("nas-bench-macro")))
TABLE = json.loads((DATA / "nas-bench-macro_cifar10.json").read_text())
STAGES = (2, 3, 3)  # the benchmark's README: eight searchable layers in stages of 2, 3 and 3
OPS = ("skip", "mb3_k3", "mb6_k5")  # digit 0 identity, 1 MB3_K3, 2 MB6_K5


class Code:
    """The space's decisions from a table code, by parameter name (independent of nasx.score.bench)."""

    def __init__(self, code):
        names = [f"s{i}_b{j}_block" for i, n in enumerate(STAGES, 1) for j in range(n)]
        self.picks = {name: OPS[int(d)] for name, d in zip(names, code, strict=True)}

    def suggest_categorical(self, name, choices):
        if name in self.picks:
            assert list(choices) == list(OPS)
            return self.picks.pop(name)
        assert len(choices) == 1, name
        return choices[0]


@functools.cache
def space():
    return load_space("nas-bench-macro")


def arch_of(code):
    return space().sample(Code(code))


def bench_of(arch):
    """--score bench as every caller applies it (call_score: arch=, and no module, which it does not need)."""
    return call_score(SCORES["bench"], None, arch, 0)


def test_the_shipped_table_is_the_benchmarks_file_with_its_licence_and_citation():
    raw = (DATA / "nas-bench-macro_cifar10.json").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == "686dee8363cc21cca8c1f321ad5749454f2d9b9ca5972682e137e539bc522297"
    assert len(TABLE) == 6561 == 3**8
    assert "Apache License" in (DATA / "LICENSE").read_text()
    readme = (DATA / "README.md").read_text()
    assert "Su" in readme and "CVPR 2021" in readme and "61a2bfc" in readme
    assert '"nas-bench-macro/*"' in (Path(__file__).parents[1] / "pyproject.toml").read_text()  # package-data


def test_cost_core_reproduces_params_and_madds_of_every_table_entry():
    wrong = []
    for code, entry in TABLE.items():
        report = nasx.cost(arch_of(code))
        if (report.params, report.madds) != (entry["params"], entry["flops"]):
            wrong.append((code, report.params, entry["params"], report.madds, entry["flops"]))
    assert not wrong, wrong[:5]


def test_built_modules_have_the_tables_parameter_counts_and_run():
    for code in random.Random(0).sample(sorted(TABLE), 10) + ["00000000", "22222222"]:
        module = nasx.build(arch_of(code)).eval()
        assert sum(p.numel() for p in module.parameters()) == TABLE[code]["params"], code
        with torch.inference_mode():
            assert tuple(module(torch.randn(1, 3, 32, 32)).shape) == (1, 10)


def test_the_space_reaches_every_code_and_its_3969_networks():
    from nasx.explore.sampling import enumerate_space

    assert space().size() == 6561
    reached = {arch.content_hash() for _, _, arch in enumerate_space(space())}
    assert reached == {arch_of(code).content_hash() for code in TABLE}
    assert len(reached) == 3969  # the README: 3,969 distinct networks


def test_bench_score_is_the_tables_mean_of_three_runs_for_every_code():
    for code, entry in TABLE.items():
        assert bench_of(arch_of(code)) == pytest.approx(statistics.mean(entry["test_acc"]), abs=1e-9)


def test_equivalent_encodings_and_json_files_find_one_entry(tmp_path, monkeypatch):
    # stage 2 and 3 identities moved after each stage's first layer: one network, one canonical code, one score
    a, b = arch_of("12110201"), arch_of("12101210")
    assert a == b and bench.lookup(a) == bench.lookup(b)
    path = tmp_path / "net.json"
    path.write_text(json.dumps({**a.to_dict(), "name": "my-net"}))
    loaded = nasx.load_arch(str(path))
    # through the score cache path a search and `nasx score` take, which builds nothing for it
    monkeypatch.setattr("nasx.score.cached.build_seeded", lambda *a, **k: pytest.fail("built a module"))
    scored = Scorer("bench").score(None, loaded)
    assert scored.value == pytest.approx(statistics.mean(TABLE["12101210"]["test_acc"]), abs=1e-9)
    # the stage's first identity is a projection, not a movable identity: "01" and "10" differ
    assert arch_of("01111111") != arch_of("10111111")
    assert len(bench.networks()) == 3969


def test_a_network_the_table_does_not_hold_is_one_clear_error():
    with pytest.raises(NasxError, match="mobilenet_v2 is not a nas-bench-macro network"):
        bench_of(nasx.load_arch("mobilenet_v2"))
    near = arch_of("11111111").to_dict()
    near["head"][0]["out"] = 1024  # one layer away from a table network
    with pytest.raises(NasxError, match="not a nas-bench-macro network"):
        bench_of(nasx.Arch.from_dict(near))


@pytest.mark.slow
def test_search_with_bench_score_records_the_tables_accuracy(tmp_path, capsys):
    from nasx.search.budgets import Budgets
    from nasx.search.run import search
    from nasx.search.settings import SearchSettings

    settings = SearchSettings(
        space=load_space("nas-bench-macro"),
        budgets=Budgets(),
        score="bench",
        storage=f"sqlite:///{tmp_path}/s.db",
        n_trials=3,
        seed=0,
        measure_time_s=0.2,
        progress=False,
        drift_correction=False,
    )
    result = search(settings, out=io.StringIO())
    trials = [t for t in result.study.trials if t.values]
    assert len(counted(trials)) == 3
    for t in trials:
        code = _code_of(nasx.Arch.from_dict(t.user_attrs["arch"]))
        assert t.values[1] == pytest.approx(statistics.mean(TABLE[code]["test_acc"]), abs=1e-9)
    # its report: the table holds no reference model, so none is timed or scored (not an error)
    from nasx.cli.main import main

    assert main(["report", "--storage", settings.storage, "--no-png", "-o", str(tmp_path / "r.html")]) == 0
    captured = capsys.readouterr()
    assert "reference models skipped: the study's score 'bench'" in captured.out + captured.err


def _code_of(arch):
    """The table code building `arch`, found by brute force over the table (test-side)."""
    return next(code for code in TABLE if arch_of(code) == arch)


# ---- validate-score --truth nas-bench-macro ---------------------------------------------------------------


def _printed(table_text, label):
    """The numeric cells of the row starting with `label` in a printed table."""
    line = next(line for line in table_text.splitlines() if line.startswith(label))
    return line[len(label) :].split()


def test_validate_bench_prints_what_scipy_computes_from_the_table(tmp_path, capsys):
    from nasx.cli.main import main

    out = tmp_path / "v.json"
    rc = main(
        [
            "validate-score",
            "--truth",
            "nas-bench-macro",
            "--n",
            "24",
            "--seed",
            "5",
            "--proxies",
            "params,madds",
            "--storage",
            "none",
            "-o",
            str(tmp_path / "v.html"),
            "--json",
            str(out),
        ]
    )
    printed = capsys.readouterr().out
    assert rc == 0
    codes = [a["code"] for a in json.loads(out.read_text())["architectures"]]
    assert len(codes) == 24 and len({arch_of(c) for c in codes}) == 24  # distinct networks
    acc = [TABLE[c]["mean_acc"] for c in codes]
    for label, column in (("parameters (M)", "params"), ("MAdds (M)", "flops")):
        x = [TABLE[c][column] for c in codes]
        tau, rho, tau_half, top, n = _printed(printed, label)[:5]
        assert float(tau) == pytest.approx(stats.kendalltau(x, acc).statistic, abs=5e-4)
        assert float(rho) == pytest.approx(stats.spearmanr(x, acc).statistic, abs=5e-4)
        half = sorted(range(24), key=lambda i: -acc[i])[:12]
        assert float(tau_half) == pytest.approx(
            stats.kendalltau([x[i] for i in half], [acc[i] for i in half]).statistic, abs=5e-4
        )
        picks = sorted(range(24), key=lambda i: -x[i])[:1]  # 5% of 24: one pick
        assert float(top) == pytest.approx(statistics.mean(acc[i] for i in picks), abs=5e-3)
        assert n == "24"
    assert f"the table's best {max(e['mean_acc'] for e in TABLE.values()):.2f}%" in printed
    assert "plotly" in (tmp_path / "v.html").read_text().lower()


def test_validate_bench_iterates_the_registry(monkeypatch):
    """A score registered later (MeCo, ZiCo, ...) is validated without touching validate.py; the table lookup
    itself is not."""
    from nasx.score import proxies
    from nasx.score.truths import validate_bench, validation_scores

    def layer_count(module, input_shape, seed=0, arch=None):
        return float(len(arch.layers))

    layer_count.needs_arch, layer_count.needs_module = True, False
    monkeypatch.setitem(proxies.SCORES, "layer_count", layer_count)
    names = validation_scores()
    assert "layer_count" in names and "bench" not in names and "train" not in names
    expected = {"naswot", "synflow", "meco", "zico", "capacity", "params", "madds", "mac", "activations", "depth"}
    assert expected <= set(names)
    result = validate_bench(5, ["layer_count", "naswot"], seed=1, out=io.StringIO())
    assert [p for p, *_ in result.correlations()] == ["layer_count", "naswot"]
    for row in result.rows:
        assert row.values["layer_count"] == len(arch_of(row.code).layers)
        # naswot as a search computes it: weights under seed 0, the arch's input
        torch.manual_seed(0)
        assert row.values["naswot"] == proxies.naswot(nasx.build(arch_of(row.code)), (3, 32, 32), 0)


def test_validate_bench_refuses_training_options(capsys):
    from nasx.cli.main import main

    assert main(["validate-score", "--truth", "nas-bench-macro", "--data", "digits", "--storage", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data do not apply with --truth nas-bench-macro" in err
    assert main(["validate-score", "--truth", "nas-bench-macro", "--proxies", "bench", "--storage", "none"]) == 2
    assert "unknown score bench to validate" in capsys.readouterr().err
    assert math.isfinite(bench.accuracy(bench.networks()[0]))
