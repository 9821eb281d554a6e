"""Latency measurement: it must order models by real work, carry a fingerprint, and keep settings."""

import pytest
import torch

import nasx
from nasx.latency import fingerprint, host_lock, measure_latency


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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine: the CUDA event "
                    "timing path runs only where a GPU is present")
def test_cuda_path():
    arch = conv_stack(2)
    r = measure_latency(nasx.build(arch), arch.input, device="cuda", max_time_s=1)
    assert r.median_ms > 0 and r.fingerprint["device"] == "cuda"


def test_cuda_request_without_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(nasx.NasxError, match="no CUDA device"):
        measure_latency(nasx.build(conv_stack(1)), (64, 56, 56), device="cuda")
