"""--score train: a small CNN learns the digits well above chance within a small budget, the same network
with its final layer frozen at zero stays at chance, training is reproducible, and a search with
`--score train` records the training on its trials and caches it under the data and settings."""

import optuna
import pytest
import torch
from accuracy_fixtures import make_folder, small_cnn, tiny_space

from nasx.build import build
from nasx.cli.main import main
from nasx.score.data import load_data
from nasx.score.proxies import get_score
from nasx.score.train import TrainSettings, lr_factor, train

STEPS, BATCH = 60, 32  # 1,920 images seen, ~1.3 epochs of the digits training split


@pytest.fixture(scope="module")
def digits16():
    return load_data("digits", (3, 16, 16), 10)


def test_small_cnn_learns_and_zeroed_head_stays_at_chance(digits16):
    arch = small_cnn()
    score = get_score("train", data=digits16, train=TrainSettings(steps=STEPS, batch=BATCH))
    torch.manual_seed(0)
    value = score(build(arch), arch.input, 0)
    assert value >= 50, f"top-1 {value:.1f}% after {STEPS} steps: chance is 10%"
    assert value.details["steps"] == STEPS and value.details["samples"] == STEPS * BATCH
    assert value.details["seconds"] > 0 and not value.details["diverged"]

    torch.manual_seed(0)
    frozen = build(arch)
    head = [m for m in frozen.modules() if isinstance(m, torch.nn.Linear)][-1]
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    head.weight.requires_grad_(False)
    head.bias.requires_grad_(False)
    at_chance = score(frozen, arch.input, 0)
    # all logits 0: every image is predicted as class 0, so accuracy is class 0's share of validation
    share = 100 * float((digits16.labels[digits16.val_idx] == 0).float().mean())
    assert at_chance == pytest.approx(share) and at_chance <= 15
    assert float(head.weight.abs().sum()) == 0 and float(head.bias.abs().sum()) == 0


def test_training_is_reproducible(digits16):
    arch = small_cnn()
    results = []
    for _ in range(2):
        torch.manual_seed(0)
        results.append(train(build(arch), digits16, TrainSettings(steps=12, batch=16), madds=700_000))
    a, b = results
    assert (a.top1, a.final_loss, a.steps) == (b.top1, b.final_loss, b.steps)
    assert a.deterministic and a.train_madds == 3 * 700_000 * 12 * 16
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is restored


def test_lr_schedule_warms_up_then_decays_to_zero():
    steps = 200
    f = [lr_factor(s, steps) for s in range(steps)]
    assert f[0] == pytest.approx(0.1) and max(f) == pytest.approx(1.0) and f[9] == pytest.approx(1.0)
    assert all(x >= y for x, y in zip(f[10:], f[11:])) and f[-1] < 1e-3


def test_train_key_depends_on_data_and_settings(tmp_path, digits16):
    other = load_data(f"folder:{make_folder(tmp_path / 'f')}", (3, 16, 16), 10)
    keys = {
        get_score("train", data=d, train=t).key
        for d in (digits16, other)
        for t in (
            TrainSettings(steps=10),
            TrainSettings(steps=20),
            TrainSettings(steps=10, batch=32),
            TrainSettings(steps=10, optimizer="adamw"),
        )
    }
    assert len(keys) == 8
    with pytest.raises(Exception, match="needs a data set"):
        get_score("train")


def test_search_with_score_train_records_training(tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/t.db"
    args = [
        "search",
        "--config",
        str(tiny_space(tmp_path)),
        "--score",
        "train",
        "--train-steps",
        "3",
        "--train-batch",
        "8",
        "--n-trials",
        "3",
        "--seed",
        "0",
        "--measure-time",
        "0.05",
        "--storage",
        url,
        "--quiet",
    ]
    assert main(args) == 0, capsys.readouterr().err
    (name,) = optuna.get_all_study_names(url)
    assert name.endswith("-train-digits")
    study = optuna.load_study(study_name=name, storage=url)
    assert study.user_attrs["data"] == "digits" and study.user_attrs["train"]["steps"] == 3
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done
    for t in done:
        tr = t.user_attrs["training"]
        assert 0 <= t.values[1] <= 100 and t.values[1] == t.user_attrs["score"]
        assert tr["steps"] == 3 and tr["samples"] == 24 and tr["train_madds"] == 3 * t.user_attrs["madds"] * 24
        assert tr["seconds"] > 0 and tr["data"] == "digits"
    from sqlalchemy import create_engine, text

    with create_engine(url).connect() as c:
        keys = [r[0] for r in c.execute(text("SELECT score_key FROM nasx_score_cache"))]
    assert keys and all(k.startswith("train:seed0:3x16x16:digits-") and "-s3-b8-" in k for k in keys)


def test_data_options_need_score_train(tmp_path, capsys):
    code = main(["search", "--config", "cifar32", "--data", "digits", "--storage", f"sqlite:///{tmp_path}/x.db"])
    err = capsys.readouterr().err
    assert code == 2 and "--data only apply to --score train" in err and len(err.strip().splitlines()) == 1
