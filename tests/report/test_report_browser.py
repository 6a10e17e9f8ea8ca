"""The HTML report opened from disk in Debian's chromium, with every network request refused.

The equations must be laid out as mathematics (a fraction's numerator above its
denominator, sums with their limits), every figure must decode, and nothing may be
fetched. Screenshots go to ``tests/artifacts/report-*.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api.browser import CHROMIUM_ARGS, ensure_chromium

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
SCREENSHOTS = {"report-clusters.png": "2. Step 1", "report-lora.png": "4. Step 3", "report-av.png": "5. Step 4"}

FRACTIONS_STACKED = """() => [...document.querySelectorAll('math[display="block"] mfrac')].map(frac => {
  const [top, bottom] = [...frac.children].map(child => child.getBoundingClientRect());
  return top.bottom <= bottom.top + 1 && top.height > 0 && bottom.height > 0;
})"""
DISPLAY_SIZES = """() => [...document.querySelectorAll('math[display="block"]')].map(m => {
  const box = m.getBoundingClientRect();
  return [box.width, box.height];
})"""
SUM_LIMITS = """() => [...document.querySelectorAll('math[display="block"] munderover')].map(node => {
  const [base, under, over] = [...node.children].map(child => child.getBoundingClientRect());
  return under.top >= base.bottom - 2 && over.bottom <= base.top + 2;
})"""
IMAGES = "() => [...document.images].map(img => img.complete && img.naturalWidth > 0)"


@pytest.fixture(scope="module")
def page(demo_run):
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(f"the browser test needs chromium: {why}")
    from playwright.sync_api import sync_playwright

    requested = []

    def refuse_network(route):
        if route.request.url.startswith(("file:", "data:")):
            route.continue_()
        else:
            requested.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(path), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.route("**/*", refuse_network)
        page.goto((demo_run / "report" / "report.html").as_uri(), wait_until="load")
        page.requested = requested
        yield page
        browser.close()


def test_the_report_fetches_nothing_and_every_figure_decodes(page):
    assert page.requested == []
    images = page.evaluate(IMAGES)
    assert len(images) >= 7 and all(images)


def test_equations_are_laid_out_as_mathematics(page):
    sizes = page.evaluate(DISPLAY_SIZES)
    assert len(sizes) >= 15
    assert all(width > 40 and height > 15 for width, height in sizes)
    stacked = page.evaluate(FRACTIONS_STACKED)
    assert len(stacked) >= 10 and all(stacked)
    limits = page.evaluate(SUM_LIMITS)
    assert len(limits) >= 3 and all(limits)


def test_screenshots_of_the_equations(page):
    ARTIFACTS.mkdir(exist_ok=True)
    for name, heading in SCREENSHOTS.items():
        page.locator("h2", has_text=heading).first.evaluate("heading => heading.scrollIntoView()")
        page.screenshot(path=str(ARTIFACTS / name))
        assert (ARTIFACTS / name).stat().st_size > 10_000
