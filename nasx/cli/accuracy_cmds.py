"""Accuracy and training: `nasx validate-score`, `nasx score`, `nasx retrain`, and the training options
`nasx search` shares."""

from __future__ import annotations

import json
import sys

from nasx.cli.common import message_stream, study_options
from nasx.errors import NasxError


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
    to_stdout = any(p and p != "none" and message_stream(p) is sys.stderr for p in (args.output, args.json))
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
    print(result.line(), file=message_stream(args.output) if args.output else sys.stdout)
    return 0


def add_accuracy_parsers(sub) -> None:
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
