import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_nasx(*args, cwd=None, timeout=600, env=None):
    """Run the CLI as a user would: a fresh interpreter, `python -m nasx ...`."""
    return subprocess.run(
        [sys.executable, "-m", "nasx", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


@pytest.fixture
def nasx_cli():
    return run_nasx


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """One small real search shared by the inspect/export/report/dashboard tests: cifar32 at 20M MAdds,
    10 trials (seed 2: 6 feasible, 4 rejected), short latency measurements, plus one failed trial."""
    import optuna

    from nasx.search.budgets import Budgets
    from nasx.search.run import search
    from nasx.search.settings import SearchSettings
    from nasx.space.config import load_space

    d = tmp_path_factory.mktemp("study")
    url = f"sqlite:///{d}/s.db"
    settings = SearchSettings(
        score="naswot",  # the score is not under test here: the cheapest data-free one
        space=load_space("cifar32"),
        budgets=Budgets(compute=20_000_000),
        storage=url,
        study_name="small",
        n_trials=10,
        seed=2,
        measure_time_s=0.2,
        progress=False,
    )
    with open(os.devnull, "w") as devnull:
        result = search(settings, out=devnull)
    result.study.add_trial(
        optuna.trial.create_trial(state=optuna.trial.TrialState.FAIL, system_attrs={"fail_reason": "simulated failure"})
    )
    return url, "small", d
