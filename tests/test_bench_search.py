"""scripts/bench_search.py end to end on a tiny run: its hypervolumes and zoo-dominance counts are recomputed
here from the studies it stored, by hand (a staircase sum, plain comparisons), not with nasx.util.pareto."""

import re
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from tests.conftest import counted

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_search.py"


def staircase_hv(points, ref=(2.0, 0.8)):
    """Area dominated by (x minimised, y maximised) points inside the box x < ref x, y > ref y."""
    inside = sorted(p for p in points if p[0] < ref[0] and p[1] > ref[1])
    area, best = 0.0, ref[1]
    for i, (x, y) in enumerate(inside):
        best = max(best, y)
        right = inside[i + 1][0] if i + 1 < len(inside) else ref[0]
        area += (right - x) * (best - ref[1])
    return area


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('bench')}/bench.db"
    run = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--trials",
            "6",
            "--seeds",
            "2",
            "--confirm",
            "0",
            "--measure-time",
            "0.1",
            # the zoo within 2x 160M: 9 networks to time instead of 14, mobilenet_v2 (301M, the unit) among them
            "--budget",
            "160M",
            "--score",
            "capacity",  # free: the script's arithmetic is under test, not a proxy's (naswot cost ~1 s a network)
            "--storage",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    return url, run.stdout


def test_hypervolumes_are_the_stored_fronts_by_hand(bench):
    url, out = bench
    lat_unit, score_unit = map(float, re.search(r"MobileNetV2-1.0: ([\d.]+) ms, score ([\d.]+)", out).groups())
    printed = {
        m[0]: [float(v) for v in m[1].split(", ")]
        for m in re.findall(r"^\s+(tpe|random): [\d.]+ ± [\d.]+\s+\(([^)]*)\)", out, re.M)
    }
    assert set(printed) == {"tpe", "random"} and all(len(v) == 2 for v in printed.values())
    for summary in optuna.get_all_study_summaries(url):
        sampler, seed = re.search(r"-(tpe|random)-seed(\d+)-n6$", summary.study_name).groups()
        study = optuna.load_study(study_name=summary.study_name, storage=url)
        pts = [
            (t.values[0] / lat_unit, t.values[1] / score_unit)
            for t in study.trials
            if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("feasible")
        ]
        assert len(counted(study.trials)) == 6
        # the units are printed to 2 decimals, hence the tolerance; a wrong box or front is off by far more
        assert printed[sampler][int(seed)] == pytest.approx(staircase_hv(pts), abs=2e-3)
    tpe, rnd = (sum(printed[k]) / 2 for k in ("tpe", "random"))
    if rnd > 0:
        assert float(re.search(r"tpe / random: ratio ([\d.]+)", out).group(1)) == pytest.approx(tpe / rnd, abs=0.01)


def test_zoo_dominance_counts_by_hand(bench):
    url, out = bench
    rows = re.findall(r"^\s+([a-z0-9_.]+)\s+\d+M\s+([\d.]+)\s+([\d.]+)\s+(\d)/2\s+(\d)/2$", out, re.M)
    names = [r[0] for r in rows]
    # within 2x the budget: mnasnet_a1 (312M) in, fasternet_t0 (335M) just out, resnet18 (1.8G) far out
    assert {"mobilenet_v2", "mnasnet_a1"} <= set(names) and "fasternet_t0" not in names and "resnet18" not in names
    studies = {
        s.study_name: optuna.load_study(study_name=s.study_name, storage=url)
        for s in optuna.get_all_study_summaries(url)
    }
    for name, lat, score, tpe, rnd in rows:
        lat, score = float(lat), float(score)
        for sampler, printed in (("tpe", int(tpe)), ("random", int(rnd))):
            count = 0
            for study_name, study in studies.items():
                if f"-{sampler}-" not in study_name:
                    continue
                values = [
                    t.values
                    for t in study.trials
                    if t.state == optuna.trial.TrialState.COMPLETE and t.user_attrs.get("feasible")
                ]
                if any(abs(v[0] - lat) < 0.01 or abs(v[1] - score) < 0.01 for v in values):
                    break  # too close to the printed rounding to decide by hand
                count += any(v[0] <= lat and v[1] >= score and (v[0] < lat or v[1] > score) for v in values)
            else:
                assert count == printed, (name, sampler)
