"""The report opened in a real browser (headless Chromium from Debian's ``chromium`` package, driven by
Playwright's Python API): every figure renders (naturalWidth > 0), every section is there, and the page
fetches nothing beyond itself.

Skipped only when no ``chromium`` binary is on PATH and WENZHENG_REQUIRE_BROWSER is unset; CI sets it, and
then a missing browser fails the test. Never runs ``playwright install``: it uses the system browser.
"""

from __future__ import annotations

import pytest
from fixtures.analysis_stores import write_store

from analysis.report import SECTIONS, write_report

pytestmark = pytest.mark.browser






def test_report_renders_every_figure_and_section(tmp_path, browser):
    store = write_store(tmp_path / "store", failed=[("mandate_24h", 1)], replications=3, days=8)
    paths = write_report(store, dpi=60)
    n_pngs = len(list(paths["figures"].glob("*.png")))
    assert n_pngs >= 5

    page = browser.new_page()
    requests: list[str] = []
    failures: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failures.append(r.url))
    page.goto(paths["html"].as_uri(), wait_until="load")
    images = page.evaluate(
        "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, w: i.naturalWidth,"
        " h: i.naturalHeight, src: i.src.slice(0, 22)}))")
    assert len(images) == n_pngs
    for img in images:
        assert img["complete"] and img["w"] > 0 and img["h"] > 0, f"broken image: {img['alt']}"
        assert img["src"] == "data:image/png;base64,", f"image not embedded: {img['alt']}"
    for sid, title in SECTIONS:
        heading = page.evaluate(
            "id => { const s = document.getElementById(id); return s ? s.querySelector('h2').textContent : null; }",
            sid)
        assert heading == title, f"section {sid} missing or mislabelled: {heading!r}"
    failed_text = page.inner_text("#failed-runs")
    assert "mandate_24h-p0-r1" in failed_text
    assert not failures, f"requests failed: {failures}"
    foreign = [u for u in requests if not (u.startswith("data:") or u == paths["html"].as_uri())]
    assert not foreign, f"the report is not self-contained, it fetched {foreign}"
    page.close()
