"""Issue 16: real Subsonic clients no one here wrote, against ``moodscape serve`` on loopback.

- ``py-opensonic`` (PyPI): a token session over form POST (its default), a GET session with
  the hex password, an API-key session; browse, search, stream a range, similar and sonic
  calls, a sonic path, playlists; a wrong password and missing credentials.
- ``subsonic-api`` (npm), run with node: the same calls from JavaScript
  (``tests/js/subsonic_session.mjs``); this test checks the JSON it prints. It skips, saying
  why, when node or the package is missing (``make test`` installs both).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from serving_bundle import copy_bundle

from api.browser import serve
from api.subsonic_server import API_KEY, FILES, PASSWORD, USERS
from moodscape.api import create_app

JS = Path(__file__).resolve().parents[1] / "js"
NODE_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def base(subsonic_source, tmp_path_factory):
    bundle = copy_bundle(subsonic_source, tmp_path_factory.mktemp("subsonic-clients"))
    with serve(create_app(bundle, subsonic=USERS)) as url:
        yield url


def connection(base: str, **options):
    """A py-opensonic connection to the server at ``base`` (``http://127.0.0.1:<port>``)."""
    from libopensonic import AsyncConnection

    host, port = base.rsplit(":", 1)
    return AsyncConnection(host, port=int(port), **options)


def session(base: str, scenario, **options):
    """Run ``scenario(connection)`` (a coroutine function) in a fresh py-opensonic session."""
    async def run():
        conn = connection(base, **options)
        try:
            return await scenario(conn)
        finally:
            await conn.cleanup()

    return asyncio.run(run())


async def _browse_search_and_recommend(conn) -> dict:
    found = {"ping": await conn.ping(), "extensions": [extension.name for extension in await conn.get_open_subsonic_extensions()]}
    # py-opensonic 10.4.1's get_music_folders iterates the musicFolders object instead of its musicFolder
    # list, so this one call goes through the client's own request function
    folders = await conn._handle_info_res(await conn._do_request("getMusicFolders"))
    found["folders"] = folders["musicFolders"]["musicFolder"]
    artists = await conn.get_artists()
    found["artists"] = [artist.name for index in artists.index for artist in index.artist]
    bob = next(artist for index in artists.index for artist in index.artist if artist.name == "Bob")
    album = (await conn.get_artist(bob.id)).album[0]
    songs = (await conn.get_album(album.id)).song
    found["album"] = (album.name, [song.title for song in songs])
    first = await conn.get_song(songs[0].id)
    found["song"] = (first.title, first.artist, first.album, first.suffix, first.genre)
    found["albums"] = len(await conn.get_album_list2("alphabeticalByName", size=500))
    found["search"] = [song.title for song in (await conn.search3("aube")).song]
    found["random"] = len(await conn.get_random_songs(size=5))
    found["genres"] = len(await conn.get_genres())
    found["by genre"] = len(await conn.get_songs_by_genre(first.genre, count=500))
    found["similar"] = [song.id for song in await conn.get_similar_songs2(songs[0].id, count=5)]
    matches = await conn.get_sonic_similar_tracks(songs[0].id, count=5)
    found["sonic"] = [(match.entry.id, match.similarity) for match in matches]
    path = await conn.find_sonic_path(songs[0].id, songs[1].id, count=6)
    found["path"] = ([match.entry.id for match in path], [song.id for song in songs])
    stream = await conn.stream(songs[0].id, byte_range="bytes=10-59")
    found["stream"] = (stream.status, stream.headers.get("Content-Range"), len(await stream.read()))
    return found


async def _playlists(conn) -> dict:
    songs = await conn.get_random_songs(size=3)
    ids = [song.id for song in songs]
    await conn.create_playlist(name="py mix", song_ids=ids)
    made = next(playlist for playlist in await conn.get_playlists() if playlist.name == "py mix")
    entries = [song.id for song in (await conn.get_playlist(made.id)).entry]
    await conn.create_playlist(playlist_id=made.id, song_ids=ids[:1])
    replaced = [song.id for song in (await conn.get_playlist(made.id)).entry]
    await conn.delete_playlist(made.id)
    return {"ids": ids, "entries": entries, "replaced": replaced, "after": [p.name for p in await conn.get_playlists()]}


def test_py_opensonic_browses_searches_streams_and_gets_sonic_recommendations(base):
    found = session(base, _browse_search_and_recommend, username="ana", password=PASSWORD)
    assert found["ping"] is True and "sonicSimilarity" in found["extensions"]
    assert found["folders"] == [{"id": 1, "name": "moodscape catalog"}]
    assert found["artists"] == ["Ana Ñandú", "Bob", "Unknown artist"]
    assert found["album"] == ("Nuit", ["Minuit", "Aube"])
    assert found["song"][:4] == ("Minuit", "Bob", "Nuit", "ogg")
    assert found["search"] == ["Aube"] and found["random"] == 5 and found["genres"] > 8 and found["by genre"] >= 1
    assert len(found["similar"]) == 5
    similarity = [score for _, score in found["sonic"]]
    assert len(similarity) == 5 and similarity == sorted(similarity, reverse=True) and all(0 <= s <= 1 for s in similarity)
    path, album = found["path"]
    assert len(path) == 6 and path[0] == album[0] and path[-1] == album[1] and len(set(path)) == 6
    status, content_range, length = found["stream"]
    assert (status, length) == (206, 50) and content_range.startswith("bytes 10-59/")


def test_py_opensonic_manages_a_playlist(base):
    found = session(base, _playlists, username="ana", password=PASSWORD)
    assert found["entries"] == found["ids"] and found["replaced"] == found["ids"][:1]
    assert "py mix" not in found["after"]


def test_py_opensonic_by_get_with_the_hex_password_and_by_api_key(base):
    async def scenario(conn):
        return await conn.ping(), len((await conn.search3("")).song)

    assert session(base, scenario, username="ana", password=PASSWORD, legacy_auth=True, use_get=True) == (True, 20)
    assert session(base, scenario, api_key=API_KEY) == (True, 20)


def test_py_opensonic_gets_the_subsonic_errors_for_a_wrong_password_and_unknown_ids(base):
    from libopensonic import errors

    async def ping(conn):
        return await conn.ping()

    with pytest.raises(errors.CredentialError, match="Wrong username or password"):
        session(base, ping, username="ana", password="not-it")

    async def unknown_song(conn):
        return await conn.get_song("so-bm8tc3VjaA")

    with pytest.raises(errors.DataNotFoundError):
        session(base, unknown_song, username="ana", password=PASSWORD)
    bare = httpx.post(f"{base}/rest/ping.view", data={"f": "json", "v": "1.16.1", "c": "test"})
    assert bare.status_code == 200 and bare.json()["subsonic-response"]["error"]["code"] == 10


def node_session(base: str) -> dict:
    """What ``tests/js/subsonic_session.mjs`` printed; skips when node or the npm package is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make test installs Debian's nodejs when run as root)")
    if not (JS / "node_modules" / "subsonic-api").is_dir():
        pytest.skip(f"the npm package subsonic-api is not installed: npm ci --prefix {JS} (make test does it)")
    result = subprocess.run([node, str(JS / "subsonic_session.mjs"), base, "ana", PASSWORD, API_KEY],
                            capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_javascript_client_subsonic_api_does_the_same(base):
    found = node_session(base)
    password, key, refused = found["password"], found["apiKey"], found["refused"]
    assert password["ping"] == {"status": "ok", "openSubsonic": True, "type": "moodscape"}
    assert "sonicSimilarity" in password["extensions"] and password["musicFolders"] == 1
    assert password["artists"] == ["Ana Ñandú", "Bob", "Unknown artist"]
    assert password["artistAlbums"] == ["Routes"] and password["albumSongs"] == [title for _, title, *_ in FILES[:2]]
    assert password["song"]["title"] == "Été indien" and password["song"]["suffix"] == "mp3"
    assert set(password["song"]["moodscape"]) == {"label", "labelName", "probability", "valence", "arousal"}
    assert password["search"] == ["Minuit"] and password["genres"] > 8 and password["similar"] == 5
    assert password["randomArousal"] and all(arousal >= 0.6 for arousal in password["randomArousal"])
    sonic = password["sonicSimilar"]
    assert len(sonic) == 5 and sonic == sorted(sonic, reverse=True) and all(0 <= s <= 1 for s in sonic)
    path, ends = password["sonicPath"], password["sonicPathEnds"]
    assert len(path) == 6 and [path[0], path[-1]] == ends and len(set(path)) == 6
    assert password["stream"] == {"http": 206, "contentRange": password["stream"]["contentRange"], "bytes": 100}
    assert password["cover"]["http"] == 200 and password["cover"]["type"] == "image/png"
    assert password["created"]["name"] == "JS mix" and password["created"]["songs"] == ends and password["playlist"] == 2
    assert "JS mix" in password["playlists"] and "JS mix" not in password["playlistsAfter"]
    assert password["deleted"]["status"] == "ok" and password["albumList"] >= 3
    assert key["ping"]["status"] == "ok" and key["stream"]["http"] == 206 and key["stream"]["bytes"] == 100
    assert refused["wrongPassword"] == {"http": 200, "error": {"code": 40, "message": "Wrong username or password"}}
    assert refused["missingAuth"]["http"] == 200 and refused["missingAuth"]["error"]["code"] == 10
