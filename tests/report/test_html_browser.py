"""report.html in a real browser: headless Debian Chromium with every request but the report's
own file aborted. The page must render its charts, raise no console error, fetch nothing,
and show the synthetic tenant's planted HTML payloads as inert text.

Needs ``playwright`` (Python package only; no browser download) and ``/usr/bin/chromium``
(``apt-get install chromium``); without them the tests skip and say why. The screenshot lands
in ``test-artifacts/report.png`` at the repository root.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from dsguard.pipeline import analyze
from dsguard.synth import SynthConfig, generate

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = os.environ.get("DSGUARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"

pytestmark = pytest.mark.slow


def _browser_or_skip() -> Any:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("browser test skipped: the 'playwright' Python package is not installed "
                    "(pip install playwright; no 'playwright install' needed)")
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.skip(f"browser test skipped: no Chromium at {CHROMIUM} "
                    "(apt-get install -y chromium, or set DSGUARD_CHROMIUM)")
    return sync_playwright


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 40-person, 10-day synthetic tenant analysed end to end."""
    root = tmp_path_factory.mktemp("browser")
    bundle, out = root / "bundle", root / "out"
    generate(bundle, SynthConfig(users=40, days=10, seed=7))
    ctx = analyze(bundle, out)
    return ctx.outputs["report.html"]


@dataclass
class Session:
    page: Any
    url: str
    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    sync_playwright = _browser_or_skip()  # before building the tenant, so a skip is quick
    report: Path = request.getfixturevalue("report")
    url = report.resolve().as_uri()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000},
                                      java_script_enabled=True, offline=True)
        page = context.new_page()
        s = Session(page=page, url=url)

        def route(r: Any) -> None:
            s.requests.append(r.request.url)
            if r.request.url == url:
                r.continue_()
            else:
                s.blocked.append(r.request.url)
                r.abort()

        def dialog(d: Any) -> None:
            s.dialogs.append(d.message)
            d.dismiss()

        context.route("**/*", route)
        page.on("console", lambda m: s.console.append(f"{m.type}: {m.text}")
                if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: s.errors.append(str(e)))
        page.on("dialog", dialog)
        page.goto(url, wait_until="load")
        page.wait_for_timeout(200)
        yield s
        context.close()
        browser.close()


def test_no_network_and_no_errors(session: Session) -> None:
    page = session.page
    # Use the page a little first, so handlers that run on interaction are covered too.
    page.click("button[data-view=flow-all]")
    page.click("[data-expand=alerts-table]")
    page.click("#alerts-table > thead th:nth-child(3)")
    page.wait_for_timeout(100)
    assert session.blocked == [], f"external requests: {session.blocked}"
    assert session.requests == [session.url]
    assert session.errors == [], session.errors
    assert [m for m in session.console if m.startswith("error")] == [], session.console
    assert session.dialogs == []


def test_charts_render(session: Session) -> None:
    page = session.page
    page.click("button[data-view=flow-anon]")
    for selector in ("#trend svg.chart", "#campaigns svg.chart", "#flow-anon svg.sankey",
                     "#alerts svg.chart", "#posture svg.chart", "#frameworks svg.chart"):
        box = page.locator(selector).first.bounding_box()
        assert box is not None and box["width"] > 200 and box["height"] > 60, (selector, box)
    assert page.locator("#trend svg.chart g.bar rect").count() >= 10
    assert page.locator("#campaigns svg.chart circle").count() >= 5
    assert page.locator("#flow-anon svg.sankey path.flow").count() >= 3
    assert page.locator("#flow-anon svg.sankey rect.node").count() >= 3


def test_planted_payloads_stay_text(session: Session) -> None:
    page = session.page
    page.fill("input.filter[data-table=alerts-table]", "alert(1)")
    page.click("[data-expand=alerts-table]")
    # Subject (sample message) and display name (alert row and sample), as text on screen.
    assert page.get_by_text(SCRIPT).count() >= 1
    assert page.get_by_text(IMG).count() >= 1
    alerts = page.locator("#alerts-table")
    assert alerts.locator("td.subject").get_by_text(SCRIPT).first.is_visible()
    assert alerts.locator(".dn").get_by_text(IMG).first.is_visible()
    # Nothing was injected: one script element (the report's own), no image at all, and
    # no element carries an event handler attribute.
    assert page.locator("script").count() == 1
    assert page.locator("img").count() == 0
    assert page.locator("img[src=x]").count() == 0
    assert page.evaluate(
        "Array.from(document.querySelectorAll('*')).filter(e => "
        "Array.from(e.attributes).some(a => a.name.startsWith('on'))).length") == 0
    assert session.dialogs == []
    page.fill("input.filter[data-table=alerts-table]", "")


def test_tables_sort_and_filter(session: Session) -> None:
    page = session.page
    count = page.locator("[data-count-for=alerts-table]")
    total = int(count.inner_text().split()[0])
    page.select_option("select.facet[data-table=alerts-table]", "critical")
    shown = page.locator("#alerts-table > tbody:visible").count()
    assert 0 < shown <= total
    assert "of" in count.inner_text()
    page.select_option("select.facet[data-table=alerts-table]", "")
    header = page.locator("#alerts-table > thead th:nth-child(6)")  # messages
    header.click()
    assert header.get_attribute("aria-sort") == "descending"
    values = page.locator("#alerts-table > tbody > tr.main-row > td:nth-child(6)").all_inner_texts()
    numbers = [int(v.replace(",", "")) for v in values]
    assert numbers == sorted(numbers, reverse=True)


def test_screenshot(session: Session) -> None:
    page = session.page
    page.click("[data-collapse=alerts-table]")
    page.evaluate("window.scrollTo(0, 0)")
    ARTIFACTS.mkdir(exist_ok=True)
    # The CISO's first two screens, then the whole page for the analyst's sections.
    target = ARTIFACTS / "report.png"
    page.screenshot(path=str(target), clip={"x": 0, "y": 0, "width": 1400, "height": 2600},
                    full_page=True)
    page.screenshot(path=str(ARTIFACTS / "report-full.png"), full_page=True)
    assert target.stat().st_size > 50_000
