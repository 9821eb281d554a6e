# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: tab completion where argcomplete is installed)
"""The `nasx` command line. Every nasx error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import warnings

from nasx.errors import NasxError

RUNTIME_HELP = (
    "what each network is timed in: torch (eager, the default) or onnxruntime (exported to ONNX once, "
    'timed in an InferenceSession with --threads intra-op threads; needs pip install "nasx[export]")'
)
DRIFT_HELP = (
    "time raw latencies: no calibration workload around each measurement (by default every latency is "
    "rescaled for the machine's speed at that moment; docs/latency.md)"
)


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _DefaultsHelp(argparse.HelpFormatter):
    """Appends each option's default to its help, unless it has none (None, a flag's False) or says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def quiet_library_warnings() -> None:
    """The CLI owns the process: optuna's, torch's and plotly's warnings (experimental APIs, a retried trial's
    "constraint already set", optuna-dashboard's "importance may be inaccurate" flood) say nothing a user can
    act on, and nasx's own problems are errors, not warnings. -W or PYTHONWARNINGS bring them back."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


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


def cmd_search(args) -> int:
    from nasx.cli.settings import search_settings_from_args
    from nasx.search.run import search
    from nasx.search.workers import run_workers
    from nasx.store.studies import front_table

    settings = search_settings_from_args(args)
    if args.workers > 1:
        result = run_workers(settings, args.workers)
    else:
        result = search(settings)
    study, front = result.study, result.front
    new = len(study.trials) - result.resumed_from
    share = f"{100 * result.measure_s / result.elapsed_s:.0f}%" if result.elapsed_s else "-"
    print(
        f"\n{new} trials in {result.elapsed_s:.1f} s ({result.measure_s:.1f} s = {share} measuring latency); "
        f"study {study.study_name!r} now holds {len(study.trials)} trials"
    )
    print(result.time_split())
    if result.retime is not None:
        print(result.retime.summary())
    if settings.prefilter:
        skipped = sum(1 for t in study.trials[result.resumed_from :] if t.user_attrs.get("prefiltered"))
        print(
            f"prefilter: {skipped} candidates predicted off the front were scored but not timed (their trials "
            f"are PRUNED, reason 'prefiltered: ...')"
        )
    if front:
        print(f"\nPareto front ({len(front)} trials; latency on {settings.device}, score {settings.score}):")
        from nasx.store.studies import knee_trial

        print(front_table(front, knee=knee_trial(front)))
    else:
        print("\nno feasible trial yet: raise the budget or run more trials")
    from nasx.store.db import DEFAULT_STORAGE

    # nasx dashboard, not optuna-dashboard: that script is installed only with the extra, and nasx's command
    # says which one to install
    where = "" if settings.storage == DEFAULT_STORAGE else f" --storage {shlex.quote(settings.storage)}"
    print(f"\ninspect: nasx dashboard{where} --study {shlex.quote(study.study_name)}")
    if front:
        print(
            f"export:  nasx export --storage {settings.storage} --study {study.study_name} --trial "
            f"{front[0].number} --format onnx -o best.onnx"
        )
    if result.interrupted:
        if settings.more:
            again = "it runs the same number more (--more)"
        elif settings.n_trials is None:
            again = "it runs until --timeout again"
        else:
            again = f"it runs what is left of --n-trials {settings.n_trials}"
        print(
            f"\ninterrupted: every completed trial is stored. Resume with the same command ({again}):\n  "
            f"nasx {' '.join(shlex.quote(a) for a in sys.argv[1:])}"
        )
        return 130
    return 0


# --- inspect and export: pareto, trials, export, report, dashboard ---


def _messages(output):
    """Where a command says what it wrote: stderr when the output itself goes to stdout (-o /dev/stdout)."""
    from nasx.util.files import is_stdout

    return sys.stderr if output != "none" and is_stdout(output) else sys.stdout


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
    print(export_trial(study, number, args.format, args.output).line(), file=_messages(args.output))
    return 0


def cmd_report(args) -> int:
    from nasx.measure.latency import check_measure_time
    from nasx.store.studies import load_study
    from nasx.study.report import make_report, refs_table

    check_measure_time(args.measure_time)
    refs = None if args.refs is None else [r.strip() for r in args.refs.split(",") if r.strip() and r.strip() != "none"]
    study = load_study(args.storage, args.study)
    path, pngs, data = make_report(
        study, args.storage, args.output, refs=refs, png=not args.no_png, measure_time_s=args.measure_time
    )
    out = _messages(args.output)
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


# --- design-space exploration: explore, microbench ---


def cmd_explore(args) -> int:
    from nasx.cli.settings import explore_settings_from_args
    from nasx.explore.output import text_report, write_html
    from nasx.explore.run import explore

    result = explore(explore_settings_from_args(args))
    if args.json:
        print(
            json.dumps(
                {
                    "run": result.run_id,
                    "fingerprint_hash": result.fingerprint_hash,
                    "populations": {k: len(v) for k, v in result.populations.items()},
                    "predictors": [p.as_dict() for p in result.predictors],
                    "model": result.model.to_dict() if result.model else None,
                },
                indent=1,
            )
        )
    else:
        print(text_report(result))
    if args.output != "none":
        print(f"wrote {write_html(result, args.output)}", file=sys.stderr if args.json else _messages(args.output))
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
        print(f"wrote {write_html(rows, text, args.output)}", file=sys.stderr if args.json else _messages(args.output))
    return 0


# --- accuracy: validate-score, retrain (and the training options of search) ---


def add_train_options(q, what: str, steps_default: int | None = None) -> None:
    from nasx.score.train import DEFAULT_BATCH, DEFAULT_STEPS

    q.add_argument(
        "--data",
        help=f"data set for {what}: digits (scikit-learn's bundled set, the default), "
        "cifar10:PATH (CIFAR-10 python batches) or folder:PATH (one subfolder per class)",
    )
    q.add_argument(
        "--train-steps", type=int, help=f"optimizer steps per training (default {steps_default or DEFAULT_STEPS})"
    )
    q.add_argument("--train-batch", type=int, help=f"training batch size (default {DEFAULT_BATCH})")


def cmd_validate_score(args) -> int:
    from nasx.measure.device import resolve_device
    from nasx.score.data import load_data
    from nasx.score.train import DEFAULT_BATCH, DEFAULT_STEPS, TrainSettings
    from nasx.score.validate import PROXIES, validate_score
    from nasx.space.config import load_space
    from nasx.util.units import parse_count

    if args.n < 3:
        raise NasxError(f"--n must be at least 3 (rank correlations need 3 points), got {args.n}")
    if args.truth != "train":
        return _validate_bench(args)
    proxies = [p.strip() for p in args.proxies.split(",") if p.strip()] if args.proxies else list(PROXIES)
    unknown = [p for p in proxies if p not in PROXIES]
    if unknown or not proxies:
        raise NasxError(f"--proxies: unknown proxy {', '.join(unknown) or '(none given)'}; use {','.join(PROXIES)}")
    resolve_device(args.device)
    space = load_space(args.config or "cifar32")
    train = TrainSettings(
        steps=DEFAULT_STEPS if args.train_steps is None else args.train_steps,
        batch=DEFAULT_BATCH if args.train_batch is None else args.train_batch,
        device=args.device,
    )
    data = load_data(args.data or "digits", space.input, space.classes)
    budget = parse_count(args.budget, "--budget") if args.budget else None
    print(f"{data.describe()}; training {train.key}", file=sys.stderr)
    result = validate_score(
        space,
        args.n,
        data,
        train,
        proxies,
        seed=args.seed,
        budget=budget,
        storage=None if args.storage == "none" else args.storage,
        seeds=args.seeds,
    )
    return _print_validation(result, args)


def _validate_bench(args) -> int:
    """validate-score --truth nas-bench-macro | zoo: every registered score against the table's accuracy or
    the zoo's published ImageNet top-1, nothing trained."""
    from nasx.score.truths import validate_all, validate_bench, validate_ofa, validate_zoo

    options = (
        ("--config", args.config),
        ("--data", args.data),
        ("--train-steps", args.train_steps),
        ("--train-batch", args.train_batch),
        ("--budget", args.budget),
    )
    given = [opt for opt, v in options if v is not None] + (["--seeds"] if args.seeds != 1 else [])
    if args.truth == "zoo" and (args.n != 30 or args.seed != 0):
        given += ["--n" if args.n != 30 else "--seed"]  # the zoo is one fixed set of networks
    if given:
        raise NasxError(
            f"{', '.join(given)} do not apply with --truth {args.truth}: its networks and their training are "
            f"given (they choose and train networks under --truth train)"
        )
    scores = [p.strip() for p in args.proxies.split(",") if p.strip()] if args.proxies else None
    storage = None if args.storage == "none" else args.storage
    if args.truth == "all":
        return _print_all(validate_all(args.n, scores, seed=args.seed, storage=storage), args)
    if args.truth == "zoo":
        result = validate_zoo(scores, storage=storage)
    elif args.truth == "ofa-mbv3":
        result = validate_ofa(args.n, scores, seed=args.seed, storage=storage)
    else:
        result = validate_bench(args.n, scores, seed=args.seed, storage=storage)
    return _print_validation(result, args)


def _print_all(results, args) -> int:
    """--truth all: each truth's table, then every score's tau-b side by side with its worst case."""
    from nasx.score.truths import worst_case_table, worst_cases
    from nasx.score.validate import scatter_html

    for result in results:
        print(result.table() + "\n")
    print(worst_case_table(results))
    if args.json:
        from nasx.util.files import atomic_write_text

        summary = [
            {"score": p, "kendall_tau_b": dict(zip([r.truth for r in results], ts)), "worst": w}
            for p, ts, w in worst_cases(results)
        ]
        text = json.dumps({"worst_cases": summary, "truths": [r.to_json_dict() for r in results]}, indent=1)
        print(f"wrote {atomic_write_text(args.json, text, '.json')}")
    if args.output != "none":
        from pathlib import Path

        out = Path(args.output)
        suffix = out.suffix or ".html"
        for result in results:
            print(f"wrote {scatter_html(result, out.with_name(f'{out.stem}-{result.truth}{suffix}'))}")
    return 0


def _print_validation(result, args) -> int:
    from nasx.score.validate import scatter_html

    if args.json:
        from pathlib import Path

        from nasx.util.files import atomic_write

        text = json.dumps(result.to_json_dict(), indent=1)
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), ".json")
    to_stdout = any(p and p != "none" and _messages(p) is sys.stderr for p in (args.output, args.json))
    out = sys.stderr if to_stdout else sys.stdout
    print(result.table(), file=out)
    if args.output != "none":
        print(f"wrote {scatter_html(result, args.output)}", file=out)
    if args.json:
        print(f"wrote {args.json}", file=out)
    return 0


def cmd_score(args) -> int:
    """The score of each architecture, computed as `nasx search` computes it (nasx.score.cached.Scorer: the
    network built under WEIGHTS_SEED, on the CPU, the arch's input)."""
    import math

    from nasx.arch import load_arch
    from nasx.score.base import needs_module
    from nasx.score.cached import Scorer
    from nasx.score.proxies import check_score, get_score, needs_data
    from nasx.search.settings import SearchSettings
    from nasx.store.db import Store
    from nasx.util.fmt import render_table

    name = args.score or SearchSettings.score
    check_score(name)
    if needs_data(name):
        raise NasxError(
            f"--score {name} trains on a data set: use it in `nasx search` or `nasx validate-score`; "
            f"nasx score computes the scores that need no data"
        )
    archs = [load_arch(a) for a in args.arch]  # every file checked before anything is computed
    scorer = Scorer(name, get_score(name))
    # a score read off the cost core (capacity, the counts) takes microseconds: no database is opened for it
    store = None if args.storage == "none" or not needs_module(scorer.fn) else Store(args.storage)
    values = [scorer.score(store, arch).value for arch in archs]
    if args.json:
        # JSON has no infinity (a degenerate NASWOT kernel): null
        rows = [
            {"arch": text, "name": arch.name, "arch_hash": arch.content_hash(), "score_name": name}
            | {"score": v if math.isfinite(v) else None}
            for text, arch, v in zip(args.arch, archs, values, strict=True)
        ]
        print(json.dumps(rows, indent=1))
    else:
        rows = [[text, arch.name, f"{v:.6g}"] for text, arch, v in zip(args.arch, archs, values, strict=True)]
        print(render_table(["arch", "name", f"score: {name}"], rows))
    return 0


def cmd_retrain(args) -> int:
    from nasx.measure.device import resolve_device
    from nasx.store.studies import load_study
    from nasx.study.retrain import RETRAIN_STEPS, retrain

    resolve_device(args.device)
    study = load_study(args.storage, args.study)
    steps = RETRAIN_STEPS if args.train_steps is None else args.train_steps
    result = retrain(
        study,
        args.storage,
        args.trial,
        args.data,
        steps=steps,
        batch=args.train_batch,
        device=args.device,
        artifacts=args.artifacts,
        output=args.output,
    )
    print(result.line(), file=_messages(args.output) if args.output else sys.stdout)
    return 0


def add_accuracy_parsers(sub, study_options) -> None:
    from nasx.store.db import DEFAULT_STORAGE
    from nasx.study.retrain import RETRAIN_STEPS

    v = sub.add_parser("validate-score", help="rank correlation of each training-free score with trained accuracy")
    v.add_argument(
        "--truth",
        # nasx.score.validate.TRUTHS and "all", not imported at start
        choices=("train", "nas-bench-macro", "ofa-mbv3", "zoo", "all"),
        default="train",
        help="what to rank against: train (short training on --data, default), nas-bench-macro (the shipped "
        "table's accuracy after full CIFAR-10 training; every registered score, networks drawn from the table), "
        "ofa-mbv3 (Once-for-All MobileNetV3 subnets' ImageNet top-1), zoo (the published ImageNet top-1 of the "
        "18 zoo networks) or all (the last three side by side, each score's worst case)",
    )
    v.add_argument("--config", help="search space YAML or built-in name (default cifar32; --truth train)")
    v.add_argument("--n", type=int, default=30, help="architectures to sample (and train) (default 30)")
    v.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    v.add_argument("--budget", help="sample only architectures under this many MAdds, e.g. 12M")
    v.add_argument(
        "--proxies",
        help="comma-separated, from naswot,synflow,meco,zico,capacity,params,madds (default: all); with --truth "
        "nas-bench-macro any registered score (default: every one)",
    )
    v.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu", help="training device")
    add_train_options(v, "training (default digits)")
    v.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train each architecture under this many seeds; seeds "
        "beyond the first give the 'trained again' row, the noise ceiling of the ranking (default 1)",
    )
    v.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"database whose score cache is read and filled (default {DEFAULT_STORAGE}; none: no cache)",
    )
    v.add_argument("-o", "--output", default="validate-score.html", help="plotly scatter HTML (none: skip)")
    v.add_argument("--json", help="also write every architecture's scores and the correlations as JSON here")
    v.set_defaults(func=cmd_validate_score)

    q = sub.add_parser("score", help="the score of architectures, as a search computes it (default: its default)")
    q.add_argument("arch", nargs="+", help="arch JSON files or reference model names (see `nasx zoo`)")
    q.add_argument(
        "--score",
        help="a score that needs no data: capacity (the search's default), naswot, synflow, meco, zico, "
        "az_expressivity, az_progressivity, az_trainability, params, madds, mac, activations, depth, bench "
        "(NAS-Bench-Macro's trained accuracy, for its networks)",
    )
    q.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"score cache read and filled, the one a search uses (default {DEFAULT_STORAGE}; none: no cache)",
    )
    q.add_argument("--json", action="store_true", help="print a JSON list, one object per arch, in input order")
    q.set_defaults(func=cmd_score)

    r = sub.add_parser("retrain", help="train a trial's architecture longer; store accuracy and weights")
    study_options(r)
    r.add_argument("--trial", type=int, required=True, help="trial number (see `nasx pareto`)")
    r.add_argument("--device", choices=("cpu", "cuda", "mps"), default="cpu", help="training device")
    add_train_options(r, "training (default: the study's, else digits)", steps_default=RETRAIN_STEPS)
    r.add_argument("--artifacts", help="artifact folder (default: artifacts/ beside the SQLite database)")
    r.add_argument("-o", "--output", help="also write the weights (safetensors) to this file")
    r.set_defaults(func=cmd_retrain)


def make_parser() -> argparse.ArgumentParser:
    from nasx import __version__
    from nasx.space.config import builtin_names

    p = _Parser(prog="nasx", description="Hardware-aware NAS and design-space exploration for CNNs.")
    p.add_argument("--version", action="version", version=f"nasx {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    space_help = f"search space YAML or built-in name ({', '.join(builtin_names())})"

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

    from nasx.measure.device import default_threads
    from nasx.search.budgets import Budgets
    from nasx.search.settings import SearchSettings
    from nasx.space.config import DEFAULT_SPACE
    from nasx.store.db import DEFAULT_STORAGE

    def default(cls, name):  # the defaults are the settings' own: one home, so the CLI and the API cannot drift
        return next(f.default for f in dataclasses.fields(cls) if f.name == name)

    s = sub.add_parser(
        "search",
        help="search a space under FLOPs/MAC budgets, measuring real latency",
        formatter_class=_DefaultsHelp,
        description="Search a space for the Pareto front of measured latency and score under compute, MAC and "
        "parameter budgets. Re-running the same command resumes its study.",
    )
    g = s.add_argument_group("budgets", "a candidate over any budget is rejected from its cost alone, never built")
    g.add_argument(
        "--budget",
        help="compute budget with a K/M/G suffix, e.g. 300M, 0.3G, 3e8 (MAdds unless --budget-metric flops; a "
        "bare number under 1e5 is refused as a missing suffix)",
    )
    g.add_argument(
        "--budget-metric",
        choices=("madds", "flops"),
        default=default(Budgets, "metric"),
        help="what --budget bounds: multiply-adds, or FLOPs = 2 x MAdds",
    )
    g.add_argument("--mac-budget", help="memory access budget: elements (20M) or bytes (80MB)")
    g.add_argument("--params-budget", help="parameter budget, e.g. 5M")
    g = s.add_argument_group("space and sampler")
    g.add_argument("--config", help=f"{space_help} (default {DEFAULT_SPACE})")
    g.add_argument(
        "--space",
        metavar="FILE.py:FUNCTION",
        help="a define-by-run space instead of --config: a Python function of an Optuna trial returning an arch "
        "(or its JSON dict), as FILE.py:function or module:function (docs/define-by-run.md). Importing it runs "
        "that file's code, your own, as Optuna runs your objective",
    )
    g.add_argument(
        "--force-space",
        action="store_true",
        help="resume a --space study although its function's source changed (the study records the new source)",
    )
    g.add_argument(
        "--n-trials",
        type=int,
        default=default(SearchSettings, "n_trials"),
        help="the study's total of finished trials, rejected ones included: re-running an interrupted command "
        "runs what is left (several processes on one study share the total)",
    )
    g.add_argument(
        "--more",
        action="store_true",
        help="count --n-trials from now: run that many more trials, whatever the study already holds",
    )
    g.add_argument("--timeout", type=float, help="stop after this many seconds")
    g.add_argument(
        "--sampler",
        choices=("tpe", "nsga2", "random"),
        default=default(SearchSettings, "sampler"),
        help="Optuna sampler",
    )
    g.add_argument("--seed", type=int, help="sampler seed (default: none, a different search each time)")
    g.add_argument(
        "--score",
        default=default(SearchSettings, "score"),
        help="second objective: capacity (MAdds, activations and depth on one fixed scale, free; the best worst "
        "case against real accuracy), naswot, synflow, meco, zico, az_expressivity, az_progressivity, "
        "az_trainability, params, madds, mac, activations, depth, train (validation top-1 after a short seeded "
        "training on --data) or bench (NAS-Bench-Macro's trained accuracy, with --config nas-bench-macro)",
    )
    add_train_options(g, "--score train")
    g = s.add_argument_group(
        "measurement",
        "latency is timed on this machine; a study keeps one device, runtime, thread count, batch and drift setting",
    )
    g.add_argument(
        "--device", choices=("cpu", "cuda", "mps"), default=default(SearchSettings, "device"), help="device to time on"
    )
    g.add_argument(
        "--runtime", choices=("torch", "onnxruntime"), default=default(SearchSettings, "runtime"), help=RUNTIME_HELP
    )
    g.add_argument(
        "--threads",
        type=int,
        help=f"torch threads for timing, at most the usable cores (default: all usable cores, here "
        f"{default_threads()})",
    )
    g.add_argument("--oversubscribe", action="store_true", help="allow --threads above the usable cores")
    g.add_argument("--batch", type=int, default=default(SearchSettings, "batch"), help="batch size for timing")
    g.add_argument(
        "--measure-time",
        type=float,
        default=default(SearchSettings, "measure_time_s"),
        help="time cap per latency measurement, s",
    )
    g.add_argument("--no-drift-correction", action="store_true", help=DRIFT_HELP)
    g.add_argument(
        "--no-retime",
        action="store_true",
        help="show the front as first measured: skip re-timing its members side by side at the end (docs/latency.md)",
    )
    g.add_argument(
        "--prefilter",
        action="store_true",
        help="skip timing candidates that the latency model stored by `nasx explore` for this device predicts far "
        "off the current front",
    )
    g.add_argument(
        "--prefilter-margin",
        type=float,
        help="how much faster than predicted a candidate may run and still be skipped, e.g. 0.3 (default: the "
        "model's held-out p90 relative error, >= 0.1)",
    )
    g = s.add_argument_group("storage")
    g.add_argument(
        "--storage",
        default=default(SearchSettings, "storage"),
        help="SQLAlchemy URL: sqlite:///PATH, postgresql://..., mysql+pymysql://... (SQLite's folder is made only "
        "for the default studies/)",
    )
    g.add_argument("--study", help="study name (default: derived from config, budgets, device, batch, score)")
    g = s.add_argument_group("workers")
    g.add_argument(
        "--workers",
        type=int,
        default=1,
        help="worker processes on this host sharing the study (latency timing is serialised host-wide; use "
        "PostgreSQL beyond a few)",
    )
    g.add_argument(
        "--heartbeat",
        type=int,
        default=default(SearchSettings, "heartbeat_s"),
        help="seconds between worker heartbeats; a trial silent for 3x this is failed and retried",
    )
    g = s.add_argument_group("output")
    g.add_argument("--quiet", action="store_true", help="no progress line")
    s.set_defaults(func=cmd_search)

    def study_options(q):
        q.add_argument("--storage", default=DEFAULT_STORAGE, help=f"SQLAlchemy URL (default {DEFAULT_STORAGE})")
        q.add_argument("--study", help="study name (default: the most recent nasx study in the storage)")

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

    from nasx.explore.settings import ExploreSettings

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
    x.add_argument("--no-store-model", action="store_true", help="do not store the fitted latency model")
    x.add_argument("--json", action="store_true", help="print the predictors and model as JSON")
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

    add_accuracy_parsers(sub, study_options)

    z = sub.add_parser("zoo", help="list the reference architectures")
    z.set_defaults(func=cmd_zoo)
    return p


# Options whose values may start with '-' (a negative budget deserves "must be positive", not argparse's
# "expected one argument"): glue the value on as --opt=value before parsing.
VALUE_OPTIONS = ("--budget", "--mac-budget", "--params-budget", "--best", "--target")


def _glue_values(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        if argv[i] in VALUE_OPTIONS and i + 1 < len(argv):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def check_common(args) -> None:
    """The options many commands share, checked before any work: --storage, --study, --seed."""
    storage = getattr(args, "storage", None)
    if storage is not None and storage != "none":
        from nasx.store.db import refuse_in_memory

        refuse_in_memory(storage)
    study = getattr(args, "study", None)
    if study is not None and not study.strip():
        raise NasxError("--study is empty: give a study name (see `nasx pareto`), or leave --study out")
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed <= 2**32 - 1:  # numpy's seeds (Optuna's samplers, the explorer)
        raise NasxError(f"--seed must be in 0..{2**32 - 1}, got {seed}")


def main(argv: list[str] | None = None) -> int:
    quiet_library_warnings()
    argv = _glue_values(sys.argv[1:] if argv is None else list(argv))
    parser = make_parser()
    try:
        import argcomplete  # optional: `eval "$(register-python-argcomplete nasx)"` then completes flags
    except ImportError:
        pass
    else:
        argcomplete.autocomplete(parser)
    args = parser.parse_args(argv)
    if args.command is None:  # bare `nasx`: what it can do, not an error
        parser.print_help()
        return 0
    try:
        check_common(args)
        return args.func(args)
    except NasxError as e:
        print(f"nasx {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nasx {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
