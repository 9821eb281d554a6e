"""One latency measurement as a search or an exploration takes it: plain, or drift-corrected against the
storage's calibration reference when the device fingerprint says so (nasx.latency: drift correction)."""

from __future__ import annotations

from nasx.latency import DEFAULT_MEASURE_TIME_S, calibration_workload, drift_corrected, measure_latency


def timed(module, input_shape, store, fp: dict, fp_hash: str, *, device: str = "cpu", batch: int = 1,
          threads: int | None = None, max_time_s: float = DEFAULT_MEASURE_TIME_S, warmup_s: float = 0.25) -> dict:
    """The latency dict the caches store; with fp["calibration"], every time statistic is rescaled by
    reference / calibration and the raw median and the drift are kept beside it."""
    settings = {"device": device, "batch": batch, "threads": threads}
    if "calibration" not in fp:
        lat = measure_latency(module, input_shape, max_time_s=max_time_s, warmup_s=warmup_s, **settings).as_dict()
        return {**lat, "fingerprint": fp}
    lat = measure_latency(module, input_shape, max_time_s=max_time_s, warmup_s=warmup_s,
                          calibration=calibration_workload(input_shape), **settings)
    # the first calibration in this storage is the reference: taken the same way as every later one (between
    # other networks), so the scale is the machine's speed at that moment, with no bias from the procedure
    reference = store.get_calibration(fp_hash) or store.put_calibration(fp_hash, fp, lat.calibration_ms)
    return {**drift_corrected(lat.as_dict(), reference), "fingerprint": fp}  # the fingerprint the cache is keyed by
