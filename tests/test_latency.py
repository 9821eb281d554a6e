"""Latency measurement: it must order models by real work, carry a fingerprint, and keep settings."""

import functools

import pytest
import torch

import nasx
from nasx.measure.device import fingerprint, host_lock
from nasx.measure.latency import measure_latency


def conv_stack(n):
    layers = [nasx.ops.Conv2d(out=64, kernel=3) for _ in range(n)]
    return nasx.Arch(input=(64, 56, 56), layers=tuple(layers))


def test_twice_the_work_measures_slower():
    """A stack of 8 identical convs against 4: twice the MAdds must take clearly longer."""
    small, big = conv_stack(4), conv_stack(8)
    assert nasx.cost(big).madds == 2 * nasx.cost(small).madds
    torch.manual_seed(0)
    a = measure_latency(nasx.build(small), small.input, threads=1, max_time_s=2)
    b = measure_latency(nasx.build(big), big.input, threads=1, max_time_s=2)
    assert b.median_ms > 1.4 * a.median_ms, (a.median_ms, b.median_ms)


def test_result_fields_and_settings_restored():
    before = torch.get_num_threads()
    arch = conv_stack(1)
    r = measure_latency(nasx.build(arch), arch.input, threads=1, batch=2, min_repeats=5, max_time_s=0.5)
    assert r.repeats >= 10 and r.median_ms > 0 and r.iqr_ms >= 0 and r.min_ms <= r.median_ms
    assert r.fingerprint == fingerprint("cpu", 1, 2, arch.input)
    assert r.fingerprint["threads"] == 1 and r.fingerprint["batch"] == 2
    assert torch.get_num_threads() == before


def test_module_ends_in_eval_mode():
    arch = conv_stack(1)
    m = nasx.build(arch).train()
    measure_latency(m, arch.input, min_repeats=3, max_time_s=0.2)
    assert not m.training


def test_host_lock_is_reentrant_across_calls(tmp_path):
    with host_lock(str(tmp_path / "l")):
        pass
    with host_lock(str(tmp_path / "l")):
        pass


@pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason="no CUDA device on this machine: the CUDA event timing path runs only where a GPU is present",
)
def test_cuda_path():
    arch = conv_stack(2)
    r = measure_latency(nasx.build(arch), arch.input, device="cuda", max_time_s=1)
    assert r.median_ms > 0 and r.fingerprint["device"] == "cuda"


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(nasx.NasxError, match="no CUDA device"):
        measure_latency(nasx.build(conv_stack(1)), (64, 56, 56), device="cuda")


def test_drift_correction_by_hand():
    from nasx.measure.latency import drift_corrected

    lat = {"median_ms": 30.0, "iqr_ms": 3.0, "mean_ms": 31.5, "min_ms": 27.0, "calibration_ms": 15.0, "repeats": 9}
    out = drift_corrected(lat, reference_ms=10.0)  # the machine runs 1.5x slower than at the reference
    assert out["median_ms"] == pytest.approx(20.0) and out["iqr_ms"] == pytest.approx(2.0)
    assert out["mean_ms"] == pytest.approx(21.0) and out["min_ms"] == pytest.approx(18.0)
    assert out["raw_median_ms"] == 30.0 and out["drift"] == pytest.approx(1.5) and out["repeats"] == 9


class Sleeper(torch.nn.Module):
    """Takes `ms` x the module-level SLOWDOWN per call: a machine whose speed we set."""

    def __init__(self, ms):
        super().__init__()
        self.ms = ms

    def forward(self, x):
        import time

        time.sleep(self.ms * SLOWDOWN[0] / 1e3)
        return x


SLOWDOWN = [1.0]


@pytest.mark.parametrize("corrected", [True, False])
def test_a_slow_spell_is_taken_out(corrected, tmp_path, monkeypatch):
    """The machine slows down 2x between two measurements of one network: drift-corrected numbers stay put
    (the calibration workload slowed down too); raw ones double (the negative control)."""
    import nasx.measure.latency
    import nasx.measure.timing
    from nasx.measure.device import fingerprint_hash
    from nasx.measure.timing import timed
    from nasx.store.db import Store

    monkeypatch.setattr(nasx.measure.timing, "calibration_workload", lambda shape: Sleeper(1.0))
    monkeypatch.setattr(nasx.measure.latency, "CALIBRATION_S", 0.03)
    store = Store(f"sqlite:///{tmp_path}/s.db")
    fp = fingerprint("cpu", 1, 1, (1, 4, 4), drift_corrected=corrected)
    assert ("calibration" in fp) == corrected
    results = []
    for slowdown in (1.0, 2.0):
        SLOWDOWN[0] = slowdown
        results.append(
            timed(Sleeper(4.0), (1, 4, 4), store, fp, fingerprint_hash(fp), threads=1, max_time_s=0.15, warmup_s=0.02)
        )
    SLOWDOWN[0] = 1.0
    ratio = results[1]["median_ms"] / results[0]["median_ms"]
    if corrected:
        assert ratio == pytest.approx(1.0, abs=0.15), results
        assert results[1]["raw_median_ms"] / results[0]["raw_median_ms"] == pytest.approx(2.0, rel=0.15)
        assert results[1]["drift"] == pytest.approx(2.0, rel=0.15) and results[0]["drift"] == 1.0
        assert store.get_calibration(fingerprint_hash(fp)) == pytest.approx(1.0, rel=0.5)  # the first one, kept
    else:
        assert ratio == pytest.approx(2.0, rel=0.15) and "drift" not in results[1]
    assert all(r["fingerprint"] == fp for r in results)


class Burst(torch.nn.Module):
    """Takes 3 ms per call for its first `slow_calls` calls, then 1 ms: a burst that hits the calibration
    window before a measurement and is gone by the one after."""

    def __init__(self, slow_calls):
        super().__init__()
        self.slow_calls = slow_calls

    def forward(self, x):
        import time

        time.sleep((3 if self.slow_calls > 0 else 1) / 1e3)
        self.slow_calls -= 1
        return x


@pytest.mark.parametrize("attempts", [3, 1])
def test_a_burst_in_one_calibration_window_is_measured_again(attempts, tmp_path, monkeypatch):
    """Before 3 ms, after 1 ms: the mean (2 ms) would halve a normal measurement. With retries the
    measurement is taken again and keeps its scale; with one attempt (the negative control) it is halved."""
    import nasx.measure.latency
    import nasx.measure.timing
    from nasx.measure.device import fingerprint_hash
    from nasx.measure.timing import timed
    from nasx.store.db import Store

    monkeypatch.setattr(nasx.measure.latency, "CALIBRATION_S", 0.03)
    monkeypatch.setattr(nasx.measure.timing, "CALIBRATION_ATTEMPTS", attempts)
    monkeypatch.setattr(nasx.measure.timing, "CALIBRATION_FRESH_S", 0.0)  # each run times its own before
    store = Store(f"sqlite:///{tmp_path}/s.db")
    fp = fingerprint("cpu", 1, 1, (1, 4, 4), drift_corrected=True)
    run = functools.partial(
        timed, Sleeper(4.0), (1, 4, 4), store, fp, fingerprint_hash(fp), threads=1, max_time_s=0.15, warmup_s=0.02
    )
    monkeypatch.setattr(nasx.measure.timing, "calibration_workload", lambda shape: Burst(0))
    steady = run()
    burst = Burst(20)  # longer than one calibration window (3 warm-up calls + ~10 timed), over before the next
    monkeypatch.setattr(nasx.measure.timing, "calibration_workload", lambda shape: burst)
    hit = run()
    assert steady["attempts"] == 1 and steady["drift"] == 1.0
    assert hit["raw_median_ms"] == pytest.approx(steady["raw_median_ms"], rel=0.15)
    if attempts == 3:
        assert hit["attempts"] == 2, hit
        assert hit["median_ms"] == pytest.approx(steady["median_ms"], rel=0.15), (steady, hit)
    else:
        assert hit["attempts"] == 1 and hit["calibration_before_ms"] > 2 * hit["calibration_after_ms"], hit
        assert hit["median_ms"] < 0.7 * steady["median_ms"], (steady, hit)


def test_a_measurement_right_after_another_takes_its_after_as_its_before(tmp_path, monkeypatch):
    """Back to back (a search's candidates), one calibration a measurement: the last one's after stands for the
    next one's before; a retry, or a measurement past CALIBRATION_FRESH_S, times both."""
    import nasx.measure.latency
    import nasx.measure.timing
    from nasx.measure.device import fingerprint_hash
    from nasx.measure.timing import timed
    from nasx.store.db import Store

    calls = []
    timed_calibration = nasx.measure.latency._Timer.calibration_median

    def counted(timer, calibration):
        calls.append(1)
        return timed_calibration(timer, calibration)

    monkeypatch.setattr(nasx.measure.latency._Timer, "calibration_median", counted)
    monkeypatch.setattr(nasx.measure.latency, "CALIBRATION_S", 0.03)
    monkeypatch.setattr(nasx.measure.timing, "_last_pair", {})
    monkeypatch.setattr(nasx.measure.timing, "calibration_workload", lambda shape: Sleeper(1.0))
    store = Store(f"sqlite:///{tmp_path}/s.db")
    fp = fingerprint("cpu", 1, 1, (1, 4, 4), drift_corrected=True)
    run = functools.partial(
        timed, Sleeper(2.0), (1, 4, 4), store, fp, fingerprint_hash(fp), threads=1, max_time_s=0.05, warmup_s=0.01
    )
    first = run()
    assert len(calls) == 2 and not first["calibration_chained"]
    second = run()
    assert len(calls) == 3 and second["calibration_chained"] and second["attempts"] == 1
    assert second["calibration_before_ms"] == first["calibration_after_ms"]
    # the machine slowed 2x since the last after: the chained before disagrees, and the retry times both
    SLOWDOWN[0] = 2.0
    try:
        slowed = run()
    finally:
        SLOWDOWN[0] = 1.0
    assert slowed["attempts"] == 2 and not slowed["calibration_chained"] and len(calls) == 3 + 1 + 2
    assert slowed["calibration_before_ms"] == pytest.approx(2 * first["calibration_after_ms"], rel=0.3)
    monkeypatch.setattr(nasx.measure.timing, "CALIBRATION_FRESH_S", 0.0)
    alone = run()
    assert not alone["calibration_chained"] and len(calls) == 6 + 2


def test_networks_timed_side_by_side_share_a_calibration_pair_within_the_interval(monkeypatch):
    """measure_interleaved (the end's re-timing): a calibration between members once calibrate_every_s has
    passed, and at each round's end; every measurement carries the pair that brackets it."""
    import nasx.measure.latency
    from nasx.measure.latency import measure_interleaved

    stamps = iter(range(1, 1000))  # each calibration reads as the next integer: which one a record holds shows
    monkeypatch.setattr(nasx.measure.latency._Timer, "calibration_median", lambda timer, calibration: next(stamps))
    modules = [Sleeper(1.0) for _ in range(4)]
    run = functools.partial(
        measure_interleaved,
        modules,
        (1, 4, 4),
        rounds=2,
        time_s=0.02,
        warmup_s=0.0,
        threads=1,
        calibration=Sleeper(1.0),
    )
    shared = run(calibrate_every_s=60.0)  # one pair a round
    assert [[(r["calibration_before_ms"], r["calibration_after_ms"]) for r in m] for m in shared] == [
        [(1, 2), (3, 4)]
    ] * 4
    stamps = iter(range(1, 1000))
    each = run(calibrate_every_s=0.0)  # a calibration after every member: each its own pair
    for i, m in enumerate(each):
        assert [(r["calibration_before_ms"], r["calibration_after_ms"]) for r in m] == [(i + 1, i + 2), (i + 6, i + 7)]
    assert all(
        r["calibration_ms"] == (r["calibration_before_ms"] + r["calibration_after_ms"]) / 2 for m in each for r in m
    )
    plain = measure_interleaved(modules, (1, 4, 4), rounds=2, time_s=0.02, warmup_s=0.0, threads=1)
    assert all(len(m) == 2 and "calibration_ms" not in m[0] for m in plain)


def test_calibration_disagreement_by_hand():
    from nasx.measure.latency import calibration_disagreement

    assert calibration_disagreement({"calibration_before_ms": 11.0, "calibration_after_ms": 6.6}) == pytest.approx(
        4.4 / 6.6
    )
    assert calibration_disagreement({"calibration_before_ms": 6.0, "calibration_after_ms": 6.3}) == pytest.approx(0.05)
    assert calibration_disagreement({"calibration_ms": None}) == 0.0


def test_drift_corrected_numbers_have_their_own_fingerprint():
    from nasx.measure.device import fingerprint_hash

    raw = fingerprint("cpu", 2, 1, (3, 224, 224))
    corrected = fingerprint("cpu", 2, 1, (3, 224, 224), drift_corrected=True)
    assert "calibration" not in raw and corrected == {**raw, "calibration": "mobilenet_v3_small"}
    assert fingerprint_hash(raw) != fingerprint_hash(corrected)


def test_measure_latency_times_the_calibration_around_the_network():
    arch = conv_stack(1)
    r = measure_latency(nasx.build(arch), arch.input, threads=1, max_time_s=0.2, calibration=Sleeper(2.0))
    assert r.calibration_ms == pytest.approx(2.0, rel=0.5) and r.median_ms > 0
    assert measure_latency(nasx.build(arch), arch.input, threads=1, max_time_s=0.1).calibration_ms is None


def test_flush_probe_reads_what_torch_set():
    from nasx.measure.device import flush_denormal_enabled

    try:
        if not torch.set_flush_denormal(True):
            pytest.skip("this CPU cannot flush denormals")
        assert flush_denormal_enabled()
        torch.set_flush_denormal(False)
        assert not flush_denormal_enabled()
    finally:
        torch.set_flush_denormal(False)


def test_flush_to_zero_is_restored_to_what_the_caller_had():
    """torch exposes no getter for flush-to-zero: the test computes with the smallest float32 subnormal."""

    def flush_denormal_enabled():
        return (torch.tensor([1], dtype=torch.int32).view(torch.float32) * 1.0).item() == 0.0

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals")
    arch = conv_stack(1)
    module = nasx.build(arch)
    try:
        assert not flush_denormal_enabled()
        measure_latency(module, arch.input, threads=1, min_repeats=3, max_time_s=0.05, warmup_s=0.01)
        assert not flush_denormal_enabled()  # off before, off after
        torch.set_flush_denormal(True)
        assert flush_denormal_enabled()
        measure_latency(module, arch.input, threads=1, min_repeats=3, max_time_s=0.05, warmup_s=0.01)
        assert flush_denormal_enabled(), "the caller had flush-to-zero on; the measurement switched it off"
    finally:
        torch.set_flush_denormal(False)
