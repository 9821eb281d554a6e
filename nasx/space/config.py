"""Search spaces in YAML, parsed into nasx.space.model.SearchSpace: a macro skeleton and, at every block
position, a choice among block families with their own parameters, or among a list of fixed candidate blocks.
`SearchSpace.sample(trial)` turns an Optuna trial (or any Chooser: optuna.trial.FixedTrial to replay recorded
choices, a uniform draw) into an Arch.

Parameter names are fixed per position (`s2_b1_family`, `s2_b1_dwsep_kernel`, ...) and each family's
parameters get their own names, so choice lists never change inside a study (an Optuna requirement).

Two ways to say what a block position may hold:

- `families: {dwsep: {kernel: [3, 5], expansion: [3, 6]}, standard: {...}}`: a family, then each of its
  parameters from its own list of choices (`s2_b1_family`, then `s2_b1_dwsep_kernel`, ...).
- `candidates: [skip, {type: dwsep, kernel: 3, expansion: 3}, {type: dwsep, name: mb6_k5, kernel: 5,
  expansion: 6}]`: one of these blocks, each with fixed parameters (one value per key), as FBNet,
  ProxylessNAS and NAS-Bench-Macro write their spaces; one name per position (`s2_b1_block`), whose choices
  are the candidates' names (`name`, else the type and its parameters, e.g. `dwsep(kernel=3, expansion=3)`).
  `skip` (also `{type: skip, name: ...}`) is the identity where the block keeps the shape, else the
  projection the shape change needs: a 1x1 conv (the block's stride) + BN, without activation.

A space gives one of the two at the top level; a stage may carry its own `candidates` list, which it uses
instead (e.g. a first stage without `skip`). `out`, `stride` and `act` come from the skeleton, never from a
family or candidate. With `choose: stage` a stage makes its choice once and repeats it over its depth."""

from __future__ import annotations

from dataclasses import fields
from importlib import resources
from pathlib import Path

import yaml

from nasx.arch import layer_graph
from nasx.blocks import FAMILIES
from nasx.errors import ArchError, ConfigError
from nasx.layers import coerce
from nasx.ops import ACTIVATIONS
from nasx.ops.conv import out_len
from nasx.space.model import Candidate, SearchSpace, Stage

TOP_KEYS = {"name", "input", "classes", "act", "stem", "stages", "head", "families", "candidates", "choose"}
# block: every block picks its family and parameters (layer by layer); stage: each stage picks once and
# repeats it over its depth (MnasNet's factorized hierarchical space: far fewer dimensions to search)
CHOOSE = ("block", "stage")
RESERVED = {"out", "stride", "act"}  # set by the skeleton, not by family choices
DEFAULT_SPACE = "mobile224"  # what `nasx search` and `nasx explore` search without --config
SKIP = "skip"
STAGE_KEYS = {"stride", "depth", "out", "candidates"}


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
    for key in ("input", "stages"):
        if key not in d:
            _fail(source, key, "missing")
    if "families" in d and "candidates" in d:
        _fail(
            source,
            "families, candidates",
            "give one of the two: families with parameter choices, or a list of candidate blocks",
        )
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
        if not isinstance(s, dict) or set(s) - STAGE_KEYS or not {"depth", "out"} <= set(s):
            _fail(source, key, "expected a mapping with keys stride, depth, out (and optionally candidates)")
        own = _candidates(source, f"{key}.candidates", s["candidates"]) if "candidates" in s else ()
        stages.append(
            Stage(
                _positive_ints(source, f"{key}.stride", s.get("stride", 1), {1, 2})[0],
                _positive_ints(source, f"{key}.depth", s["depth"]),
                _positive_ints(source, f"{key}.out", s["out"]),
                own,
            )
        )

    head = d.get("head", {"out": [1280]})
    if not isinstance(head, dict) or set(head) - {"out"}:
        _fail(source, "head", "expected a mapping with key out")
    head_out = _positive_ints(source, "head.out", head.get("out", [1280]))

    candidates = _candidates(source, "candidates", d["candidates"]) if "candidates" in d else ()
    if "families" not in d and not candidates and not all(st.candidates for st in stages):
        _fail(
            source,
            "families",
            "missing: give families (with parameter choices) or candidates (a list of "
            "blocks), or a candidates list in every stage",
        )
    families = _families(source, d.get("families")) if "families" in d else ()

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
        families,
        text,
        choose,
        candidates,
    )
    _check_every_choice(space, source)
    return space


def _param_check(source: str, fam: str, p: str, key: str):
    """The checked field of parameter `p` of family `fam` (the skeleton's own are refused)."""
    known = {f.name: f for f in fields(FAMILIES[fam])}
    if p in RESERVED:
        _fail(source, key, f"{p} is set by the stage skeleton, not per {'family' if 'families' in key else 'block'}")
    if p not in known:
        _fail(source, key, f"unknown parameter; {fam} takes {', '.join(sorted(set(known) - RESERVED))}")
    return known[p].metadata


def _coerced(source: str, key: str, value, meta):
    # keep the coerced values (expansion 6 -> 6.0): a sampled arch then has the same canonical JSON, and so the
    # same hash (the latency-cache key), as that arch reloaded from its JSON
    try:
        return coerce(value, meta, key)
    except ArchError as e:
        raise ConfigError(f"{source}: {e}") from None


def _candidates(source: str, key: str, raw) -> tuple[Candidate, ...]:
    """A candidate list: `skip`, or mappings {type: family or skip, name: optional, parameter: one value}."""
    if not isinstance(raw, list) or not raw:
        _fail(
            source,
            key,
            f"expected a non-empty list of candidate blocks: {SKIP} or {{type: FAMILY, parameter: "
            f"value, ...}}; families: {', '.join(FAMILIES)}",
        )
    out, names = [], set()
    for k, item in enumerate(raw):
        where = f"{key}[{k}]"
        if item == SKIP:
            item = {"type": SKIP}
        if not isinstance(item, dict) or "type" not in item:
            _fail(source, where, f"expected {SKIP} or a mapping with a type (a block family or {SKIP}), got {item!r}")
        item = dict(item)
        fam, name = item.pop("type"), item.pop("name", None)
        if fam != SKIP and fam not in FAMILIES:
            _fail(source, f"{where}.type", f"unknown block family {fam!r}; known: {', '.join(FAMILIES)} or {SKIP}")
        if fam == SKIP and item:
            _fail(source, where, f"{SKIP} takes no parameters, got {', '.join(map(str, item))}")
        params = []
        for p, value in item.items():
            pkey = f"{where}.{p}"
            meta = _param_check(source, fam, str(p), pkey)
            if isinstance(value, list) and meta["kind"] not in ("pair", "padding"):
                _fail(source, pkey, "a candidate's parameters are fixed, one value each (choices belong in families)")
            params.append((p, _coerced(source, pkey, value, meta)))
        if name is None:
            name = fam if fam == SKIP else f"{fam}({', '.join(f'{p}={v!r}' for p, v in item.items())})"
        if not isinstance(name, str) or not name:
            _fail(source, f"{where}.name", f"expected a non-empty string, got {name!r}")
        if name in names:
            _fail(source, where, f"duplicate candidate name {name!r}: give each a distinct name")
        names.add(name)
        out.append(Candidate(name, "" if fam == SKIP else fam, tuple(params)))
    return tuple(out)


def _families(source: str, raw_fams) -> tuple:
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
        checked = []
        for p, values in params.items():
            key = f"families.{fam}.{p}"
            meta = _param_check(source, fam, p, key)

            def check(v, key=key, meta=meta):
                _coerced(source, key, v, meta)

            checked.append((p, tuple(_coerced(source, key, v, meta) for v in _choices(source, key, values, check))))
        families.append((fam, tuple(checked)))
    return tuple(families)


def _check_every_choice(space: SearchSpace, source: str) -> None:
    """Every family parameter value and every candidate must build at every position it can reach: for each
    stage, each (in width, out width) pair its first and later blocks can see, and each family with each value
    of one parameter at a time (the others at their first choice). Blames the config key that breaks."""
    h, w = space.input[1:]
    h, w = (out_len(v, space.stem_kernel, space.stem_stride, (space.stem_kernel - 1) // 2) for v in (h, w))
    prev_widths = space.stem_out
    for i, stage in enumerate(space.stages, 1):
        pairs = [(cin, cout, stage.stride) for cin in prev_widths for cout in stage.out]
        if max(stage.depth) > 1:
            pairs += [(c, c, 1) for c in stage.out]
        own = stage.candidates or space.candidates
        where = f"stages[{i - 1}].candidates" if stage.candidates else "candidates"
        for k, cand in enumerate(own):
            for cin, cout, stride in pairs:
                try:
                    layer = cand.layer(cin, cout, stride, space.act)
                    if layer is not None:
                        layer_graph(layer, (cin, h, w))
                except (ArchError, TypeError) as e:
                    raise ConfigError(
                        f"{source}: {where}[{k}] ({cand.name}): does not build in stage {i} ({cin} -> "
                        f"{cout} channels, stride {stride}): {e}"
                    ) from None
        for fam, params in () if own else space.families:
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
    return sorted(names, key=lambda n: (n != DEFAULT_SPACE, n))
