"""Issue 16: real Subsonic clients no one here wrote, against ``moodscape serve`` on loopback.

Every test runs twice: on the synthetic bundle of :mod:`api.subsonic_server` (tagged MP3,
FLAC, Ogg and m4a files with covers, whose titles the tests know) and on the demo run's
bundle (``moodscape run`` on the demo corpus: untagged MP3s, so one "Unknown artist" with an
album per label). The sessions find their songs the way a player does (artists, an artist, an
album), search for a word of a title they found, and compare the streamed bytes with the file.

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
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import httpx
import pytest
from serving_bundle import copy_bundle

from api.browser import serve
from api.subsonic_server import API_KEY, FILES, PASSWORD, USERS
from moodscape.api import create_app
from moodscape.api.catalog import load_catalog
from moodscape.api.subsonic import ids

JS = Path(__file__).resolve().parents[1] / "js"
NODE_TIMEOUT_S = 120
SOURCES = {"synthetic": "subsonic_source", "demo": "demo_run"}
"""Each bundle the clients meet, and the fixture of the run it is copied from."""
BROWSED = {"synthetic": ("Bob", "Ana Ñandú"), "demo": (None, None)}
"""The artist whose album the Python and the JavaScript session browse (``None``: the first with one
that has two songs with files), so that on the synthetic bundle they meet different formats."""


@dataclass(frozen=True)
class Server:
    """A live server: its bundle's kind (a key of :data:`SOURCES`), base URL and bundle folder."""

    kind: str
    url: str
    bundle: Path

    @cached_property
    def catalog(self):
        return load_catalog(self.bundle)

    def file_bytes(self, song_id: str) -> bytes:
        """The bytes of the audio file of the song ``song_id``, read from disk."""
        return Path(self.catalog.audio_path[self.catalog.index[ids.decode(ids.SONG, song_id)]]).read_bytes()

    def is_song(self, song_id: str) -> bool:
        return ids.decode(ids.SONG, song_id) in self.catalog.index


@pytest.fixture(scope="module", params=[pytest.param("demo", marks=pytest.mark.slow), "synthetic"])
def server(request, tmp_path_factory) -> Server:
    """The app with :data:`~api.subsonic_server.USERS` on loopback (uvicorn), over a copy of the bundle."""
    source = request.getfixturevalue(SOURCES[request.param])
    bundle = copy_bundle(source, tmp_path_factory.mktemp(f"subsonic-{request.param}"))
    with serve(create_app(bundle, subsonic=USERS)) as url:
        yield Server(request.param, url, bundle)


def connection(base: str, **options):
    """A py-opensonic connection to the server at ``base`` (``http://127.0.0.1:<port>``)."""
    from libopensonic import AsyncConnection

    host, port = base.rsplit(":", 1)
    return AsyncConnection(host, port=int(port), **options)


def session(base: str, scenario, *args, **options):
    """Run ``scenario(connection, *args)`` (a coroutine function) in a fresh py-opensonic session."""
    async def run():
        conn = connection(base, **options)
        try:
            return await scenario(conn, *args)
        finally:
            await conn.cleanup()

    return asyncio.run(run())


def search_word(title: str) -> str:
    """The word of a title a listener would type: its longest, lower-cased."""
    return max(title.split(), key=len).lower()


async def _album_with_files(conn, artist_name: str | None):
    """Browse as a player does: every artist, then (``artist_name``'s, or each in turn) albums until
    one holds two songs with audio files; returns the artists, that album and those songs."""
    artists = [artist for index in (await conn.get_artists()).index for artist in index.artist]
    for artist in artists:
        if artist_name not in (None, artist.name):
            continue
        for listed in (await conn.get_artist(artist.id)).album:
            album = await conn.get_album(listed.id)
            songs = [song for song in album.song if song.suffix]
            if len(songs) >= 2:
                return artists, album, songs
    raise AssertionError(f"no album of {artist_name or 'any artist'} has two songs with audio files")


async def _browse_search_and_recommend(conn, artist_name: str | None) -> dict:
    found = {"ping": await conn.ping(), "extensions": [extension.name for extension in await conn.get_open_subsonic_extensions()]}
    # py-opensonic 10.4.1's get_music_folders iterates the musicFolders object instead of its musicFolder
    # list, so this one call goes through the client's own request function
    folders = await conn._handle_info_res(await conn._do_request("getMusicFolders"))
    found["folders"] = folders["musicFolders"]["musicFolder"]
    artists, album, songs = await _album_with_files(conn, artist_name)
    found["artists"] = [artist.name for artist in artists]
    found["indexes"] = [artist.name for index in (await conn.get_indexes()).index for artist in index.artist]
    found["album"] = (album.name, [song.title for song in album.song])
    first, second = songs[:2]
    song = await conn.get_song(first.id)
    found["song"] = (song.title, song.artist, song.album, song.suffix, song.genre, song.content_type, song.size)
    found["ends"], found["first"] = [first.id, second.id], first.title
    found["albums"] = len(await conn.get_album_list2("alphabeticalByName", size=500))
    found["search"] = (search_word(second.title), [(hit.id, hit.title) for hit in (await conn.search3(search_word(second.title))).song])
    found["random"] = len(await conn.get_random_songs(size=5))
    found["genres"] = [genre.value for genre in await conn.get_genres()]
    found["by genre"] = [hit.genre for hit in await conn.get_songs_by_genre(song.genre, count=500)]
    found["similar"] = [hit.id for hit in await conn.get_similar_songs2(first.id, count=5)]
    matches = await conn.get_sonic_similar_tracks(first.id, count=5)
    found["sonic"] = [(match.entry.id, match.similarity) for match in matches]
    found["path"] = [match.entry.id for match in await conn.find_sonic_path(first.id, second.id, count=6)]
    stream = await conn.stream(first.id, byte_range="bytes=10-59")
    found["stream"] = (stream.status, stream.headers.get("Content-Range"), await stream.read())
    return found


async def _playlists(conn) -> dict:
    songs = await conn.get_random_songs(size=3)
    ids = [song.id for song in songs]
    await conn.create_playlist(name="py mix", song_ids=ids)
    made = next(playlist for playlist in await conn.get_playlists() if playlist.name == "py mix")
    entries = [song.id for song in (await conn.get_playlist(made.id)).entry]
    await conn.create_playlist(playlist_id=made.id, song_ids=ids[:1])
    replaced = [song.id for song in (await conn.get_playlist(made.id)).entry]
    await conn.update_playlist(made.id, name="py mix 2", song_ids_to_add=ids[1:], song_indices_to_remove=[0])
    updated = await conn.get_playlist(made.id)
    await conn.delete_playlist(made.id)
    return {"ids": ids, "entries": entries, "replaced": replaced, "updated": (updated.name, [song.id for song in updated.entry]),
            "after": [p.name for p in await conn.get_playlists()]}


def check_recommendations(server: Server, seed: str, similar: list[str], sonic: list[float], path: list[str], ends: list[str]):
    """Five other catalog songs for the seed; five sonic similarities on [0, 1], most similar first; a
    path of six different songs from one end to the other."""
    assert len(set(similar)) == 5 and seed not in similar and all(server.is_song(song) for song in similar)
    assert len(sonic) == 5 and sonic == sorted(sonic, reverse=True) and all(0 <= s <= 1 for s in sonic)
    assert len(path) == 6 and [path[0], path[-1]] == ends and len(set(path)) == 6 and all(server.is_song(song) for song in path)


def test_py_opensonic_browses_searches_streams_and_gets_sonic_recommendations(server):
    found = session(server.url, _browse_search_and_recommend, BROWSED[server.kind][0], username="ana", password=PASSWORD)
    assert found["ping"] is True and "sonicSimilarity" in found["extensions"]
    assert found["folders"] == [{"id": 1, "name": "moodscape catalog"}]
    assert found["indexes"] == found["artists"]
    title, artist, album, suffix, genre, content_type, size = found["song"]
    assert title == found["first"] and album == found["album"][0] and content_type.startswith("audio/")
    assert genre in found["genres"] and found["by genre"] and set(found["by genre"]) == {genre}
    word, hits = found["search"]
    assert found["ends"][1] in [song for song, _ in hits] and found["random"] == 5 and found["albums"] >= 2
    similar = found["similar"]
    check_recommendations(server, found["ends"][0], similar, [score for _, score in found["sonic"]], found["path"], found["ends"])
    status, content_range, data = found["stream"]
    file = server.file_bytes(found["ends"][0])
    assert (status, content_range, data) == (206, f"bytes 10-59/{len(file)}", file[10:60]) and size == len(file)
    if server.kind == "synthetic":
        assert found["artists"] == ["Ana Ñandú", "Bob", "Unknown artist"]
        assert found["album"] == ("Nuit", ["Minuit", "Aube"]) and (title, artist, suffix) == ("Minuit", "Bob", "ogg")
        assert [title for _, title in hits] == ["Aube"] and len(found["genres"]) > 8
    else:  # untagged files: one unknown artist, an album per label, titled by track id
        assert found["artists"] == ["Unknown artist"] and (artist, suffix) == ("Unknown artist", "mp3")
        assert album == genre and all(word in title.lower() for _, title in hits)


def test_py_opensonic_manages_a_playlist(server):
    found = session(server.url, _playlists, username="ana", password=PASSWORD)
    assert found["entries"] == found["ids"] and found["replaced"] == found["ids"][:1]
    assert found["updated"] == ("py mix 2", found["ids"][1:])
    assert "py mix" not in found["after"]


def test_py_opensonic_by_get_with_the_hex_password_and_by_api_key(server):
    async def scenario(conn):
        return await conn.ping(), len((await conn.search3("")).song)

    assert session(server.url, scenario, username="ana", password=PASSWORD, legacy_auth=True, use_get=True) == (True, 20)
    assert session(server.url, scenario, api_key=API_KEY) == (True, 20)


def test_py_opensonic_gets_the_subsonic_errors_for_a_wrong_password_and_unknown_ids(server):
    from libopensonic import errors

    async def ping(conn):
        return await conn.ping()

    with pytest.raises(errors.CredentialError, match="Wrong username or password"):
        session(server.url, ping, username="ana", password="not-it")

    async def unknown_song(conn):
        return await conn.get_song("so-bm8tc3VjaA")

    with pytest.raises(errors.DataNotFoundError):
        session(server.url, unknown_song, username="ana", password=PASSWORD)
    bare = httpx.post(f"{server.url}/rest/ping.view", data={"f": "json", "v": "1.16.1", "c": "test"})
    assert bare.status_code == 200 and bare.json()["subsonic-response"]["error"]["code"] == 10


def node_session(base: str, artist: str | None) -> dict:
    """What ``tests/js/subsonic_session.mjs`` printed; skips when node or the npm package is missing."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (make test installs Debian's nodejs when run as root)")
    if not (JS / "node_modules" / "subsonic-api").is_dir():
        pytest.skip(f"the npm package subsonic-api is not installed: npm ci --prefix {JS} (make test does it)")
    result = subprocess.run([node, str(JS / "subsonic_session.mjs"), base, "ana", PASSWORD, API_KEY, artist or ""],
                            capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_the_javascript_client_subsonic_api_does_the_same(server):
    found = node_session(server.url, BROWSED[server.kind][1])
    password, key, refused = found["password"], found["apiKey"], found["refused"]
    ends = password["sonicPathEnds"]
    assert password["ping"] == {"status": "ok", "openSubsonic": True, "type": "moodscape"}
    assert "sonicSimilarity" in password["extensions"] and password["musicFolders"] == 1
    assert password["song"]["id"] == ends[0] and password["song"]["title"] in password["albumSongs"]
    assert set(password["song"]["moodscape"]) == {"label", "labelName", "probability", "valence", "arousal"}
    assert ends[1] in password["search"]["ids"] and password["genres"] > 0 and password["albumList"] >= 2
    assert password["randomArousal"] and all(arousal >= 0.6 for arousal in password["randomArousal"])
    check_recommendations(server, ends[0], password["similar"], password["sonicSimilar"], password["sonicPath"], ends)
    file = server.file_bytes(ends[0])
    assert password["stream"] == {"http": 206, "contentRange": f"bytes 0-99/{len(file)}", "hex": file[:100].hex()}
    assert password["created"]["name"] == "JS mix" and password["created"]["songs"] == ends and password["playlist"] == 2
    assert "JS mix" in password["playlists"] and "JS mix" not in password["playlistsAfter"]
    assert password["updated"] == {"name": "JS mix 2", "songs": [ends[1], ends[0]]}
    assert password["deleted"]["status"] == "ok"
    assert key["ping"]["status"] == "ok" and key["stream"]["http"] == 206
    assert key["stream"]["hex"] == server.file_bytes(key["streamed"])[:100].hex()
    assert refused["wrongPassword"] == {"http": 200, "error": {"code": 40, "message": "Wrong username or password"}}
    assert refused["missingAuth"]["http"] == 200 and refused["missingAuth"]["error"]["code"] == 10
    if server.kind == "synthetic":
        assert password["artists"] == ["Ana Ñandú", "Bob", "Unknown artist"] and password["artistAlbums"] == ["Routes"]
        assert password["albumSongs"] == [title for _, title, *_ in FILES[:2]] and password["song"]["suffix"] == "mp3"
        assert password["search"]["titles"] == ["Solo"] and password["genres"] > 8 and password["albumList"] >= 3
        assert password["cover"]["http"] == 200 and password["cover"]["type"] == "image/png"
    else:  # the demo's MP3s hold no picture: the Subsonic "not found", as a player expects it
        assert password["artists"] == ["Unknown artist"] and password["song"]["suffix"] == "mp3"
        assert password["cover"]["http"] == 200 and password["cover"]["error"]["code"] == 70
