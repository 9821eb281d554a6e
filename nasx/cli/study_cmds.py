"""The commands that read a study: pareto, trials, export, report, dashboard."""

from __future__ import annotations

import sys

from nasx.cli.common import message_stream, study_options
from nasx.errors import NasxError


def cmd_pareto(args) -> int:
    from nasx.store.studies import front_table, knee_trial, load_study, study_front, summary_json
    from nasx.study.inspect import study_header

    study = load_study(args.storage, args.study)
    front = study_front(study)
    if args.command == "trials":
        rows = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    else:
        rows = front
    if args.json:
        print(summary_json(rows, knee=knee_trial(front)))
        return 0
    print(study_header(study, args.storage, front) + "\n")
    if rows:
        print(front_table(rows, status=args.command == "trials", knee=knee_trial(front)))
    else:
        print(
            "no feasible trial yet: raise the budget or run more trials"
            if args.command == "pareto"
            else "no trials yet"
        )
    return 0


def cmd_export(args) -> int:
    from nasx.store.studies import load_study, study_front
    from nasx.study.export import check_target, export_trial, pick_best

    if sum((args.trial is not None, args.best is not None, args.knee)) != 1:
        raise NasxError("give exactly one of --trial N, --best TARGET (e.g. --best 5ms or --best 10M) and --knee")
    check_target(args.output, f".{args.format}")  # an unwritable -o is refused before any study is read
    study = load_study(args.storage, args.study)
    number = args.trial
    if args.knee:
        from nasx.store.studies import knee_trial, latency_ms

        front = study_front(study)
        knee = knee_trial(front)
        if knee is None:
            raise NasxError(
                f"the front of study {study.study_name!r} has {len(front)} member(s): a knee needs 3 or "
                f"more; pick one with --trial N (see `nasx pareto`)"
            )
        print(
            f"--knee: trial {knee.number} ({latency_ms(knee):.3f} ms, score {knee.values[1]:.2f}), the knee of a "
            f"front of {len(front)}",
            file=sys.stderr,
        )
        number = knee.number
    if args.best is not None:
        t, key, value = pick_best(study_front(study), args.best, study.user_attrs.get("budget_metric", "madds"))
        from nasx.util.fmt import human

        if key == "latency_ms":
            from nasx.store.studies import latency_ms

            have, want = f"{latency_ms(t):.3f} ms", f"{value:g} ms"
        else:
            have, want = f"{human(t.user_attrs[key])} {key}", f"{human(value)} {key}"
        print(f"--best {args.best}: trial {t.number} ({have}), the front member nearest to {want}", file=sys.stderr)
        number = t.number
    print(export_trial(study, number, args.format, args.output).line(), file=message_stream(args.output))
    return 0


def cmd_report(args) -> int:
    from nasx.measure.latency import check_measure_time
    from nasx.store.studies import load_study
    from nasx.study.report import make_report
    from nasx.study.report_page import refs_table

    check_measure_time(args.measure_time)
    refs = None if args.refs is None else [r.strip() for r in args.refs.split(",") if r.strip() and r.strip() != "none"]
    study = load_study(args.storage, args.study)
    path, pngs, data = make_report(
        study, args.storage, args.output, refs=refs, png=not args.no_png, measure_time_s=args.measure_time
    )
    out = message_stream(args.output)
    print(
        f"wrote {path} (study {study.study_name!r}: {len(data.measured)} measured, {len(data.rejected)} "
        f"rejected, front of {len(data.front)}, {len(data.refs)} reference models)",
        file=out,
    )
    for png in pngs:
        print(f"wrote {png}", file=out)
    if data.refs:
        print(refs_table(data), file=out)
    for note in data.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


def cmd_dashboard(args) -> int:
    from nasx.study.dashboard import serve

    if not 0 <= args.port <= 65535:
        raise NasxError(f"--port must be in 0..65535, got {args.port}")
    import logging

    # optuna-dashboard logs every failed importance computation (too few trials): noise beside the URL
    logging.getLogger("optuna_dashboard").setLevel(logging.ERROR)
    serve(args.storage, args.study, args.host, args.port)
    return 0


def add_study_parsers(sub) -> None:
    for name, text in (
        ("pareto", "the stored Pareto front of a study, as a table"),
        ("trials", "every trial of a study (rejected and failed ones too), as a table"),
    ):
        q = sub.add_parser(name, help=text)
        study_options(q)
        q.add_argument("--json", action="store_true", help="print a JSON list of trials (arch included)")
        q.set_defaults(func=cmd_pareto)

    e = sub.add_parser("export", help="write a trial's architecture as json, onnx or pt2")
    study_options(e)
    e.add_argument("--trial", type=int, help="trial number (see `nasx pareto`)")
    e.add_argument(
        "--best",
        metavar="TARGET",
        help="the front member nearest to a latency (5ms, 800us) or a compute budget in the study's metric (10M)",
    )
    e.add_argument(
        "--knee", action="store_true", help="the knee of the front: the recommended trade-off (marked in `nasx pareto`)"
    )
    e.add_argument(
        "--format",
        choices=("json", "onnx", "pt2"),
        default="json",
        help="json: rebuildable arch (default); onnx: checked with onnxruntime; pt2: torch.export",
    )
    e.add_argument("-o", "--output", required=True, help="file to write (written atomically)")
    e.set_defaults(func=cmd_export)

    r = sub.add_parser("report", help="standalone HTML report of a study (plotly)")
    study_options(r)
    r.add_argument("-o", "--output", default="report.html", help="HTML file to write (default report.html)")
    r.add_argument(
        "--refs",
        help="reference models from `nasx zoo`, comma-separated, or none (default: the zoo "
        "models made for the study's input within 2x its compute budget, as scripts/bench_search.py "
        "compares; else mobilenet_v2,mobilenet_v3_small,shufflenet_v2_1.0,fasternet_t0,resnet18)",
    )
    r.add_argument(
        "--measure-time",
        type=float,
        help="time cap per reference measurement, s (default: the study's own, as its trials were timed)",
    )
    r.add_argument("--no-png", action="store_true", help="skip the static PNGs (made with kaleido when it works)")
    r.set_defaults(func=cmd_report)

    d = sub.add_parser("dashboard", help="optuna-dashboard on a study's storage")
    study_options(d)
    d.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    d.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    d.set_defaults(func=cmd_dashboard)
