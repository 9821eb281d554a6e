"""`nasx latency ARCH...`: a user's own networks timed on this device as a search times them, or predicted from
the block latency table (`--predict`)."""

from __future__ import annotations

import json

from nasx.cli.common import DRIFT_HELP, RUNTIME_HELP


def cmd_latency(args) -> int:
    from nasx.arch import load_arch
    from nasx.cli.settings import check_threads, runtime_option
    from nasx.errors import NasxError
    from nasx.measure.block_model import predict_latency, require_block_model
    from nasx.measure.blocks import BlockTable
    from nasx.measure.cached import Timer
    from nasx.measure.device import resolve_device
    from nasx.measure.latency import DEFAULT_MEASURE_TIME_S, check_measure_time
    from nasx.store.db import Store
    from nasx.util.fmt import render_table

    if args.threads is not None and args.threads < 1:
        raise NasxError(f"--threads must be at least 1, got {args.threads}")
    check_threads(args.threads, args.oversubscribe)
    check_measure_time(args.measure_time)
    runtime = runtime_option(args)
    resolve_device(args.device)
    archs = [load_arch(a) for a in args.arch]  # every file checked before anything is timed
    store = Store(args.storage)
    timers: dict[tuple, Timer] = {}  # one per input shape: the fingerprint names the input
    for arch in archs:
        if arch.input not in timers:
            timers[arch.input] = Timer.here(
                store,
                arch.input,
                device=args.device,
                threads=args.threads,
                drift_correction=not args.no_drift_correction,
                runtime=runtime,
                max_time_s=args.measure_time or DEFAULT_MEASURE_TIME_S,
            )
    models, tables = {}, {}
    if args.predict:  # every fingerprint's model found before anything is timed
        for shape, timer in timers.items():
            models[shape] = require_block_model(store, timer.fp, timer.fp_hash)
            tables[shape] = BlockTable(timer)
    rows = []
    for text, arch in zip(args.arch, archs, strict=True):
        timer = timers[arch.input]
        row = {"arch": text, "name": arch.name, "arch_hash": arch.content_hash()}
        if args.predict:
            p = predict_latency(arch, timer, models[arch.input], table=tables[arch.input])
            row |= {"latency_ms": p.latency_ms, "iqr_ms": None, "predicted": True, "cached": False}
            row |= {"layer_sum_ms": p.layer_sum_ms, "layers": p.n_layers, "layers_timed": p.layers_timed}
            row["model"] = p.model.formula()
        else:
            m = timer.measure(arch)
            row |= {"latency_ms": m.latency["median_ms"], "iqr_ms": m.latency["iqr_ms"], "predicted": False}
            row["cached"] = m.cached
        rows.append(row | {"runtime": runtime, "fingerprint_hash": timer.fp_hash})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0

    def how(r: dict) -> str:
        if r["predicted"]:
            return f"predicted ({r['layers']} layers, {r['layers_timed']} timed now)"
        return "measured (from the latency cache)" if r["cached"] else "measured"

    table = [
        [
            r["arch"],
            r["name"],
            f"{r['latency_ms']:.3f}",
            "" if r["iqr_ms"] is None else f"{r['iqr_ms']:.3f}",
            how(r),
        ]
        for r in rows
    ]
    print(render_table(["arch", "name", "latency ms", "IQR ms", "how"], table))
    fps = sorted({r["fingerprint_hash"] for r in rows})
    print(f"device fingerprint {', '.join(fps)} ({runtime}), storage {args.storage}")
    return 0


def add_latency_parser(sub) -> None:
    from nasx.store.db import DEFAULT_STORAGE

    p = sub.add_parser(
        "latency",
        help="time architectures on this device as a search does, or predict them from the block latency table",
    )
    p.add_argument("arch", nargs="+", help="arch JSON files or reference model names (see `nasx zoo`)")
    p.add_argument(
        "--predict",
        action="store_true",
        help="predict from the block table and the block model `nasx explore` stored for this fingerprint, timing "
        "only the layers the table lacks (flagged predicted)",
    )
    p.add_argument("--runtime", choices=("torch", "onnxruntime"), default="torch", help=RUNTIME_HELP)
    p.add_argument("--threads", type=int, help="timing threads (default: all usable cores, as search)")
    p.add_argument("--oversubscribe", action="store_true", help="allow --threads above the usable cores")
    p.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu")
    p.add_argument("--measure-time", type=float, help="time cap per measurement, s (default: a search's, 2)")
    p.add_argument("--no-drift-correction", action="store_true", help=DRIFT_HELP)
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"database of the latency cache and block table, the one a search uses (default {DEFAULT_STORAGE})",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per arch, in input order")
    p.set_defaults(func=cmd_latency)
