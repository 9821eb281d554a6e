"""`nasx search`: its options and the summary it prints."""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys

from nasx.cli.accuracy_cmds import add_train_options
from nasx.cli.common import DRIFT_HELP, RUNTIME_HELP


class _DefaultsHelp(argparse.HelpFormatter):
    """Appends each option's default to its help, unless it has none (None, a flag's False) or says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "(default" in text or action.default in (None, False, argparse.SUPPRESS) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


def candidates_line(trials) -> str:
    """What this run's trials were: distinct architectures (feasible, rejected), and the repeats re-sampled."""
    import optuna

    finished = [t for t in trials if t.state.is_finished() and "arch_hash" in t.user_attrs]
    new = [t for t in finished if "repeat_of" not in t.user_attrs]
    distinct = {t.user_attrs["arch_hash"] for t in new}
    feasible = {t.user_attrs["arch_hash"] for t in new if t.state == optuna.trial.TrialState.COMPLETE}
    repeats = len(finished) - len(new)
    return (
        f"candidates: {len(distinct)} distinct architectures ({len(feasible)} feasible, "
        f"{len(distinct) - len(feasible)} rejected or not timed); {repeats} proposals repeated an architecture "
        f"already held and were re-sampled"
    )


def screen_line(trials) -> str:
    """What screening did in this run: candidates timed whole, screened out, and the layers timed for it."""
    new = [t for t in trials if t.state.is_finished() and "repeat_of" not in t.user_attrs]
    screened = sum(1 for t in new if t.user_attrs.get("screened"))
    predicted = [t for t in new if "layer_sum_ms" in t.user_attrs]
    timed = sum(1 for t in new if t.state.name == "COMPLETE")
    layers = sum(t.user_attrs.get("layers_timed", 0) for t in predicted)
    margins = [t.user_attrs["screen_margin"] for t in predicted if "screen_margin" in t.user_attrs]
    margin = f"; the block model's margin ended at {margins[-1]:.0%}" if margins else ""
    off = next((t.user_attrs["screen_off"] for t in new if "screen_off" in t.user_attrs), "")
    return (
        f"screening: {timed} candidates timed whole, {screened} screened out by their predicted latency (never "
        f"timed whole; `nasx trials` shows them as screened); {layers} new layers timed into the block table"
        f"{margin}" + (f"\n  {off}" if off else "")
    )


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
    print(candidates_line(study.trials[result.resumed_from :]))
    print(result.time_split())
    if result.retime is not None:
        print(result.retime.summary())
    if settings.screen:
        print(screen_line(study.trials[result.resumed_from :]))
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


def add_search_parser(sub, space_help: str) -> None:
    from nasx.measure.device import default_threads
    from nasx.search.budgets import Budgets
    from nasx.search.settings import SearchSettings
    from nasx.space.config import DEFAULT_SPACE

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
        "--max-resample",
        type=int,
        metavar="N",
        default=default(SearchSettings, "max_resample"),
        help="a proposal whose architecture the study already holds is stored as a repeat and re-sampled, not "
        "counted in --n-trials, up to N times in a row (0: evaluate repeats as trials)",
    )
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
        "--no-screen",
        action="store_true",
        help="time every feasible candidate whole; by default a candidate is timed only when its latency predicted "
        "from the block table (each layer timed alone, once per device) could put it on the front (docs/latency.md)",
    )
    g.add_argument(
        "--sweep",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start a new study from the free front (the default; --no-sweep: the sampler starts alone): its first "
        "trials (a quarter at most) are the non-dominated (MAdds or MAC, score) of up to 2,000 draws from the "
        "space, costed and scored without building a network (docs/searching.md)",
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
