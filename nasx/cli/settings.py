"""Command-line arguments checked and turned into SearchSettings and ExploreSettings."""

from __future__ import annotations

from nasx.errors import NasxError
from nasx.explore.settings import ExploreSettings
from nasx.measure.latency import check_measure_time
from nasx.score.data import DEFAULT_DATA, load_data
from nasx.score.proxies import check_score, needs_data
from nasx.score.train import DEFAULT_BATCH, DEFAULT_STEPS, TrainSettings
from nasx.search.budgets import Budgets
from nasx.search.settings import SearchSettings
from nasx.search.study import make_sampler
from nasx.space.config import DEFAULT_SPACE, load_space
from nasx.space.function import load_space_function
from nasx.util.units import parse_budget, parse_size


def search_settings_from_args(args) -> SearchSettings:
    budgets = Budgets(metric=args.budget_metric)
    if args.budget is not None:
        budgets.compute = parse_budget(args.budget, "--budget")
    if args.mac_budget is not None:
        budgets.mac, budgets.mac_unit = parse_size(args.mac_budget, "--mac-budget")
    if args.params_budget is not None:
        budgets.params = parse_budget(args.params_budget, "--params-budget")
    for name in ("n_trials", "threads", "batch", "workers", "heartbeat"):
        v = getattr(args, name)
        if v is not None and v < 1:
            raise NasxError(f"--{name.replace('_', '-')} must be at least 1, got {v}")
    check_threads(args.threads, args.oversubscribe)
    check_measure_time(args.measure_time)
    if getattr(args, "max_resample", 0) < 0:
        raise NasxError(f"--max-resample must be 0 (evaluate repeats) or more, got {args.max_resample}")
    if args.timeout is not None and args.timeout <= 0:
        raise NasxError(f"--timeout must be positive seconds, got {args.timeout}")
    check_score(args.score)
    make_sampler(args.sampler, None)
    space = search_space(args)
    budgets.refuse_unreachable(space)
    return SearchSettings(
        space=space,
        budgets=budgets,
        storage=args.storage,
        more=args.more,
        study_name=args.study,
        n_trials=args.n_trials,
        timeout=args.timeout,
        sampler=args.sampler,
        max_resample=getattr(args, "max_resample", SearchSettings.max_resample),
        seed=args.seed,
        device=args.device,
        threads=args.threads,
        batch=args.batch,
        score=args.score,
        **score_options(args, space),
        progress=not args.quiet,
        heartbeat_s=args.heartbeat,
        measure_time_s=args.measure_time,
        screen=not getattr(args, "no_screen", False),
        sweep=getattr(args, "sweep", True),
        prefilter=getattr(args, "prefilter", False),
        prefilter_margin=getattr(args, "prefilter_margin", None),
        drift_correction=not args.no_drift_correction,
        runtime=runtime_option(args),
        retime=not getattr(args, "no_retime", False),
        force_space=getattr(args, "force_space", False),
    )


def search_space(args):
    """--config (a YAML space or built-in name, the default space without either) or --space (a function)."""
    space_fn = getattr(args, "space", None)
    if space_fn is None:
        if getattr(args, "force_space", False):
            raise NasxError("--force-space only applies to --space FILE.py:function (a YAML space is never forced)")
        return load_space(args.config or DEFAULT_SPACE)
    if args.config is not None:
        raise NasxError("give one of --config (a YAML space) and --space (a define-by-run function), not both")
    return load_space_function(space_fn)


def runtime_option(args) -> str:
    """--runtime, checked before any work: onnxruntime missing or on another device is one clear line."""
    from nasx.measure.device import check_runtime

    runtime = getattr(args, "runtime", "torch")
    check_runtime(runtime, args.device)
    return runtime


def check_threads(threads: int | None, oversubscribe: bool) -> None:
    """More timing threads than usable cores time the scheduler, not the network: refused unless asked for."""
    from nasx.measure.device import default_threads

    usable = default_threads()
    if threads is not None and threads > usable and not oversubscribe:
        raise NasxError(
            f"--threads {threads} is more than the {usable} usable cores here (os.sched_getaffinity); "
            f"latencies would measure oversubscription; use --threads {usable} or less, or pass "
            f"--oversubscribe"
        )


def score_options(args, space) -> dict:
    """--data and the training options of `nasx search`, checked (the data set is loaded once here, so a
    missing or malformed one is one clear error before any trial starts)."""
    data = getattr(args, "data", None)
    if not needs_data(args.score):
        given = [
            f"--{n.replace('_', '-')}"
            for n in ("data", "train_steps", "train_batch")
            if getattr(args, n, None) is not None
        ]
        if given:
            raise NasxError(f"{', '.join(given)} only apply to --score train (this search scores with {args.score!r})")
        return {}
    steps = getattr(args, "train_steps", None)
    batch = getattr(args, "train_batch", None)
    for name, v in (("--train-steps", steps), ("--train-batch", batch)):
        if v is not None and v < (2 if name == "--train-batch" else 1):
            raise NasxError(f"{name} must be at least {2 if name == '--train-batch' else 1}, got {v}")
    train = TrainSettings(steps=steps or DEFAULT_STEPS, batch=batch or DEFAULT_BATCH, device=args.device)
    load_data(data or DEFAULT_DATA, space.input, space.classes)
    return {"data": data or DEFAULT_DATA, "train": train}


def explore_settings_from_args(args) -> ExploreSettings:
    check_threads(args.threads, args.oversubscribe)
    return ExploreSettings(
        space=load_space(args.config),
        n=args.n,
        measure=args.measure,
        seed=args.seed,
        storage=args.storage,
        device=args.device,
        threads=args.threads,
        measure_time_s=args.measure_time,
        store_model=not args.no_store_model,
        progress=not args.quiet,
        drift_correction=not args.no_drift_correction,
        runtime=runtime_option(args),
        blocks=not getattr(args, "no_blocks", False),
    )
