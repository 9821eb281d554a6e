"""MySQL/MariaDB as a study storage, against the local server on 127.0.0.1:3306 (root, no password, database
`test`) through PyMySQL: a small search, then `nasx pareto` on it. And the hint when the driver is missing."""

import importlib.util
import json
import os
import uuid

import optuna
import pytest

from tests.conftest import counted

MYSQL = os.environ.get("NASX_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _unreachable() -> str | None:
    """Why the MySQL tests cannot run here, or None."""
    if importlib.util.find_spec("pymysql") is None:
        return 'needs PyMySQL (pip install "nasx[mysql]")'
    try:
        import sqlalchemy

        with sqlalchemy.create_engine(MYSQL, connect_args={"connect_timeout": 3}).connect():
            return None
    except Exception as e:
        return f"MySQL/MariaDB not reachable at {MYSQL}: {str(e).splitlines()[0][:120]}"


@pytest.mark.mysql
@pytest.mark.skipif(_unreachable() is not None, reason=str(_unreachable()))
def test_search_and_pareto_on_mysql(nasx_cli, tmp_path):
    name = f"pytest-{uuid.uuid4().hex[:10]}"
    try:
        r = nasx_cli(
            "search",
            "--score",
            "naswot",  # the score is not under test here: the cheapest data-free one
            "--config",
            "cifar32",
            "--budget",
            "20M",
            "--storage",
            MYSQL,
            "--study",
            name,
            "--n-trials",
            "4",
            "--seed",
            "2",
            "--measure-time",
            "0.05",
            "--score",
            "params",
            "--quiet",
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        trials = optuna.load_study(study_name=name, storage=MYSQL).trials
        assert len(counted(trials)) == 4
        p = nasx_cli("pareto", "--storage", MYSQL, "--study", name, "--json", cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        front = json.loads(p.stdout)
        feasible = [t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        assert {row["trial"] for row in front} <= set(feasible) and (front or not feasible)
    finally:
        try:
            optuna.delete_study(study_name=name, storage=MYSQL)
        except KeyError:
            pass


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is not None, reason="mysqlclient is installed here")
def test_a_missing_mysql_driver_names_real_ones(nasx_cli, tmp_path):
    r = nasx_cli("pareto", "--storage", "mysql://root@127.0.0.1:3306/test", cwd=tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "(MySQLdb)" in r.stderr and "mysql+pymysql://" in r.stderr and "mysqlclient" in r.stderr
