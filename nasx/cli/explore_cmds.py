"""Design-space exploration: `nasx explore`, `nasx microbench`."""

from __future__ import annotations

import dataclasses
import json
import sys

from nasx.cli.common import DRIFT_HELP, RUNTIME_HELP, message_stream


def cmd_explore(args) -> int:
    from nasx.cli.settings import explore_settings_from_args
    from nasx.explore.output import judgement, text_report, write_html
    from nasx.explore.run import explore
    from nasx.util.files import atomic_write_text, check_target, is_stdout

    settings = explore_settings_from_args(args)
    to_stdout = args.json == "-" or (args.json is not None and is_stdout(args.json))
    if args.json not in (None, "-"):
        check_target(args.json, ".json")  # an unwritable FILE is refused before any work
    result = explore(settings)
    if args.json is not None:
        text = json.dumps(judgement(result), indent=1)
        if args.json == "-":
            print(text)
        else:
            print(f"wrote {atomic_write_text(args.json, text + chr(10), '.json')}", file=sys.stderr)
    if not to_stdout:
        print(text_report(result))
    if args.output != "none":
        print(f"wrote {write_html(result, args.output)}", file=sys.stderr if to_stdout else message_stream(args.output))
    return 0


def cmd_microbench(args) -> int:
    from nasx.cli.settings import check_threads
    from nasx.explore.microbench import parse_shapes, run, text_report, write_html
    from nasx.measure.device import fingerprint, resolve_device
    from nasx.util.units import parse_count

    check_threads(args.threads, args.oversubscribe)
    resolve_device(args.device)
    shapes = parse_shapes(args.shapes)
    target = parse_count(args.target, "--target")
    rows = run(
        shapes, target, args.threads, args.device, args.measure_time, blocks=not args.ops_only, progress=not args.quiet
    )
    text = text_report(rows, fingerprint(args.device, args.threads), target)
    if args.json:
        print(json.dumps([r.as_dict() for r in rows], indent=1))
    else:
        print(text)
    if args.output != "none":
        print(
            f"wrote {write_html(rows, text, args.output)}",
            file=sys.stderr if args.json else message_stream(args.output),
        )
    return 0


def add_explore_parsers(sub, space_help: str) -> None:
    from nasx.explore.settings import ExploreSettings
    from nasx.space.config import DEFAULT_SPACE
    from nasx.store.db import DEFAULT_STORAGE

    explore_default = {f.name: f.default for f in dataclasses.fields(ExploreSettings)}
    x = sub.add_parser("explore", help="sample a space with the cost core, time a spread subset, fit a latency model")
    x.add_argument("--config", default=DEFAULT_SPACE, help=space_help)
    x.add_argument(
        "-n",
        type=int,
        default=explore_default["n"],
        help="architectures drawn uniformly from the space, and as many "
        f"from each single-family sub-space (default {explore_default['n']})",
    )
    x.add_argument(
        "--measure",
        type=int,
        default=explore_default["measure"],
        help="architectures to build and time, spread over the MAdds range, half from the whole space, the rest "
        f"over the families (default {explore_default['measure']}; 0: cost only)",
    )
    x.add_argument("--seed", type=int, default=explore_default["seed"], help="sampling seed (default 0)")
    x.add_argument("--storage", default=explore_default["storage"], help=f"SQLAlchemy URL (default {DEFAULT_STORAGE})")
    x.add_argument("--device", choices=("cpu", "cuda", "mps"), default=explore_default["device"])
    x.add_argument("--threads", type=int, help="torch threads for timing (default: all usable cores, as search)")
    x.add_argument("--oversubscribe", action="store_true", help="allow --threads above the usable cores")
    x.add_argument(
        "--measure-time",
        type=float,
        default=explore_default["measure_time_s"],
        help=f"time cap per latency measurement, s (default {explore_default['measure_time_s']})",
    )
    x.add_argument(
        "--no-drift-correction",
        action="store_true",
        help=DRIFT_HELP + " (as the search it will prefilter: the latency model is kept per setting)",
    )
    x.add_argument("--runtime", choices=("torch", "onnxruntime"), default=explore_default["runtime"], help=RUNTIME_HELP)
    x.add_argument("-o", "--output", default="explore.html", help="HTML file (default explore.html; none: skip)")
    x.add_argument("--no-store-model", action="store_true", help="do not store the fitted latency and block models")
    x.add_argument(
        "--no-blocks",
        action="store_true",
        help="do not time the measured networks' layers into the block table, nor fit the block model",
    )
    x.add_argument(
        "--json",
        nargs="?",
        const="-",
        metavar="FILE",
        help="write the run, every predictor's held-out judgement (name, n_heldout, within_5pct, within_10pct, "
        "kendall_tau_b) and the models as JSON to FILE (the text report still printed), or to stdout alone "
        "without FILE",
    )
    x.add_argument("--quiet", action="store_true", help="no progress lines")
    x.set_defaults(func=cmd_explore)

    m = sub.add_parser(
        "microbench",
        help="throughput of conv, group, depthwise, partial, channel-wise conv and the "
        "five block families at matched MAdds",
    )
    m.add_argument(
        "--shapes",
        default="32x56,64x28,128x14,256x7",
        help="CHANNELSxRESOLUTION list (default 32x56,64x28,128x14,256x7: a 3x3 conv has the same MAdds at each)",
    )
    m.add_argument("--target", default="60M", help="MAdds per measured stack (default 60M)")
    m.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu")
    m.add_argument("--threads", type=int, help="torch threads (default: all usable cores)")
    m.add_argument("--oversubscribe", action="store_true", help="allow --threads above the usable cores")
    m.add_argument("--measure-time", type=float, default=1.0, help="time cap per measurement, s (default 1)")
    m.add_argument("--ops-only", action="store_true", help="only the ops, not the block families")
    m.add_argument("-o", "--output", default="microbench.html", help="HTML file (default microbench.html; none: skip)")
    m.add_argument("--json", action="store_true", help="print the rows as JSON")
    m.add_argument("--quiet", action="store_true", help="no progress lines")
    m.set_defaults(func=cmd_microbench)
