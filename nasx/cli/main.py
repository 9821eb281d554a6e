# PYTHON_ARGCOMPLETE_OK  (argcomplete's marker: tab completion where argcomplete is installed)
"""The `nasx` command line. Every nasx error becomes one line on stderr and exit status 2."""

from __future__ import annotations

import argparse
import sys
import warnings

from nasx.cli.accuracy_cmds import add_accuracy_parsers
from nasx.cli.cost_cmds import add_cost_parser, add_zoo_parser
from nasx.cli.explore_cmds import add_explore_parsers
from nasx.cli.latency_cmds import add_latency_parser
from nasx.cli.search_cmds import add_search_parser
from nasx.cli.study_cmds import add_study_parsers
from nasx.errors import NasxError


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + message
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def quiet_library_warnings() -> None:
    """The CLI owns the process: optuna's, torch's and plotly's warnings (experimental APIs, a retried trial's
    "constraint already set", optuna-dashboard's "importance may be inaccurate" flood) say nothing a user can
    act on, and nasx's own problems are errors, not warnings. -W or PYTHONWARNINGS bring them back."""
    if not sys.warnoptions:
        warnings.simplefilter("ignore")


def make_parser() -> argparse.ArgumentParser:
    from nasx import __version__
    from nasx.space.config import builtin_names

    p = _Parser(prog="nasx", description="Hardware-aware NAS and design-space exploration for CNNs.")
    p.add_argument("--version", action="version", version=f"nasx {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    space_help = f"search space YAML or built-in name ({', '.join(builtin_names())})"

    add_cost_parser(sub)
    add_search_parser(sub, space_help)
    add_study_parsers(sub)
    add_explore_parsers(sub, space_help)
    add_latency_parser(sub)
    add_accuracy_parsers(sub)
    add_zoo_parser(sub)
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
