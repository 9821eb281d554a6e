"""One latency measurement as a search or an exploration takes it: plain, or drift-corrected against the
storage's calibration reference when the device fingerprint says so (nasx.measure.latency: drift correction)."""

from __future__ import annotations

import time

from nasx.measure.device import runtime_of
from nasx.measure.latency import (
    CALIBRATION_AGREEMENT,
    CALIBRATION_ATTEMPTS,
    DEFAULT_MEASURE_TIME_S,
    calibration_disagreement,
    calibration_workload,
    drift_corrected,
    measure_batch,
    measure_latency,
)

# A batch of layers timed within CALIBRATION_FRESH_S of this process's last calibration pair under the same
# fingerprint is corrected by that pair instead of taking its own: a screening search times a few new layers per
# candidate, and the pair (2 x 0.15 s) would cost more than the layers. A network timed within it takes that pair's
# after as its before: a search times candidates a second or so apart. The machine's speed drifts over seconds to
# minutes, not within a few seconds.
CALIBRATION_FRESH_S = 5.0
_last_pair: dict[str, tuple[float, dict]] = {}  # fingerprint hash -> (time.monotonic(), the calibration pair)
PAIR = ("calibration_before_ms", "calibration_after_ms", "calibration_ms")


def _remember(fp_hash: str, lat: dict) -> None:
    if all(lat.get(k) is not None for k in PAIR):
        _last_pair[fp_hash] = (time.monotonic(), {k: lat[k] for k in PAIR})


def _fresh_pair(fp_hash: str) -> dict | None:
    at, pair = _last_pair.get(fp_hash, (-1e18, {}))
    return pair if time.monotonic() - at <= CALIBRATION_FRESH_S else None


def timed(
    module,
    input_shape,
    store,
    fp: dict,
    fp_hash: str,
    *,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    max_time_s: float = DEFAULT_MEASURE_TIME_S,
    warmup_s: float = 0.25,
    min_time_s: float = 0.5,
    calibration_shape=None,
) -> dict:
    """The latency dict the caches store; with fp["calibration"], every time statistic is rescaled by
    reference / calibration and the raw median and the drift are kept beside it. A measurement whose
    calibrations before and after disagree is taken again (`attempts` says how many were taken).

    `calibration_shape`: the input the calibration workload runs on when it is not `input_shape` (a layer
    timed alone for the block table: calibrated at its network's input, against its network's reference).
    Within CALIBRATION_FRESH_S of this process's last calibration pair under the fingerprint, that pair's after
    stands for this measurement's before (`calibration_chained`)."""
    settings = {"device": device, "batch": batch, "threads": threads, "runtime": runtime_of(fp)}
    windows = {"max_time_s": max_time_s, "warmup_s": warmup_s, "min_time_s": min_time_s}  # the cap wins
    if "calibration" not in fp:
        lat = measure_latency(module, input_shape, **windows, **settings).as_dict()
        return {**lat, "fingerprint": fp}
    attempts = []
    # the first attempt's calibration before is this process's last one after, when fresh (one calibration a
    # measurement instead of two, back to back in a search); a retry takes both
    fresh = _fresh_pair(fp_hash)
    chained = None if fresh is None else fresh["calibration_after_ms"]
    while len(attempts) < CALIBRATION_ATTEMPTS:
        lat = measure_latency(
            module,
            input_shape,
            **windows,
            calibration=calibration_workload(calibration_shape or input_shape),
            calibration_shape=calibration_shape,
            calibration_before_ms=None if attempts else chained,
            **settings,
        ).as_dict()
        lat["calibration_chained"] = chained is not None and not attempts
        attempts.append(lat)
        if calibration_disagreement(lat) <= CALIBRATION_AGREEMENT:
            break
    lat = min(attempts, key=calibration_disagreement)
    _remember(fp_hash, lat)
    # the first calibration in this storage is the reference: taken the same way as every later one (between
    # other networks), so the scale is the machine's speed at that moment, with no bias from the procedure
    reference = store.get_calibration(fp_hash) or store.put_calibration(fp_hash, fp, lat["calibration_ms"])
    # the fingerprint the cache is keyed by
    calibration_s = sum(a["calibration_s"] for a in attempts)  # every attempt's, for the search's time split
    return {
        **drift_corrected(lat, reference),
        "attempts": len(attempts),
        "calibration_s": calibration_s,
        "lock_wait_s": sum(a["lock_wait_s"] for a in attempts),
        "fingerprint": fp,
    }


def timed_batch(
    modules: list,
    input_shapes: list,
    calibration_shape,
    store,
    fp: dict,
    fp_hash: str,
    *,
    device: str = "cpu",
    batch: int = 1,
    threads: int | None = None,
    warmup_s: float,
    min_time_s: float,
    max_time_s: float,
) -> list[dict]:
    """Small modules timed back to back between one calibration pair (nasx.measure.latency.measure_batch), each
    drift-corrected by that pair against the storage's reference as `timed` corrects one network: one latency
    dict per module. A batch whose calibrations disagree is taken again, as a single measurement is. Within
    CALIBRATION_FRESH_S of this process's last pair under the fingerprint, that pair corrects the batch instead
    (`calibration_reused`). The batch's calibration and lock wait are split evenly over its modules, for the
    time split."""
    settings = {"device": device, "batch": batch, "threads": threads, "runtime": runtime_of(fp)}
    windows = {"warmup_s": warmup_s, "min_time_s": min_time_s, "max_time_s": max_time_s}
    calibrated = "calibration" in fp
    reused = _fresh_pair(fp_hash) if calibrated else None
    attempts = []
    while len(attempts) < (CALIBRATION_ATTEMPTS if calibrated and reused is None else 1):
        calibration = calibration_workload(calibration_shape) if calibrated and reused is None else None
        out, shared = measure_batch(
            modules, input_shapes, calibration_shape, calibration=calibration, **settings, **windows
        )
        attempts.append((out, shared))
        if calibration_disagreement(shared) <= CALIBRATION_AGREEMENT:
            break
    out, shared = min(attempts, key=lambda a: calibration_disagreement(a[1]))
    if reused is not None:
        shared = {**shared, **reused, "calibration_reused": True}
    elif calibrated:
        _remember(fp_hash, shared)
    n = max(len(out), 1)
    spread = {
        "calibration_s": sum(a[1].get("calibration_s") or 0.0 for a in attempts) / n,
        "lock_wait_s": sum(a[1]["lock_wait_s"] for a in attempts) / n,
        "export_s": (shared["export_s"] or 0.0) / n,
        "attempts": len(attempts),
        "calibration_reused": reused is not None,
        "fingerprint": fp,
    }
    if not calibrated:
        return [{**lat, **spread} for lat in out]
    reference = store.get_calibration(fp_hash) or store.put_calibration(fp_hash, fp, shared["calibration_ms"])
    pair = {k: shared[k] for k in ("calibration_before_ms", "calibration_after_ms", "calibration_ms")}
    return [{**drift_corrected({**lat, **pair}, reference), **spread} for lat in out]
