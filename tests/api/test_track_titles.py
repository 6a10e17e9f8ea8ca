"""Issue 15: titles, artists and albums from the files' tags in the catalog JSON, its text
search and the M3U/M3U8 playlists (``#EXTINF:<seconds>,<artist> - <title>``)."""

from __future__ import annotations

import pandas as pd
import pytest
from serving_bundle import synthetic_bundle_module

from moodscape.api.catalog import load_catalog

TITLED = {"title": "Été indien", "artist": "Ana Ñandú", "album": "Routes"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A synthetic bundle whose catalog table, in reverse order, gives its first track a title,
    artist and album and an audio file, its second a title alone."""
    root = synthetic_bundle_module().write_synthetic_bundle(tmp_path_factory.mktemp("titles") / "bundle", 40)
    audio = root / "song.ogg"
    audio.write_bytes(b"OggS")  # served as a file, never decoded here
    table = pd.read_parquet(root / "catalog_tracks.parquet")
    table[["title", "artist", "album"]] = ""
    table.loc[0, ["title", "artist", "album", "audio_path"]] = [*TITLED.values(), str(audio)]
    table.loc[1, ["title", "audio_path"]] = ["Solo", str(audio)]
    table.iloc[::-1].to_parquet(root / "catalog_tracks.parquet", index=False)
    return root


@pytest.fixture(scope="module")
def client(bundle):
    from fastapi.testclient import TestClient

    from moodscape.api import create_app

    with TestClient(create_app(bundle)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def ids(bundle) -> list[str]:
    return load_catalog(bundle).track_ids[:3].tolist()


def test_the_catalog_loads_titles_in_lookup_order(bundle, ids):
    catalog = load_catalog(bundle)
    assert [catalog.title[0], catalog.artist[0], catalog.album[0]] == list(TITLED.values())
    assert catalog.title[1:3].tolist() == ["Solo", ""] and catalog.artist[1] == ""


def test_track_records_carry_title_artist_and_album(client, ids):
    first, second, third = (client.get(f"/api/v1/tracks/{track_id}").json() for track_id in ids)
    assert {key: first[key] for key in TITLED} == TITLED
    assert (second["title"], second["artist"]) == ("Solo", None)
    assert (third["title"], third["artist"], third["album"]) == (None, None, None)


def test_text_search_matches_titles_artists_and_albums(client, ids):
    for query in ("ñandú", "ÉTÉ IND", "routes", "solo"):
        found = client.get("/api/v1/tracks", params={"q": query}).json()["items"]
        assert [item["track_id"] for item in found] == ([ids[1]] if query == "solo" else [ids[0]]), query
    ordered = client.get("/api/v1/tracks", params={"sort": "title", "order": "desc", "limit": 2}).json()["items"]
    assert [item["title"] for item in ordered] == ["Été indien", "Solo"]


@pytest.mark.parametrize("fmt", ["m3u", "m3u8"])
def test_playlists_name_tracks_by_artist_and_title(client, bundle, ids, fmt):
    response = client.post("/api/v1/playlists/export", params={"format": fmt}, json={"name": "Été", "track_ids": ids})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("audio/x-mpegurl")
    assert f'.{fmt}"' in response.headers["content-disposition"]
    lines = response.content.decode("utf-8").splitlines()
    seconds = round(load_catalog(bundle).duration[0])
    assert [line for line in lines if line.startswith("#EXTINF:")][:1] == [f"#EXTINF:{seconds},Ana Ñandú - Été indien"]
    assert [line for line in lines if line.startswith("#EXTINF:")][1].endswith(",Solo")
    assert lines[-1] == f"# {ids[2]}: no audio on this server"


def test_json_playlists_keep_the_titles(client, ids):
    tracks = client.post("/api/v1/playlists/export", params={"format": "json"}, json={"name": "x", "track_ids": ids}).json()["tracks"]
    assert [(track["title"], track["artist"], track["album"]) for track in tracks] == [
        tuple(TITLED.values()), ("Solo", None, None), (None, None, None)]
