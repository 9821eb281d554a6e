"""Search spaces: a YAML file describing a macro skeleton and, at every block position, a choice among
block families with their own parameters. `SearchSpace.sample(trial)` turns an Optuna trial (or any
Chooser: optuna.trial.FixedTrial to replay recorded choices, a uniform draw) into an Arch.

Parameter names are fixed per position (`s2_b1_family`, `s2_b1_dwsep_kernel`, ...) and each family's
parameters get their own names, so choice lists never change inside a study (an Optuna requirement)."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import yaml

from nasx.arch import Arch, layer_graph
from nasx.blocks import FAMILIES
from nasx.errors import ArchError, ConfigError
from nasx.layers import coerce
from nasx.ops import ACTIVATIONS, Conv2d, Flatten, GlobalAvgPool, Linear
from nasx.ops.conv import out_len

TOP_KEYS = {"name", "input", "classes", "act", "stem", "stages", "head", "families", "choose"}
# block: every block picks its family and parameters (layer by layer); stage: each stage picks once and
# repeats it over its depth (MnasNet's factorized hierarchical space: far fewer dimensions to search)
CHOOSE = ("block", "stage")
RESERVED = {"out", "stride", "act"}  # set by the skeleton, not by family choices


class Chooser(Protocol):
    """What sampling a space needs of a trial: one choice among `choices`, under a fixed name."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...


@dataclass(frozen=True)
class Stage:
    stride: int
    depth: tuple[int, ...]
    out: tuple[int, ...]


@dataclass(frozen=True)
class SearchSpace:
    name: str
    input: tuple[int, int, int]
    classes: int
    act: str
    stem_out: tuple[int, ...]
    stem_kernel: int
    stem_stride: int
    stages: tuple[Stage, ...]
    head_out: tuple[int, ...]
    families: tuple[tuple[str, tuple[tuple[str, tuple], ...]], ...]  # (family, ((param, choices), ...))
    text: str = ""  # the YAML it came from (stored with the study)
    choose: str = "block"

    @property
    def config_hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def sample(self, trial: Chooser) -> Arch:
        """The architecture the trial's choices describe."""
        pick = trial.suggest_categorical
        act = self.act
        stem = (Conv2d(pick("stem_out", self.stem_out), self.stem_kernel, self.stem_stride, act=act),)
        layers = []
        family_names = [f for f, _ in self.families]
        for i, stage in enumerate(self.stages, 1):
            depth = pick(f"s{i}_depth", stage.depth)
            out = pick(f"s{i}_out", stage.out)
            for j in range(depth):
                if j == 0 or self.choose == "block":
                    key = f"s{i}" if self.choose == "stage" else f"s{i}_b{j}"
                    fam = pick(f"{key}_family", family_names)
                    params = {p: pick(f"{key}_{fam}_{p}", choices) for p, choices in dict(self.families)[fam]}
                layers.append(FAMILIES[fam](out=out, stride=stage.stride if j == 0 else 1, act=act, **params))
        head = (Conv2d(pick("head_out", self.head_out), 1, act=act), GlobalAvgPool(), Flatten(), Linear(self.classes))
        return Arch(self.input, stem, tuple(layers), head, name=f"{self.name}-candidate")

    def random_arch(self, rng: random.Random) -> Arch:
        """A uniform draw over the choices (no Optuna needed): each choice picked uniformly at random."""

        class _Draw:  # a Chooser
            @staticmethod
            def suggest_categorical(name, choices):
                return rng.choice(list(choices))

        return self.sample(_Draw())

    def size(self) -> int:
        """Number of distinct choice combinations (architectures, counting equal ones once per path)."""
        fam_counts = []
        for _, params in self.families:
            n = 1
            for _, choices in params:
                n *= len(choices)
            fam_counts.append(n)
        per_block = sum(fam_counts)
        total = len(self.stem_out) * len(self.head_out)
        for stage in self.stages:
            repeats = [1 if self.choose == "stage" else d for d in stage.depth]
            total *= len(stage.out) * sum(per_block**r for r in repeats)
        return total


def _fail(source: str, key: str, problem: str):
    raise ConfigError(f"{source}: {key}: {problem}")


def _choices(source: str, key: str, value, check) -> tuple:
    values = value if isinstance(value, list) else [value]
    if not values:
        _fail(source, key, "needs at least one choice")
    for v in values:
        check(v)
    if len(set(map(repr, values))) != len(values):
        _fail(source, key, f"has duplicate choices {values}")
    return tuple(values)


def _positive_ints(source: str, key: str, value, allowed=None) -> tuple[int, ...]:
    def check(v):
        if type(v) is not int or v < 1 or (allowed and v not in allowed):
            _fail(
                source,
                key,
                f"expected {'one of ' + str(sorted(allowed)) if allowed else 'positive integers'}, got {v!r}",
            )

    return _choices(source, key, value, check)


def parse_space(text: str, source: str = "config") -> SearchSpace:
    """Validate a YAML search space; every error names the file, the key and what is wrong."""
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{source}: not valid YAML{where}: {getattr(e, 'problem', e)}") from None
    if not isinstance(d, dict):
        raise ConfigError(f"{source}: expected a mapping with keys {', '.join(sorted(TOP_KEYS))}")
    unknown = sorted(set(d) - TOP_KEYS)
    if unknown:
        _fail(source, ", ".join(map(str, unknown)), f"unknown key(s); allowed: {', '.join(sorted(TOP_KEYS))}")
    for key in ("input", "stages", "families"):
        if key not in d:
            _fail(source, key, "missing")
    inp = d["input"]
    if not (isinstance(inp, list) and len(inp) == 3 and all(type(v) is int and v > 0 for v in inp)):
        _fail(source, "input", f"expected [channels, height, width] of positive integers, got {inp!r}")
    classes = d.get("classes", 1000)
    if type(classes) is not int or classes < 1:
        _fail(source, "classes", f"expected a positive integer, got {classes!r}")
    act = d.get("act", "relu")
    if act not in ACTIVATIONS:
        _fail(source, "act", f"expected one of {', '.join(ACTIVATIONS)}, got {act!r}")

    stem = d.get("stem", {"out": [32]})
    if not isinstance(stem, dict) or set(stem) - {"out", "kernel", "stride"}:
        _fail(source, "stem", "expected a mapping with keys out, kernel, stride")
    stem_out = _positive_ints(source, "stem.out", stem.get("out", [32]))
    stem_kernel = _positive_ints(source, "stem.kernel", stem.get("kernel", 3))[0]
    stem_stride = _positive_ints(source, "stem.stride", stem.get("stride", 2), {1, 2})[0]

    raw_stages = d["stages"]
    if not isinstance(raw_stages, list) or not raw_stages:
        _fail(source, "stages", "expected a non-empty list of stages")
    stages = []
    for i, s in enumerate(raw_stages, 1):
        key = f"stages[{i - 1}]"
        if not isinstance(s, dict) or set(s) - {"stride", "depth", "out"} or not {"depth", "out"} <= set(s):
            _fail(source, key, "expected a mapping with keys stride, depth, out")
        stages.append(
            Stage(
                _positive_ints(source, f"{key}.stride", s.get("stride", 1), {1, 2})[0],
                _positive_ints(source, f"{key}.depth", s["depth"]),
                _positive_ints(source, f"{key}.out", s["out"]),
            )
        )

    head = d.get("head", {"out": [1280]})
    if not isinstance(head, dict) or set(head) - {"out"}:
        _fail(source, "head", "expected a mapping with key out")
    head_out = _positive_ints(source, "head.out", head.get("out", [1280]))

    raw_fams = d["families"]
    if not isinstance(raw_fams, dict) or not raw_fams:
        _fail(
            source,
            "families",
            f"expected a mapping of family names to parameter choices; families: {', '.join(FAMILIES)}",
        )
    families = []
    for fam, params in raw_fams.items():
        if fam not in FAMILIES:
            _fail(source, f"families.{fam}", f"unknown block family; known: {', '.join(FAMILIES)}")
        params = params or {}
        if not isinstance(params, dict):
            _fail(source, f"families.{fam}", "expected a mapping of parameter names to lists of choices")
        known = {f.name: f for f in fields(FAMILIES[fam])}
        checked = []
        for p, values in params.items():
            key = f"families.{fam}.{p}"
            if p in RESERVED:
                _fail(source, key, f"{p} is set by the stage skeleton, not per family")
            if p not in known:
                _fail(source, key, f"unknown parameter; {fam} takes {', '.join(sorted(set(known) - RESERVED))}")

            def check(v, meta=known[p].metadata, key=key):
                try:
                    coerce(v, meta, key)
                except ArchError as e:
                    raise ConfigError(f"{source}: {e}") from None

            # keep the coerced values (expansion 6 -> 6.0): a sampled arch then has the same canonical JSON,
            # and so the same hash (the latency-cache key), as that arch reloaded from its JSON
            meta = known[p].metadata
            choices = tuple(coerce(v, meta, key) for v in _choices(source, key, values, check))
            checked.append((p, choices))
        families.append((fam, tuple(checked)))

    choose = d.get("choose", "block")
    if choose not in CHOOSE:
        _fail(
            source,
            "choose",
            f"expected block (each block picks its family) or stage (each stage picks once), got {choose!r}",
        )
    name = d.get("name", Path(source).stem)
    space = SearchSpace(
        str(name),
        tuple(inp),
        classes,
        act,
        stem_out,
        stem_kernel,
        stem_stride,
        tuple(stages),
        head_out,
        tuple(families),
        text,
        choose,
    )
    _check_every_choice(space, source)
    return space


def _check_every_choice(space: SearchSpace, source: str) -> None:
    """Every family parameter value must build at every position it can reach: for each stage, each
    (in width, out width) pair its first and later blocks can see, and each family with each value of one
    parameter at a time (the others at their first choice). Blames the config key that breaks."""
    h, w = space.input[1:]
    h, w = (out_len(v, space.stem_kernel, space.stem_stride, (space.stem_kernel - 1) // 2) for v in (h, w))
    prev_widths = space.stem_out
    for i, stage in enumerate(space.stages, 1):
        pairs = [(cin, cout, stage.stride) for cin in prev_widths for cout in stage.out]
        if max(stage.depth) > 1:
            pairs += [(c, c, 1) for c in stage.out]
        for fam, params in space.families:
            base = {p: choices[0] for p, choices in params}
            variants = [(None, base)] + [((p, v), {**base, p: v}) for p, choices in params for v in choices[1:]]
            for changed, values in variants:
                for cin, cout, stride in pairs:
                    hh, ww = (h, w)
                    try:
                        layer = FAMILIES[fam](out=cout, stride=stride, act=space.act, **values)
                        layer_graph(layer, (cin, hh, ww))
                    except (ArchError, TypeError) as e:
                        key = f"families.{fam}" + (f".{changed[0]}={changed[1]!r}" if changed else "")
                        raise ConfigError(
                            f"{source}: {key}: does not build in stage {i} ({cin} -> {cout} channels, "
                            f"stride {stride}): {e}"
                        ) from None
        if stage.stride == 2:
            h, w = out_len(h, 3, 2, 1), out_len(w, 3, 2, 1)
        prev_widths = stage.out


def load_space(source) -> SearchSpace:
    """A SearchSpace from a YAML path or a built-in name (see builtin_names())."""
    if isinstance(source, SearchSpace):
        return source
    text_source = str(source)
    builtin = resources.files("nasx.configs").joinpath(f"{text_source}.yaml")
    path = Path(text_source)
    if path.is_file():
        try:
            return parse_space(path.read_text(encoding="utf-8"), str(path))
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read {path}: {e}") from None
    if builtin.is_file():
        return parse_space(builtin.read_text(), f"{text_source}.yaml")
    raise ConfigError(
        f"config {text_source!r} is neither a YAML file nor a built-in space ({', '.join(builtin_names())})"
    )


def builtin_names() -> list[str]:
    """The spaces shipped in nasx/configs, default first."""
    names = (p.name[:-5] for p in resources.files("nasx.configs").iterdir() if p.name.endswith(".yaml"))
    return sorted(names, key=lambda n: (n != "mobile224", n))
