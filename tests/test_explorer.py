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
from sim.scenario import Level  # noqa: E402

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


def test_layout_has_a_row_for_each_of_the_five_levels(stepped):
    """Units of all five levels on their own rows, every bureau (departments and relays) placed a row below
    its unit, bureaus at every level, and the bureaus of the province and the centre above the prefecture's
    bureau of the same category (an order forwarded up climbs straight up)."""
    h = stepped.hierarchy
    pos = stepped.layout
    assert [lv.value for lv in LEVELS] == ["central", "province", "prefecture", "county", "township"]
    assert len(set(app.LEVEL_Y.values())) == 5
    unit_rows = {data["level"]: set() for _, data in h.graph.nodes(data=True)}
    for node, data in h.graph.nodes(data=True):
        if data["kind"] == "unit":
            unit_rows[data["level"]].add(pos[node][1])
    assert {lv: ys for lv, ys in unit_rows.items()} == {lv.value: {app.LEVEL_Y[lv.value]} for lv in LEVELS}
    assert {d.level for d in h.departments} == set(LEVELS)  # work is held at all five levels
    for d in h.departments:
        assert d.node in pos, d.node
        assert pos[d.node][1] == pytest.approx(app.LEVEL_Y[d.level.value] - app.DEPT_DROP)
        assert h.graph.nodes[d.node]["kind"] == d.role
        if d.level in (Level.PROVINCE, Level.CENTRAL):
            assert pos[d.node][0] == pytest.approx(pos[f"dept:{d.category}@prefecture"][0])
    ys = [p[1] for p in pos.values()]
    assert len(set(ys)) == 10  # five unit rows and five bureau rows


def test_loads_add_up(short_scenario):
    """Every open dispatched case is held by exactly one bureau (``cases.dept``), relays included; a unit holds
    what its bureaus hold, so the units add up to the bureaus, level by level."""
    m = app.ExplorerModel(scenario_file=str(short_scenario), demand_multiplier=3.0, supervision_intensity=0)
    for _ in range(4):
        m.step()
    loads = app.node_loads(m)
    h = m.hierarchy
    cs = m.cases
    ids = cs.open_ids()
    # computed here from the case columns, not with app.held_ids: dispatched (or sent back after an answer
    # at intake, which sets held_since) and not final
    held = ids[~np.isnan(cs.dispatched[ids]) | ~np.isnan(cs.held_since[ids])]
    assert 0 < len(held) < len(ids)  # cases awaiting intake and answers at intake are held by no bureau
    assert set(loads) == set(h.graph.nodes)
    bureaus = {d.node: loads[d.node] for d in h.departments}
    assert sum(n for n, _ in bureaus.values()) == len(held)
    assert sum(o for _, o in bureaus.values()) == int((cs.due[held] < m.hour).sum())
    per_dept = np.bincount(cs.dept[held], minlength=len(h.departments))
    assert [bureaus[d.node][0] for d in h.departments] == per_dept.tolist()
    relays = [d for d in h.departments if d.role == "relay"]
    assert relays and sum(loads[d.node][0] for d in relays) == int(h.dept_relay[cs.dept[held]].sum()) > 0
    for lv in LEVELS:  # each level's units hold what that level's bureaus hold
        units = [n for n, d in h.graph.nodes(data=True) if d["kind"] == "unit" and d["level"] == lv.value]
        assert sum(loads[u][0] for u in units) == sum(loads[d.node][0] for d in h.departments if d.level == lv)
    assert loads["prefecture"][0] == sum(loads[d.node][0] for d in h.departments if d.unit == "prefecture")
    assert sum(loads[u][0] for u, d in h.graph.nodes(data=True) if d["kind"] == "unit") == len(held)
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
        handler = m.hierarchy.departments[int(cs.handler[row.case])]
        assert handler.role == "department"
        assert row.route.endswith(app.short_name(handler.node))
        assert cs.status[row.case] < Status.CLOSED
        if row.held_by != "platform":  # the bureau holding it now is on its route
            holder = m.hierarchy.departments[int(cs.dept[row.case])]
            assert row.held_by == f"{app.short_name(holder.node)} ({holder.role})"
            assert app.short_name(holder.node) in row.route.split(" → ")
    direct = app.ExplorerModel(scenario_file=str(short_scenario), dispatch_mode="direct", demand_multiplier=3.0,
                               supervision_intensity=0)
    for _ in range(6):
        direct.step()
    assert all(r.count("→") == 1 for r in app.overdue_cases(direct, 5)["route"])


def _collection(fig, gid: str):
    found = [c for c in fig.axes[0].collections if c.get_gid() == gid]
    assert len(found) == 1, f"no single collection {gid!r}"
    return found[0]


def test_network_figure_draws(stepped):
    fig = app.draw_network(stepped)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.tell() > 10_000
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [lv.value for lv in LEVELS]
    lo, hi = ax.get_ylim()  # every row, bureaus included, is inside the axes
    assert lo < app.LEVEL_Y["township"] - app.DEPT_DROP and hi > app.LEVEL_Y["central"]


def test_network_figure_distinguishes_relays_and_shows_orders_going_up(stepped):
    """Relays are their own marks (another marker, named in the legend and the title), every node has a mark
    at its layout position, and the counterpart edges up to the province and the centre are drawn."""
    h = stepped.hierarchy
    assert stepped.settings.policy.dispatch_mode.value == "cascade"
    fig = app.draw_network(stepped)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert app.RELAY_LABEL in legend and app.DEPARTMENT_LABEL in legend
    assert any("up to province" in t for t in legend)
    assert "relays" in ax.get_title()
    relays = _collection(fig, "marks-relay")
    depts = _collection(fig, "marks-department")
    units = _collection(fig, "marks-unit")
    pos = stepped.layout
    for coll, kind in ((relays, "relay"), (depts, "department"), (units, "unit")):
        want = sorted(pos[n] for n, d in h.graph.nodes(data=True) if d["kind"] == kind)
        got = sorted(map(tuple, coll.get_offsets().tolist()))
        assert len(got) == len(want), kind
        assert np.allclose(np.array(got).reshape(-1, 2), np.array(want).reshape(-1, 2)), kind
    assert len(relays.get_offsets()) == int(h.dept_relay.sum()) > 0
    assert not np.array_equal(relays.get_paths()[0].vertices, depts.get_paths()[0].vertices)
    assert not np.allclose(relays.get_edgecolors()[0], depts.get_edgecolors()[0])  # blue outline
    up = _collection(fig, "edges-up")
    want = {(pos[u], pos[v]) for u, v, k in h.graph.edges(data="kind") if k == "counterpart"
            and app.LEVEL_Y[h.graph.nodes[v]["level"]] > app.LEVEL_Y[h.graph.nodes[u]["level"]]}
    assert len(want) >= 2  # prefecture → province (two categories) and province → central
    assert {tuple(map(tuple, seg)) for seg in up.get_segments()} == want
    assert min(seg[1][1] for seg in up.get_segments()) > app.LEVEL_Y["prefecture"] - app.DEPT_DROP - 1e-9


def test_a_case_held_at_a_relay_shows_its_route(short_scenario):
    """A case sitting at a relay (here made the most overdue) is listed as held by that relay, with the whole
    route to its handling department; the network draws that route with a ring at the relay."""
    m = app.ExplorerModel(scenario_file=str(short_scenario), demand_multiplier=3.0, supervision_intensity=0)
    for _ in range(3):
        m.step()
    cs = m.cases
    held = app.held_ids(m)
    at_relay = held[m.hierarchy.dept_relay[cs.dept[held]]]
    assert len(at_relay) > 0
    c = int(at_relay[0])
    cs.due[c] = -100.0  # the most overdue open case
    row = app.overdue_cases(m, 3).iloc[0]
    relay = m.hierarchy.departments[int(cs.dept[c])]
    handler = m.hierarchy.departments[int(cs.handler[c])]
    assert int(row["case"]) == c and relay.role == "relay" and handler.role == "department"
    assert row["held_by"] == f"{app.short_name(relay.node)} (relay)"
    hops = row["route"].split(" → ")
    cat = m.category_names[int(cs.category[c])]
    route = m.hierarchy.route(cat, int(cs.region[c]), m.settings.policy.dispatch_mode)
    assert hops == ["platform"] + [app.short_name(n) for n in route[1:]]
    assert route[int(cs.route_pos[c]) + 1] == relay.node and route[-1] == handler.node
    assert len(hops) >= 3 and hops[-1] == app.short_name(handler.node)
    fig = app.draw_network(m)
    ring = _collection(fig, "route-holder")
    assert tuple(ring.get_offsets()[0]) == pytest.approx(m.layout[relay.node])


def test_a_big_city_groups_township_bureaus_and_keeps_five_levels(tmp_path):
    """~200 townships: every node still has a position, the township bureaus are drawn as one mark per county
    and category, and the drawing keeps all five levels and the relays."""
    path = tmp_path / "big.yaml"
    path.write_text(f"extends: {ROOT / 'scenarios' / 'zhengzhou' / 'full_scale.yaml'}\nname: big\n"
                    "world: {population: 20000}\nrun: {days: 3, seed: 1}\n")
    m = app.ExplorerModel(scenario_file=str(path), use_scenario_policies=True)
    m.step()
    h = m.hierarchy
    assert h.n_townships > app.AGGREGATE_TOWNSHIPS_ABOVE
    assert set(m.layout) == set(h.graph.nodes)
    loads = app.node_loads(m)
    marks, mark_of = app.network_marks(m, loads)
    assert set(mark_of) == set(h.graph.nodes)
    twp_cats = {d.category for d in h.departments if d.level == Level.TOWNSHIP}
    grouped = [mk for mk in marks.values() if len(mk.members) > 1]
    assert len(grouped) == h.n_counties * len(twp_cats)
    assert all(mk.level == "township" and mk.kind == "department" for mk in grouped)
    assert sum(mk.n_open for mk in grouped) == sum(loads[d.node][0] for d in h.departments
                                                    if d.level == Level.TOWNSHIP)
    assert {mk.y for mk in marks.values()} == set(np.unique([p[1] for p in m.layout.values()]))
    fig = app.draw_network(m)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [lv.value for lv in LEVELS]
    assert "grouped" in ax.get_title() and app.RELAY_LABEL in [t.get_text() for t in ax.get_legend().get_texts()]
    assert len(_collection(fig, "marks-relay").get_offsets()) == int(h.dept_relay.sum())
    assert len(_collection(fig, "marks-department").get_offsets()) == sum(
        1 for mk in marks.values() if mk.kind == "department")


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
