"""Define-by-run search spaces: a Python function of an Optuna trial (anything with `suggest_categorical`,
`suggest_int`, `suggest_float`) that returns an Arch or its JSON dict, as Optuna's users write objectives.

`load_space_function("file.py:fn")` or `("package.module:fn")` imports it (running that file's code, like
any objective one hands Optuna) and gives a FunctionSpace: what the search reads of a YAML SearchSpace
(`sample`, `random_arch`, `name`, `input`, `classes`, `text`, `config_hash`), so budgets, caches, the study
and the faces that read a study work unchanged. The study records the function and a sha256 of its source:
the whole file for file.py:fn (helpers beside the function change the space too), the module's source for
module:fn."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import os
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nasx.arch import Arch
from nasx.errors import ArchError, ConfigError
from nasx.space.model import RandomChooser

SEED = 0  # the draw that learns the input shape at load: fixed, so loading is reproducible


@dataclass(frozen=True, eq=False)
class FunctionSpace:
    """A space defined by running `fn` on a trial. `spec` is how it was named (FILE.py:fn or module:fn),
    `text` the source hashed into config_hash."""

    fn: Callable = field(repr=False)
    spec: str
    name: str
    text: str
    input: tuple[int, int, int] = (0, 0, 0)
    classes: int = 0
    kind = "function"  # the study records it: `nasx report` then never reads `text` as a YAML space

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    @property
    def config_hash(self) -> str:
        return self.sha256[:12]

    def sample(self, trial) -> Arch:
        """The architecture the function returns for this trial; anything else is one ConfigError naming it."""
        try:
            out = self.fn(trial)
        except Exception as e:  # the user's code: any failure is theirs to fix, in one line
            raise ConfigError(f"{self.spec} raised {type(e).__name__}: {_first_line(e)}") from None
        if isinstance(out, dict):
            try:
                out = Arch.from_dict(out)
            except ArchError as e:
                raise ConfigError(f"{self.spec} returned an architecture dict that does not load: {e}") from None
        elif not isinstance(out, Arch):
            raise ConfigError(
                f"{self.spec} returned {type(out).__name__}, not an Arch or its JSON dict "
                f"(docs/concepts.md, 'Architecture format')"
            )
        if self.input != (0, 0, 0) and tuple(out.input) != self.input:
            raise ConfigError(
                f"{self.spec} returned an architecture with input {list(out.input)}, the space's is "
                f"{list(self.input)} (from its first sample): every network of a space takes one input shape"
            )
        return out if out.name else Arch(out.input, out.stem, out.layers, out.head, name=f"{self.name}-candidate")

    def random_arch(self, rng: random.Random) -> Arch:
        """The function run on a uniform draw of each suggest_* call."""
        return self.random_choices(rng)[1]

    def random_choices(self, rng: random.Random) -> tuple[dict, Arch]:
        """A uniform draw, with the choices it made (the params study.enqueue_trial replays)."""
        chooser = RandomChooser(rng)
        arch = self.sample(chooser)
        return chooser.choices, arch

    def cost_bounds(self) -> None:
        """None: a function's space cannot be enumerated, so the YAML "budget below every network" check
        (nasx.search.budgets) is skipped; a budget nothing fits ends with every trial rejected, as stated."""
        return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "(no message)"


def _import_file(path: Path, where: str):
    if not path.is_file():
        raise ConfigError(f"{where}: no such file {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{where}: cannot read {path}: {e}") from None
    # a module name of its own per file and content, so two space files named alike never clash
    mod_name = f"nasx_space_{path.stem}_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{where}: cannot import {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling in the user's file look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        del sys.modules[mod_name]
        raise ConfigError(f"{where}: syntax error in {path} at line {e.lineno}: {e.msg}") from None
    except Exception as e:
        del sys.modules[mod_name]
        raise ConfigError(f"{where}: importing {path} raised {type(e).__name__}: {_first_line(e)}") from None
    return module, text


def _import_module(name: str, where: str):
    # like `python -m`, the current folder is importable: `--space myspace:fn` finds ./myspace.py
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(name)
    except SyntaxError as e:
        raise ConfigError(f"{where}: syntax error in {e.filename} at line {e.lineno}: {e.msg}") from None
    except ImportError as e:
        raise ConfigError(f"{where}: cannot import module {name!r}: {_first_line(e)}") from None
    except Exception as e:
        raise ConfigError(f"{where}: importing {name} raised {type(e).__name__}: {_first_line(e)}") from None
    try:
        text = inspect.getsource(module)
    except (OSError, TypeError) as e:
        raise ConfigError(
            f"{where}: cannot read the source of module {name} (its hash goes in the study): {e}"
        ) from None
    return module, text


def load_space_function(spec) -> FunctionSpace:
    """A FunctionSpace from "FILE.py:function" or "module:function" (a FunctionSpace is returned as is).
    Importing a file runs its code. Sampled once, with a fixed-seed uniform draw, to learn the input shape
    and classes; every error is one ConfigError naming the file and function."""
    if isinstance(spec, FunctionSpace):
        return spec
    spec = str(spec)
    target, sep, fn_name = spec.rpartition(":")
    if not sep or not target or not fn_name:
        raise ConfigError(f"--space {spec!r}: expected FILE.py:function or module:function")
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        module, text = _import_file(path, spec)
        name = f"{path.stem}.{fn_name}"
        # absolute, so worker processes (and a resume from another folder) find the same file
        spec = f"{path.resolve()}:{fn_name}"
    else:
        module, text = _import_module(target, spec)
        name = f"{target}.{fn_name}"
    fn = getattr(module, fn_name, None)
    if fn is None:
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise ConfigError(f"{spec}: no function {fn_name!r} in {target} (it defines {', '.join(public) or 'none'})")
    if not callable(fn):
        raise ConfigError(f"{spec}: {fn_name} is a {type(fn).__name__}, not a function of a trial")
    try:
        inspect.signature(fn).bind(object())
    except TypeError:
        raise ConfigError(
            f"{spec}: {fn_name} must take one argument, the trial; its signature is {fn_name}{inspect.signature(fn)}"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the first call tell
        pass
    space = FunctionSpace(fn, spec, name, text)
    first = space.sample(RandomChooser(random.Random(SEED)))
    try:
        out = first.out_shape
    except ArchError as e:
        raise ConfigError(f"{spec}: its first sample does not build: {e}") from None
    classes = out[0] if len(out) == 1 else 0
    return FunctionSpace(fn, spec, name, text, tuple(first.input), classes)
