"""nasx export: search -> export json -> load -> same cost -> build -> export onnx -> onnxruntime == torch;
pt2 through torch.export; --best; clear errors and no partial files."""

import json
import os

import numpy as np
import optuna
import pytest

import nasx
from nasx.build import WEIGHTS_SEED as SEED
from nasx.errors import NasxError
from nasx.study.export import ONNX_ATOL, ONNX_RTOL, atomic_write, export_arch, parse_target, pick_best

COSTS = ("madds", "flops", "params", "mac_elements", "mac_bytes", "activations")


def trials(url, name):
    return optuna.load_study(study_name=name, storage=url).trials


def front_of(url, name):
    from nasx.store.studies import load_study, study_front

    return study_front(load_study(url, name))


def reference_module(arch):
    import torch

    torch.manual_seed(SEED)  # the weights export writes: torch's default init under the export seed
    return nasx.build(arch).eval()


def test_round_trip_json_cost_build_onnx(small_study, nasx_cli, tmp_path):
    url, name, d = small_study
    number = front_of(url, name)[-1].number  # the highest-scoring front member
    stored = trials(url, name)[number].user_attrs
    out = tmp_path / "best.json"
    r = nasx_cli("export", "--storage", url, "--study", name, "--trial", number, "--format", "json", "-o", out, cwd=d)
    assert r.returncode == 0, r.stderr
    assert json.loads(out.read_text())["format"] == "nasx-arch"

    arch = nasx.load_arch(str(out))
    report = nasx.cost(arch)
    assert {k: getattr(report, {"mac_elements": "mac"}.get(k, k)) for k in COSTS} == {k: stored[k] for k in COSTS}
    # the file is the stored arch, canonical: loading it again changes nothing
    assert arch.to_dict(include_name=False) == stored["arch"]
    assert nasx.Arch.from_json(out.read_text()).content_hash() == nasx.Arch.from_dict(stored["arch"]).content_hash()

    onnx_path = tmp_path / "best.onnx"
    result = export_arch(arch, "onnx", onnx_path)
    assert result.max_abs_diff <= ONNX_ATOL + ONNX_RTOL * result.max_abs_ref

    import onnxruntime as ort
    import torch

    module = reference_module(arch)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    for batch in (1, 3):  # the batch axis is dynamic
        x = torch.randn((batch, *arch.input), generator=torch.Generator().manual_seed(batch + 10))
        with torch.inference_mode():
            expected = module(x).numpy()
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert got.shape == expected.shape == (batch, 10)
        np.testing.assert_allclose(got, expected, rtol=ONNX_RTOL, atol=ONNX_ATOL)


def test_pt2_through_torch_export(small_study, tmp_path):
    import torch

    url, name, _ = small_study
    arch = nasx.Arch.from_dict(front_of(url, name)[0].user_attrs["arch"])
    path = tmp_path / "m.pt2"
    result = export_arch(arch, "pt2", path)
    assert result.path == path and path.stat().st_size > 0
    program = torch.export.load(str(path))
    x = torch.randn((2, *arch.input))
    with torch.inference_mode():
        torch.testing.assert_close(program.module()(x), reference_module(arch)(x))


def test_best_picks_the_nearest_front_member(small_study, nasx_cli, tmp_path):
    from nasx.store.studies import latency_ms as shown_ms  # the re-timed latency where the search re-timed

    url, name, d = small_study
    front = front_of(url, name)
    assert len(front) >= 2
    assert any("latency_confirmed" in t.user_attrs for t in front)  # the search re-timed its front
    for t in front:
        assert pick_best(front, f"{shown_ms(t)}ms")[0] is t
        assert pick_best(front, str(t.user_attrs["madds"]))[0].user_attrs["madds"] == t.user_attrs["madds"]
    a, b = front[0], front[1]
    near_b = shown_ms(a) + 0.9 * (shown_ms(b) - shown_ms(a))
    assert pick_best(front, f"{near_b * 1000}us")[0] is b
    assert pick_best(front, "0.001ms")[0] is a and pick_best(front, "1e6ms")[0] is front[-1]
    assert parse_target("2s") == ("latency_ms", 2000.0) and parse_target("10M", "flops") == ("flops", 1e7)

    out = tmp_path / "best.json"
    r = nasx_cli("export", "--storage", url, "--study", name, "--best", "0.001ms", "-o", out, cwd=d)
    assert r.returncode == 0, r.stderr
    assert f"trial {a.number}" in r.stderr
    assert nasx.load_arch(str(out)).to_dict(include_name=False) == a.user_attrs["arch"]


def run_main(capsys, *args):
    """The CLI in-process (cheaper than a fresh interpreter for error paths): (status, stdout, stderr)."""
    from nasx.cli.main import main

    capsys.readouterr()
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_rejected_failed_unknown_trials_are_one_line_exit_2(small_study, capsys, tmp_path):
    url, name, d = small_study
    ts = trials(url, name)
    rejected = next(t.number for t in ts if t.state == optuna.trial.TrialState.PRUNED)
    failed = next(t.number for t in ts if t.state == optuna.trial.TrialState.FAIL)
    for number, text in (
        (rejected, "was rejected (over budget"),
        (failed, "failed (simulated failure)"),
        (999, "has no trial 999"),
    ):
        for fmt in ("json", "onnx", "pt2"):
            out = tmp_path / f"t{number}.{fmt}"
            rc, _, err = run_main(
                capsys, "export", "--storage", url, "--study", name, "--trial", number, "--format", fmt, "-o", out
            )
            assert rc == 2 and len(err.strip().splitlines()) == 1 and text in err, err
            assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_unwritable_paths_are_one_clear_line(small_study, capsys, tmp_path):
    url, name, d = small_study
    number = front_of(url, name)[0].number
    (tmp_path / "file").write_text("x")
    for target, text in (
        (tmp_path / "missing" / "a.json", "does not exist"),
        (tmp_path / "file" / "a.json", "is not a directory"),
        (tmp_path, "is a directory"),
    ):
        for fmt in ("json", "onnx"):
            rc, _, err = run_main(
                capsys, "export", "--storage", url, "--study", name, "--trial", number, "--format", fmt, "-o", target
            )
            assert rc == 2 and len(err.strip().splitlines()) == 1, err
            assert "cannot write" in err and text in err


def test_a_directory_no_file_can_be_created_in_is_refused_before_exporting(monkeypatch):
    """os.access says yes to root, and on /proc, where no file can be created: the target is tried first, so
    the refusal comes before the seconds of building and exporting, not after them."""
    import nasx.study.export as export

    def no_export(*_):
        raise AssertionError("exported before checking the target")

    monkeypatch.setattr(export, "_reference", no_export)
    for fmt in ("onnx", "json"):
        with pytest.raises(NasxError, match=r"cannot write /proc/x\.\w+: no file can be created in /proc"):
            export_arch(nasx.load_arch("mobilenet_v2"), fmt, f"/proc/x.{fmt}")


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only directory")
def test_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(NasxError, match="cannot write .*no permission"):
            export_arch(nasx.load_arch("mobilenet_v2"), "json", ro / "a.json")
    finally:
        ro.chmod(0o700)


def test_a_failed_write_leaves_no_partial_file_and_keeps_the_old_one(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_text("previous export")

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("partial")
        raise NasxError("onnxruntime output differs from torch")

    with pytest.raises(NasxError, match="differs"):
        atomic_write(target, half_then_fail, ".onnx")
    assert target.read_text() == "previous export"
    assert sorted(os.listdir(tmp_path)) == ["model.onnx"]
    atomic_write(target, lambda tmp: open(tmp, "w").write("new"), ".onnx")
    assert target.read_text() == "new" and sorted(os.listdir(tmp_path)) == ["model.onnx"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_an_os_error_while_writing_is_one_clear_line(tmp_path, monkeypatch):
    import tempfile

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    denied_text = r"^cannot write .*a\.json: (no file can be created in .*: )?Permission denied$"
    with pytest.raises(NasxError, match=denied_text):
        export_arch(nasx.load_arch("mobilenet_v2"), "json", tmp_path / "a.json")
    assert os.listdir(tmp_path) == []
