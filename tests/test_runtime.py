"""--runtime onnxruntime: candidates exported once and timed in an ONNX Runtime session with explicit options,
fingerprinted apart from eager numbers so caches and calibrations never mix runtimes."""

import sys

import optuna
import pytest
import torch

import nasx
from nasx.errors import NasxError
from nasx.measure.device import fingerprint, fingerprint_hash
from nasx.measure.latency import measure_latency, ort_model

pytest.importorskip("onnxruntime")

ARCH = nasx.Arch(input=(8, 12, 12), layers=(nasx.ops.Conv2d(out=8, kernel=3), nasx.ops.Conv2d(out=8, kernel=3)))


def small_module():
    torch.manual_seed(0)
    return nasx.build(ARCH)


def test_fingerprints_differ_between_runtimes_and_caches_never_mix(tmp_path):
    from nasx.store.db import Store

    eager = fingerprint("cpu", 1, 1, ARCH.input, drift_corrected=True)
    ort = fingerprint("cpu", 1, 1, ARCH.input, drift_corrected=True, runtime="onnxruntime")
    assert "runtime" not in eager  # eager fingerprints (and the caches keyed by them) are as before
    assert ort["runtime"]["name"] == "onnxruntime" and ort["runtime"]["version"]
    assert ort["runtime"]["intra_op_threads"] == 1 and ort["runtime"]["graph_optimization"] == "ORT_ENABLE_ALL"
    assert {k: v for k, v in ort.items() if k != "runtime"} == eager
    assert fingerprint_hash(eager) != fingerprint_hash(ort)
    # the options are part of it: another thread count is another fingerprint
    assert fingerprint_hash(ort) != fingerprint_hash(
        fingerprint("cpu", 2, 1, ARCH.input, drift_corrected=True, runtime="onnxruntime")
    )
    store = Store(f"sqlite:///{tmp_path}/s.db")
    store.put_latency("arch", fingerprint_hash(eager), eager, {"median_ms": 1.0})
    assert store.get_latency("arch", fingerprint_hash(ort)) is None
    store.put_latency("arch", fingerprint_hash(ort), ort, {"median_ms": 2.0})
    assert store.get_latency("arch", fingerprint_hash(eager))["median_ms"] == 1.0
    assert store.get_latency("arch", fingerprint_hash(ort))["median_ms"] == 2.0
    store.put_calibration(fingerprint_hash(eager), eager, 5.0)
    assert store.get_calibration(fingerprint_hash(ort)) is None


def test_session_options_are_what_was_asked():
    model = ort_model(small_module(), ARCH.input, 1, 2)
    so = model.session.get_session_options()
    import onnxruntime as ort

    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    assert so.get_session_config_entry("session.inter_op.allow_spinning") == "0"
    assert so.get_session_config_entry("session.set_denormal_as_zero") == "1"
    assert model.session.get_providers() == ["CPUExecutionProvider"]


def test_onnxruntime_runs_the_same_network():
    module = small_module().eval()
    x = torch.randn((1, *ARCH.input))
    with torch.inference_mode():
        ref = module(x).numpy()
    out = ort_model(module, ARCH.input, 1, 1)(x.numpy())[0]
    assert abs(out - ref).max() < 1e-4


def test_ort_latency_has_median_iqr_and_export_time_exported_once(tmp_path, monkeypatch):
    import nasx.measure.onnx
    import nasx.measure.timing
    from nasx.measure.timing import timed
    from nasx.store.db import Store

    exports = []
    real = nasx.measure.onnx.export_onnx
    monkeypatch.setattr(nasx.measure.onnx, "export_onnx", lambda *a, **k: exports.append(1) or real(*a, **k))
    calibration = small_module()
    monkeypatch.setattr(nasx.measure.timing, "calibration_workload", lambda shape: calibration)
    store = Store(f"sqlite:///{tmp_path}/s.db")
    fp = fingerprint("cpu", 1, 1, ARCH.input, drift_corrected=True, runtime="onnxruntime")
    module = small_module()
    lat = timed(module, ARCH.input, store, fp, fingerprint_hash(fp), threads=1, max_time_s=0.1, warmup_s=0.02)
    assert lat["runtime"] == "onnxruntime" and lat["fingerprint"] == fp
    assert lat["median_ms"] > 0 and lat["iqr_ms"] >= 0 and lat["repeats"] >= 10
    assert lat["export_s"] > 0 and lat["drift"] > 0 and lat["calibration_before_ms"] > 0
    assert len(exports) == 2  # the network and the calibration workload
    timed(module, ARCH.input, store, fp, fingerprint_hash(fp), threads=1, max_time_s=0.1, warmup_s=0.02)
    assert len(exports) == 2, "measuring the same module again exported it again"
    eager = measure_latency(module, ARCH.input, threads=1, max_time_s=0.1, warmup_s=0.02)
    assert eager.runtime == "torch" and eager.export_s is None and "runtime" not in eager.fingerprint


def test_missing_onnxruntime_is_one_clear_line(monkeypatch, capsys, tmp_path):
    from nasx.cli.main import main
    from nasx.measure.device import check_runtime

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    with pytest.raises(NasxError, match=r'pip install "nasx\[export\]"'):
        check_runtime("onnxruntime")
    with pytest.raises(NasxError, match="nasx\\[export\\]"):
        measure_latency(small_module(), ARCH.input, threads=1, runtime="onnxruntime")
    url = f"sqlite:///{tmp_path}/s.db"  # refused before the database is opened
    assert main(["search", "--config", "cifar32", "--runtime", "onnxruntime", "--storage", url]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "onnxruntime" in err[0] and 'pip install "nasx[export]"' in err[0]


def test_onnxruntime_on_another_device_is_refused():
    with pytest.raises(NasxError, match="--device cpu"):
        measure_latency(small_module(), ARCH.input, device="cuda", runtime="onnxruntime")
    with pytest.raises(NasxError, match="unknown runtime"):
        measure_latency(small_module(), ARCH.input, runtime="tensorrt")


@pytest.fixture(scope="module")
def ort_study(tmp_path_factory):
    from conftest import run_nasx_here

    d = tmp_path_factory.mktemp("ort")
    url = f"sqlite:///{d}/s.db"
    args = [
        "search",
        "--score",
        "naswot",  # the score is not under test here: the cheapest data-free one
        "--config",
        "cifar32",
        "--budget",
        "12M",
        "--storage",
        url,
        "--study",
        "ort",
        "--n-trials",
        "4",
        "--seed",
        "3",
        "--measure-time",
        "0.1",
        "--threads",
        "1",
        "--quiet",
        "--no-retime",
    ]
    return url, args, run_nasx_here(*args, "--runtime", "onnxruntime", cwd=d), d


def test_search_in_onnxruntime_stores_the_runtime_in_every_fingerprint(ort_study):
    url, _, result, _ = ort_study
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="ort", storage=url)
    assert study.user_attrs["runtime"] == "onnxruntime"
    feasible = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert feasible
    for t in feasible:
        assert t.user_attrs["fingerprint"]["runtime"]["name"] == "onnxruntime"
        assert t.user_attrs["latency"]["export_s"] > 0 or t.user_attrs["latency_cached"]
        assert "latency_confirmed" not in t.user_attrs  # --no-retime


def test_a_study_refuses_to_resume_in_another_runtime(ort_study):
    from conftest import run_nasx_here

    url, args, _, d = ort_study
    again = run_nasx_here(*args, "--runtime", "torch", cwd=d)
    assert again.returncode == 2
    assert "timed in onnxruntime" in again.stderr and "--runtime onnxruntime" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
    assert len(optuna.load_study(study_name="ort", storage=url).trials) == 4  # nothing added


def test_default_study_names_keep_runtimes_apart():
    from nasx.search.budgets import Budgets
    from nasx.search.settings import SearchSettings
    from nasx.space.config import load_space

    s = SearchSettings(space=load_space("cifar32"), budgets=Budgets(compute=12_000_000))
    eager = s.default_study_name()
    s.runtime = "onnxruntime"
    assert s.default_study_name() == eager + "-onnxruntime"
