"""nasx's latency measurement against torch.utils.benchmark.Timer.blocked_autorange, side by side.

For MobileNetV2-1.0 and two architectures sampled from mobile224_layers near the 300M budget, prints
nasx's median (two back-to-back measurements) and Timer's median with the same thread count, their ratio,
and the agreement of the two nasx runs. Targets: nasx/Timer within 5%; nasx run 1 vs run 2 within 5%.

    python scripts/bench_latency.py [--threads N] [--quick]

With --drift ROUNDS it measures instead how much drift correction (nasx.measure.latency) removes: MobileNetV2 and
the two searched architectures are timed ROUNDS times in turn, each with the calibration workload around it,
and for each model it prints the spread over the rounds (coefficient of variation, min..max) of the raw
median and of the drift-corrected one, side by side. Both come from one measurement, taken as a search
takes it (nasx.measure.timing.timed: retried when the calibrations before and after disagree; reference: the
run's first calibration, in a scratch storage).

    python scripts/bench_latency.py --drift 12

With --windows ROUNDS it compares two measurement windows of one network, as a search takes it (drift-corrected,
nasx.measure.timing.timed): a search's first look (nasx.measure.cached.FIRST_LOOK: short warm-up and minimum
window) against the longer window it used before. MobileNetV2 and five searched architectures are timed ROUNDS
times in turn, both windows side by side in each round (their order alternating); per model it prints each
window's spread over the rounds (coefficient of variation), the ratio of their medians, and the seconds each
measurement took, calibrations included.

    python scripts/bench_latency.py --windows 6
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time

import torch
from torch.utils.benchmark import Timer

import nasx
from nasx.build import build_seeded
from nasx.measure.cached import FIRST_LOOK
from nasx.measure.device import CALIBRATION_MODEL, default_threads, fingerprint, fingerprint_hash, flushed_denormals
from nasx.measure.latency import CALIBRATION_S, measure_latency
from nasx.measure.timing import timed
from nasx.space.config import load_space
from nasx.store.db import Store


def searched_archs(n: int, seed: int = 0):
    """Architectures from mobile224_layers (the default skeleton, layer by layer) under 300M MAdds."""
    space, rng, out = load_space("mobile224_layers"), random.Random(seed), []
    while len(out) < n:
        arch = space.random_arch(rng)
        if 200e6 <= nasx.cost(arch).madds <= 300e6:
            out.append(arch)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=default_threads())
    ap.add_argument("--quick", action="store_true", help="shorter time caps")
    ap.add_argument("--drift", type=int, metavar="ROUNDS", help="raw against drift-corrected spread over ROUNDS")
    ap.add_argument("--windows", type=int, metavar="ROUNDS", help="a search's first look against the longer window")
    args = ap.parse_args()
    if args.windows:
        return windows(args.threads, args.windows)
    if args.drift:
        return drift(args.threads, args.drift, 1.0 if args.quick else 2.0)
    cap = 1.0 if args.quick else 3.0
    models = [("mobilenet_v2", nasx.load_arch("mobilenet_v2"))]
    models += [(f"searched-{i}", a) for i, a in enumerate(searched_archs(2))]
    print(f"torch {torch.__version__}, threads {args.threads}, batch 1, float32, CPU")
    print(
        f"{'model':<14} {'MAdds':>7} {'nasx#1 ms':>10} {'nasx#2 ms':>10} {'Timer ms':>9} "
        f"{'nasx/Timer':>10} {'#1/#2':>7}"
    )
    worst_ratio = worst_repeat = 0.0
    for name, arch in models:
        module = build_seeded(arch).eval()
        x = torch.randn(1, *arch.input)
        a = measure_latency(module, arch.input, threads=args.threads, max_time_s=cap)
        b = measure_latency(module, arch.input, threads=args.threads, max_time_s=cap)
        with torch.inference_mode(), flushed_denormals():  # the same numeric setting nasx times under
            timer = Timer("m(x)", globals={"m": module, "x": x}, num_threads=args.threads)
            timer.timeit(5)  # warm-up, as nasx does
            ref = timer.blocked_autorange(min_run_time=cap).median * 1e3
        nasx_ms = (a.median_ms + b.median_ms) / 2
        ratio, repeat = nasx_ms / ref, a.median_ms / b.median_ms
        worst_ratio = max(worst_ratio, abs(ratio - 1))
        worst_repeat = max(worst_repeat, abs(repeat - 1))
        print(
            f"{name:<14} {nasx.cost(arch).madds / 1e6:>6.0f}M {a.median_ms:>10.2f} {b.median_ms:>10.2f} "
            f"{ref:>9.2f} {ratio:>10.3f} {repeat:>7.3f}"
        )
    ok = worst_ratio <= 0.05 and worst_repeat <= 0.05
    print(
        f"largest |nasx/Timer - 1| = {100 * worst_ratio:.1f}%, largest |run1/run2 - 1| = {100 * worst_repeat:.1f}% "
        f"-> {'OK (within 5%)' if ok else 'OVER 5% (is the machine busy?)'}"
    )
    return 0 if ok else 1


def drift(threads: int, rounds: int, cap: float) -> int:
    models = [("mobilenet_v2", nasx.load_arch("mobilenet_v2"))]
    models += [(f"searched-{i}", a) for i, a in enumerate(searched_archs(2))]
    modules = {}
    for name, arch in models:
        modules[name] = build_seeded(arch).eval()
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='nasx-drift-')}/calibration.db")
    fp = fingerprint("cpu", threads, 1, (3, 224, 224), drift_corrected=True)
    raw: dict[str, list[float]] = {name: [] for name, _ in models}
    corrected: dict[str, list[float]] = {name: [] for name, _ in models}
    retried = 0
    print(
        f"torch {torch.__version__}, threads {threads}, {rounds} rounds of {len(models)} models, calibration "
        f"{CALIBRATION_MODEL} for {CALIBRATION_S} s before and after each measurement"
    )
    for r in range(rounds):
        for name, arch in models:
            lat = timed(modules[name], arch.input, store, fp, fingerprint_hash(fp), threads=threads, max_time_s=cap)
            raw[name].append(lat["raw_median_ms"])
            corrected[name].append(lat["median_ms"])
            retried += lat["attempts"] > 1
        print(
            f"round {r + 1}/{rounds}: "
            + "  ".join(f"{n} {raw[n][-1]:.2f} -> {corrected[n][-1]:.2f} ms" for n, _ in models),
            flush=True,
        )

    def cv(values):
        return statistics.stdev(values) / statistics.fmean(values)

    print(
        f"\n{'model':<14} {'raw ms (min..max)':>19} {'raw CV':>7} {'corrected ms':>19} {'corr. CV':>8} "
        f"{'raw/corr. CV':>12}"
    )
    for name, _ in models:
        a, b = raw[name], corrected[name]
        print(
            f"{name:<14} {f'{min(a):.2f}..{max(a):.2f}':>19} {cv(a):>7.3f} {f'{min(b):.2f}..{max(b):.2f}':>19} "
            f"{cv(b):>8.3f} {cv(a) / cv(b):>12.2f}"
        )
    print(
        f"{retried} of {rounds * len(models)} measurements taken again: their calibrations before and after disagreed"
    )
    return 0


def windows(threads: int, rounds: int) -> int:
    variants = {"first look": dict(FIRST_LOOK), "before": {"warmup_s": 0.25, "min_time_s": 0.5}}
    models = [("mobilenet_v2", nasx.load_arch("mobilenet_v2"))]
    models += [(f"searched-{i}", a) for i, a in enumerate(searched_archs(5))]
    modules = {name: build_seeded(arch).eval() for name, arch in models}
    store = Store(f"sqlite:///{tempfile.mkdtemp(prefix='nasx-windows-')}/calibration.db")
    fp = fingerprint("cpu", threads, 1, (3, 224, 224), drift_corrected=True)
    medians = {(n, v): [] for n, _ in models for v in variants}
    seconds = {v: [] for v in variants}
    print(
        f"torch {torch.__version__}, threads {threads}, {rounds} rounds of {len(models)} models x {len(variants)} "
        f"windows: " + ", ".join(f"{v} {w}" for v, w in variants.items())
    )
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(variants)[::-1]
        for name, arch in models:
            for v in order:
                t0 = time.perf_counter()
                lat = timed(modules[name], arch.input, store, fp, fingerprint_hash(fp), threads=threads, **variants[v])
                seconds[v].append(time.perf_counter() - t0)
                medians[(name, v)].append(lat["median_ms"])
        print(f"round {r + 1}/{rounds} done", flush=True)

    def cv(values):
        return statistics.stdev(values) / statistics.fmean(values)

    a, b = variants
    print(f"\n{'model':<14} {a + ' ms':>14} {a + ' CV':>14} {b + ' ms':>10} {b + ' CV':>10} {'ratio':>6}")
    for name, _ in models:
        x, y = medians[(name, a)], medians[(name, b)]
        ratio = statistics.median(x) / statistics.median(y)
        print(
            f"{name:<14} {statistics.median(x):>14.2f} {cv(x):>14.3f} {statistics.median(y):>10.2f} {cv(y):>10.3f} "
            f"{ratio:>6.3f}"
        )
    for v in variants:
        print(f"{v}: {statistics.fmean(seconds[v]):.2f} s a measurement (calibrations and retries included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
