"""nasx report: a standalone HTML page with the plotly figures; rank correlations checked against scipy."""

import json
import math
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from nasx.util.stats import kendall_tau_b, rankdata, spearman

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Checker(HTMLParser):
    """Well-formedness: every non-void element closed in order; collects element ids and script bodies."""

    def __init__(self):
        super().__init__()
        self.stack, self.ids, self.scripts, self.errors = [], set(), [], []

    def handle_starttag(self, tag, attrs):
        if "id" in dict(attrs):
            self.ids.add(dict(attrs)["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "script":
            self.scripts.append(data)


@pytest.fixture(scope="module")
def report(small_study, tmp_path_factory):
    from conftest import run_nasx_here

    url, name, d = small_study
    out = tmp_path_factory.mktemp("report") / "report.html"
    r = run_nasx_here(
        "report", "--storage", url, "--study", name, "-o", out, "--refs", "mobilenet_v2", "--measure-time", "0.2", cwd=d
    )
    return url, name, out, r


def figure_specs(scripts):
    """The (data, layout) of every Plotly.newPlot call in the page."""
    specs, decoder = [], json.JSONDecoder()
    for s in scripts:
        for m in re.finditer(r'Plotly\.newPlot\(\s*"([^"]+)",\s*', s):
            # decoded, not matched by a pattern: a layout with several annotations holds "},{" pairs
            data, end = decoder.raw_decode(s, m.end())
            layout, _ = decoder.raw_decode(s, re.compile(r",\s*").match(s, end).end())
            specs.append((m.group(1), data, layout))
    return specs


def test_report_is_standalone_html_with_the_figures(report):
    url, name, out, r = report
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and checker.stack == [], (checker.errors, checker.stack)
    assert "<script src=" not in text, "plotly.js must be inlined: the page works offline"
    assert any("plotly.js" in s.lower() or "Plotly" in s[:2000] for s in checker.scripts)
    specs = {div: (data, layout) for div, data, layout in figure_specs(checker.scripts)}
    assert set(specs) == {"fig-front", "fig-madds_latency", "fig-mac_latency", "fig-families"}

    study = optuna.load_study(study_name=name, storage=url)
    from nasx.store.studies import latency_ms

    front = sorted((study.trials[n] for n in study.user_attrs["pareto_front"]), key=lambda t: latency_ms(t))
    data, layout = specs["fig-front"]
    traces = {t["name"]: t for t in data}
    # the re-timed (confirmed) latencies of the front, not the first measurements
    assert traces["Pareto front"]["x"] == [t.user_attrs["latency_confirmed"]["median_ms"] for t in front]
    assert traces["Pareto front"]["marker"]["color"] == [t.user_attrs["madds"] for t in front]  # coloured by MAdds
    rejected = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert traces[f"{rejected} rejected over budget (never measured)"]["marker"]["color"] == "#b8b8b8"  # greyed
    # each reference is its own legend entry, no text beside its marker (labels of close references overlapped)
    assert traces["mobilenet_v2 @32x32"]["legendgroup"] == "refs"
    assert not [a for a in layout.get("annotations", []) if "mobilenet" in a["text"]]
    assert traces["Pareto front"]["text"] == [f"#{t.number}" for t in front]  # trial numbers, PNG included
    fam_data, _ = specs["fig-families"]
    for trace in fam_data:  # per-family block counts of each front member
        assert trace["y"] == [t.user_attrs["families"].get(trace["name"], 0) for t in front]
    for png in ("front", "madds_latency", "mac_latency", "families"):
        p = out.with_name(f"report-{png}.png")
        if "PNG export skipped" not in r.stderr:
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_correlations_match_scipy(report):
    url, name, out, r = report
    assert r.returncode == 0, r.stderr
    text = out.read_text(encoding="utf-8")
    study = optuna.load_study(study_name=name, storage=url)
    measured = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    latency = [t.values[0] for t in measured]
    assert len(measured) >= 4
    specs = {div: layout for div, _, layout in figure_specs([text])}
    score = [t.values[1] for t in measured]
    for key, attr, y in (
        ("madds", "madds", latency),
        ("mac", "mac_elements", latency),
        ("activations", "activations", score),
    ):
        x = [t.user_attrs[attr] for t in measured]
        rho = stats.spearmanr(x, y).statistic
        tau = stats.kendalltau(x, y).statistic
        shown_rho = float(re.search(rf'id="spearman-{key}">([-+0-9.]+)<', text).group(1))
        shown_tau = float(re.search(rf'id="kendall-{key}">([-+0-9.]+)<', text).group(1))
        assert shown_rho == pytest.approx(rho, abs=5e-4) and shown_tau == pytest.approx(tau, abs=5e-4)
        if key == "activations":
            continue
        notes = [a["text"] for a in specs[f"fig-{key}_latency"]["annotations"]]  # printed on the plot too
        note = next(n for n in notes if "Spearman" in n)
        assert f"Spearman ρ = {shown_rho:+.3f}" in note and f"{shown_tau:+.3f}" in note
        assert f"n = {len(measured)} measured trials" in note


def test_reference_models_come_from_the_cache_the_second_time(report, capsys):
    from nasx.cli.main import main

    url, name, out, r = report
    assert r.returncode == 0, r.stderr
    assert "measuring reference mobilenet_v2" in r.stderr
    capsys.readouterr()
    second = out.with_name("again.html")
    assert (
        main(["report", "--storage", url, "--study", name, "-o", str(second), "--refs", "mobilenet_v2", "--no-png"])
        == 0
    )
    err = capsys.readouterr().err
    assert "measuring" not in err and "re-instantiated at the study's input 3x32x32" in err

    def ref_latency(path):
        specs = {div: data for div, data, _ in figure_specs([path.read_text(encoding="utf-8")])}
        return [t["x"][0] for t in specs["fig-front"] if t.get("legendgroup") == "refs"]

    assert ref_latency(second) == ref_latency(out) != []
    assert not list(out.parent.glob("again-*.png"))


def test_references_are_not_measured_on_another_machine(small_study, monkeypatch, capsys, tmp_path):
    import nasx.measure.cached
    from nasx.cli.main import main

    url, name, _ = small_study
    real = nasx.measure.cached.fingerprint
    monkeypatch.setattr(nasx.measure.cached, "fingerprint", lambda *a, **k: {**real(*a, **k), "hardware": "other CPU"})
    rc = main(
        [
            "report",
            "--storage",
            url,
            "--study",
            name,
            "-o",
            str(tmp_path / "r.html"),
            "--refs",
            "shufflenet_v2_0.5",
            "--no-png",
        ]
    )
    err = capsys.readouterr().err
    assert rc == 0 and "measuring" not in err
    assert "shufflenet_v2_0.5 skipped: the study was measured on cpu" in err and "this is other CPU" in err


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 6)), min_size=0, max_size=40))
def test_rank_correlations_equal_scipy_with_ties(pairs):
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    assert np.array_equal(rankdata(x), stats.rankdata(x)) if x else True
    ours = (spearman(x, y), kendall_tau_b(x, y))
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        assert all(math.isnan(v) for v in ours)
        return
    ref = (stats.spearmanr(x, y).statistic, stats.kendalltau(x, y).statistic)
    assert ours == pytest.approx(ref, abs=1e-12)


def test_rank_correlations_on_continuous_values():
    rng = np.random.default_rng(0)
    x = rng.normal(size=500)
    y = x + rng.normal(size=500)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)
    assert kendall_tau_b(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman(x, -x) == pytest.approx(-1) and kendall_tau_b(x, x) == pytest.approx(1)


def test_dominated_by_against_hand_cases():
    from types import SimpleNamespace

    from nasx.study.report import dominated_by

    front = [
        SimpleNamespace(number=n, values=v, user_attrs={})
        for n, v in ((3, (5.0, 200.0)), (7, (8.0, 230.0)), (9, (12.0, 240.0)))
    ]
    assert dominated_by(front, 10.0, 220.0) == [7]  # #3 is faster but scores lower: no dominance
    assert dominated_by(front, 12.0, 240.0) == []  # equal to #9: not strictly better anywhere
    assert dominated_by(front, 12.0, 239.0) == [9]  # as fast, better score
    assert dominated_by(front, 20.0, 100.0) == [3, 7, 9]
    assert dominated_by(front, 4.0, 250.0) == []


def test_budget_refs_are_the_zoo_models_near_the_budget():
    from nasx.study.report import DEFAULT_REFS, budget_refs

    # published MAdds (README's zoo table) up to 2 x 300M, cheapest first
    near_300m = (
        "shufflenet_v2_0.5",
        "mobilenet_v3_small",
        "shufflenet_v1_g3",
        "shufflenet_v1_g8",
        "shufflenet_v2_1.0",
        "mobilenet_v3_large",
        "shufflenet_v2_1.5",
        "mobilenet_v2",
        "mnasnet_a1",
        "fasternet_t0",
        "channelnet_v1",
        "mobilenet_v1",
        "mobilenet_v2_1.4",
        "shufflenet_v2_2.0",
    )
    assert budget_refs((3, 224, 224), 300_000_000) == near_300m
    assert budget_refs((3, 224, 224), 600_000_000, "flops") == near_300m  # FLOPs = 2 x MAdds
    assert budget_refs((3, 224, 224), 100_000_000) == (
        "shufflenet_v2_0.5",
        "mobilenet_v3_small",
        "shufflenet_v1_g3",
        "shufflenet_v1_g8",
        "shufflenet_v2_1.0",
    )
    assert budget_refs((3, 32, 32), 20_000_000) == DEFAULT_REFS  # no zoo model is made for 32x32
    assert budget_refs((3, 224, 224), None) == DEFAULT_REFS


def test_reference_table_says_which_front_members_dominate_each(report):
    import html

    url, name, out, r = report
    assert r.returncode == 0, r.stderr
    study = optuna.load_study(study_name=name, storage=url)
    front = [study.trials[n] for n in study.user_attrs["pareto_front"]]
    text = out.read_text(encoding="utf-8")
    ref = next(
        t for t in {d: data for d, data, _ in figure_specs([text])}["fig-front"] if t["name"] == "mobilenet_v2 @32x32"
    )
    lat, score = ref["x"][0], ref["y"][0]
    # the latency the report shows: a re-timed member's confirmed median (its user attr), else its first
    shown = {t.number: t.user_attrs.get("latency_confirmed", {}).get("median_ms", t.values[0]) for t in front}
    beaten = [
        f"#{t.number}"
        for t in sorted(front, key=lambda t: (shown[t.number], t.number))
        if shown[t.number] <= lat and t.values[1] >= score and (shown[t.number] < lat or t.values[1] > score)
    ]
    table = html.unescape(re.search(r'<pre id="refs-table">(.*?)</pre>', text, re.S).group(1))
    row = next(line for line in table.splitlines() if line.startswith("mobilenet_v2 @32x32"))
    assert row.split()[2:] == [*(", ".join(beaten) or "none").split(), row.split()[-3], f"{lat:.2f}", f"{score:.2f}"]
    assert row in r.stdout  # the CLI prints the same table


def test_references_are_timed_as_the_study_timed_its_trials(small_study, monkeypatch, tmp_path):
    import nasx.measure.timing
    from nasx.cli.main import main

    url, name, _ = small_study
    assert optuna.load_study(study_name=name, storage=url).user_attrs["measure_time_s"] == 0.2
    seen = []
    real = nasx.measure.timing.measure_latency

    def spy(*args, **kwargs):
        seen.append(kwargs["max_time_s"])
        return real(*args, **kwargs)

    monkeypatch.setattr(nasx.measure.timing, "measure_latency", spy)
    assert (
        main(
            [
                "report",
                "--storage",
                url,
                "--study",
                name,
                "-o",
                str(tmp_path / "r.html"),
                "--refs",
                "shufflenet_v2_0.5",
                "--no-png",
            ]
        )
        == 0
    )
    # a calibration that disagrees with itself is taken again (timing.py), each time at the study's budget
    assert seen and set(seen) == {0.2}


def page_notes(text: str) -> list[str]:
    import html

    notes = re.search(r"<h2>Notes</h2><ul>(.*?)</ul>", text, re.S).group(1)
    return [html.unescape(n) for n in re.findall(r"<li>(.*?)</li>", notes, re.S)]


def test_the_page_lists_every_note_the_command_prints(small_study, monkeypatch, capsys, tmp_path):
    """The PNG export failing (kaleido without a Chrome) was printed but the page said "Notes: none"."""
    import plotly.graph_objects as go

    from nasx.cli.main import main

    url, name, _ = small_study

    def no_chrome(*args, **kwargs):
        raise RuntimeError("Kaleido requires Google Chrome to be installed")

    monkeypatch.setattr(go.Figure, "write_image", no_chrome)
    monkeypatch.setitem(__import__("sys").modules, "kaleido", __import__("types").ModuleType("kaleido"))
    out = tmp_path / "report.html"
    assert main(["report", "--storage", url, "--study", name, "-o", str(out), "--refs", "none"]) == 0
    err = capsys.readouterr().err
    printed = [line.removeprefix("note: ") for line in err.splitlines() if line.startswith("note: ")]
    assert any("PNG export skipped: Kaleido requires Google Chrome" in n for n in printed), err
    assert page_notes(out.read_text()) == printed


def test_the_activations_sentence_says_what_the_data_says_for_the_study_score(report):
    """It said "NASWOT tracks it closely" whatever the study's score and whatever the correlation."""
    import html

    from nasx.study.report_page import activations_sentence

    assert "closely track the study's score, capacity (Spearman ρ = +0.910 over 50 trials)" in activations_sentence(
        "capacity", 0.91, 50
    )
    assert "hardly track the study's score, capacity" in activations_sentence("capacity", 0.1, 50)
    assert "inversely" in activations_sentence("synflow", -0.7, 50)
    assert "too few measured trials (2)" in activations_sentence("capacity", float("nan"), 2)
    assert "NASWOT" not in activations_sentence("capacity", 0.95, 50)
    url, name, out, _ = report
    text = out.read_text()
    says = html.unescape(re.search(r"<span id=\"activations-says\">(.*?)</span>", text, re.S).group(1))
    rho = re.search(r'<td id="spearman-activations">(.*?)</td>', text).group(1)
    score = optuna.load_study(study_name=name, storage=url).user_attrs["score"]
    assert f"the study's score, {score} (Spearman ρ = {rho} " in says


# the Debian path first, where it exists: a path that names nothing is no browser (the test skips, saying why)
CHROMIUM = next(
    (
        p
        for p in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
        if p and os.path.exists(p)
    ),
    None,
)

# run in the page once plotly has drawn: the reference labels' and axis titles' boxes, per figure
GEOMETRY = """<script>setTimeout(() => {
  const refs = JSON.parse(document.getElementById("ref-labels").textContent), box = e => {
    const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
  const out = {};
  for (const fig of document.querySelectorAll("div[id^=fig-]")) {
    const svg = fig.querySelector("svg.main-svg");
    out[fig.id] = {svg: box(svg),
      labels: [...fig.querySelectorAll("svg text")].filter(t => refs.includes(t.textContent.trim()))
        .map(t => [t.textContent.trim(), box(t)]),
      titles: [...fig.querySelectorAll(".g-xtitle text, .g-ytitle text")].map(t => [t.textContent, box(t)])};
  }
  const pre = document.createElement("pre"); pre.id = "geometry"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}, 500);</script>"""


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian: apt-get install chromium; .ci/run installs it)")
def test_reference_labels_and_axis_titles_are_readable_in_a_browser(small_study, tmp_path):
    """Several references close together (as mobilenet_v2/_v3_large and shufflenet_v2_0.5/mobilenet_v3_small
    at 300M MAdds): in Chromium their labels' boxes do not intersect, and every axis title lies inside its
    figure's SVG (the cost plots' latency titles were cut off at both ends)."""
    import html

    from nasx.store.studies import latency_ms, load_study
    from nasx.study.report_data import Point, collect
    from nasx.study.report_figures import figures
    from nasx.study.report_page import render_html

    url, name, _ = small_study
    data = collect(load_study(url, name), url)
    t = data.front[0]
    x, y, madds, mac = latency_ms(t), t.values[1], t.user_attrs["madds"], t.user_attrs["mac_elements"]
    names = ["mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "shufflenet_v2_0.5", "shufflenet_v2_1.5"]
    for i, ref in enumerate(names):  # all within 2% of each other on every axis
        f = 1 + 0.005 * i
        data.refs.append(Point(ref, x * f, y * f, int(madds * f), int(mac * f), 1, html.escape(ref)))
    text = render_html(data, figures(data))
    text = text.replace("</body>", f'<pre id="ref-labels">{json.dumps(names)}</pre>{GEOMETRY}</body>')
    page = tmp_path / "report.html"
    page.write_text(text)
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage",
         f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1800", "--virtual-time-budget=10000",
         "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    geometry = json.loads(html.unescape(re.search(r'<pre id="geometry">(.*?)</pre>', dom, re.S).group(1)))

    def intersect(a, b):
        return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]

    for key in ("fig-front", "fig-madds_latency", "fig-mac_latency"):
        g = geometry[key]
        assert sorted(label for label, _ in g["labels"]) == sorted(names), (key, g["labels"])  # each shown once
        for i, (a, box_a) in enumerate(g["labels"]):
            for b, box_b in g["labels"][i + 1 :]:
                assert not intersect(box_a, box_b), f"{key}: {a} overlaps {b}"
        left, top, right, bottom = g["svg"]
        assert len(g["titles"]) == 2, g["titles"]
        for title, (x0, y0, x1, y1) in g["titles"]:
            assert left <= x0 and x1 <= right and top <= y0 and y1 <= bottom, f"{key}: axis title {title!r} clipped"
