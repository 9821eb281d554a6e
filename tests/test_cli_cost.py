"""`nasx cost` run as a user runs it: its command line, in this process (conftest.run_nasx_here); one test runs it
as a subprocess (`python -m nasx`), the rest save a fresh interpreter each. Numbers are checked against
published values (MobileNetV2 1.0: 3,504,872 params; TF-slim's table: 300M MAdds at 224, 154M at 160) and
hand arithmetic; errors must be one line on stderr with exit status 2 and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_nasx_here

REPO = Path(__file__).resolve().parents[1]


def nasx(*args, cwd=REPO):
    return run_nasx_here(*args, cwd=cwd)


def nasx_process(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "nasx", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def cost_json(*args) -> dict:
    p = nasx("cost", *args, "--json")
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    return json.loads(p.stdout)  # the whole of stdout is one JSON document


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def bare_conv_arch(cin=3, h=32, w=32, out=64, k=3):
    return json.dumps(
        {
            "format": "nasx-arch",
            "version": 1,
            "input": [cin, h, w],
            "layers": [{"type": "conv", "out": out, "kernel": k, "bn": False, "act": None}],
        }
    )


# ---- the table ---------------------------------------------------------------------------------------


def test_table_header_names_the_convention():
    p = nasx_process("cost", "mobilenet_v2")  # the one run through `python -m nasx`
    assert p.returncode == 0, p.stderr
    assert p.stderr == ""
    lines = p.stdout.splitlines()
    assert lines[0].startswith("convention: MAdds (multiply-accumulates; BN folded, bias and activations excluded)")
    header = next(line for line in lines if line.startswith("mobilenet_v2 @ 3x224x224"))
    assert "MAdds" in header.split() and "params" in header.split()
    assert "MAdds 300,774,272" in p.stdout
    assert "params 3,504,872" in p.stdout  # the common PyTorch definition's count
    assert any(line.startswith("layers[16]") for line in lines)
    assert any(line.startswith("total") for line in lines)


@pytest.mark.parametrize(
    "convention,unit,words",
    [
        ("flops", "FLOPs", "FLOPs = 2 x MAdds"),
        ("exact", "ops", "exact ops (2*Cin/g*kh*kw-1 per conv output"),
    ],
)
def test_table_other_conventions(convention, unit, words):
    p = nasx("cost", "mobilenet_v2", "--convention", convention)
    assert p.returncode == 0, p.stderr
    first = p.stdout.splitlines()[0]
    assert first.startswith(f"convention: {words}")
    header = next(line for line in p.stdout.splitlines() if line.startswith("mobilenet_v2 @"))
    assert unit in header.split() and "MAdds" not in header.split()


# ---- --json ------------------------------------------------------------------------------------------


def test_json_output():
    """--json prints one object: convention, input [c, h, w], integer totals, one row per layer."""
    d = cost_json("mobilenet_v2")
    assert d["convention"] == "madds"
    assert d["input"] == [3, 224, 224]
    t = d["totals"]
    for key in ("madds", "flops", "params", "mac_elements", "mac_bytes", "activations"):
        assert type(t[key]) is int and t[key] > 0, key
    assert t["params"] == 3_504_872
    assert abs(t["madds"] - 300e6) <= 0.01 * 300e6
    assert t["flops"] == 2 * t["madds"]
    assert t["mac_bytes"] == 4 * t["mac_elements"]  # float32
    layers = d["layers"]
    assert isinstance(layers, list) and len(layers) == 1 + 17 + 4  # stem, 17 blocks, head
    assert [row["section"] for row in layers].count("layers") == 17
    assert sum(row["madds"] for row in layers) == t["madds"]
    assert sum(row["params"] for row in layers) == t["params"]
    assert layers[-1]["out_shape"] == [1000]


def test_json_dtype_changes_bytes_only():
    a, b = cost_json("mobilenet_v2"), cost_json("mobilenet_v2", "--dtype", "float16")
    assert b["totals"]["mac_bytes"] * 2 == a["totals"]["mac_bytes"]
    assert b["totals"]["mac_elements"] == a["totals"]["mac_elements"]


@pytest.mark.parametrize("convention,factor", [("madds", 1), ("flops", 2)])
def test_json_convention_ops(convention, factor):
    d = cost_json("mobilenet_v2", "--convention", convention)
    assert d["convention"] == convention
    assert d["totals"]["ops"] == factor * d["totals"]["madds"]


def test_exact_convention_against_hand_arithmetic(tmp_path):
    """A bare 3x3 conv, 3 -> 64 channels on 32x32 (note 000's conv1 with Cin = 3): `exact` counts
    (2*Cin*K^2 - 1)*H*W*Cout = 53*32*32*64 (note 002)."""
    path = write(tmp_path, "conv.json", bare_conv_arch())
    d = cost_json(path, "--convention", "exact")
    assert d["convention"] == "exact"
    assert d["totals"]["ops"] == 53 * 32 * 32 * 64 == 3_473_408
    assert d["totals"]["madds"] == 27 * 32 * 32 * 64
    whole = cost_json("mobilenet_v2", "--convention", "exact")["totals"]
    assert whole["ops"] > whole["flops"]  # BN, activations and adds are counted on top of the dot products


def test_input_override_changes_madds():
    """--input 3x160x160: MobileNetV2 1.0 at 160 is 154M MAdds (TF-slim's MobileNet table), params unchanged."""
    d224, d160 = cost_json("mobilenet_v2"), cost_json("mobilenet_v2", "--input", "3x160x160")
    assert d160["input"] == [3, 160, 160]
    assert d160["totals"]["madds"] < d224["totals"]["madds"]
    assert abs(d160["totals"]["madds"] - 154e6) <= 0.01 * 154e6
    assert d160["totals"]["params"] == d224["totals"]["params"]
    assert d160["layers"][0]["out_shape"] == [32, 80, 80]


def test_arch_file_and_name_agree(tmp_path):
    from nasx import load_arch

    path = write(tmp_path, "mnv2.json", load_arch("mobilenet_v2").to_json())
    assert cost_json(path)["totals"] == cost_json("mobilenet_v2")["totals"]


# ---- errors ------------------------------------------------------------------------------------------

ARCH_WITH_ERROR = json.dumps(
    {
        "format": "nasx-arch",
        "version": 1,
        "input": [3, 32, 32],
        "layers": [{"type": "conv", "out": 8}, {"type": "conv", "out": 8, "groups": 3}],
    }
)


@pytest.mark.parametrize(
    "args,files,fragment",
    [
        (["cost", "no_such_model"], {}, "neither an architecture file nor a reference model"),
        (["cost", "mobilenet_v2", "--input", "3x224"], {}, "--input '3x224' must be CxHxW"),
        (["cost", "mobilenet_v2", "--input", "0x224x224"], {}, "CxHxW"),
        (["cost", "mobilenet_v2", "--input", "ax224x224"], {}, "CxHxW"),
        (["cost", "@bad.json"], {"bad.json": '{"input": [3, 224, 224],\n "layers": [}'}, "is not valid JSON"),
        (["cost", "@err.json"], {"err.json": ARCH_WITH_ERROR}, "layers[1] (conv)"),
        (["cost", "@list.json"], {"list.json": "[1, 2]"}, "must be a JSON object"),
        (["cost", "@deep.json"], {"deep.json": "[" * 100_000}, "nested too deeply"),
        (["cost", "@digits.json"], {"digits.json": '{"input": [3, ' + "9" * 5000 + ", 8]}"}, "digits"),
        (["cost", "@wide.json"], {"wide.json": bare_conv_arch(out=100_000)}, "; pass --force to load it anyway"),
        (["cost", "/dev/null"], {}, "/dev/null is not a regular file (a device or pipe)"),
        (
            ["cost", '{"input": [3, 32, 32], "layers": []}'],
            {},
            "looks like inline JSON: nasx reads an architecture from a file",
        ),
        (["cost", "@empty.json"], {"empty.json": ""}, "empty.json is empty"),
        (["cost", "mobilenet_v2", "--dtype", "int3"], {}, "unknown dtype"),
        (["cost", "mobilenet_v2", "--convention", "macs"], {}, "invalid choice"),
        (["cost"], {}, "required"),
        (["frobnicate"], {}, "invalid choice"),
    ],
    ids=[
        "model",
        "input-2d",
        "input-zero",
        "input-letters",
        "malformed-json",
        "arch-error",
        "not-object",
        "deep-json",
        "huge-int",
        "limit",
        "dev-null",
        "inline-json",
        "empty",
        "dtype",
        "convention",
        "no-arch",
        "command",
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, args, files, fragment):
    for name, text in files.items():
        write(tmp_path, name, text)
    args = [tmp_path / a[1:] if a.startswith("@") else a for a in args]
    p = nasx(*args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert "Traceback" not in p.stderr
    lines = p.stderr.splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("nasx"), lines[0]
    assert "error" in lines[0]
    assert fragment in lines[0], lines[0]
    assert p.stdout == ""


def test_force_lifts_the_limit(tmp_path):
    path = write(tmp_path, "wide.json", bare_conv_arch(cin=3, h=8, w=8, out=100_000, k=1))
    d = cost_json(path, "--force")
    assert d["totals"]["madds"] == 3 * 100_000 * 8 * 8
