"""Issue 15: a bundle without valence/arousal (no MusAV configured) says why mood queries cannot run.

Before, mood and path queries answered empty lists with no explanation. Now they answer 409
with what to configure, the page shows that text in place of the list, and every other
page and query works.
"""

from __future__ import annotations

import pandas as pd
import pytest
from api.browser import CHROMIUM_ARGS, ensure_chromium, serve
from serving_bundle import synthetic_bundle_module

from moodscape.api import create_app
from moodscape.artifacts import Workdir, checkpoint_description


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A bundle as stage 5 writes it without an AV model: no regressor, no AV metrics, empty valence/arousal."""
    bundle = synthetic_bundle_module().write_synthetic_bundle(tmp_path_factory.mktemp("no-av") / "bundle", 60)
    files = Workdir(bundle)
    for path in (files.av_regressor, checkpoint_description(files.av_regressor), files.av_metrics):
        path.unlink(missing_ok=True)
    lookup = pd.read_csv(files.inference_lookup, dtype={"track_id": str}, keep_default_na=False)
    lookup["valence"] = lookup["arousal"] = ""
    lookup.to_csv(files.inference_lookup, index=False)
    return bundle


@pytest.fixture(scope="module")
def client(bundle):
    from fastapi.testclient import TestClient

    with TestClient(create_app(bundle)) as test_client:
        yield test_client


def says_what_to_configure(response) -> None:
    assert response.status_code == 409, response.text
    message = response.json()["detail"]
    assert "no valence/arousal" in message and "[musav]" in message and "moodscape train-av" in message


def test_mood_and_path_queries_answer_409_with_what_to_configure(client):
    assert client.get("/api/v1/ready").json()["valence_arousal"] is False
    says_what_to_configure(client.post("/api/v1/recommend/mood", json={"target_valence": 0.7, "target_arousal": 0.3}))
    says_what_to_configure(client.get("/api/v1/recommend/mood", params={"target_valence": 0.7}))
    says_what_to_configure(client.post("/api/v1/recommend/mood", json={"min_valence": 0.0}))
    says_what_to_configure(client.post("/api/v1/path", json={"start": {"valence": 0.1, "arousal": 0.1},
                                                             "end": {"valence": 0.9, "arousal": 0.9}, "steps": 5}))
    seed = client.get("/api/v1/tracks", params={"limit": 1}).json()["items"][0]["track_id"]
    says_what_to_configure(client.post("/api/v1/recommend/seeds", json={"seeds": [seed], "va_weight": 0.5}))
    says_what_to_configure(client.post("/api/v1/recommend/seeds", json={"seeds": [seed], "min_arousal": 0.2}))


def test_every_other_page_and_query_works(client):
    assert client.get("/").status_code == 200
    first = client.get("/api/v1/tracks", params={"limit": 1}).json()["items"][0]
    track_id, label = first["track_id"], first["label"]
    for path in ("/api/v1/labels", "/api/v1/labels/manual-names.toml", "/api/v1/selection", "/api/v1/metrics",
                 "/api/v1/map", "/api/v1/projection", f"/api/v1/tracks/{track_id}", f"/api/v1/tracks/{track_id}/similar",
                 "/api/v1/tracks?sort=valence"):
        assert client.get(path).status_code == 200, path
    assert client.post("/api/v1/recommend/seeds", json={"seeds": [track_id], "limit": 5}).json()["items"]
    assert client.post("/api/v1/recommend/label", json={"label": label, "limit": 5}).json()["items"]


@pytest.mark.slow
def test_the_page_shows_why_in_place_of_the_list(bundle):
    chromium, why = ensure_chromium()
    if chromium is None:
        pytest.skip(f"the browser test needs chromium: {why}")
    sync_api = pytest.importorskip("playwright.sync_api")
    with serve(create_app(bundle)) as url, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(20_000)
        page.goto(f"{url}/#recommend")
        page.wait_for_selector("body[data-ready='true']")
        assert "no valence/arousal" in page.text_content("#catalog-summary")
        page.click("[data-testid='recommend-button']")
        page.wait_for_function("document.getElementById('rec-results').textContent.includes('[musav]')")
        assert page.locator("#rec-results [data-testid='track-item']").count() == 0
        browser.close()
