"""The interactive explorer (app.py): its model wrapper and views, and the page in a real browser.

The quick tests check that the explorer runs the command line's model (same KPIs at the end of a run),
that one explorer step is one day, and that the network, loads and overdue table are consistent.

The browser test starts ``solara run app.py`` on a free local port, opens it in headless Chromium
(Debian's ``chromium`` package, driven by Playwright's Python API; never ``playwright install``), checks
that the network and the four plots render (rates; resolution recorded vs true and the gaming gap; load;
trust), moves the supervision slider, resets, steps several days, sees the plots and numbers change (the
status line's gaming gap is its recorded minus its true resolution), and saves docs/explorer.png (the README's screenshot). It is skipped
only when no ``chromium`` binary is on PATH and WENZHENG_REQUIRE_BROWSER is unset (CI sets it, and then a
missing browser fails). Solara's page loads its JavaScript bundles through the server's CDN proxy; with no
route to the CDN, the test first fills the proxy's cache with the same npm packages via ``npm pack``.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # app.py sits at the top level, beside run.py
    sys.path.insert(0, str(ROOT))

import app  # noqa: E402
from sim import load_scenario, run_scenario  # noqa: E402
from sim.cases import Status  # noqa: E402
from sim.hierarchy import LEVELS  # noqa: E402

SCREENSHOT = ROOT / "docs" / "explorer.png"


@pytest.fixture(scope="module")
def short_scenario(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("explorer") / "short.yaml"
    path.write_text(f"extends: {ROOT / 'scenarios' / 'default.yaml'}\nname: short\nrun: {{days: 6, seed: 3}}\n")
    return path


@pytest.fixture(scope="module")
def stepped(short_scenario) -> app.ExplorerModel:
    """The short scenario run to the end in the explorer, with the file's own policies."""
    m = app.ExplorerModel(scenario_file=str(short_scenario), use_scenario_policies=True)
    while m.running:
        m.step()
    return m


# ------------------------------------------------------------------------------------------ quick tests
def test_explorer_runs_the_command_line_model(short_scenario, stepped):
    """Same scenario and seed: the explorer's final rates equal the command line's KPIs."""
    result = run_scenario(load_scenario(short_scenario), seed=3)
    assert stepped.hour == 6 * 24 and stepped.day == 6.0 and not stepped.running
    for name in ("response rate", "resolution rate", "true resolution rate", "gaming gap", "satisfaction rate"):
        kpi = result.summary[name.replace(" ", "_")]
        assert stepped.snapshot[name] == pytest.approx(kpi, nan_ok=True), name
    s = stepped.snapshot  # the gaming gap is recorded minus true resolution
    assert s["gaming gap"] == pytest.approx(s["resolution rate"] - s["true resolution rate"], nan_ok=True)
    assert stepped.snapshot["backlog"] == result.summary["backlog_end"]
    assert stepped.snapshot["mean trust"] == pytest.approx(result.summary["mean_trust"])
    df = stepped.datacollector.get_model_vars_dataframe()
    assert len(df) == 7  # day 0 and one row per day
    assert list(df["backlog"]) == [0.0] + [float(r["backlog"]) for r in stepped.daily]


def test_one_step_is_one_day(short_scenario):
    m = app.ExplorerModel(scenario_file=str(short_scenario))
    m.step()
    m.step()
    assert m.hour == 48 and len(m.daily) == 2 and m.time == 2


def test_controls_become_scenario_overrides(short_scenario):
    sc = app.explorer_scenario(short_scenario, response_mandate_hours=24, supervision_intensity=40,
                               dispatch_mode="direct", platform_hours="office", tracking=False,
                               public_ranking=True, systemic_fix=False, demand_multiplier=2.0)
    p = sc.policy
    assert (p.response_mandate_hours, p.supervision_intensity, p.dispatch_mode.value, p.platform_hours.value,
            p.tracking, p.public_ranking, p.systemic_fix) == (24.0, 40.0, "direct", "office", False, True, False)
    base = load_scenario(short_scenario)
    assert sc.demand.problems_per_citizen_year == 2 * base.demand.problems_per_citizen_year
    assert app.explorer_scenario(short_scenario, response_mandate_hours=0).policy.response_mandate_hours is None
    own = app.explorer_scenario(short_scenario, use_scenario_policies=True, supervision_intensity=99)
    assert own.policy == base.policy
    fixed = app.explorer_scenario(ROOT / "scenarios" / "queue_check.yaml", demand_multiplier=0.5)
    assert fixed.demand.fixed_rate_per_hour == 0.5 * load_scenario(ROOT / "scenarios" / "queue_check.yaml").demand.fixed_rate_per_hour


def test_controls_offer_every_scenario_and_start_from_the_startup_file(monkeypatch):
    choices = app.scenario_choices()
    assert {"default", "baseline", "zzic"} <= set(choices)
    startup = ROOT / "scenarios" / "baseline.yaml"
    monkeypatch.setenv("WENZHENG_SCENARIO", str(startup))
    params = app._controls(app.startup_scenario())
    assert params["scenario_file"]["value"] == "baseline"
    assert params["platform_hours"]["value"] == "office" and params["tracking"]["value"] is False
    m = app.ExplorerModel(**{k: v["value"] for k, v in params.items()})
    assert m.settings.name == "baseline" and m.settings.policy == load_scenario(startup).policy


def test_a_broken_file_is_reported_and_the_startup_scenario_kept(tmp_path, monkeypatch):
    bad = tmp_path / "bad.yaml"
    bad.write_text("policy:\n  supervision_intensity: -3\n")
    monkeypatch.setenv("WENZHENG_SCENARIO", str(ROOT / "scenarios" / "default.yaml"))
    m = app.ExplorerModel(scenario_file=str(bad), use_scenario_policies=True)
    assert "supervision_intensity" in m.load_error and "bad.yaml" in m.load_error
    assert m.settings.name == "default"
    assert "supervision_intensity" in app.status_line(m)


def test_layout_puts_levels_in_rows_and_departments_under_their_unit(stepped):
    g = stepped.hierarchy.graph
    pos = stepped.layout
    assert set(pos) == set(g.nodes)
    rows = [app.LEVEL_Y[lv.value] for lv in LEVELS]
    assert rows == sorted(rows, reverse=True)
    for node, data in g.nodes(data=True):
        y = pos[node][1]
        if data["kind"] == "unit":
            assert y == app.LEVEL_Y[data["level"]]
        else:
            assert y == pytest.approx(pos[data["unit"]][1] - app.DEPT_DROP)
    for i in range(stepped.hierarchy.n_counties):  # a county sits above the middle of its townships
        xs = [pos[f"township:{j}"][0] for j in np.flatnonzero(stepped.hierarchy.township_county == i)]
        assert pos[f"county:{i}"][0] == pytest.approx(np.mean(xs))


def test_loads_add_up(short_scenario):
    m = app.ExplorerModel(scenario_file=str(short_scenario), demand_multiplier=3.0, supervision_intensity=0)
    for _ in range(4):
        m.step()
    loads = app.node_loads(m)
    cs = m.cases
    ids = cs.open_ids()
    assert loads["prefecture"][0] == len(ids) > 0
    assert sum(loads[f"township:{j}"][0] for j in range(m.hierarchy.n_townships)) == len(ids)
    assert sum(loads[f"county:{i}"][1] for i in range(m.hierarchy.n_counties)) == loads["prefecture"][1]
    held = int(np.isin(cs.status[ids], [Status.QUEUED, Status.NEGLECTED, Status.IN_SERVICE]).sum())
    assert sum(loads[d.node][0] for d in m.hierarchy.departments) == held
    assert all(0 <= over <= n for n, over in loads.values())


def test_overdue_table_lists_the_latest_cases_with_their_route(short_scenario):
    m = app.ExplorerModel(scenario_file=str(short_scenario), demand_multiplier=3.0, supervision_intensity=0)
    for _ in range(6):
        m.step()
    df = app.overdue_cases(m, 8)
    assert 0 < len(df) <= 8
    late = df["hours_overdue"].to_numpy()
    assert (late > 0).all() and (np.diff(late) <= 0).all()
    now = m.hour
    cs = m.cases
    ids = cs.open_ids()
    assert late[0] == pytest.approx(round(float((now - cs.due[ids]).max()), 1))
    for row in df.itertuples():
        assert row.route.startswith("platform → ")
        handler = m.hierarchy.departments[int(cs.dept[row.case])]
        assert row.route.endswith(app.short_name(handler.node))
        assert cs.status[row.case] < Status.CLOSED
    direct = app.ExplorerModel(scenario_file=str(short_scenario), dispatch_mode="direct", demand_multiplier=3.0,
                               supervision_intensity=0)
    for _ in range(6):
        direct.step()
    assert all(r.count("→") == 1 for r in app.overdue_cases(direct, 5)["route"])


def test_network_figure_draws(stepped):
    fig = app.draw_network(stepped)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.tell() > 10_000
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [lv.value for lv in LEVELS]


# ------------------------------------------------------------------------------------------ browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode("utf-8", "replace")


CDN_REF = re.compile(r"/_solara/cdn/((?:@[\w.-]+/)?[\w.-]+)@(\d+\.\d+\.\d+[\w.+-]*)/")


def _fill_cdn_cache(html: str) -> None:
    """Put the npm packages the page references under ``/_solara/cdn/`` into the proxy's cache, unpacked
    from ``npm pack`` tarballs, so that the page loads without a route to the CDN. Only missing ones."""
    from solara.server import settings

    cache = Path(settings.assets.proxy_cache_dir)
    wanted = set(CDN_REF.findall(html)) | {("requirejs", "2.3.6")}
    missing = [(n, v) for n, v in sorted(wanted) if not (cache / f"{n}@{v}").is_dir()]
    if not missing:
        return
    npm = shutil.which("npm")
    if npm is None:
        return  # the proxy will try the CDN itself; a failure shows up as a 404 below
    with tempfile.TemporaryDirectory() as tmp:
        for name, version in missing:
            out = subprocess.run([npm, "pack", f"{name}@{version}", "--silent", "--pack-destination", tmp],
                                 capture_output=True, text=True, timeout=120)
            if out.returncode != 0:
                continue
            tgz = Path(tmp) / out.stdout.strip().splitlines()[-1]
            dest = cache / f"{name}@{version}"
            with tarfile.open(tgz) as tf:
                for member in tf.getmembers():
                    rel = Path(member.name.split("/", 1)[-1])
                    if not member.isfile() or rel.is_absolute() or ".." in rel.parts:
                        continue
                    target = dest / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(tf.extractfile(member).read())


@pytest.fixture(scope="module")
def server():
    """``solara run app.py`` on a free port; always stopped at the end."""
    port = _free_port()
    env = dict(os.environ, WENZHENG_SCENARIO=str(ROOT / "scenarios" / "default.yaml"),
               SOLARA_TELEMETRY_MIXPANEL_ENABLE="False", PYTHONUNBUFFERED="1")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "solara", "run", str(ROOT / "app.py"), "--port", str(port),
                             "--host", "127.0.0.1", "--production"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        html = None
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            try:
                html = _get(url)
                break
            except OSError:
                time.sleep(0.3)
        if html is None:
            log.seek(0)
            pytest.fail(f"the explorer did not answer on {url}:\n{log.read().decode(errors='replace')[-3000:]}")
        _fill_cdn_cache(html)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()



def _images(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.complete && e.naturalWidth > 0 ? e.src : '')")


def _status(page) -> str:
    return page.inner_text(".wz-status")


def _save_screenshot(png: bytes) -> None:
    """Down-scale to 1200 px wide and store as a palette PNG (small enough to commit)."""
    from PIL import Image

    img = Image.open(io.BytesIO(png)).convert("RGB")
    w, h = img.size
    img = img.resize((1200, round(h * 1200 / w)), Image.LANCZOS)
    img = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    img.save(SCREENSHOT, optimize=True)


@pytest.mark.browser
def test_explorer_in_a_browser(browser, server):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    not_found: list[str] = []
    page.on("response", lambda r: not_found.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.set_default_timeout(30_000)
    try:
        page.goto(server, wait_until="domcontentloaded")
        try:
            page.wait_for_selector(".wz-network img", state="visible")
            page.wait_for_function("document.querySelectorAll('.wz-plots img').length === 4")
        except PlaywrightTimeout:
            pytest.fail(f"the network and plots did not appear; failed requests: {not_found or 'none'}")
        assert not not_found, f"the page could not load: {not_found}"
        assert "Day 0 of 90" in _status(page)
        assert "supervision 10/day" in _status(page)
        net0 = _images(page, ".wz-network img")
        plots0 = _images(page, ".wz-plots img")
        assert net0[0] and all(plots0), "the network or a plot did not render"
        rates_before = page.locator(".wz-plots img").nth(0).screenshot()

        # move a policy control (supervision 10 -> 25 cases a day) and rebuild the model
        thumb = page.get_by_text("Supervision /day").locator("xpath=ancestor::div[contains(@class,'v-slider')][1]") \
            .locator("[role=slider]")
        thumb.focus()
        for _ in range(3):
            thumb.press("ArrowRight")
        assert thumb.get_attribute("aria-valuenow") == "25"
        page.get_by_role("button", name="Reset").click()
        page.wait_for_function("document.querySelector('.wz-status').innerText.includes('supervision 25/day')")

        step = page.get_by_role("button", name="Step")
        for day in range(1, 6):
            step.click()
            page.wait_for_function(
                f"document.querySelector('.wz-status').innerText.includes('Day {day} of 90')")
        page.wait_for_function(
            "srcs => { const now = Array.from(document.querySelectorAll('.wz-plots img')).map(i => i.src);"
            " return now.length === 4 && now.every((s, k) => s !== srcs[k]); }", arg=plots0)
        status = _status(page)
        rates = re.findall(r"response rate ([0-9.]+) · resolution rate ([0-9.]+) \(recorded\) · "
                           r"true resolution rate ([0-9.]+) · gaming gap (-?[0-9.]+)", status)
        assert rates and all(0.0 <= float(x) <= 1.0 for x in rates[0][:3]), status
        recorded, true, gap = (float(x) for x in rates[0][1:])
        assert gap == pytest.approx(recorded - true, abs=0.0015), status  # shown with 3 decimals
        backlog = int(re.search(r"backlog (\d+)", status).group(1))
        assert backlog > 0
        assert _images(page, ".wz-network img")[0] != net0[0], "the network did not change"
        page.wait_for_selector(".wz-table table")
        table = page.inner_text(".wz-table")
        assert "platform → prefecture" in table
        rates_after = page.locator(".wz-plots img").nth(0).screenshot()
        assert rates_after != rates_before, "the rates plot looks the same after five days"
        assert not not_found, f"requests failed: {not_found}"
        page.evaluate("window.scrollTo(0, 0)")
        _save_screenshot(page.screenshot())
        assert SCREENSHOT.stat().st_size < 400_000
    finally:
        page.close()
