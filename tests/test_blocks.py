"""The block latency table and the block model (nasx.measure.blocks, nasx.measure.block_model): layer keys are the
built network's children and their input shapes; an entry is read only under the fingerprint, runtime, threads and
batch it was timed with; a prediction is the fitted correction of the layer sum, flagged predicted; `nasx explore`
judges it (`--json FILE`) and stores it. Timings are stubbed (one real, short timing checks the harness path)."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

import nasx.measure.blocks
import nasx.measure.cached
import nasx.measure.latency
import nasx.measure.timing
from nasx.arch import Arch
from nasx.build import build_seeded
from nasx.errors import NasxError
from nasx.explore.predictors import blocks_name
from nasx.measure.block_model import FORMS, BlockModel, fit_block_model, predict_latency
from nasx.measure.blocks import BlockTable, arch_layers, layer_hash, layer_module
from nasx.measure.cached import Timer
from nasx.space.config import load_space
from nasx.store.db import Store

CIFAR = load_space("cifar32")


def cifar_arch(seed: int):
    return CIFAR.random_arch(random.Random(seed))


def fake_fp(hardware: str = "cpu A", runtime: str = "torch", threads: int = 1, batch: int = 1) -> dict:
    fp = {"device": "cpu", "hardware": hardware, "threads": threads, "batch": batch, "input": [3, 32, 32]}
    if runtime != "torch":
        fp["runtime"] = {"name": runtime}
    return fp


def layer_ms(module) -> float:
    """A stub latency of one layer module: a function of the module alone (its parameters and submodules)."""
    return 0.05 + 2e-5 * sum(p.numel() for p in module.parameters()) + 0.01 * len(list(module.modules()))


class FakeTimed:
    """Stands in for nasx.measure.timing.timed: a layer (timed with the network's calibration shape) takes
    layer_ms; a whole network 0.8 x the sum of its children's layer_ms + 0.02 ms per child + 0.3 ms (the form
    scale+layer+const); `offset` added per fingerprint's hardware."""

    def __init__(self, offset=None):
        self.calls: list[tuple[str, str]] = []
        self.offset = offset or {}

    def __call__(self, module, input_shape, store, fp, fp_hash, calibration_shape=None, **settings):
        whole = calibration_shape is None
        children = list(module.children())
        ms = 0.8 * sum(map(layer_ms, children)) + 0.02 * len(children) + 0.3 if whole else layer_ms(module)
        ms += self.offset.get(fp["hardware"], 0.0)
        self.calls.append(("network" if whole else "layer", fp_hash))
        return {"median_ms": ms, "iqr_ms": 0.0, "repeats": 10, "fingerprint": fp}

    def batch(self, modules, input_shapes, calibration_shape, store, fp, fp_hash, **settings):
        """Stands in for nasx.measure.timing.timed_batch: each layer as `timed` would time it alone."""
        return [
            self(m, s, store, fp, fp_hash, calibration_shape=calibration_shape) for m, s in zip(modules, input_shapes)
        ]


@pytest.fixture
def fake_timed(monkeypatch):
    fake = FakeTimed({"cpu B": 100.0})
    monkeypatch.setattr(nasx.measure.blocks, "timed_batch", fake.batch)
    monkeypatch.setattr(nasx.measure.cached, "timed", fake)
    return fake


def test_layers_are_the_built_networks_children_on_their_inputs():
    """Keys from the arch (section, index, input shape) against the built nn.Sequential seen by forward hooks."""
    arch = cifar_arch(3)
    net = build_seeded(arch).eval()
    seen = {}

    def hook(name):
        def record(module, inputs, output) -> None:  # returns None: the output is left as it is
            seen[name] = (inputs[0].shape, output.shape)

        return record

    for name, child in net.named_children():
        child.register_forward_hook(hook(name))
    with torch.no_grad():
        net(torch.randn(2, *arch.input))
    entries = arch_layers(arch)
    assert [f"{e.section}{e.index}" for e in entries] == list(seen)
    for e in entries:
        in_shape, out_shape = seen[f"{e.section}{e.index}"]
        assert tuple(in_shape) == (2, *e.in_shape)
        with torch.no_grad():  # the module timed alone computes the same shape as the network's child
            assert layer_module(e.layer, e.in_shape).eval()(torch.randn(2, *e.in_shape)).shape == out_shape
        assert e.key == {"layer": json.loads(json.dumps(e.key["layer"])), "input": list(e.in_shape)}
    # two networks sharing a layer on the same input share its key; another input is another key
    stem = entries[0]
    assert arch_layers(cifar_arch(4))[0].hash == stem.hash
    assert layer_hash(stem.layer, (3, 64, 64)) != stem.hash


def test_an_entry_is_read_only_under_its_own_fingerprint_runtime_threads_and_batch(tmp_path, fake_timed):
    store = Store(f"sqlite:///{tmp_path}/b.db")
    arch = cifar_arch(0)
    n = len({e.hash for e in arch_layers(arch)})
    a = BlockTable(Timer(store, fake_fp("cpu A"), threads=1))
    first = a.layer_times(arch)
    assert first.timed_now == n and a.layer_times(arch).timed_now == 0  # stored, read back
    assert BlockTable(Timer(store, fake_fp("cpu A"), threads=1)).layer_times(arch).timed_now == 0
    for other in (fake_fp("cpu B"), fake_fp(runtime="onnxruntime"), fake_fp(threads=2), fake_fp(batch=4)):
        table = BlockTable(Timer(store, other, threads=other["threads"], batch=other["batch"]))
        assert table.lookup(e.hash for e in arch_layers(arch)) == {}, other
        times = table.layer_times(arch)
        assert times.timed_now == n, other
        if other["hardware"] == "cpu B":  # its own numbers, never A's
            assert times.total_ms == pytest.approx(first.total_ms + 100 * first.n_layers)
    # the store's own key: the same layer hash under another runtime, thread count or batch is absent
    key = a.key
    h = arch_layers(arch)[0].hash
    assert store.get_block_latencies(key, [h]) == {h: pytest.approx(first.ms[0])}
    for i, other in ((1, "onnxruntime"), (2, 2), (3, 4)):
        assert store.get_block_latencies(tuple(other if j == i else v for j, v in enumerate(key)), [h]) == {}
    with pytest.raises(NasxError, match="input"):
        a.layer_times(Arch.from_dict({**arch.to_dict(), "input": [3, 64, 64]}))


def test_a_prediction_is_the_known_correction_of_the_layer_sum_and_says_so(tmp_path, fake_timed):
    store = Store(f"sqlite:///{tmp_path}/p.db")
    timer = Timer(store, fake_fp(), threads=1)
    arch = cifar_arch(1)
    entries = arch_layers(arch)
    total = sum(layer_ms(layer_module(e.layer, e.in_shape)) for e in entries)  # computed apart from the table
    model = BlockModel("scale+layer+const", 0.9, 0.01, 0.2)
    p = predict_latency(arch, timer, model)
    assert p.predicted is True and p.as_dict()["predicted"] is True
    assert p.layer_sum_ms == pytest.approx(total) and p.n_layers == len(entries)
    assert p.latency_ms == pytest.approx(0.9 * total + 0.01 * len(entries) + 0.2)
    assert p.layers_timed == len({e.hash for e in entries})
    assert predict_latency(arch, timer, model).layers_timed == 0
    with pytest.raises(NasxError, match="no block latency model for fingerprint"):
        predict_latency(arch, timer)  # none stored for this fingerprint


@pytest.mark.parametrize("form", list(FORMS))
def test_each_form_recovers_its_coefficients(form):
    rng = np.random.default_rng(0)
    sums, layers = rng.uniform(1, 50, 12), rng.integers(8, 30, 12)
    truth = {"scale": (0.85, 0.0, 0.0), "scale+const": (0.85, 0.0, 0.7), "scale+layer+const": (0.85, 0.03, 0.7)}
    a, b, c = truth[form]
    m = fit_block_model(sums, layers, a * sums + b * layers + c, form)
    assert (m.scale, m.per_layer_ms, m.constant_ms) == pytest.approx(truth[form], abs=1e-9)
    assert BlockModel.from_dict(json.loads(json.dumps(m.to_dict()))) == m


def test_a_layer_is_timed_by_the_networks_harness_and_calibration(tmp_path, monkeypatch):
    """Unstubbed: a drift-corrected layer measurement runs the calibration workload at the network's input and is
    scaled to the storage's reference of the network's fingerprint."""
    monkeypatch.setattr(nasx.measure.latency, "CALIBRATION_S", 0.01)
    monkeypatch.setattr(nasx.measure.timing, "_last_pair", {})  # no pair from an earlier test to reuse
    store = Store(f"sqlite:///{tmp_path}/r.db")
    timer = Timer.here(store, CIFAR.input, threads=1, max_time_s=0.02, warmup_s=0.005)
    table = BlockTable(timer)
    entry = arch_layers(cifar_arch(2))[1]
    lat = table.time_layer(entry)
    assert lat["fingerprint"] == timer.fp and lat["reference_ms"] == store.get_calibration(timer.fp_hash)
    assert lat["calibration_ms"] > 0 and lat["median_ms"] > 0
    assert lat["median_ms"] == pytest.approx(lat["raw_median_ms"] * lat["reference_ms"] / lat["calibration_ms"])
    assert table.lookup([entry.hash]) == {entry.hash: pytest.approx(lat["median_ms"])}
    # a network's missing layers share one calibration pair, each corrected by it
    others = [e for e in arch_layers(cifar_arch(5)) if e.hash not in table.lookup([e.hash])][:3]
    lats = table.time_layers(others)
    assert len({lat["calibration_ms"] for lat in lats}) == 1 and all(lat["median_ms"] > 0 for lat in lats)
    assert table.lookup(e.hash for e in others) == {e.hash: pytest.approx(x["median_ms"]) for e, x in zip(others, lats)}
    # within CALIBRATION_FRESH_S of the last pair the batch is corrected by it; past it, it takes its own
    assert lats[0]["calibration_reused"] and lats[0]["calibration_ms"] == lat["calibration_ms"]
    monkeypatch.setattr(nasx.measure.timing, "CALIBRATION_FRESH_S", 0.0)
    more = [e for e in arch_layers(cifar_arch(6)) if e.hash not in table.lookup([e.hash])][:2]
    fresh = table.time_layers(more)
    assert not fresh[0]["calibration_reused"] and fresh[0]["calibration_ms"] != lat["calibration_ms"]


def test_explore_judges_and_stores_the_block_model_and_latency_predicts_with_it(tmp_path, fake_timed, capsys):
    from nasx.cli.main import main

    url, out = f"sqlite:///{tmp_path}/e.db", tmp_path / "judged.json"
    argv = ["explore", "--config", "cifar32", "-n", "30", "--measure", "12", "--threads", "1", "--storage", url]
    assert main([*argv, "-o", "none", "--quiet", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "block model for fingerprint" in text and all(blocks_name(f) in text for f in FORMS)
    judged = json.loads(out.read_text())
    names = [p["name"] for p in judged["predictors"]]
    assert "blocks" in names and "a·MAdds + b·MAC + c" in names
    for p in judged["predictors"]:
        assert {"name", "n_heldout", "within_5pct", "within_10pct", "kendall_tau_b"} <= set(p)
        assert p["n_heldout"] == 4  # 12 measured: 8 train, 4 held out (odd populations train their odd one)
    blocks = judged["predictors"][names.index("blocks")]
    exact = judged["predictors"][names.index(blocks_name("scale+layer+const"))]  # the stub's own form: exact
    assert exact["within_5pct"] == 1.0 and exact["kendall_tau_b"] == pytest.approx(1.0)
    assert blocks["within_10pct"] >= 0.5
    path = tmp_path / "a.json"
    path.write_text(CIFAR.random_arch(random.Random(99)).to_json())
    assert main(["latency", str(path), str(path), "--predict", "--threads", "1", "--storage", url, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == [str(path)] * 2 and all(r["predicted"] is True for r in rows)
    assert rows[0]["latency_ms"] == pytest.approx(rows[1]["latency_ms"]) and rows[1]["layers_timed"] == 0
    m = judged["block_model"]
    expected = m["scale"] * rows[0]["layer_sum_ms"] + m["per_layer_ms"] * rows[0]["layers"] + m["constant_ms"]
    assert rows[0]["latency_ms"] == pytest.approx(expected)


def test_time_now_times_whole_and_leaves_the_cache_alone(tmp_path, fake_timed):
    """Timer.time_now (the re-timing scripts/bench_block_model.py --repeat uses) times every call and never
    touches the latency cache; measure stores the first timing and reads it back after."""
    store = Store(f"sqlite:///{tmp_path}/t.db")
    timer = Timer.here(store, CIFAR.input, threads=1)
    arch = cifar_arch(2)
    h = arch.content_hash()
    lat = timer.time_now(arch)
    assert lat["median_ms"] > 0 and store.get_latency(h, timer.fp_hash) is None and len(fake_timed.calls) == 1
    timer.time_now(arch)
    assert len(fake_timed.calls) == 2 and store.get_latency(h, timer.fp_hash) is None
    first = timer.measure(arch)
    assert not first.cached and store.get_latency(h, timer.fp_hash) is not None and len(fake_timed.calls) == 3
    assert timer.measure(arch).cached and len(fake_timed.calls) == 3
    timer.time_now(arch)  # a stored latency is not a reason to skip the timing asked for
    assert len(fake_timed.calls) == 4
