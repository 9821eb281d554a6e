"""nasx dashboard: optuna-dashboard on the study's storage, loopback by default, readable trial attrs, the
front figure saved into the study; a headless Chromium loads the pages."""

import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import optuna
import pytest


def first_existing(*paths):
    return next((p for p in paths if p and os.path.exists(p)), None)


CHROMIUM = first_existing("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser"))
CHROMEDRIVER = first_existing("/usr/bin/chromedriver", shutil.which("chromedriver"))


def test_trials_carry_readable_attrs(small_study):
    url, name, _ = small_study
    study = optuna.load_study(study_name=name, storage=url)
    for t in study.trials:
        a = t.user_attrs
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert a["Status"] == "feasible"
            assert re.match(r"\d+\.\d{3} ± \d+\.\d{3} ms \(median ± IQR of \d+ runs", a["Latency summary"])
        elif t.state == optuna.trial.TrialState.PRUNED:
            assert a["Status"].startswith("rejected: over budget") and "Latency summary" not in a
        else:
            continue
        assert a["Arch summary"].startswith("3x32x32 | conv 16 k3 | ")
        assert all(fam in a["Arch summary"] for fam in a["families"])
        assert a["Cost summary"].startswith("MAdds ") and " params " in a["Cost summary"]


def test_front_figure_is_saved_into_the_study(small_study):
    pytest.importorskip("optuna_dashboard")
    from nasx.study.dashboard import FIGURE_ID, attach_front_figure

    url, name, _ = small_study
    study = optuna.load_study(study_name=name, storage=url)
    assert attach_front_figure(study, url) == FIGURE_ID
    assert attach_front_figure(study, url) == FIGURE_ID  # saved again: overwritten, not duplicated
    from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

    storage = optuna.storages.RDBStorage(url)
    figures = get_plotly_graph_objects(storage.get_study_system_attrs(study._study_id))
    assert list(figures) == [FIGURE_ID]
    assert "Pareto front" in figures[FIGURE_ID]


def start_dashboard(url, name, *extra, cwd=None):
    """Start `nasx dashboard` and wait (a minute at most) for the URL it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nasx", "dashboard", "--storage", url, "--study", name, *extra],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    seen, deadline = [], time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            seen.append(lines.get(timeout=1.0))
        except queue.Empty:
            continue
        m = re.search(r"http://\S+", seen[-1])
        if m:
            return proc, m.group(0), seen
    proc.kill()
    raise AssertionError(f"no URL from nasx dashboard: {seen} {proc.stderr.read()}")


def test_port_in_use_is_one_line_exit_2(small_study, nasx_cli):
    pytest.importorskip("optuna_dashboard")
    url, name, d = small_study
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        r = nasx_cli("dashboard", "--storage", url, "--study", name, "--port", s.getsockname()[1], cwd=d)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "cannot listen on 127.0.0.1" in r.stderr


@pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run installs them)",
)
def test_browser_shows_the_study(small_study, tmp_path):
    pytest.importorskip("optuna_dashboard")
    webdriver = pytest.importorskip("selenium.webdriver", reason='needs selenium (pip install "nasx[test]")')
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, name, d = small_study
    n_trials = len(optuna.load_study(study_name=name, storage=url).trials)
    proc, page, lines = start_dashboard(url, name, "--port", "0", cwd=d)
    shots = os.environ.get("NASX_SCREENSHOT_DIR", str(tmp_path))
    driver = None
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/dashboard/studies/\d+", page), page  # loopback by default
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
            "--window-size=1400,1800",
        ):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(60)

        def body_text(_=None):
            return driver.find_element(By.TAG_NAME, "body").text

        driver.get(page)
        WebDriverWait(driver, 60).until(lambda _: "latency_ms" in body_text() and "Pareto front of" in body_text())
        text = body_text()
        assert name in text and "score" in text  # the objective names, and the figure nasx attached
        driver.save_screenshot(os.path.join(shots, "nasx-dashboard-study.png"))

        driver.get(page + "/trials")
        WebDriverWait(driver, 60).until(lambda _: f"{n_trials} Trials" in body_text() and "Arch summary" in body_text())
        text = body_text()
        assert "Cost summary" in text and "Status" in text  # readable user attrs
        # the long attrs (Arch summary, arch JSON) wrap: the page is no wider than the window
        assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1")
        driver.save_screenshot(os.path.join(shots, "nasx-dashboard-trials.png"))

        from nasx.store.studies import load_study
        from nasx.study.report import make_report

        report, _, data = make_report(load_study(url, name), url, tmp_path / "report.html", refs=[], png=False)
        driver.get(report.as_uri())
        WebDriverWait(driver, 60).until(lambda _: "Architectures on the front" in body_text())
        tables = driver.find_elements(By.CSS_SELECTOR, "table.arch")
        assert len(tables) == len(data.front)
        assert "family" in tables[0].text and "knobs" in tables[0].text and "width" in tables[0].text
        assert "drift-corrected to this storage's reference speed" in body_text()
        # the front's points carry their trial numbers as text (the static PNG shows them too)
        labels = driver.execute_script(
            "return [...document.querySelectorAll('#fig-front .textpoint')].map(e => e.textContent)"
        )
        numbers = [label for label in labels if label != "knee"]  # the knee marker is labelled too
        assert sorted(numbers) == sorted(f"#{t.number}" for t in data.front)
        assert labels.count("knee") <= 1  # at most one recommendation
        driver.save_screenshot(os.path.join(shots, "nasx-report.png"))
    finally:
        if driver is not None:
            driver.quit()
        proc.terminate()
        proc.wait(timeout=30)
