"""The arch JSON format (docs/DESIGN.md section 3): versioned, validated on load with messages that name the
place and the problem, a stable content hash, `repeat` expansion, size limits, no code execution."""

from __future__ import annotations

import builtins
import copy
import dataclasses
import json
import math
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nasx
from nasx import Arch, ArchError, load_arch
from nasx.layers import LAYER_TYPES

REPO = Path(__file__).resolve().parents[1]


def arch_dict(layers=None, **top):
    d = {
        "format": "nasx-arch",
        "version": 1,
        "name": "tiny",
        "input": [3, 32, 32],
        "stem": [{"type": "conv", "out": 16, "kernel": 3, "stride": 2, "act": "relu6"}],
        "layers": layers
        if layers is not None
        else [
            {"type": "dwsep", "out": 24, "stride": 2, "expansion": 6},
            {"type": "group_shuffle", "out": 48, "groups": 3, "group_first": False},
            {"type": "partial", "out": 48},
            {"type": "channelwise", "out": 48, "dc": 7},
            {"type": "standard", "out": 64, "stride": 2, "layout": "basic"},
        ],
        "head": [{"type": "gap"}, {"type": "flatten"}, {"type": "linear", "out": 10}],
    }
    d.update(top)
    return d


def reversed_keys(value):
    """The same JSON value with every object's keys in reverse order."""
    if isinstance(value, dict):
        return {k: reversed_keys(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(v) for v in value]
    return value


# ---- round trip and content hash ---------------------------------------------------------------------


@pytest.mark.parametrize("source", ["tiny", "mobilenet_v1", "mobilenet_v2", "resnet18", "resnet50"])
def test_json_round_trip(source):
    """to_json -> from_json gives an equal Arch with the same name and the same content hash."""
    arch = Arch.from_dict(arch_dict()) if source == "tiny" else load_arch(source)
    text = arch.to_json()
    again = Arch.from_json(text)
    assert again == arch
    assert again.name == arch.name
    assert again.content_hash() == arch.content_hash()
    assert again.to_json() == text
    assert json.loads(text)["format"] == "nasx-arch" and json.loads(text)["version"] == 1


def test_round_trip_through_a_file(tmp_path):
    arch = Arch.from_dict(arch_dict())
    path = tmp_path / "a.json"
    path.write_text(arch.to_json(), encoding="utf-8")
    assert load_arch(str(path)) == arch
    assert load_arch(path).content_hash() == arch.content_hash()


def test_hash_ignores_name_and_key_order_and_spelled_out_defaults():
    """The hash is of the structure: a different name, reversed key order everywhere, defaults written
    out and [k, k] pairs instead of k all give the same hash (and equal Archs)."""
    a = Arch.from_dict(arch_dict())
    b = Arch.from_dict(reversed_keys(arch_dict(name="another name")))
    spelled = arch_dict()
    spelled["stem"][0].update(
        {"kernel": [3, 3], "stride": [2, 2], "padding": "same", "dilation": 1, "groups": 1, "bias": False, "bn": True}
    )
    spelled["layers"][0].update({"kernel": 3, "se": 0.0, "residual": True})
    c = Arch.from_dict(spelled)
    d = Arch.from_dict(arch_dict(name=""))
    assert a.content_hash() == b.content_hash() == c.content_hash() == d.content_hash()
    assert a == b == c == d
    assert a.name != b.name
    assert len(a.content_hash()) == 16 and int(a.content_hash(), 16) >= 0


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["layers"][0].update(out=32),
        lambda d: d["layers"][0].update(stride=1),
        lambda d: d["layers"][0].update(expansion=4),
        lambda d: d["layers"][0].update(act="hswish"),
        lambda d: d["stem"][0].update(bn=False),
        lambda d: d["layers"].append({"type": "standard", "out": 64}),
        lambda d: d["layers"].pop(),
        lambda d: d.update(input=[3, 64, 64]),
        lambda d: d.update(input=[1, 32, 32]),
        lambda d: d["head"][2].update(bias=False),
        lambda d: d["layers"].insert(1, d["layers"].pop(2)),
    ],
    ids=["out", "stride", "expansion", "act", "bn", "append", "pop", "resolution", "channels", "bias", "swap"],
)
def test_hash_differs_for_different_structures(change):
    base = Arch.from_dict(arch_dict())
    d = arch_dict()
    change(d)
    other = Arch.from_dict(d)
    assert other != base
    assert other.content_hash() != base.content_hash()


def test_hash_is_stable_across_processes():
    """The hash is a cache key stored in study databases: it must not depend on Python's per-process
    hash seed. It is also pinned: the canonical form includes every default, so adding a field to a layer
    type changes the hash of every arch using it and orphans stored latency caches. If that is intended,
    update the pins below (and say so in the changelog)."""
    code = (
        "import nasx; print(nasx.load_arch('mobilenet_v2').content_hash(), nasx.load_arch('resnet50').content_hash())"
    )
    outs = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(
            subprocess.run(
                [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
            ).stdout.strip()
        )
    assert len(outs) == 1
    here = f"{load_arch('mobilenet_v2').content_hash()} {load_arch('resnet50').content_hash()}"
    assert outs == {here}
    assert here == "600a94042d9fd848 6cbf9b8cfad6ec39"


def test_repeat_expands_to_copies_with_stride_one():
    """ "repeat": n is n copies of the layer; copies after the first have stride 1 (they keep the shape)."""
    short = arch_dict(
        [
            {"type": "dwsep", "out": 24, "stride": 2, "expansion": 6, "repeat": 3},
            {"type": "act", "fn": "relu", "repeat": 2},
            {"type": "standard", "out": 24, "repeat": 1},
        ]
    )
    long = arch_dict(
        [
            {"type": "dwsep", "out": 24, "stride": 2, "expansion": 6},
            {"type": "dwsep", "out": 24, "stride": 1, "expansion": 6},
            {"type": "dwsep", "out": 24, "stride": 1, "expansion": 6},
            {"type": "act", "fn": "relu"},
            {"type": "act", "fn": "relu"},
            {"type": "standard", "out": 24},
        ]
    )
    a, b = Arch.from_dict(short), Arch.from_dict(long)
    assert len(a.layers) == 6
    assert [getattr(layer, "stride", None) for layer in a.layers[:3]] == [2, 1, 1]
    assert a == b and a.content_hash() == b.content_hash()
    assert "repeat" not in a.to_json()
    assert nasx.cost(a).madds == nasx.cost(b).madds


def test_repeat_in_zoo_matches_the_published_layout():
    """mobilenet_v2's 17 inverted residual blocks come from 7 lines with repeat counts 1,2,3,4,3,3,1."""
    arch = load_arch("mobilenet_v2")
    assert len(arch.layers) == 17
    assert [layer.stride for layer in arch.layers] == [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1]


# ---- validation messages -----------------------------------------------------------------------------

OK = [{"type": "conv", "out": 16}, {"type": "dwsep", "out": 16}]


def with_layer(layer, **top):
    return arch_dict(OK + [layer], **top)


BAD = [  # (arch dict, regexes the message must contain)
    (with_layer({"type": "nope"}), [r"layers\[2\]", "unknown layer type 'nope'", "known types"]),
    (with_layer({"type": "conv", "out": 8, "colour": 1}), [r"layers\[2\]", "unknown key", "colour"]),
    (with_layer({"type": "conv"}), [r"layers\[2\]", "missing required key 'out'"]),
    (with_layer({"type": "conv", "out": 0}), [r"layers\[2\]", r"\.out", ">= 1", "got 0"]),
    (with_layer({"type": "dwsep", "out": -4}), [r"layers\[2\]", r"\.out", ">= 1", "got -4"]),
    (with_layer({"type": "standard", "out": 2.5}), [r"layers\[2\]", r"\.out", "integer"]),
    (with_layer({"type": "conv", "out": 24, "groups": 5}), [r"layers\[2\]", "groups=5", "divide"]),
    (with_layer({"type": "group_shuffle", "out": 32, "groups": 3}), [r"layers\[2\]", "groups=3", "divide"]),
    (with_layer({"type": "dwsep", "out": 16, "stride": 3}), [r"layers\[2\]", r"\.stride", "1, 2", "got 3"]),
    (with_layer({"type": "standard", "out": 16, "stride": 0}), [r"layers\[2\]", r"\.stride", "got 0"]),
    (with_layer({"type": "partial", "out": 16, "stride": 4}), [r"layers\[2\]", r"\.stride", "got 4"]),
    (with_layer({"type": "partial", "out": 16, "ratio": 0}), [r"layers\[2\]", r"\.ratio", r"\(0, 1\]"]),
    (with_layer({"type": "pconv", "ratio": 1.5}), [r"layers\[2\]", r"\.ratio", r"\(0, 1\]", "1.5"]),
    (with_layer({"type": "pconv", "ratio": -0.25}), [r"layers\[2\]", r"\.ratio", r"\(0, 1\]"]),
    (with_layer({"type": "cwconv", "dc": 33}), [r"layers\[2\]", "dc=33", "larger than the 16 channels"]),
    (with_layer({"type": "channelwise", "out": 16, "dc": 17}), [r"layers\[2\]", "dc=17", "16 channels"]),
    (with_layer({"type": "conv", "out": 8, "act": "swish"}), [r"layers\[2\]", r"\.act", "relu6", "'swish'"]),
    (with_layer({"type": "conv", "out": 8, "bn": "yes"}), [r"layers\[2\]", r"\.bn", "true or false"]),
    (with_layer({"type": "conv", "out": 8, "kernel": [3, 3, 3]}), [r"layers\[2\]", r"\.kernel", r"\[h, w\]"]),
    (with_layer({"type": "linear", "out": 10}), [r"layers\[2\]", "flat vector"]),
    (with_layer("conv"), [r"layers\[2\]", "must be an object"]),
    (with_layer({"type": "dwsep", "out": 16, "repeat": 0}), [r"layers\[2\]", "repeat", "1..256"]),
    (with_layer({"type": "dwsep", "out": 16, "repeat": "3"}), [r"layers\[2\]", "repeat"]),
    (
        arch_dict(head=[{"type": "gap"}, {"type": "conv", "out": 8, "kernel": 3, "padding": 0}]),
        [r"head\[1\]", "no output"],
    ),
    (arch_dict(stem=[{"type": "pool", "kernel": 2, "padding": 2}]), [r"stem\[0\]", "padding"]),
    (arch_dict(input=[3, 32]), ['"input"', r"\[channels, height, width\]", r"\[3, 32\]"]),
    (arch_dict(input=[0, 32, 32]), ['"input"', "positive integers"]),
    (arch_dict(input=[3, 32.0, 32]), ['"input"', "positive integers"]),
    (arch_dict(input="3x32x32"), ['"input"', "3x32x32"]),
    (arch_dict(input=[3, True, 32]), ['"input"', "positive integers"]),
    (arch_dict(format="onnx"), ['"format"', "nasx-arch", "onnx"]),
    (arch_dict(version=2), ["version 2", "reads version 1"]),
    (arch_dict(version="1"), ["version '1'", "reads version 1"]),
    (arch_dict(extra=1), ["unknown top-level key", "extra"]),
    (arch_dict(name=5), ['"name"', "string"]),
    (arch_dict(layers={"type": "conv"}), ['"layers"', "list"]),
]


@pytest.mark.parametrize("d,patterns", BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_validation_messages(d, patterns):
    """Each malformed arch raises ArchError (never another exception) whose message names the place
    (e.g. "layers[2]", "\"input\"") and the problem; through from_json the message also names the source."""
    with pytest.raises(ArchError) as info:
        Arch.from_dict(copy.deepcopy(d))
    for p in patterns:
        assert re.search(p, str(info.value)), f"{p!r} not in {str(info.value)!r}"
    assert "\n" not in str(info.value)
    with pytest.raises(ArchError, match=r"^my\.json: "):
        Arch.from_json(json.dumps(d), source="my.json")


@pytest.mark.parametrize("value", [True, 1.0, "1", [1]])
def test_block_stride_must_be_the_integer_1_or_2(value):
    """A stride of true or 1.0 is not the integer 1: accepting it would make float or bool costs."""
    with pytest.raises(ArchError, match=r"layers\[2\] \(dwsep\)\.stride"):
        Arch.from_dict(with_layer({"type": "dwsep", "out": 16, "stride": value}))


def test_costs_are_integers():
    report = nasx.cost(Arch.from_dict(arch_dict()), "exact")
    assert all(type(v) is int for v in report.totals().values())


# ---- files -------------------------------------------------------------------------------------------


def test_invalid_json(tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{"input": [3, 32, 32],\n "layers": [}', encoding="utf-8")
    with pytest.raises(ArchError, match=r"broken\.json is not valid JSON: .* line 2 column"):
        load_arch(str(p))


@pytest.mark.parametrize("text,what", [("[]", "list"), ('"mobilenet_v2"', "str"), ("3", "int"), ("null", "NoneType")])
def test_file_that_is_not_an_object(tmp_path, text, what):
    p = tmp_path / "notobj.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ArchError, match=f"notobj.json: an architecture must be a JSON object, got {what}"):
        load_arch(str(p))


def test_missing_file(tmp_path):
    with pytest.raises(ArchError, match=r"missing\.json does not exist: no such architecture file \(reference"):
        load_arch(str(tmp_path / "missing.json"))
    with pytest.raises(ArchError, match="neither an architecture file nor a reference model"):
        load_arch("missing")  # no path, no .json: a misspelt model name as much as a file
    with pytest.raises(ArchError, match="is a directory, not an architecture file"):
        load_arch(str(tmp_path))  # a directory is not a file


def test_undecodable_file(tmp_path):
    p = tmp_path / "latin1.json"
    p.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(ArchError, match="cannot read"):
        load_arch(str(p))


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"a":' * 50_000, "1" * 5000, '{"input": [3, 32, ' + "9" * 5000 + "]}"]
)
def test_pathological_json_is_an_arch_error(text):
    """Nesting deeper than the parser's recursion limit, or an integer with more digits than Python
    converts, is an ArchError like any other bad file (not a RecursionError / ValueError traceback)."""
    with pytest.raises(ArchError):
        Arch.from_json(text)


# ---- size limits -------------------------------------------------------------------------------------


def test_huge_width_is_refused_unless_forced():
    d = with_layer({"type": "conv", "out": 100_000, "kernel": 1})
    with pytest.raises(ArchError, match=r"layers\[2\]: 100000 channels exceeds the limit of 65536; pass force"):
        Arch.from_dict(d)
    arch = Arch.from_dict(d, force=True)
    assert arch.layers[2].out == 100_000
    row = [r for r in nasx.cost(arch).layers if (r.section, r.index) == ("layers", 2)][0]
    assert row.cost.madds == 16 * 100_000 * 16 * 16  # the stem halves 32x32 to 16x16


def test_huge_input_is_refused_unless_forced():
    d = arch_dict(input=[3, 5000, 5000])
    with pytest.raises(ArchError, match=r"input \[3, 5000, 5000\] exceeds the size limits"):
        Arch.from_dict(d)
    assert Arch.from_dict(d, force=True).input == (3, 5000, 5000)


def test_too_many_layers_is_refused_unless_forced():
    d = arch_dict([{"type": "act", "fn": "relu"}] * 2049)
    with pytest.raises(ArchError, match="layers exceeds the limit of 2048; pass force"):
        Arch.from_dict(d)
    assert len(Arch.from_dict(d, force=True).layers) == 2049
    # repeat counts towards the limit
    with pytest.raises(ArchError, match="exceeds the limit of 2048"):
        Arch.from_dict(arch_dict([{"type": "act", "repeat": 256}] * 9))


def test_layer_limit_is_checked_before_repeats_multiply(monkeypatch):
    """A file of many small items with "repeat": 256 would make 256 layer objects per item before a final
    count: the limit is checked as the layers are made, so loading stops near the limit."""
    import nasx.arch

    made = []
    real = nasx.arch.layer_from_dict

    def counting(d, where):
        made.append(where)
        return real(d, where)

    monkeypatch.setattr(nasx.arch, "layer_from_dict", counting)
    with pytest.raises(ArchError, match=r"layers\[\d+\]: more than 2048 layers exceeds the limit of 2048"):
        Arch.from_dict(arch_dict([{"type": "act", "repeat": 256}] * 20_000))
    assert len(made) <= 2048 + 256


def test_big_file_is_refused_unless_forced(tmp_path):
    p = tmp_path / "big.json"
    d = arch_dict()
    d["name"] = "x" * (9 << 20)
    p.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ArchError, match="larger than 8 MiB; pass force"):
        load_arch(str(p))
    assert load_arch(str(p), force=True).name == d["name"]


# ---- no code execution -------------------------------------------------------------------------------

HOSTILE = [
    with_layer({"type": "conv", "out": 8, "act": "__import__('os').system('touch PWNED')"}),
    with_layer({"type": "conv", "out": 8, "__reduce__": ["os.system", ["touch PWNED"]]}),
    with_layer({"type": "os.system", "cmd": "touch PWNED"}),
    with_layer({"type": "__main__.Exploit"}),
    with_layer({"type": "conv", "out": "__import__('os').getpid()"}),
    with_layer({"type": "conv", "out": 8, "padding": "lambda: 0"}),
    with_layer({"type": "dwsep", "out": 16, "expansion": "6 if __import__('os').system('touch PWNED') else 6"}),
    with_layer({"type": "conv", "out": 8, "__class__": "nasx.arch.Arch"}),
    arch_dict(__import__="os"),
    arch_dict(name="!!python/object/apply:os.system ['touch PWNED']", input="eval('[3, 32, 32]')"),
]


@pytest.mark.parametrize("d", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_loading_never_executes_code(d, tmp_path, monkeypatch):
    """Python-looking strings and pickle-style keys are bad values or unknown keys: ArchError. While
    loading, eval/exec/compile/pickle/os.system are booby-trapped and the JSON goes through json.loads
    exactly once; nothing is created in the working directory."""
    monkeypatch.chdir(tmp_path)
    calls = []

    def trap(name):
        def f(*a, **k):
            raise AssertionError(f"{name} called while loading an arch")

        return f

    real_loads = json.loads

    def spy_loads(s, *a, **k):
        calls.append(s)
        return real_loads(s, *a, **k)

    for mod, attr in (
        (builtins, "eval"),
        (builtins, "exec"),
        (builtins, "compile"),
        (pickle, "loads"),
        (pickle, "load"),
        (os, "system"),
        (subprocess, "Popen"),
    ):
        monkeypatch.setattr(mod, attr, trap(f"{mod.__name__}.{attr}"))
    monkeypatch.setattr(json, "loads", spy_loads)
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(d), encoding="utf-8")
    with pytest.raises(ArchError):
        load_arch(str(path))
    assert len(calls) == 1
    with pytest.raises(ArchError):
        Arch.from_dict(d)
    assert not (tmp_path / "PWNED").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hostile.json"]


def test_a_valid_file_loads_with_code_execution_trapped(tmp_path, monkeypatch):
    """The positive half: a real arch loads while eval/exec/pickle are unavailable."""
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(arch_dict()), encoding="utf-8")
    for mod, attr in ((builtins, "eval"), (builtins, "exec"), (pickle, "loads"), (pickle, "load")):
        monkeypatch.setattr(mod, attr, lambda *a, attr=attr, **k: (_ for _ in ()).throw(AssertionError(attr)))
    assert load_arch(str(path)) == Arch.from_dict(arch_dict())


# ---- fuzz --------------------------------------------------------------------------------------------

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-3, 70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.25, 0.5, 1.0, 6.0, 1e308, -0.0])
    | st.text(max_size=12)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)

FIELD_NAMES = sorted({f.name for cls in LAYER_TYPES.values() for f in dataclasses.fields(cls)})
WORDS = ["same", "relu", "relu6", "hswish", "sigmoid", "max", "avg", "single", "basic", "bottleneck", "nasx-arch"]
VALUE = (
    st.integers(-2, 70)
    | st.sampled_from([0, 1, 2, 3, 7, 2**31, 2**63, 10**30, -(10**30)])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.25, 0.5, 1.0, 6.0, 1e300, 1e308])
    | st.booleans()
    | st.none()
    | st.sampled_from(WORDS)
    | st.lists(st.integers(-1, 9), max_size=3)
    | JSON
)

# Boundary values per field kind (see nasx.layers.coerce): where a loader's arithmetic breaks.
_INTS = st.sampled_from([0, 1, 2, 3, 4, 7, -1, 2**31, 2**63, 10**30, -(10**30), 10**400]) | st.integers(-5, 100)
_FLOATS = st.sampled_from(
    [0, 0.0, -1.0, 1e-300, 0.125, 0.5, 1, 1.0, 6, 6.0, 1e300, 1e308, 2.0**63, math.inf, math.nan, True, 10**400]
) | st.floats(allow_nan=True, allow_infinity=True)
BOUNDARY = {
    "int+": _INTS,
    "int0": _INTS,
    "int+?": _INTS | st.none(),
    "pair": _INTS | st.lists(_INTS, max_size=3),
    "padding": _INTS | st.just("same") | st.lists(_INTS, max_size=3),
    "ratio": _FLOATS,
    "float+": _FLOATS,
    "float0": _FLOATS,
    "enum": _INTS | _FLOATS | st.sampled_from(WORDS),
    "bool": st.sampled_from([True, False, 0, 1, None]),
    "act": st.sampled_from(WORDS + [None]),
    "act?": st.sampled_from(WORDS + [None]),
}


@st.composite
def layer_like(draw):
    """A layer of a real type with some of its own fields set to wild values (mostly a valid width)."""
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)
    t = draw(st.sampled_from(sorted(LAYER_TYPES)))
    fields = {f.name: f for f in dataclasses.fields(LAYER_TYPES[t])}
    names = sorted(fields)
    d = {"type": t}
    if "out" in names:
        d["out"] = draw(st.integers(1, 64) if draw(st.integers(0, 9)) else VALUE)
    for key in draw(st.lists(st.sampled_from(names), max_size=4, unique=True)) if names else ():
        d[key] = draw(BOUNDARY[fields[key].metadata["kind"]] if draw(st.integers(0, 3)) else VALUE)
    if draw(st.integers(0, 5)) == 0:
        d["repeat"] = draw(st.integers(1, 3) if draw(st.integers(0, 3)) else BOUNDARY["int+"] | VALUE)
    if draw(st.integers(0, 29)) == 0:
        d[draw(st.sampled_from(FIELD_NAMES + ["junk", "__reduce__"]))] = draw(VALUE)
    return d


@st.composite
def arch_like(draw):
    """Arch-shaped objects: usually a valid input and top level, sections of layer_like layers."""
    d = {}
    if draw(st.integers(0, 9)) == 0:
        for key in draw(
            st.lists(st.sampled_from(["format", "version", "name", "input", "junk"]), max_size=3, unique=True)
        ):
            d[key] = draw(VALUE)
    if draw(st.integers(0, 9)):
        wild = draw(st.integers(0, 9)) == 0
        d["input"] = draw(
            VALUE if wild else st.just([3, 16, 16]) | st.lists(st.integers(1, 40), min_size=3, max_size=3)
        )
    for section in ("stem", "layers", "head"):
        if draw(st.integers(0, 3)):
            d[section] = draw(st.lists(layer_like(), max_size=3))
    return d


@st.composite
def one_layer_arch(draw):
    """One layer of a real type, one to three of its fields at boundary values, in a valid arch."""
    cls = draw(st.sampled_from(sorted(LAYER_TYPES.values(), key=lambda c: c.name)))
    fields = {f.name: f for f in dataclasses.fields(cls)}
    layer = {"type": cls.name, **({"out": 16} if "out" in fields else {})}
    if fields:
        for key in draw(st.lists(st.sampled_from(sorted(fields)), min_size=1, max_size=3, unique=True)):
            layer[key] = draw(BOUNDARY[fields[key].metadata["kind"]])
    return {"input": [16, 16, 16], "layers": [layer, {"type": "gap"}, {"type": "flatten"}]}


def load_or_arch_error(d):
    try:
        arch = Arch.from_dict(d)
    except ArchError as e:
        assert str(e)
        return None
    for convention in ("madds", "exact"):
        report = nasx.cost(arch, convention)
        assert all(type(v) is int and v >= 0 for v in report.totals().values()), report.totals()
    assert Arch.from_json(arch.to_json()) == arch
    return arch


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSON)
def test_fuzz_any_json_value(d):
    """Any JSON value either loads or raises ArchError (never another exception)."""
    load_or_arch_error(d)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(arch_like())
def test_fuzz_arch_like_values(d):
    """Arch-shaped JSON (real layer types and field names with wild values) either loads - and then costs
    as non-negative integers and round-trips - or raises ArchError."""
    load_or_arch_error(d)


SWEEP = {
    "int": [0, 1, 2, 3, 5, -1, 2**63, 10**400, -(10**400), 1.0, 2.5, True, None, "3", [3, 3], 1e308],
    "float": [0, 0.0, -1.0, 1e-300, 0.25, 1, 1.0, 6.0, 1e300, 1e308, 10**400, math.inf, math.nan, True, None, "6"],
    "other": [None, True, False, 0, 1, 2, -1, 1.0, "same", "relu", "avg", "basic", [1, 2], [0, 0], {}, 10**400],
}
SWEEP_KIND = {
    "int+": "int",
    "int0": "int",
    "int+?": "int",
    "pair": "int",
    "padding": "int",
    "ratio": "float",
    "float+": "float",
    "float0": "float",
}


def sweep_values(field):
    return SWEEP[SWEEP_KIND.get(field.metadata["kind"], "other")]


def sweep_arch(layer):
    return {"input": [16, 16, 16], "layers": [layer, {"type": "gap"}, {"type": "flatten"}]}


def base_layer(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    return {"type": cls.name, **({"out": 16} if "out" in names else {})}


def check_sweep(d, failures):
    try:
        load_or_arch_error(d)
    except Exception as e:  # noqa: BLE001 - collecting every crash for one report
        failures.append(f"{json.dumps(d, default=repr)[:200]}: {type(e).__name__}: {str(e)[:100]}")


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(one_layer_arch())
def test_fuzz_one_layer_boundary_values(d):
    """One real layer with boundary values in up to three fields: loads or raises ArchError."""
    load_or_arch_error(d)


def test_every_field_with_boundary_values():
    """Deterministic sweep: every field of every layer type set to each boundary value of its kind (alone,
    then in pairs with the numeric fields) loads or raises ArchError; loaded archs cost as integers."""
    failures: list[str] = []
    for cls in LAYER_TYPES.values():
        fields = dataclasses.fields(cls)
        for f in fields:
            for v in sweep_values(f):
                check_sweep(sweep_arch({**base_layer(cls), f.name: v}), failures)
        numeric = [f for f in fields if SWEEP_KIND.get(f.metadata["kind"]) in ("int", "float")]
        for i, f in enumerate(numeric):
            for g in numeric[i + 1 :]:
                for v in (0, 1, 3, 10**400, 1e308, 0.25):
                    for w in (0, 1, 3, 10**400, 1e308, 0.25):
                        check_sweep(sweep_arch({**base_layer(cls), f.name: v, g.name: w}), failures)
    assert not failures, f"{len(failures)} crashes, e.g.:\n" + "\n".join(failures[:15])


def test_fuzz_regressions():
    """Crashes found by the fuzzer (each was an OverflowError / ValueError before the fix)."""
    for layer in (
        {"type": "dwsep", "out": 8, "expansion": 1e308},
        {"type": "dwsep", "out": 8, "se": 1e308},
        {"type": "dwsep", "out": 8, "mid": 10**400, "se": 0.25},
        {"type": "partial", "out": 8, "expansion": 1e308},
        {"type": "conv", "out": 10**5000},
        {"type": "conv", "out": -(10**5000)},
    ):
        d = arch_dict([layer])
        for force in (False, True):
            with pytest.raises(ArchError, match=r"layers\[0\]"):
                Arch.from_dict(d, force=force)
    for top in ({"input": [3, 10**5000, 8]}, {"format": 10**5000}, {"version": 10**5000}, {"name": 10**5000}):
        with pytest.raises(ArchError):
            Arch.from_dict(arch_dict(**top))
    assert math.isfinite(1e308)  # the values above are finite JSON numbers: nothing exotic
