"""The latency model: least-squares fits and rank statistics against numpy/scipy on fixed data, storage per
device fingerprint, and `nasx search --prefilter` (its rule, and a real search that skips candidates)."""

import math

import numpy as np
import optuna
import pytest
import scipy.optimize
import scipy.stats

from nasx.errors import NasxError
from nasx.measure.device import fingerprint, fingerprint_hash
from nasx.measure.latency_model import LatencyModel, fit_linear, load_model, relative_errors, save_model, within_share
from nasx.measure.prefilter import Prefilter, default_margin
from nasx.search.budgets import Budgets
from nasx.search.run import search
from nasx.search.settings import SearchSettings
from nasx.space.config import load_space
from nasx.store.db import Store, latency_cache
from nasx.util.stats import kendall_tau_b, spearman

# fixed data: latency (ms) of 8 made-up networks against their MAdds and MAC
MADDS = np.array([50e6, 120e6, 80e6, 300e6, 210e6, 95e6, 400e6, 150e6])
MAC = np.array([9e6, 11e6, 20e6, 25e6, 8e6, 30e6, 14e6, 12e6])
LAT = np.array([3.1, 5.0, 6.4, 12.9, 7.7, 8.8, 14.2, 6.0])


def test_plain_fit_equals_numpy_lstsq():
    coef, c = fit_linear(np.column_stack([MADDS, MAC]), LAT, relative=False)
    ref = np.linalg.lstsq(np.column_stack([MADDS, MAC, np.ones(8)]), LAT, rcond=None)[0]
    np.testing.assert_allclose([*coef, c], ref, rtol=1e-9)


def test_relative_fit_minimises_relative_residuals_like_scipy():
    coef, c = fit_linear(np.column_stack([MADDS, MAC]), LAT, relative=True)
    scale = np.array([1e-8, 1e-7, 1.0])  # scipy works on well-scaled unknowns

    def residuals(p):
        a, b, k = p * scale
        return (a * MADDS + b * MAC + k - LAT) / LAT

    ref = scipy.optimize.least_squares(residuals, np.zeros(3), xtol=1e-15, ftol=1e-15, gtol=1e-15).x * scale
    np.testing.assert_allclose([*coef, c], ref, rtol=1e-6)
    # and it is a different (better, for relative error) solution than the plain fit
    plain = fit_linear(np.column_stack([MADDS, MAC]), LAT, relative=False)
    rel_err = lambda co, k: np.sum(relative_errors(np.column_stack([MADDS, MAC]) @ co + k, LAT) ** 2)  # noqa: E731
    assert rel_err(coef, c) < rel_err(*plain)


def test_fit_recovers_exact_coefficients():
    y = 2e-8 * MADDS + 3e-7 * MAC + 0.5
    for relative in (True, False):
        coef, c = fit_linear(np.column_stack([MADDS, MAC]), y, relative=relative)
        np.testing.assert_allclose([*coef, c], [2e-8, 3e-7, 0.5], rtol=1e-8)


def test_fit_needs_enough_points():
    with pytest.raises(NasxError, match="at least 3"):
        fit_linear(np.column_stack([MADDS[:2], MAC[:2]]), LAT[:2])


def test_within_share_is_nn_meter_accuracy():
    y = np.array([10.0, 10.0, 10.0, 10.0, 10.0])
    pred = np.array([10.0, 11.0, 8.9, 9.0, 12.0])  # errors 0, +10% (in), -11% (out), -10% (in), +20% (out)
    assert within_share(pred, y) == pytest.approx(3 / 5)
    assert within_share(pred, y, tol=0.25) == 1.0


def test_rank_statistics_match_scipy_with_ties():
    x = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]
    y = [2, 7, 1, 8, 2, 8, 1, 8, 2, 8, 4]
    assert spearman(x, y) == pytest.approx(scipy.stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman(MADDS, LAT) == pytest.approx(scipy.stats.spearmanr(MADDS, LAT).statistic, abs=1e-12)
    assert kendall_tau_b(MAC, LAT) == pytest.approx(scipy.stats.kendalltau(MAC, LAT).statistic, abs=1e-12)


def _model(fp, intercept=1.0, coef=(1e-8, 1e-7), p90=0.2):
    return LatencyModel(
        ("madds", "mac"),
        coef,
        intercept,
        n_train=10,
        n_test=10,
        kendall=0.5,
        spearman=0.6,
        within10=0.4,
        p90_rel_error=p90,
        config="cifar32",
        fingerprint_hash=fingerprint_hash(fp),
        fingerprint=fp,
    )


def test_model_is_stored_per_fingerprint(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/m.db")
    fp1, fp2 = fingerprint(threads=1, input_shape=(3, 32, 32)), fingerprint(threads=2, input_shape=(3, 32, 32))
    assert load_model(store, fingerprint_hash(fp1)) is None
    save_model(store, _model(fp1, intercept=1.0))
    save_model(store, _model(fp1, intercept=2.0))  # the newest wins
    save_model(store, _model(fp2, intercept=3.0))
    m = load_model(store, fingerprint_hash(fp1))
    assert m.intercept_ms == 2.0 and m.features == ("madds", "mac") and m.fingerprint == fp1
    assert m.predict(madds=1e8, mac=1e7) == pytest.approx(1e-8 * 1e8 + 1e-7 * 1e7 + 2.0)
    assert load_model(store, fingerprint_hash(fp2)).intercept_ms == 3.0
    nan_model = _model(fp1, p90=math.nan)
    assert math.isnan(LatencyModel.from_dict(nan_model.to_dict()).p90_rel_error)


def test_prefilter_rule():
    fp = fingerprint(threads=1, input_shape=(3, 32, 32))
    pf = Prefilter(_model(fp, intercept=0.0, coef=(1e-7, 0.0)), margin=0.2)  # 10 ms per 100M MAdds
    front = [(0, 2.0, 0.5), (1, 5.0, 1.0)]  # (trial, latency ms, score)
    # predicted 10 ms, optimistic 8 ms: trial 1 (5 ms, score 1.0) is faster and at least as good
    v = pf.check(front, madds=100_000_000, mac=0, score=0.9)
    assert v.skip and v.dominated_by == 1 and v.reason.startswith("prefiltered: predicted 10.00 ms")
    assert not pf.check(front, madds=100_000_000, mac=0, score=1.1).skip  # better score than the whole front
    assert not pf.check(front, madds=6_000_000 * 10, mac=0, score=0.9).skip  # optimistic 4.8 ms < 5 ms
    assert pf.check(front, madds=6_000_000 * 10, mac=0, score=0.4).skip  # but trial 0 dominates it
    assert not pf.check([], madds=10**12, mac=0, score=0.0).skip  # empty front: measure
    assert default_margin(_model(fp, p90=0.02)) == 0.10 and default_margin(_model(fp, p90=0.35)) == 0.35
    with pytest.raises(NasxError, match="margin"):
        Prefilter(_model(fp), margin=1.5)


@pytest.fixture(scope="module")
def prefiltered_search(tmp_path_factory):
    """A real cifar32 search with a stored model that predicts every candidate at 1000x its true latency."""
    d = tmp_path_factory.mktemp("prefilter")
    url = f"sqlite:///{d}/p.db"
    space = load_space("cifar32")
    fp = fingerprint("cpu", 1, 1, space.input, drift_corrected=True)  # as search times by default
    store = Store(url)
    save_model(store, _model(fp, intercept=1000.0, coef=(0.0, 0.0), p90=0.1))
    settings = SearchSettings(
        space=space,
        budgets=Budgets(compute=20_000_000),
        storage=url,
        study_name="pf",
        n_trials=14,
        sampler="random",
        seed=0,
        threads=1,
        score="params",
        measure_time_s=0.03,
        progress=False,
        prefilter=True,
        retime=False,  # the end's re-timing is tests/test_retime.py's; the prefilter's skips are under test here
    )
    result = search(settings)
    return url, store, result


def test_prefilter_skips_and_never_claims_a_latency(prefiltered_search):
    url, store, result = prefiltered_search
    trials = result.study.trials
    skipped = [t for t in trials if t.user_attrs.get("prefiltered")]
    timed = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert skipped and timed, "the first feasible candidate is timed; later ones with a lower score are skipped"
    fph = fingerprint_hash(fingerprint("cpu", 1, 1, (3, 32, 32), drift_corrected=True))
    by_number = {t.number: t for t in trials}
    for t in skipped:
        a = t.user_attrs
        assert t.state == optuna.trial.TrialState.PRUNED and t.values is None
        assert a["reason"].startswith("prefiltered: predicted 1000.00 ms")
        assert "latency" not in a and "fingerprint" not in a
        assert store.get_latency(a["arch_hash"], fph) is None  # never timed
        dom = by_number[int(a["reason"].split("dominated by trial ")[1].split()[0])]
        assert dom.number < t.number and dom.values[0] < 900 and dom.values[1] >= a["score"]
    from nasx.store.studies import trial_status

    assert {trial_status(t) for t in skipped} == {"prefiltered"}
    for t in timed:
        assert t.user_attrs["predicted_latency_ms"] == pytest.approx(1000.0)
        assert store.get_latency(t.user_attrs["arch_hash"], fph) is not None
    with store.engine.connect() as c:
        assert c.execute(latency_cache.select()).fetchall().__len__() == len({t.user_attrs["arch_hash"] for t in timed})


def test_prefilter_without_a_model_is_one_clear_error(tmp_path, nasx_cli):
    url = f"sqlite:///{tmp_path}/none.db"
    r = nasx_cli(
        "search",
        "--score",
        "naswot",  # the score is not under test here: the cheapest data-free one
        "--config",
        "cifar32",
        "--budget",
        "20M",
        "--storage",
        url,
        "--n-trials",
        "2",
        "--prefilter",
        "--quiet",
        cwd=tmp_path,
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "no latency model for this device fingerprint" in r.stderr and "nasx explore" in r.stderr
    assert optuna.get_all_study_names(url) == []  # no study was opened


def test_prefilter_is_off_by_default():
    from nasx.cli.main import make_parser

    args = make_parser().parse_args(["search"])
    assert args.prefilter is False and args.prefilter_margin is None
    assert SearchSettings(space=load_space("cifar32"), budgets=Budgets()).prefilter is False
