"""`nasx cost`, `nasx zoo`: an architecture's cost table, the reference architectures."""

from __future__ import annotations

import json

from nasx.errors import NasxError


def parse_shape(text: str) -> tuple[int, int, int]:
    try:
        dims = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise NasxError(f"--input {text!r} must be CxHxW with positive integers, e.g. 3x224x224")
    return dims  # type: ignore[return-value]


def cmd_cost(args) -> int:
    import nasx.errors
    from nasx.arch import Arch, load_arch
    from nasx.cost import cost

    nasx.errors.FORCE = "--force"  # the limits' messages name this command's flag, not the API's argument
    arch = load_arch(args.arch, force=args.force)
    if args.input:  # through the loader again, so the size limits and shape checks apply to the new input
        arch = Arch.from_dict({**arch.to_dict(), "input": list(parse_shape(args.input))}, force=args.force)
    if args.compare:
        from nasx.measure.compare import compare

        result = compare(arch, args.compare)
        print(json.dumps(result.to_json_dict(), indent=1) if args.json else result.table())
        return 0
    flags = {f: getattr(args, f) for f in ("bn", "bias", "act", "elementwise", "pool", "gap")}
    report = cost(arch, args.convention, dtype=args.dtype, **flags)
    print(json.dumps(report.to_json_dict(), indent=1) if args.json else report.table())
    return 0


def cmd_zoo(args) -> int:
    from nasx import zoo
    from nasx.cost import cost
    from nasx.util.fmt import human, render_table

    rows = []
    for name in zoo.names():
        r = cost(name)
        rows.append([name, "x".join(map(str, r.arch.input)), human(r.madds), human(r.params), human(r.mac)])
    print(render_table(["model", "input", "MAdds", "params", "MAC (elem)"], rows))
    return 0


def add_cost_parser(sub) -> None:
    c = sub.add_parser("cost", help="per-layer FLOPs / params / MAC table of an architecture")
    c.add_argument("arch", help="arch JSON file or reference model name (see `nasx zoo`)")
    c.add_argument("--input", help="override the input shape, CxHxW (e.g. 3x224x224)")
    c.add_argument(
        "--convention",
        default="madds",
        choices=("madds", "flops", "exact", "fvcore", "torch"),
        help="what the ops column counts (default madds); fvcore/torch reproduce those counters",
    )
    for flag, text in (
        ("bn", "batch norm, 2 per element"),
        ("bias", "bias additions"),
        ("act", "activations"),
        ("elementwise", "adds and multiplies"),
        ("pool", "k x k pooling"),
        ("gap", "global average pooling, 1 per input element"),
    ):
        c.add_argument(f"--{flag}", action="store_true", help=f"also count {text}")
    c.add_argument("--dtype", default="float32", help="element type for MAC bytes (default float32)")
    c.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    c.add_argument("--force", action="store_true", help="lift the size limits on untrusted arch files")
    c.add_argument(
        "--compare",
        choices=("fvcore", "ptflops", "thop"),
        help="run this counter on the built module and print its counts beside nasx's under matching "
        'conventions, saying why they differ (needs: pip install "nasx[compare]")',
    )
    c.set_defaults(func=cmd_cost)


def add_zoo_parser(sub) -> None:
    z = sub.add_parser("zoo", help="list the reference architectures")
    z.set_defaults(func=cmd_zoo)
