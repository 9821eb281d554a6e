"""`nasx latency ARCH...`: files and zoo names timed as a search times them (latency cache first), in input order,
as a table or a JSON list; bad input is one line, exit 2, no traceback. Timings are stubbed: the harness is
tests/test_latency.py's, the block table's tests/test_blocks.py's."""

from __future__ import annotations

import json

import pytest

import nasx
import nasx.measure.cached
from nasx.cli.main import main


@pytest.fixture
def stub_timing(monkeypatch):
    calls = []

    def timed(module, input_shape, store, fp, fp_hash, **settings):
        calls.append(tuple(input_shape))
        n = sum(p.numel() for p in module.parameters())
        return {"median_ms": 1 + n / 1e6, "iqr_ms": 0.1, "fingerprint": fp}

    monkeypatch.setattr(nasx.measure.cached, "timed", timed)
    return calls


def test_json_lists_every_arch_in_input_order_measured_then_cached(tmp_path, capsys, stub_timing, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = "small.json"
    small = nasx.load_arch("mobilenet_v3_small").to_dict() | {"input": [3, 64, 64], "name": "small"}
    (tmp_path / path).write_text(json.dumps(small))
    argv = ["latency", "mobilenet_v3_small", path, "--threads", "1", "--storage", "sqlite:///l.db"]
    assert main([*argv, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["arch"] for r in rows] == ["mobilenet_v3_small", path]
    assert [r["name"] for r in rows] == ["mobilenet_v3_small", "small"]
    params = sum(p.numel() for p in nasx.build("mobilenet_v3_small").parameters())
    assert rows[0]["latency_ms"] == pytest.approx(1 + params / 1e6)
    assert all(r["predicted"] is False and r["cached"] is False for r in rows)
    assert rows[0]["fingerprint_hash"] != rows[1]["fingerprint_hash"]  # the input is in the fingerprint
    assert stub_timing == [(3, 224, 224), (3, 64, 64)]
    assert main([*argv, "--json"]) == 0  # from the latency cache: nothing timed again
    again = json.loads(capsys.readouterr().out)
    assert [r["cached"] for r in again] == [True, True] and len(stub_timing) == 2
    assert [r["latency_ms"] for r in again] == [r["latency_ms"] for r in rows]
    assert main(argv) == 0  # the table
    out = capsys.readouterr().out
    assert out.count("measured (from the latency cache)") == 2 and "mobilenet_v3_small" in out


@pytest.mark.parametrize(
    "args, text",
    [
        (["nope"], "'nope' is neither an architecture file nor a reference model"),
        (["mobilenet_v2", "--threads", "0"], "--threads must be at least 1"),
        (["mobilenet_v2", "--measure-time", "0"], "positive"),
        (["mobilenet_v2", "--predict", "--threads", "1"], "no block latency model for fingerprint"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, text, stub_timing):
    assert main(["latency", *args, "--storage", f"sqlite:///{tmp_path}/l.db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nasx latency: error:") and text in err and err.count("\n") == 1, err
    assert stub_timing == []  # refused before anything was timed


def test_a_malformed_file_is_one_line_without_traceback(nasx_cli, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"input": [3, 32, 32], "layers": [{"type": "conv"}]}')
    r = nasx_cli("latency", "mobilenet_v2", str(bad), "--json", "--storage", f"sqlite:///{tmp_path}/l.db", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    expected = f"nasx latency: error: {bad}: layers[0] (conv): missing required key 'out'"
    assert r.stderr.strip().splitlines() == [expected]
    assert not (tmp_path / "l.db").exists()  # every file is read before the storage is opened
