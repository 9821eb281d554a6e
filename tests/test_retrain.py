"""nasx retrain: longer training of one trial; accuracy and safetensors weights stored as an Optuna artifact
linked to the trial, loaded back and re-evaluated to the same accuracy."""

import optuna
import pytest
import torch
from accuracy_fixtures import tiny_space

from nasx.cli.main import main
from nasx.score.data import load_data
from nasx.score.train import evaluate
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space


@pytest.fixture(scope="module")
def study_url(tmp_path_factory):
    d = tmp_path_factory.mktemp("retrain")
    url = f"sqlite:///{d}/s.db"
    settings = SearchSettings(
        space=load_space(tiny_space(d)),
        budgets=Budgets(compute=1_300_000),
        storage=url,
        study_name="r",
        n_trials=8,
        seed=0,
        score="params",
        measure_time_s=0.05,
        progress=False,
        retime=False,  # retraining is under test, not the front's timing
        drift_correction=False,
    )
    result = search(settings, out=open("/dev/null", "w"))
    assert result.front, "need a feasible trial"
    return (
        d,
        url,
        result.front[0].number,
        [t.number for t in result.study.trials if t.state == optuna.trial.TrialState.PRUNED],
    )


def test_retrain_stores_weights_that_reload_to_the_same_accuracy(study_url, capsys):
    d, url, number, _ = study_url
    code = main(
        [
            "retrain",
            "--storage",
            url,
            "--study",
            "r",
            "--trial",
            str(number),
            "--train-steps",
            "30",
            "--train-batch",
            "16",
            "-o",
            str(d / "copy.safetensors"),
        ]
    )
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"trial {number}: validation top-1" in out.out and "artifact" in out.out

    study = optuna.load_study(study_name="r", storage=url)
    trial = study.trials[number]
    top1, artifact_id = trial.user_attrs["retrain_top1"], trial.user_attrs["retrain_artifact_id"]
    record = study.user_attrs[f"retrain:{number}"]
    assert record["artifact_id"] == artifact_id and record["top1"] == top1 and record["steps"] == 30
    assert record["train"]["steps"] == 30 and record["data"] == "digits"
    metas = optuna.artifacts.get_all_artifact_meta(study)
    assert [m.artifact_id for m in metas] == [artifact_id]
    assert (d / "artifacts" / artifact_id).is_file()  # beside the SQLite database

    from nasx.arch import Arch
    from nasx.build import build
    from nasx.study.retrain import download, load_weights

    path = download(d / "artifacts", artifact_id, d / "back.safetensors")
    state, meta = load_weights(path)
    assert meta["nasx"] == "retrain"
    arch = Arch.from_json(meta["arch"])
    assert arch.to_dict(include_name=False) == trial.user_attrs["arch"]
    module = build(arch)
    module.load_state_dict(state, strict=True)
    data = load_data("digits", arch.input, 10)
    assert arch.input == (3, 16, 16)
    assert evaluate(module, data) == pytest.approx(top1, abs=1e-9)
    assert (d / "copy.safetensors").read_bytes() == path.read_bytes()
    # a torch.save'd state dict of the same weights loads back with weights_only=True (no code execution)
    torch.save(module.state_dict(), d / "w.pt")
    again = torch.load(d / "w.pt", weights_only=True)
    assert all(torch.equal(again[k], v) for k, v in state.items())


@pytest.mark.parametrize(
    "which, message",
    [("missing", "has no trial 999"), ("study", "no study 'nope'"), ("rejected", "never built or measured")],
)
def test_retrain_errors_are_one_line(study_url, capsys, which, message):
    d, url, number, rejected = study_url
    args = ["retrain", "--storage", url, "--study", "r", "--trial", "999", "--train-steps", "2"]
    if which == "study":
        args[args.index("r")] = "nope"
    if which == "rejected":
        if not rejected:
            pytest.skip("no rejected trial in this small study")
        args[args.index("999")] = str(rejected[0])
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
