"""The JSON API over the demo run's bundle: every resource, its validation and its errors."""

from __future__ import annotations

import io
import json
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from cli_runner import invoke
from serving_bundle import copy_bundle

from moodscape.api import create_app
from moodscape.api.catalog import BundleError
from moodscape.api.schemas import MoodQuery, SeedQuery
from moodscape.labeling import NAME_SEPARATOR, display_tag

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lookup(bundle) -> pd.DataFrame:
    return pd.read_csv(bundle / "inference_lookup.csv", dtype={"track_id": str}, keep_default_na=False)


@pytest.fixture(scope="module")
def audio_files(bundle) -> dict[str, str]:
    catalog = pd.read_parquet(bundle / "catalog_tracks.parquet")
    return dict(zip(catalog["track_id"], catalog["audio_path"]))


def ids(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["track_id"] for item in response.json()["items"]]


# --------------------------------------------------------------------------- health, catalog


def test_health_and_readiness(client, lookup):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/api/v1/health").json() == {"status": "ok"}
    n_labels = len([column for column in lookup.columns if column.startswith("p_")])
    assert client.get("/api/v1/ready").json() == {"status": "ready", "tracks": len(lookup), "labels": n_labels, "valence_arousal": True}


def test_track_record_is_the_lookup_row(client, lookup):
    row = lookup.iloc[3]
    record = client.get(f"/api/v1/tracks/{row['track_id']}").json()
    assert record["label"] == row["new_acoustic_label"] == record["label_name"]
    assert record["probability"] == pytest.approx(row["probability"], rel=1e-6)
    assert record["probabilities"][row["new_acoustic_label"]] == pytest.approx(row["probability"], rel=1e-6)
    assert sum(record["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
    assert record["valence"] == pytest.approx(row["valence"], rel=1e-6)
    assert record["tags"] == [tag for tag in row["tags"].split(",") if tag]
    assert record["audio_url"].endswith("/audio")


def test_unknown_track_is_404(client):
    response = client.get("/api/v1/tracks/no-such-track")
    assert response.status_code == 404
    assert "no-such-track" in response.json()["detail"]


def test_catalog_filters_sort_and_pages(client, lookup):
    label = lookup["new_acoustic_label"].value_counts().index[0]
    listed = client.get("/api/v1/tracks", params={"label": label, "sort": "valence", "order": "desc", "limit": 500}).json()
    assert listed["total"] == (lookup["new_acoustic_label"] == label).sum()
    valences = [item["valence"] for item in listed["items"]]
    assert valences == sorted(valences, reverse=True)
    ranged = client.get("/api/v1/tracks", params={"min_arousal": 0.5, "max_valence": 0.6, "limit": 500}).json()
    assert ranged["total"] == ((lookup["arousal"] >= 0.5) & (lookup["valence"] <= 0.6)).sum()
    tag = lookup["tags"].str.split(",").explode().value_counts().index[0]
    tagged = client.get("/api/v1/tracks", params={"tag": tag, "limit": 500}).json()
    assert tagged["total"] == lookup["tags"].str.split(",").apply(lambda tags: tag in tags).sum()
    searched = client.get("/api/v1/tracks", params={"q": lookup["track_id"].iloc[0].upper()}).json()
    assert lookup["track_id"].iloc[0] in [item["track_id"] for item in searched["items"]]
    everything = sorted(lookup["track_id"])
    pages = [ids(client.get("/api/v1/tracks", params={"offset": offset, "limit": 7})) for offset in range(0, len(everything), 7)]
    assert sum(pages, []) == everything


def test_catalog_and_mood_recommendations_keep_the_same_tracks_for_the_same_bounds(client, lookup):
    """GET /tracks and POST /recommend/mood filter with the same TrackFilter: same bounds, same tracks.

    The bounds are the short decimals of catalog values (what a user types: ``0.3``, not
    the float32 ``0.30000001192092896``), so a boundary track is kept or dropped by both
    or by neither.
    """
    labels = lookup["new_acoustic_label"].value_counts().index
    valence = np.sort(lookup["valence"].to_numpy(dtype=np.float32))
    arousal = np.sort(lookup["arousal"].to_numpy(dtype=np.float32))
    n, window = len(lookup), min(60, len(lookup) // 3)
    tried = 0
    for start in range(0, n - window, max(1, (n - window) // 12)):
        short = [float(str(value)) for value in (valence[start], valence[start + window],
                                                  arousal[start], arousal[start + window])]
        if not all(0.0 <= value <= 1.0 for value in short):
            continue
        for bounds in ({"min_valence": short[0], "max_valence": short[1]},
                       {"min_arousal": short[2], "max_arousal": short[3]},
                       {"min_valence": short[0], "max_arousal": short[3], "label": labels[start % len(labels)]}):
            label = bounds.pop("label", None)
            listed = client.get("/api/v1/tracks", params={**bounds, "limit": 500, **({"label": label} if label else {})}).json()
            recommended = client.post("/api/v1/recommend/mood", json={
                **bounds, "limit": 100, **({"labels": [label]} if label else {})}).json()["items"]
            assert listed["total"] <= 100, "window too wide for one recommendation answer"
            assert sorted(ids_of(listed)) == sorted(ids_of({"items": recommended})), bounds
            tried += listed["total"] > 0
    assert tried


def test_a_catalog_without_valence_arousal_lists_and_filters(demo_run, tmp_path):
    """No AV model (NaN valence/arousal): bounds keep nothing, everything else still lists."""
    from fastapi.testclient import TestClient

    bundle = copy_bundle(demo_run, tmp_path)
    table = pd.read_csv(bundle / "inference_lookup.csv", dtype={"track_id": str}, keep_default_na=False)
    table["valence"] = table["arousal"] = ""
    table.to_csv(bundle / "inference_lookup.csv", index=False)
    label = table["new_acoustic_label"].iloc[0]
    with TestClient(create_app(bundle)) as client:
        assert client.get("/api/v1/ready").json()["valence_arousal"] is False
        everything = client.get("/api/v1/tracks", params={"sort": "valence", "limit": 500}).json()
        assert everything["total"] == len(table) and everything["items"][0]["valence"] is None
        assert client.get("/api/v1/tracks", params={"label": label}).json()["total"] == (table["new_acoustic_label"] == label).sum()
        for bounds in ({"min_valence": 0.0}, {"max_arousal": 1.0}, {"min_valence": 0.0, "label": label}):
            assert client.get("/api/v1/tracks", params=bounds).json()["total"] == 0
        assert client.post("/api/v1/recommend/mood", json={"min_valence": 0.0}).status_code == 409  # tests/api/test_without_mood.py


@pytest.mark.parametrize("params", [
    {"limit": 0}, {"limit": 501}, {"offset": -1}, {"min_valence": 1.5}, {"sort": "nonsense"}, {"order": "up"},
    {"min_valence": "x"},
])
def test_bad_catalog_parameters_are_422(client, params):
    response = client.get("/api/v1/tracks", params=params)
    assert response.status_code == 422, response.text


def test_unknown_label_filter_is_422(client):
    response = client.get("/api/v1/tracks", params={"label": "No Such Label"})
    assert response.status_code == 422
    assert "No Such Label" in response.json()["detail"]


def test_bulk_lookup_lists_missing_ids(client, lookup):
    wanted = lookup["track_id"].iloc[:5].tolist() + ["missing-1"]
    result = client.post("/api/v1/tracks/lookup", json={"track_ids": wanted}).json()
    assert [item["track_id"] for item in result["items"]] == wanted[:5]
    assert result["missing"] == ["missing-1"]
    assert client.post("/api/v1/tracks/lookup", json={"track_ids": []}).status_code == 422
    assert client.post("/api/v1/tracks/lookup", json={"track_ids": ["a"] * 1001}).status_code == 422


# --------------------------------------------------------------------------- audio


def test_audio_streams_with_ranges(client, lookup, audio_files):
    track_id = lookup["track_id"].iloc[0]
    size = len(open(audio_files[track_id], "rb").read())
    whole = client.get(f"/api/v1/tracks/{track_id}/audio")
    assert whole.status_code == 200 and len(whole.content) == size
    assert whole.headers["content-type"].startswith("audio/")
    part = client.get(f"/api/v1/tracks/{track_id}/audio", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == whole.content[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{size}"


def test_audio_never_serves_a_path_from_the_request(client):
    for attempt in ("../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd"):
        assert client.get(f"/api/v1/tracks/{attempt}/audio").status_code == 404


# --------------------------------------------------------------------------- labels and names


def test_labels_describe_the_clusters(client, bundle, lookup):
    labels = client.get("/api/v1/labels").json()["items"]
    label_to_idx = json.loads((bundle / "label_to_idx.json").read_text())
    assert [item["label"] for item in labels] == sorted(label_to_idx, key=label_to_idx.get)
    profiles = {cluster["name"]: cluster for cluster in json.loads((bundle / "cluster_profiles.json").read_text())["clusters"]
                if cluster["name"] and not cluster["dropped"]}
    for item in labels:
        members = lookup[lookup["new_acoustic_label"] == item["label"]]
        assert item["size"] == len(members)
        if len(members):
            assert item["mean_valence"] == pytest.approx(members["valence"].mean(), rel=1e-5)
        # the label's own cluster profile, not another's
        profile = profiles[item["label"]]
        assert item["cluster_id"] == profile["cluster_id"] and item["named_by"] == profile["named_by"]
        assert item["distinctive_tags"] == profile["distinctive_tags"]
        assert [tag["tag"] for tag in item["top_tags"]] == [tag["tag"] for tag in profile["top_tags"]]
        # top tags are ranked by score and flag exactly the distinctive ones
        scores = [tag["score"] for tag in item["top_tags"]]
        assert scores == sorted(scores, reverse=True)
        assert [tag["distinctive"] for tag in item["top_tags"]] == [tag["tag"] in item["distinctive_tags"] for tag in item["top_tags"]]
        # the acoustic profile, farthest feature first, as stage 2 wrote it
        assert item["acoustic_features"] == profile["acoustic_features"][:len(item["acoustic_features"])]
        assert len(item["acoustic_features"]) == min(10, len(profile["acoustic_features"])) > 0
        # a name from tags joins distinctive tags only
        if item["named_by"] == "tags":
            assert item["distinctive_tags"], item
            parts = re.sub(r" \(\d+\)$", "", item["label"]).split(NAME_SEPARATOR)
            assert set(parts) <= {display_tag(tag) for tag in item["distinctive_tags"]}, item


def test_rename_shows_everywhere_and_survives_a_restart(demo_run, tmp_path, lookup):
    bundle = copy_bundle(demo_run, tmp_path)
    from fastapi.testclient import TestClient

    label = lookup["new_acoustic_label"].iloc[0]
    track_id = lookup["track_id"].iloc[0]
    with TestClient(create_app(bundle)) as client:
        renamed = client.put(f"/api/v1/labels/{label}/name", json={"name": "  Night Drive  "})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json()["label_name"] == "Night Drive"
        other = next(item["label"] for item in client.get("/api/v1/labels").json()["items"] if item["label"] != label)
        clash = client.put(f"/api/v1/labels/{other}/name", json={"name": "Night Drive"})
        assert clash.status_code == 422
        assert client.put(f"/api/v1/labels/{label}/name", json={"name": ""}).status_code == 422
        assert client.put("/api/v1/labels/No Such/name", json={"name": "x"}).status_code == 404
    with TestClient(create_app(bundle)) as client:  # a new process reads the SQLite file
        assert client.get(f"/api/v1/tracks/{track_id}").json()["label_name"] == "Night Drive"
        assert "Night Drive" in client.get("/api/v1/map").json()["label_name"]
        toml = tomllib.loads(client.get("/api/v1/labels/manual-names.toml").text)
        profiles = json.loads((bundle / "cluster_profiles.json").read_text())
        cluster_id = next(c["cluster_id"] for c in profiles["clusters"] if c["name"] == label)
        assert toml["label"]["manual_names"] == {str(cluster_id): "Night Drive"}
        assert client.delete(f"/api/v1/labels/{label}/name").json()["label_name"] == label


def test_selection_and_metrics(client, bundle):
    selection = client.get("/api/v1/selection").json()
    assert selection["k"] == json.loads((bundle / "cluster_selection.json").read_text())["k"]
    assert {"k", "inertia", "silhouette"} <= set(selection["scan"][0])
    metrics = client.get("/api/v1/metrics").json()
    assert metrics["classifier"]["macro_f1"] == json.loads((bundle / "metrics/classifier.json").read_text())["macro_f1"]
    assert "pairwise_accuracy" in metrics["av"]


# --------------------------------------------------------------------------- recommendations


def test_mood_recommendations_respect_target_and_ranges(client, lookup):
    query = {"target_valence": 0.7, "target_arousal": 0.6, "tolerance": 0.3, "min_arousal": 0.4, "limit": 20}
    items = client.post("/api/v1/recommend/mood", json=query).json()["items"]
    distances = np.hypot(lookup["valence"] - 0.7, lookup["arousal"] - 0.6)
    eligible = lookup[(distances <= 0.3) & (lookup["arousal"] >= 0.4)]
    assert len(items) == min(20, len(eligible)) > 0
    expected = eligible.assign(d=distances[eligible.index]).sort_values("d")["track_id"].head(20)
    assert [item["track_id"] for item in items] == expected.tolist()
    assert all(item["distance"] <= 0.3 + 1e-6 and item["arousal"] >= 0.4 for item in items)
    same = client.get("/api/v1/recommend/mood", params=query).json()["items"]
    assert [item["track_id"] for item in same] == [item["track_id"] for item in items]


@pytest.mark.parametrize("query", [
    {"target_valence": 2}, {"tolerance": 0}, {"min_valence": 0.8, "max_valence": 0.2}, {"limit": 101},
    {"labels": ["No Such Label"]}, {"diversity": -0.1}, {"unknown_field": 1},
])
def test_bad_mood_queries_are_422(client, query):
    response = client.post("/api/v1/recommend/mood", json=query)
    assert response.status_code == 422, response.text
    assert client.get("/api/v1/recommend/mood", params=query).status_code == 422


def test_seed_recommendations_favour_the_seeds_label_over_chance(client, lookup):
    label = lookup["new_acoustic_label"].value_counts().index[0]
    members = lookup[lookup["new_acoustic_label"] == label]["track_id"].tolist()
    seeds = members[:2]
    items = client.post("/api/v1/recommend/seeds", json={"seeds": seeds, "limit": 20}).json()["items"]
    assert not set(seeds) & {item["track_id"] for item in items}
    # more of the label than chance: a random pick from the rest of the catalog is in it with probability
    chance = (len(members) - len(seeds)) / (len(lookup) - len(seeds))
    same_label = np.mean([item["label"] == label for item in items])
    assert same_label > chance, (same_label, chance)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)
    excluded = client.post("/api/v1/recommend/seeds", json={"seeds": seeds, "limit": 5, "exclude": [items[0]["track_id"]]}).json()
    assert items[0]["track_id"] not in ids_of(excluded)
    assert client.post("/api/v1/recommend/seeds", json={"seeds": ["nope"]}).status_code == 404
    assert client.post("/api/v1/recommend/seeds", json={"seeds": []}).status_code == 422


def ids_of(payload) -> list[str]:
    return [item["track_id"] for item in payload["items"]]


def test_negative_seeds_push_their_label_down_the_ranking(client, lookup):
    """Seeds from two labels mix both; negative seeds from the second push its tracks down.

    The query moves from the mean of the seeds to that mean minus the negative seeds' mean,
    i.e. away from the second label: its remaining tracks must rank lower than without the
    negative seeds, and fewer of them must make the top of the list.
    """
    labels = lookup["new_acoustic_label"].value_counts().index
    members = {label: lookup.loc[lookup["new_acoustic_label"] == label, "track_id"].tolist() for label in labels}
    first = members[labels[0]]
    top = len(first) - 1  # as many places as the first label has tracks to fill

    def mean_rank(order: list[str], pushed: list[str]) -> float:
        return float(np.mean([order.index(track) if track in order else len(order) for track in pushed]))

    def in_top(order: list[str], pushed: list[str]) -> int:
        return len(set(order[:top]) & set(pushed))

    tried = 0
    for label in labels[1:]:  # a second label that the plain query mixes in, so there is something to push
        second = members[label]
        if len(second) < 4:
            continue
        seeds, negative, pushed = [first[0], second[0]], second[1:3], second[3:]
        limit = min(100, len(lookup) - len(seeds) - len(negative))
        query = {"seeds": seeds, "limit": limit}
        plain = ids(client.post("/api/v1/recommend/seeds", json=query))
        if in_top(plain, pushed) == 0:
            continue
        tried += 1
        away = ids(client.post("/api/v1/recommend/seeds", json={**query, "negative_seeds": negative}))
        assert not set(negative) & set(away)
        assert in_top(away, pushed) < in_top(plain, pushed), label
        assert mean_rank(away, pushed) > mean_rank(plain, pushed), label
    assert tried, "no second label appears in the plain results: nothing to push down"


def test_label_recommendations_by_probability(client, lookup):
    label = lookup["new_acoustic_label"].iloc[0]
    items = client.post("/api/v1/recommend/label", json={"label": label, "limit": 3}).json()["items"]
    assert all(item["label"] == label for item in items)
    assert [item["probability"] for item in items] == sorted((item["probability"] for item in items), reverse=True)


def test_diversity_spreads_results(client, lookup, bundle):
    embeddings = pd.read_parquet(bundle / "embeddings.parquet").set_index("track_id")
    seed = lookup["track_id"].iloc[0]

    def spread(diversity: float) -> float:
        chosen = ids_of(client.post("/api/v1/recommend/seeds", json={"seeds": [seed], "limit": 6, "diversity": diversity}).json())
        vectors = embeddings.loc[chosen].to_numpy(dtype=np.float64, copy=True)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        similarity = vectors @ vectors.T
        return float(similarity[np.triu_indices(len(chosen), 1)].mean())

    assert spread(0.8) < spread(0.0)


def test_mood_path_moves_along_the_line_without_repeats(client, lookup):
    path = client.post("/api/v1/path", json={"start": {"valence": 0.2, "arousal": 0.2},
                                             "end": {"valence": 0.8, "arousal": 0.8}, "steps": 8}).json()
    items = path["items"]
    assert len(items) == 8 and len({item["track_id"] for item in items}) == 8
    targets = [item["target"]["valence"] for item in items]
    assert targets == sorted(targets) and targets[0] == pytest.approx(0.2) and targets[-1] == pytest.approx(0.8)
    arousal_trend = np.polyfit(np.arange(8), [item["arousal"] for item in items], 1)[0]
    assert arousal_trend > 0
    start = lookup["track_id"].iloc[0]
    from_track = client.post("/api/v1/path", json={"start": {"track_id": start}, "end": {"valence": 0.9, "arousal": 0.9}, "steps": 3})
    assert from_track.status_code == 200
    assert from_track.json()["start"]["valence"] == pytest.approx(lookup["valence"].iloc[0], rel=1e-5)
    for bad in ({"start": {"valence": 0.1}, "end": {"valence": 0.9, "arousal": 0.9}},
                {"start": {"valence": 0.1, "arousal": 0.1, "track_id": start}, "end": {"track_id": start}},
                {"start": {"track_id": start}, "end": {"track_id": start}, "steps": 1}):
        assert client.post("/api/v1/path", json=bad).status_code == 422


# --------------------------------------------------------------------------- maps


def test_mood_map_and_projections(client, lookup):
    points = client.get("/api/v1/map").json()
    assert points["total"] == len(lookup) == len(points["x"])
    row = points["track_id"].index(lookup["track_id"].iloc[0])
    assert points["x"][row] == pytest.approx(lookup["valence"].iloc[0], abs=1e-4)
    pca = client.get("/api/v1/projection", params={"method": "pca"}).json()
    assert len(pca["x"]) == len(lookup) and np.std(pca["x"]) > 0
    assert client.get("/api/v1/projection", params={"method": "pca"}).json()["x"] == pca["x"]  # cached
    assert client.get("/api/v1/projection", params={"method": "mds"}).status_code == 422


# --------------------------------------------------------------------------- analyze


def test_analyze_matches_stage_5_for_a_catalog_track(client, lookup, audio_files):
    row = lookup.iloc[1]
    with open(audio_files[row["track_id"]], "rb") as stream:
        response = client.post("/api/v1/analyze", files={"file": ("song.mp3", stream, "audio/mpeg")})
    assert response.status_code == 200, response.text
    analysis = response.json()
    assert analysis["label"] == row["new_acoustic_label"]
    for label, probability in analysis["probabilities"].items():
        assert probability == pytest.approx(row[f"p_{label}"], abs=1e-4)
    assert analysis["valence"] == pytest.approx(row["valence"], abs=1e-4)
    assert analysis["arousal"] == pytest.approx(row["arousal"], abs=1e-4)
    assert analysis["nearest"][0]["track_id"] == row["track_id"]  # the same audio is its own nearest track
    timeline = analysis["timeline"]
    assert timeline[0]["start"] == 0 and timeline[-1]["end"] == pytest.approx(analysis["duration"], abs=0.5)
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in zip(timeline, timeline[1:]))
    assert "bpm" in analysis["features"]


def test_analyze_rejects_non_audio_and_large_files(client, bundle):
    text = client.post("/api/v1/analyze", files={"file": ("notes.mp3", io.BytesIO(b"not audio at all" * 100), "audio/mpeg")})
    assert text.status_code == 415, text.text
    wrong_type = client.post("/api/v1/analyze", files={"file": ("notes.txt", io.BytesIO(b"hello"), "text/plain")})
    assert wrong_type.status_code == 415
    assert client.post("/api/v1/analyze").status_code == 422
    from fastapi.testclient import TestClient

    with TestClient(create_app(bundle, max_upload_bytes=1000)) as small:
        assert small.post("/api/v1/analyze", files={"file": ("big.wav", io.BytesIO(b"0" * 5000), "audio/wav")}).status_code == 413
        big = io.BytesIO(b"0" * 200_000)
        assert small.post("/api/v1/analyze", files={"file": ("big.wav", big, "audio/wav")}).status_code == 413


# --------------------------------------------------------------------------- playlists


def test_playlist_export(client, lookup):
    wanted = lookup["track_id"].iloc[:3].tolist()
    m3u = client.post("/api/v1/playlists/export", params={"format": "m3u"}, json={"name": "Calm evening", "track_ids": wanted})
    assert m3u.status_code == 200
    lines = m3u.text.splitlines()
    assert lines[0] == "#EXTM3U"
    urls = [line for line in lines if line and not line.startswith("#")]
    assert len(urls) == 3 and all(url.startswith("http") and url.endswith("/audio") for url in urls)
    assert "attachment" in m3u.headers["content-disposition"]
    exported = client.post("/api/v1/playlists/export", params={"format": "json"}, json={"name": "x", "track_ids": wanted}).json()
    assert [track["track_id"] for track in exported["tracks"]] == wanted
    assert client.post("/api/v1/playlists/export", json={"track_ids": ["nope"]}).status_code == 404
    assert client.post("/api/v1/playlists/export", params={"format": "pls"}, json={"track_ids": wanted}).status_code == 422


# --------------------------------------------------------------------------- the page and the docs


def test_page_and_offline_plotly(client):
    page = client.get("/")
    assert page.status_code == 200 and "plotly.min.js" in page.text
    assert "cdn" not in page.text.lower()
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    schema = client.get("/openapi.json").json()
    assert "/api/v1/recommend/mood" in schema["paths"]
    for path, fields in (("/api/v1/recommend/mood", MoodQuery.model_fields), ("/api/v1/recommend/seeds", SeedQuery.model_fields)):
        parameters = {parameter["name"]: parameter for parameter in schema["paths"][path]["get"]["parameters"]}
        assert set(parameters) == set(fields) and all(parameter["in"] == "query" for parameter in parameters.values())
    assert parameters["seeds"]["required"] and parameters["seeds"]["schema"]["type"] == "array"
    assert client.get("/docs").status_code == 200


def test_the_page_links_the_run_report(client, bundle):
    assert 'href="/report"' in client.get("/").text
    report = client.get("/report")
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert report.content == (bundle / "report" / "report.html").read_bytes()


def test_a_bundle_without_report_says_how_to_write_it(bundle, tmp_path):
    from fastapi.testclient import TestClient


    copy = copy_bundle(bundle, tmp_path)
    (copy / "report" / "report.html").unlink()
    with TestClient(create_app(copy)) as client:
        missing = client.get("/report")
    assert missing.status_code == 404 and "moodscape report --workdir" in missing.text


# --------------------------------------------------------------------------- start-up checks


def _swap_first_two(label_to_idx: dict) -> str:
    first, second = list(label_to_idx)[:2]
    label_to_idx[first], label_to_idx[second] = label_to_idx[second], label_to_idx[first]
    return json.dumps(label_to_idx)


def _break(bundle, name, edit):
    path = bundle / name
    path.write_text(edit(path.read_text()))


@pytest.mark.parametrize(("name", "edit", "message"), [
    ("label_to_idx.json", lambda text: _swap_first_two(json.loads(text)), "differ from label_to_idx.json"),
    ("inference_lookup.csv", lambda text: text.replace("p_", "q_", 1), "probability columns"),
    ("cluster_profiles.json", lambda text: text.replace('"name": "', '"name": "Renamed ', 1), "named clusters"),
])
def test_misaligned_bundle_refuses_to_start(demo_run, tmp_path, name, edit, message):
    bundle = copy_bundle(demo_run, tmp_path)
    _break(bundle, name, edit)
    with pytest.raises(BundleError, match=message) as raised:
        create_app(bundle)
    assert len(str(raised.value).splitlines()) == 1


def test_missing_file_refuses_to_start_with_one_line(demo_run, tmp_path):
    bundle = copy_bundle(demo_run, tmp_path)
    (bundle / "embeddings.parquet").unlink()
    result = invoke("serve", "--bundle", bundle, "--port", "0")
    assert result.exit_code == 2
    assert "embeddings.parquet" in result.output and "missing" in result.output
