"""The web page in a real browser: Debian's chromium, headless, driven by Playwright.

One page is loaded for the whole module and each test works one section of it, in
order: every chart must render with data, a click on the mood map plays the track and
lists similar ones, a lasso selection becomes an exported playlist, a rename shows up in
the map legend, a recommendation and a mood path are drawn from the valence/arousal pad,
and an uploaded file is analysed. A screenshot of each section is saved under
``tests/artifacts/web-*.png``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from api.browser import CHROMIUM_ARGS, ensure_chromium, serve
from serving_bundle import copy_bundle

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
NEW_NAME = "Night drive"

CHART_READY = """id => {
  const gd = document.getElementById(id);
  return !!gd && gd.dataset.rendered === "true" && Array.isArray(gd.data) && gd.data.length > 0;
}"""
# Centre of the marker nearest the middle of a chart's plotting area (never one drawn in the margin).
INNER_POINT = """id => {
  const area = document.querySelector(`#${id} .nsewdrag`).getBoundingClientRect();
  const mid = [area.left + area.width / 2, area.top + area.height / 2];
  const centres = [...document.querySelectorAll(`#${id} .scatterlayer .point`)].map(point => {
    const box = point.getBoundingClientRect();
    return [box.left + box.width / 2, box.top + box.height / 2];
  }).filter(([x, y]) => x > area.left + 4 && x < area.right - 4 && y > area.top + 4 && y < area.bottom - 4);
  centres.sort((a, b) => Math.hypot(a[0] - mid[0], a[1] - mid[1]) - Math.hypot(b[0] - mid[0], b[1] - mid[1]));
  return centres[0];
}"""
CHART_POINTS = """id => document.getElementById(id).data
  .reduce((n, trace) => n + ((trace.x || trace.z || []).length), 0)"""


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def chromium() -> Path:
    path, why = ensure_chromium()
    if path is None:
        pytest.skip(f"the browser test needs chromium: {why}")
    return path


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory) -> Path:
    """A private copy of the demo run's bundle whose last label reads as named from its sound.

    Every demo cluster has distinctive tags, so the copy re-marks one (its two farthest
    worded features "in the name") to show how the page draws a name from the sound.
    """
    copy = copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))
    path = copy / "cluster_profiles.json"
    profiles = json.loads(path.read_text())
    cluster = [c for c in profiles["clusters"] if c["name"] and not c["dropped"]][-1]
    cluster["named_by"] = "acoustic"
    for feature in [f for f in cluster["acoustic_features"] if f["word"]][:2]:
        feature["in_name"] = True
    path.write_text(json.dumps(profiles))
    return copy


@pytest.fixture(scope="module")
def lookup(bundle) -> pd.DataFrame:
    return pd.read_csv(bundle / "inference_lookup.csv", dtype={"track_id": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def base_url(bundle):
    from moodscape.api import create_app

    with serve(create_app(bundle)) as url:
        yield url


@pytest.fixture(scope="module")
def page_errors() -> list[str]:
    return []


@pytest.fixture(scope="module")
def page(chromium, base_url, page_errors):
    sync_api = pytest.importorskip("playwright.sync_api")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.on("pageerror", lambda error: page_errors.append(str(error)))
        page.goto(f"{base_url}/")
        page.wait_for_selector("body[data-ready='true']")
        yield page
        context.close()
        browser.close()


# --------------------------------------------------------------------------- helpers


def show(page, tab: str) -> None:
    page.click(f"[data-testid='tab-{tab}']")
    page.wait_for_selector(f"#section-{tab}", state="visible")


def chart_points(page, chart_id: str, timeout: float = 20_000) -> int:
    """Wait until the Plotly chart ``chart_id`` has data; return its number of points (or heat-map rows)."""
    page.wait_for_function(CHART_READY, arg=chart_id, timeout=timeout)
    return page.evaluate(CHART_POINTS, chart_id)


def list_count(page, list_id: str, *, at_least: int = 1) -> int:
    page.wait_for_function("([id, n]) => Number(document.getElementById(id).dataset.count || 0) >= n",
                           arg=[list_id, at_least])
    return page.locator(f"#{list_id} [data-testid='track-item']").count()


def plot_area(page, chart_id: str) -> dict:
    """Bounding box of a chart's plotting area (the drag layer of its x/y subplot)."""
    return page.locator(f"#{chart_id} .nsewdrag").first.bounding_box()


def click_plane(page, chart_id: str, valence: float, arousal: float) -> None:
    """Click the point (valence, arousal) of a valence/arousal chart (fixed axis ranges)."""
    box = plot_area(page, chart_id)
    (x0, x1), (y0, y1) = page.evaluate(
        "id => { const l = document.getElementById(id).layout; return [l.xaxis.range, l.yaxis.range]; }", chart_id)
    x = box["x"] + (valence - x0) / (x1 - x0) * box["width"]
    y = box["y"] + (y1 - arousal) / (y1 - y0) * box["height"]
    page.mouse.click(x, y)


def screenshot(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar belongs at the top of a full-page shot
    page.wait_for_timeout(300)  # let transitions settle
    page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


def first_audio_file(bundle: Path) -> Path:
    catalog = pd.read_parquet(bundle / "catalog_tracks.parquet")
    paths = [Path(p) for p in catalog["audio_path"] if p and Path(p).is_file()]
    if not paths:
        pytest.skip("no audio file of the catalog exists on disk")
    return paths[0]


# --------------------------------------------------------------------------- the sections, in order


def test_mood_map_plots_every_track(page, lookup):
    assert chart_points(page, "mood-map") == len(lookup)
    legend = page.locator("#mood-map .legendtext").all_text_contents()
    assert set(legend) == set(lookup["new_acoustic_label"])
    for quadrant in ("happy / excited", "angry / tense", "sad / depressed", "calm / content"):
        assert page.locator("#mood-map .annotation-text", has_text=quadrant).count() == 1


def test_clicking_a_point_plays_it_and_lists_similar_tracks(page):
    x, y = page.evaluate(INNER_POINT, "mood-map")
    page.mouse.click(x, y)
    page.wait_for_function("document.getElementById('player').getAttribute('src')")
    track_id = page.inner_text("[data-testid='detail-track-id']")
    src = page.evaluate("document.getElementById('player').src")  # absolute URL
    assert src.endswith(f"/tracks/{track_id}/audio")
    audio = page.request.get(src)
    assert audio.ok and len(audio.body()) > 1000
    assert list_count(page, "similar-list") >= 1
    similar = page.locator("#similar-list [data-track-id]").evaluate_all("items => items.map(i => i.dataset.trackId)")
    assert track_id not in similar
    screenshot(page, "mood-map")


def test_lasso_selection_becomes_an_exported_playlist(page):
    box = plot_area(page, "mood-map")
    x0, y0, x1, y1 = box["x"] + 3, box["y"] + 3, box["x"] + box["width"] - 3, box["y"] + box["height"] - 3
    page.mouse.move(x0, y0)
    page.mouse.down()
    for x, y in ((x1, y0), (x1, y1), (x0, y1), (x0, y0 + 4)):
        page.mouse.move(x, y, steps=8)
    page.mouse.up()
    n = list_count(page, "playlist-list")
    assert page.inner_text("#playlist-count") == str(n)
    first = page.locator("#playlist-list [data-track-id]").first.get_attribute("data-track-id")
    for fmt in ("json", "m3u"):
        with page.expect_download() as download:
            page.click(f"[data-testid='export-playlist-{fmt}']")
        saved = Path(download.value.path()).read_text()
        assert download.value.suggested_filename.endswith(f".{fmt}")
        assert first in saved
        if fmt == "json":
            json.loads(saved)
    screenshot(page, "mood-map-selection")


def test_labels_explain_each_cluster_and_the_choice_of_k(page, lookup, base_url):
    show(page, "labels")
    assert page.inner_text("#selection-reason").startswith("K = ")
    # the demo run fixes K (cluster.k): the chart says so instead of drawing a one-point scan
    page.wait_for_selector("#k-curves .not-available")
    assert "was fixed" in page.inner_text("#k-curves")
    cards = page.locator("[data-testid='label-card']")
    labels = [c for c in lookup.columns if c.startswith("p_")]
    assert cards.count() == len(labels)
    items = page.request.get(f"{base_url}/api/v1/labels").json()["items"]
    for item, chart_id in zip(items, cards.locator("[data-testid='label-bars']").evaluate_all("nodes => nodes.map(n => n.id)")):
        assert chart_points(page, chart_id) > 0
        bars = page.evaluate("id => document.getElementById(id).data[0].x", chart_id)
        if item["named_by"] == "acoustic":  # the z of its features' cluster means, farthest first
            assert bars == [f["z"] for f in item["acoustic_features"]]
        else:  # the score that ranks the tags of a name (not their lift)
            assert bars == sorted((t["score"] for t in item["top_tags"]), reverse=True)[:10]
    acoustic = page.locator("[data-testid='label-card']", has_text="its sound")
    assert acoustic.count() == 1
    assert "naming features" in acoustic.inner_text().lower()  # the stat names are upper-cased by CSS
    screenshot(page, "labels")


def test_renaming_a_label_shows_the_new_name_everywhere(page):
    card = page.locator("[data-testid='label-card']").first
    label = card.get_attribute("data-label")
    card.locator("[data-testid='rename-input']").fill("")
    card.locator("[data-testid='rename-save']").click()  # an empty name is refused with the API's message
    error = card.locator("[data-testid='rename-error']")
    error.wait_for(state="visible")
    assert "422" in error.inner_text()

    card.locator("[data-testid='rename-input']").fill(NEW_NAME)
    card.locator("[data-testid='rename-save']").click()
    renamed = page.locator(f"[data-testid='label-card'][data-label='{label}'] [data-testid='label-name']")
    renamed.filter(has_text=NEW_NAME).wait_for()
    assert page.locator("[data-testid='manual-names-link']").get_attribute("href").endswith("manual-names.toml")
    screenshot(page, "labels-renamed")

    show(page, "map")
    page.locator("#mood-map .legendtext", has_text=NEW_NAME).wait_for()
    assert label not in page.locator("#mood-map .legendtext").all_text_contents()


def test_embedding_map_toggles_projection_and_colouring(page, lookup):
    show(page, "embedding")
    page.wait_for_selector("#embedding-map[data-method='pca']")
    assert chart_points(page, "embedding-map") == len(lookup)
    screenshot(page, "embedding-pca")

    page.click("[data-testid='method-tsne']")
    page.wait_for_selector("#embedding-map[data-method='tsne']", timeout=60_000)
    assert chart_points(page, "embedding-map") == len(lookup)
    assert page.get_attribute("#embedding-status", "data-state") == "ready"

    tag_option = page.locator("#embedding-color option").nth(1).get_attribute("value")
    assert tag_option.startswith("tag:")
    page.select_option("#embedding-color", tag_option)
    page.wait_for_selector(f"#embedding-map[data-color-by='{tag_option}']")
    names = page.evaluate("document.getElementById('embedding-map').data.map(t => t.name)")
    assert len(names) == 2 and any(tag_option[4:] in name for name in names)
    screenshot(page, "embedding-tsne")


def test_model_metrics(page, lookup):
    show(page, "model")
    n_labels = len([c for c in lookup.columns if c.startswith("p_")])
    assert chart_points(page, "confusion-matrix") == n_labels
    ticks = page.locator("#confusion-matrix .ytick text").all_text_contents()
    assert NEW_NAME in ticks
    assert page.locator("#per-class-table tbody tr").count() == n_labels
    assert "accuracy" in page.text_content("#classifier-summary")
    assert "R²" in page.text_content("#av-summary")
    assert chart_points(page, "pairwise-chart") > 0
    screenshot(page, "model")


def test_recommend_from_the_pad_and_from_seeds(page):
    show(page, "recommend")
    chart_points(page, "va-pad")
    click_plane(page, "va-pad", 0.75, 0.75)
    page.wait_for_function("document.getElementById('pad-readout').textContent.includes('0.7')")
    page.fill("#rec-limit", "8")
    page.click("[data-testid='recommend-button']")
    n = list_count(page, "rec-results")
    assert 1 <= n <= 8
    assert page.locator("#rec-results [data-testid='play']:not([disabled])").count() >= 1
    names = page.evaluate("document.getElementById('va-pad').data.map(t => t.name)")
    assert "recommendations" in names

    seed = page.locator("#rec-results [data-track-id]").first.get_attribute("data-track-id")
    page.fill("#seed-input", seed)
    page.click("[data-testid='recommend-button']")
    page.wait_for_function("s => document.getElementById('rec-caption').textContent.includes(s)", arg=seed)
    results = page.locator("#rec-results [data-track-id]").evaluate_all("items => items.map(i => i.dataset.trackId)")
    assert results and seed not in results
    page.fill("#seed-input", "")
    screenshot(page, "recommend")


def test_mood_path_on_the_pad(page):
    page.click("[data-testid='pad-mode-path']")
    page.wait_for_selector("#va-pad[data-mode='path']")
    click_plane(page, "va-pad", 0.15, 0.2)
    click_plane(page, "va-pad", 0.85, 0.8)
    page.wait_for_function("document.getElementById('pad-readout').textContent.startsWith('path')")
    page.fill("#path-steps", "6")
    page.click("[data-testid='path-button']")
    assert list_count(page, "path-results", at_least=6) == 6
    names = page.evaluate("document.getElementById('va-pad').data.map(t => t.name)")
    assert "path" in names and "mood line" in names
    screenshot(page, "recommend-path")


def test_analyze_an_uploaded_file(page, bundle):
    show(page, "analyze")
    page.set_input_files("#analyze-file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not audio"}])
    error = page.locator("[data-testid='analyze-error']")
    error.wait_for(state="visible")
    assert re.search(r"\b415\b", error.inner_text())

    page.set_input_files("#analyze-file", str(first_audio_file(bundle)))
    page.wait_for_selector("#analyze-results", state="visible", timeout=60_000)
    assert error.is_hidden()
    assert chart_points(page, "analyze-probs") >= 1
    assert chart_points(page, "analyze-va") >= 1
    assert chart_points(page, "analyze-timeline") >= 1
    assert page.locator("#analyze-summary .chip").count() == 1
    assert list_count(page, "analyze-nearest") >= 1
    screenshot(page, "analyze")


def test_no_script_errors(page, page_errors):
    assert page_errors == []
