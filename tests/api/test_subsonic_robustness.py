"""Issue 16: hostile values in every parameter of every Subsonic method never give a 5xx.

The ``/rest`` routes stay out of the app's OpenAPI schema (the OpenSubsonic specification
documents them), so ``tests/robustness/test_web_catalogue.py`` does not reach them; this is
their catalogue. Each value goes, one parameter at a time, into every parameter a method
reads (and one it does not), the others keeping valid values, by GET and by form POST in
turn, with valid credentials. Every answer is a Subsonic envelope (or the file asked for)
and shows no traceback or path of the server.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

from api.subsonic_checks import NAMESPACE, error_code, token_auth
from api.subsonic_server import USERS
from moodscape.api import create_app
from moodscape.api.catalog import load_catalog
from moodscape.api.subsonic import METHODS, ids

MOODS = ["minValence", "maxValence", "minArousal", "maxArousal", "label"]
PARAMETERS = {
    "ping": [], "getLicense": [], "getOpenSubsonicExtensions": [], "getMusicFolders": [], "getGenres": [],
    "getIndexes": ["musicFolderId", "ifModifiedSince"], "getArtists": ["musicFolderId"],
    "getArtist": ["id"], "getAlbum": ["id"], "getSong": ["id"],
    "getSongsByGenre": ["genre", "count", "offset", "musicFolderId"],
    "getAlbumList2": ["type", "size", "offset", "genre", "fromYear", "toYear", "musicFolderId"],
    "getRandomSongs": ["size", "genre", "fromYear", "toYear", "musicFolderId", *MOODS],
    "search3": ["query", "artistCount", "artistOffset", "albumCount", "albumOffset", "songCount", "songOffset", "musicFolderId"],
    "getSimilarSongs": ["id", "count", *MOODS], "getSimilarSongs2": ["id", "count", *MOODS],
    "getSonicSimilarTracks": ["id", "count"], "findSonicPath": ["startSongId", "endSongId", "count"],
    "getPlaylists": ["username"], "getPlaylist": ["id"], "createPlaylist": ["playlistId", "name", "songId"],
    "updatePlaylist": ["playlistId", "name", "comment", "public", "songIdToAdd", "songIndexToRemove"],
    "deletePlaylist": ["id"], "stream": ["id", "maxBitRate", "format", "timeOffset"], "download": ["id"],
    "getCoverArt": ["id", "size"],
}
ENVELOPE = ["f", "callback", "u", "p", "t", "s", "apiKey", "v", "c"]
"""Parameters of every call: sent hostile to ``ping`` only."""
UNDECLARED = "unexpected"
VALUES = ["", " ", "-1", "0", "1e308", "NaN", "-Infinity", str(2**63), f"-{10**30}", "ünïcödé 🎵", "\u202egnp.exe", "\ufeff",
          "\x00", "x" * 10_000, "é" * 3_000, "../../../../etc/passwd", "/etc/passwd", "so-Li4vLi4vZXRjL3Bhc3N3ZA", "so-", "al-!!",
          "ar-%%", "enc:zz", "[1, 2]", '{"a": 1}', "true", "so-" + "A" * 2_000]
LEAKS = ["Traceback", "site-packages", "root:x:0:0"]


@pytest.fixture(scope="module")
def bundle(subsonic_source, tmp_path_factory):
    return copy_bundle(subsonic_source, tmp_path_factory.mktemp("subsonic-hostile"))


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle, subsonic=USERS), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def valid(bundle, client) -> dict[str, dict]:
    """Valid parameters of each method (a playlist made for the playlist methods)."""
    catalog = load_catalog(bundle)
    song, other = (ids.encode(ids.SONG, str(track_id)) for track_id in catalog.track_ids[:2])
    made = client.get("/rest/createPlaylist", params={**token_auth(), "f": "json", "name": "p", "songId": song})
    playlist = made.json()["subsonic-response"]["playlist"]["id"]
    return {"getSong": {"id": song}, "getSimilarSongs": {"id": song}, "getSimilarSongs2": {"id": song},
            "getSonicSimilarTracks": {"id": song}, "findSonicPath": {"startSongId": song, "endSongId": other},
            "getSongsByGenre": {"genre": catalog.labels[0]}, "getAlbumList2": {"type": "byGenre", "genre": catalog.labels[0]},
            "search3": {"query": "a"}, "getPlaylist": {"id": playlist}, "createPlaylist": {"playlistId": playlist, "songId": song},
            "stream": {"id": song}, "download": {"id": song}, "getCoverArt": {"id": song}}


def test_the_catalogue_covers_every_method():
    assert sorted(PARAMETERS) == sorted(METHODS)


def test_hostile_values_in_every_parameter_never_give_a_server_error(client, bundle, valid):
    fields = [(method, name) for method, names in PARAMETERS.items() for name in [*names, UNDECLARED]]
    fields += [("ping", name) for name in ENVELOPE]
    failures, tried = [], 0
    for method, name in fields:
        for index, value in enumerate(VALUES):
            params = {**token_auth(), "f": "json", **valid.get(method, {})}
            if name in ENVELOPE:
                params.pop("f")
            params[name] = value
            url = f"/rest/{method}" + (".view" if index % 3 == 0 else "")
            response = client.post(url, data=params) if index % 2 else client.get(url, params=params)
            tried += 1
            problem = _problem(response, bundle)
            if problem:
                failures.append(f"{method} {name}={value[:30]!r}: {problem}")
    assert failures == [], f"{len(failures)} of {tried}: " + "\n".join(failures[:20])
    assert tried > 2500


def test_ten_thousand_songs_in_one_playlist_are_refused(client, valid):
    song = valid["getSong"]["id"]
    response = client.post("/rest/createPlaylist", data={**token_auth(), "f": "json", "name": "big", "songId": [song] * 10_001})
    assert response.status_code == 200 and response.json()["subsonic-response"]["error"]["code"] == 0


def test_a_form_body_of_too_many_fields_is_a_subsonic_error(client):
    response = client.post("/rest/ping", data={**token_auth(), **{f"field{index}": "x" for index in range(20_000)}})
    assert error_code(response) == 0 and "not a readable form" in response.text


def _problem(response, bundle) -> str | None:
    """What is wrong with an answer to a hostile call, ``None`` when nothing is."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    kind = response.headers.get("content-type", "")
    if kind.startswith(("audio/", "image/")):
        return None if response.status_code in (200, 206) else f"HTTP {response.status_code} with {kind}"
    text = response.text
    if any(marker in text for marker in LEAKS) or str(bundle) in text:
        return "leaks a server path or traceback"
    try:
        if kind.startswith("application/json"):
            response.json()["subsonic-response"]["status"]
        elif kind.startswith("text/xml"):
            assert ET.fromstring(response.content).tag == f"{NAMESPACE}subsonic-response"
        elif not kind.startswith("application/javascript"):
            return f"answered {kind!r}"
    except (ValueError, KeyError, AssertionError, ET.ParseError) as error:
        return f"not a Subsonic answer ({type(error).__name__})"
    return None
