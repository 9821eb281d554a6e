"""nasx explore: the sampler's uniformity and the EDFs on a tiny space whose distribution is known by
enumeration; the stratified subset and its split; an end-to-end run on cifar32 stored beside the searches."""

import math
import random
from collections import Counter

import numpy as np
import pytest
import scipy.stats
from optuna.trial import FixedTrial
from sqlalchemy import func, select

import nasx
from nasx.errors import NasxError
from nasx.explore.sampling import (
    ALL,
    edf,
    edf_at,
    enumerate_space,
    population_names,
    quotas,
    sample_population,
    split_halves,
    stratified_subset,
    subspace,
)
from nasx.explore.schema import explore_archs, explore_runs
from nasx.measure.device import fingerprint, fingerprint_hash
from nasx.measure.latency_model import load_model
from nasx.space.config import load_space, parse_space
from nasx.store.db import Store, latency_cache

TINY = """
name: tiny
input: [3, 16, 16]
classes: 10
stem: {out: [8, 16], kernel: 3, stride: 2}
stages:
  - {stride: 1, depth: [1, 2], out: [16, 32]}
head: {out: [64]}
families:
  standard: {kernel: [1, 3]}
  dwsep: {expansion: [1, 2]}
  partial: {}
"""


@pytest.fixture(scope="module")
def tiny():
    return parse_space(TINY, "tiny.yaml")


@pytest.fixture(scope="module")
def exact(tiny):
    """Every choice path of the tiny space with its probability under the uniform draw, and its MAdds."""
    paths = [(p, ch, nasx.cost(a).madds) for p, ch, a in enumerate_space(tiny)]
    return paths


def _key(choices):
    return tuple(sorted(choices.items()))


def test_enumeration_is_complete(tiny, exact):
    assert len(exact) == tiny.size()  # 2 stems x 2 widths x (5 + 5^2) block paths = 120
    assert sum(p for p, _, _ in exact) == pytest.approx(1.0)
    assert len({_key(ch) for _, ch, _ in exact}) == len(exact)
    # e.g. stem 1/2 x depth 1/2 x width 1/2 x family 1/3 (partial has no parameters): the likeliest path;
    # depth 2 with two blocks of a two-valued family: 1/2 x 1/2 x 1/2 x (1/3 x 1/2)^2, the least likely
    probs = [p for p, _, _ in exact]
    assert max(probs) == pytest.approx(1 / 24) and min(probs) == pytest.approx(1 / 288)
    for _, ch, _ in exact[:10]:
        assert tiny.sample(FixedTrial(ch)) == tiny.sample(FixedTrial(dict(ch)))


def test_stage_choice_space_enumerates_to_its_size():
    """choose: stage asks a stage's family once: 2 stems x 2 widths x 2 depths x 5 block variants = 40
    distinct architectures (block choice: 120), each path as likely as its choices say."""
    stage = parse_space(TINY.replace("name: tiny", "name: tiny\nchoose: stage"), "tiny.yaml")
    paths = list(enumerate_space(stage))
    assert len(paths) == stage.size() == 40
    assert len({a.content_hash() for _, _, a in paths}) == 40
    assert sum(p for p, _, _ in paths) == pytest.approx(1.0)


def test_random_choices_is_random_arch(tiny):
    for seed in range(5):
        assert tiny.random_choices(random.Random(seed))[1] == tiny.random_arch(random.Random(seed))


def test_sampler_is_uniform_over_choices(tiny, exact):
    n = 30_000
    rng = random.Random(12345)
    counts = Counter(_key(tiny.random_choices(rng)[0]) for _ in range(n))
    probs = {_key(ch): p for p, ch, _ in exact}
    assert set(counts) <= set(probs)
    observed = np.array([counts.get(k, 0) for k in probs])
    expected = np.array([probs[k] * n for k in probs])
    p_value = scipy.stats.chisquare(observed, expected).pvalue
    assert p_value > 1e-4, f"chi-square p = {p_value:.2g}: the draw is not uniform over choices"


def test_edf_of_sampled_madds_matches_the_exact_distribution(tiny, exact):
    n = 20_000
    samples = sample_population(tiny, n, seed=7)
    madds = np.array([s.madds for s in samples])
    values = np.array(sorted({m for _, _, m in exact}), dtype=float)
    exact_cdf = np.array([sum(p for p, _, m in exact if m <= v) for v in values])
    xs, fs = edf(madds)
    assert set(xs) <= set(values) and fs[-1] == 1.0
    np.testing.assert_allclose(edf_at(madds, xs), fs)
    # Dvoretzky-Kiefer-Wolfowitz: P(sup |F_n - F| > eps) <= 2 exp(-2 n eps^2) = 1e-6
    eps = math.sqrt(math.log(2 / 1e-6) / (2 * n))
    assert np.max(np.abs(edf_at(madds, values) - exact_cdf)) < eps


def test_edf_on_known_values():
    xs, fs = edf([3, 1, 2, 2, 5])
    np.testing.assert_array_equal(xs, [1, 2, 3, 5])
    np.testing.assert_allclose(fs, [0.2, 0.6, 0.8, 1.0])
    np.testing.assert_allclose(edf_at([3, 1, 2, 2, 5], [0, 1, 1.5, 2, 4.9, 5, 9]), [0, 0.2, 0.2, 0.6, 0.8, 1, 1])


def test_single_family_subspace(tiny):
    sub = subspace(tiny, "dwsep")
    for s in sample_population(tiny, 50, seed=1, population="dwsep"):
        assert set(s.families) == {"dwsep"}
        assert sub.sample(FixedTrial(s.choices)) == s.arch
    assert population_names(tiny) == [ALL, "standard", "dwsep", "partial"]
    with pytest.raises(NasxError, match="no family"):
        subspace(tiny, "channelwise")


def test_stratified_subset_spreads_and_represents_every_family():
    space = load_space("cifar32")
    pops = {name: sample_population(space, 300, 0, name) for name in population_names(space)}
    subset = stratified_subset(pops, 30)
    assert len(subset) == 30 and len({s.arch_hash for s in subset}) == 30
    q = quotas(list(pops), 30)
    assert q[ALL] == 15 and sum(q.values()) == 30
    by_pop = Counter(s.population for s in subset)
    assert by_pop == q and all(by_pop[f] >= 1 for f, _ in space.families)
    for name, samples in pops.items():
        logm = np.log([s.madds for s in samples])
        lo, hi = logm.min(), logm.max()
        picked = np.log([s.madds for s in subset if s.population == name])
        if len(picked) >= 2:  # the picks reach both ends of the population's log-MAdds range
            assert picked.min() <= lo + 0.3 * (hi - lo) and picked.max() >= hi - 0.3 * (hi - lo)
    train, test = split_halves(subset, seed=0)
    assert len(train) == 15 + 3 and len(test) == 12  # one odd one out per 3-member population trains
    assert not {id(s) for s in train} & {id(s) for s in test}
    assert {s.split for s in train} == {"train"} and {s.split for s in test} == {"test"}
    assert {s.population for s in test} == set(pops)
    with pytest.raises(NasxError, match="at least 6"):
        quotas(list(pops), 5)


@pytest.fixture(scope="module")
def explored(tmp_path_factory):
    from conftest import run_nasx, run_nasx_here

    d = tmp_path_factory.mktemp("explore")
    url = f"sqlite:///{d}/e.db"
    args = [
        "explore",
        "--config",
        "cifar32",
        "-n",
        "120",
        "--measure",
        "12",
        "--threads",
        "1",
        "--measure-time",
        "0.03",
        "--no-blocks",  # the block table's path is tests/test_blocks.py's, with stubbed timings
        "--storage",
        url,
        "-o",
        str(d / "e.html"),
    ]
    first = run_nasx(*args, cwd=d)
    second = run_nasx_here(*args, "--quiet", cwd=d)
    return d, url, first, second


def test_explore_end_to_end(explored):
    d, url, first, second = explored
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "sampled 120 architectures uniformly from the whole space and 120 from each single-family" in out
    for text in (
        "MAdds p10 / p50 / p90",
        "channelwise",
        "measured 12 (6 from the whole space",
        "Kendall τb",
        "Spearman ρ",
        "within ±10%",
        "a·MAdds + b·MAC + c",
        "activations",
        "latency model for fingerprint",
        "run 1 stored in",
    ):
        assert text in out, text
    assert "measure 12/12" in first.stderr
    html = (d / "e.html").read_text()
    for div in ("fig-edf", "fig-latency_madds", "fig-latency_mac", "fig-prediction", "explore-text"):
        assert f'id="{div}"' in html
    store = Store(url)
    with store.engine.connect() as c:
        run = c.execute(select(explore_runs)).first()
        assert run.config_name == "cifar32" and run.n == 120
        n_archs = c.execute(select(func.count()).select_from(explore_archs).where(explore_archs.c.run_id == 1))
        assert n_archs.scalar() == 6 * 120
        measured = c.execute(
            select(explore_archs).where(explore_archs.c.run_id == 1, explore_archs.c.measured)
        ).fetchall()
        assert len(measured) == 12 and all(r.median_ms > 0 for r in measured)
        assert {r.split for r in measured} == {"train", "test"}
        cached = c.execute(select(func.count()).select_from(latency_cache)).scalar()
        assert cached == 12  # measured once, in the latency cache `nasx search` reads
    space = load_space("cifar32")
    model = load_model(store, fingerprint_hash(fingerprint("cpu", 1, 1, space.input, drift_corrected=True)))
    assert model is not None and model.features == ("madds", "mac") and model.n_test == 4
    # a stored arch row rebuilds to the architecture it was measured as
    row = measured[0]
    sp = space if row.population == ALL else subspace(space, row.population)
    assert sp.sample(FixedTrial(row.choices)).content_hash() == row.arch_hash


def test_explore_reuses_the_latency_cache(explored):
    _, _, _, second = explored
    assert second.returncode == 0, second.stderr
    assert "0 timed now, 12 from the latency cache" in second.stdout and "run 2 stored" in second.stdout
    assert second.stderr.strip().startswith("wrote") or second.stderr == ""


def test_explore_bad_input(tmp_path, capsys):
    from nasx.cli.main import main

    url = f"sqlite:///{tmp_path}/x.db"
    for args, text in (
        (["-n", "0"], "-n must be at least 1"),
        (["--measure", "3"], "too few"),
        (["--config", "nope"], "neither a YAML file"),
        (["--measure-time", "0"], "positive"),
    ):
        code = main(["explore", "--config", "cifar32", "--storage", url, *args])
        err = capsys.readouterr().err
        assert code == 2 and text in err and err.count("\n") == 1, (args, err)
    assert not (tmp_path / "x.db").exists()  # refused before the database was touched


def test_explore_page_says_no_model_was_fitted(tmp_path):
    """--measure 10 fits no latency model (12 or more needed), yet the page said "filled: train half, open:
    held out"."""
    from conftest import run_nasx_here

    args = ["explore", "--config", "cifar32", "-n", "60", "--measure", "10", "--threads", "1", "--no-blocks"]
    args += ["--measure-time", "0.03", "--storage", f"sqlite:///{tmp_path}/e.db", "-o", str(tmp_path / "e.html")]
    r = run_nasx_here(*args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "too few measured architectures to fit" in r.stdout + r.stderr
    text = (tmp_path / "e.html").read_text()
    assert "held out" not in text
    assert "no latency model fitted: 10 measured are too few (--measure 12 or more)" in text
