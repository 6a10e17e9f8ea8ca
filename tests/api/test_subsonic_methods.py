"""Issue 16: what the Subsonic methods answer — artists and albums from the files' tags, the
``moodscape`` object, genres, search, mood filters, similar songs, the sonic path, streaming
with ranges, embedded cover art and playlists — on a synthetic bundle with tagged audio files."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from serving_bundle import copy_bundle

from api.browser import serve
from api.subsonic_checks import call, error_code, ok, token_auth
from api.subsonic_server import API_KEY, FILES, N_TRACKS, USERS
from moodscape.api import create_app
from moodscape.api.catalog import load_catalog
from moodscape.api.subsonic import ids

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


@pytest.fixture(scope="module")
def bundle(subsonic_source, tmp_path_factory):
    return copy_bundle(subsonic_source, tmp_path_factory.mktemp("subsonic-methods"))


@pytest.fixture(scope="module")
def base(bundle):
    with serve(create_app(bundle, subsonic=USERS)) as url:
        yield url


@pytest.fixture(scope="module")
def catalog(bundle):
    return load_catalog(bundle)


@pytest.fixture(scope="module")
def songs(base) -> list[dict]:
    """Every song entry, in catalog order."""
    return ok(call(base, "search3", {"query": "", "songCount": 1000}))["searchResult3"]["song"]


def song_id(catalog, row: int) -> str:
    return ids.encode(ids.SONG, str(catalog.track_ids[row]))


def test_ids_are_url_safe_and_the_same_after_a_restart(base, bundle, songs):
    everything = ok(call(base, "search3", {"query": "", "artistCount": 1000, "albumCount": 1000, "songCount": 1000}))["searchResult3"]
    found = [item["id"] for kind in ("artist", "album", "song") for item in everything[kind]]
    assert len(found) == len(set(found)) and len(songs) == N_TRACKS
    assert all(URL_SAFE.match(identifier) for identifier in found), found
    with serve(create_app(bundle, subsonic=USERS)) as again:
        repeated = ok(call(again, "search3", {"query": "", "artistCount": 1000, "albumCount": 1000, "songCount": 1000}))["searchResult3"]
    assert [item["id"] for kind in ("artist", "album", "song") for item in repeated[kind]] == found


def test_artists_and_albums_come_from_the_tags_and_untagged_tracks_group_by_label(base, catalog):
    artists = {artist["name"]: artist for index in ok(call(base, "getArtists"))["artists"]["index"] for artist in index["artist"]}
    assert list(artists) == ["Ana Ñandú", "Bob", "Unknown artist"]
    routes = ok(call(base, "getArtist", {"id": artists["Ana Ñandú"]["id"]}))["artist"]["album"]
    assert [album["name"] for album in routes] == ["Routes"]
    album = ok(call(base, "getAlbum", {"id": routes[0]["id"]}))["album"]
    assert [song["title"] for song in album["song"]] == ["Été indien", "Solo"] and album["songCount"] == 2
    unknown = ok(call(base, "getArtist", {"id": artists["Unknown artist"]["id"]}))["artist"]["album"]
    untagged = catalog.label_of[len(FILES):]
    assert sorted(album["name"] for album in unknown) == sorted({catalog.labels[label] for label in untagged})
    assert sum(album["songCount"] for album in unknown) == N_TRACKS - len(FILES)
    indexes = ok(call(base, "getIndexes"))["indexes"]
    assert [index["name"] for index in indexes["index"]] == ["A", "B", "U"]
    assert "index" not in ok(call(base, "getIndexes", {"ifModifiedSince": indexes["lastModified"]}))["indexes"]


def test_a_song_carries_its_file_facts_and_its_mood(base, catalog, songs):
    first = ok(call(base, "getSong", {"id": song_id(catalog, 0)}))["song"]
    label = catalog.labels[catalog.label_of[0]]
    assert {key: first[key] for key in ("title", "artist", "album", "suffix", "contentType", "genre", "isDir")} == {
        "title": "Été indien", "artist": "Ana Ñandú", "album": "Routes", "suffix": "mp3", "contentType": "audio/mpeg",
        "genre": label, "isDir": False}
    assert first["size"] == Path(catalog.audio_path[0]).stat().st_size
    assert first["path"] == "Ana Ñandú/Routes/Été indien.mp3"  # virtual: never the server's file system
    assert first["duration"] == round(catalog.duration[0])
    assert first["moodscape"] == {"label": label, "labelName": label,
                                  "probability": pytest.approx(float(catalog.probabilities[0, catalog.label_of[0]]), abs=1e-4),
                                  "valence": pytest.approx(float(catalog.valence[0]), abs=1e-4),
                                  "arousal": pytest.approx(float(catalog.arousal[0]), abs=1e-4)}
    assert first["moods"] == [label] and first["genres"][0] == {"name": label}
    assert [genre["name"] for genre in first["genres"][1:]] == catalog.tags_of(0)
    untagged = songs[-1]
    assert untagged["title"] == catalog.track_ids[-1] and "suffix" not in untagged and "coverArt" not in untagged


def test_genres_are_the_labels_then_the_original_tags(base, catalog):
    genres = ok(call(base, "getGenres"))["genres"]["genre"]
    names = [genre["value"] for genre in genres]
    assert names[: len(catalog.labels)] == catalog.labels
    assert set(names[len(catalog.labels):]) == set(catalog.tag_vocabulary) - set(catalog.labels)
    counts = {genre["value"]: genre["songCount"] for genre in genres}
    label = catalog.labels[int(catalog.label_of[0])]
    assert counts[label] == int(np.sum(catalog.label_of == catalog.label_of[0]))
    by_label = ok(call(base, "getSongsByGenre", {"genre": label, "count": 500}))["songsByGenre"]["song"]
    assert len(by_label) == counts[label] and {song["genre"] for song in by_label} == {label}
    tag = catalog.tags_of(0)[0]
    by_tag = ok(call(base, "getSongsByGenre", {"genre": tag, "count": 500}))["songsByGenre"]["song"]
    assert len(by_tag) == counts[tag] and all(tag in [g["name"] for g in song["genres"]] for song in by_tag)
    assert ok(call(base, "getSongsByGenre", {"genre": "no such genre"}))["songsByGenre"]["song"] == []


def test_search_matches_titles_artists_albums_and_labels(base, catalog):
    found = ok(call(base, "search3", {"query": "ÑANDÚ"}))["searchResult3"]
    assert [artist["name"] for artist in found["artist"]] == ["Ana Ñandú"]
    assert [song["title"] for song in found["song"]] == ["Été indien", "Solo"]
    assert [album["name"] for album in ok(call(base, "search3", {"query": "nuit"}))["searchResult3"]["album"]] == ["Nuit"]
    label = catalog.labels[0]
    by_label = ok(call(base, "search3", {"query": label, "songCount": 500}))["searchResult3"]["song"]
    assert {song["genre"] for song in by_label} >= {label}
    paged = ok(call(base, "search3", {"query": '""', "songCount": 7, "songOffset": 35}))["searchResult3"]["song"]
    assert [song["id"] for song in paged] == [song_id(catalog, row) for row in range(35, N_TRACKS)]


def test_random_songs_keep_within_the_mood_parameters(base, catalog):
    calm = ok(call(base, "getRandomSongs", {"size": 500, "maxArousal": 0.4, "minValence": 0.3}))["randomSongs"]["song"]
    expected = np.flatnonzero((catalog.arousal <= 0.4) & (catalog.valence >= 0.3))
    assert sorted(song["id"] for song in calm) == sorted(song_id(catalog, row) for row in expected)
    label = catalog.labels[1]
    labelled = ok(call(base, "getRandomSongs", {"size": 3, "label": label}))["randomSongs"]["song"]
    assert labelled and {song["moodscape"]["label"] for song in labelled} == {label}
    assert len(ok(call(base, "getRandomSongs", {"size": 4}))["randomSongs"]["song"]) == 4
    assert error_code(call(base, "getRandomSongs", {"minArousal": 0.8, "maxArousal": 0.2})) == 0
    assert error_code(call(base, "getRandomSongs", {"minArousal": 1.5})) == 0
    assert error_code(call(base, "getRandomSongs", {"label": "no such label"})) == 70
    assert error_code(call(base, "getRandomSongs", {"musicFolderId": 7})) == 70


def test_similar_songs_of_a_song_an_album_or_an_artist_within_the_mood_parameters(base, catalog, songs):
    seed = song_id(catalog, 0)
    similar = ok(call(base, "getSimilarSongs2", {"id": seed, "count": 10}))["similarSongs2"]["song"]
    assert len(similar) == 10 and seed not in [song["id"] for song in similar]
    lively = ok(call(base, "getSimilarSongs2", {"id": seed, "count": 50, "minArousal": 0.5}))["similarSongs2"]["song"]
    assert lively and all(song["moodscape"]["arousal"] >= 0.5 for song in lively)
    assert len(lively) == int(np.sum(catalog.arousal[1:] >= 0.5))
    assert ok(call(base, "getSimilarSongs2", {"id": songs[0]["albumId"]}))["similarSongs2"]["song"]
    assert ok(call(base, "getSimilarSongs", {"id": songs[0]["artistId"], "count": 3}))["similarSongs"]["song"]
    assert error_code(call(base, "getSimilarSongs2", {"id": "al-eA"})) == 70


def test_sonic_similar_tracks_are_ranked_by_embedding_similarity_on_the_unit_interval(base, catalog):
    matches = ok(call(base, "getSonicSimilarTracks", {"id": song_id(catalog, 2), "count": 8}))["sonicMatch"]
    similarity = [match["similarity"] for match in matches]
    assert len(matches) == 8 and similarity == sorted(similarity, reverse=True) and all(0 <= s <= 1 for s in similarity)
    cosine = catalog.embeddings @ catalog.embeddings[2]
    cosine[2] = -np.inf
    best = np.argsort(-cosine)[:8]
    assert [match["entry"]["id"] for match in matches] == [song_id(catalog, row) for row in best]
    assert similarity == pytest.approx(((1 + cosine[best]) / 2).tolist(), abs=1e-5)


@pytest.mark.parametrize("count", [2, 5, 25])
def test_the_sonic_path_starts_and_ends_with_the_given_songs(base, catalog, count):
    start, end = song_id(catalog, 0), song_id(catalog, 3)
    path = ok(call(base, "findSonicPath", {"startSongId": start, "endSongId": end, "count": count}))["sonicMatch"]
    entries = [match["entry"]["id"] for match in path]
    assert len(entries) == count and entries[0] == start and entries[-1] == end and len(set(entries)) == count
    assert path[0]["similarity"] == 1.0 and all(0 <= match["similarity"] <= 1 for match in path)
    rows = [catalog.index[ids.decode(ids.SONG, entry)] for entry in entries]
    expected = (1 + catalog.embeddings[rows] @ catalog.embeddings[rows[0]]) / 2
    assert [match["similarity"] for match in path][1:] == pytest.approx(expected[1:].tolist(), abs=1e-5)
    if count == 5:  # the middle songs lie nearer the line between the two ends than a random pick does
        line = catalog.embeddings[rows[0]] + catalog.embeddings[rows[-1]]
        assert np.mean(catalog.embeddings[rows[1:-1]] @ line) > np.mean(catalog.embeddings @ line)


def test_a_path_from_a_song_to_itself_is_that_song(base, catalog):
    path = ok(call(base, "findSonicPath", {"startSongId": song_id(catalog, 1), "endSongId": song_id(catalog, 1)}))["sonicMatch"]
    assert [match["entry"]["id"] for match in path] == [song_id(catalog, 1)]
    assert len(ok(call(base, "findSonicPath", {"startSongId": song_id(catalog, 1), "endSongId": song_id(catalog, 2),
                                                "count": 1000}))["sonicMatch"]) == N_TRACKS


@pytest.mark.parametrize("post", [False, True])
def test_stream_serves_the_catalog_file_and_its_byte_ranges(base, catalog, post):
    audio = Path(catalog.audio_path[1]).read_bytes()
    whole = call(base, "stream", {"id": song_id(catalog, 1)}, fmt="", post=post)
    assert whole.status_code == 200 and whole.content == audio and whole.headers["content-type"] == "audio/flac"
    part = call(base, "stream.view", {"id": song_id(catalog, 1)}, fmt="", post=post, headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == audio[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(audio)}"
    assert error_code(call(base, "stream", {"id": song_id(catalog, N_TRACKS - 1)}, post=post)) == 70  # no audio file
    assert error_code(call(base, "download", {"id": "so-Li4vLi4vZXRjL3Bhc3N3ZA"}, fmt="")) == 70  # ../../etc/passwd


def test_cover_art_is_the_embedded_picture_scaled_on_request(base, catalog, songs):
    from PIL import Image

    for row, media_type in ((0, "image/png"), (1, "image/jpeg")):
        cover = call(base, "getCoverArt", {"id": song_id(catalog, row)}, fmt="")
        assert cover.status_code == 200 and cover.headers["content-type"] == media_type
        assert Image.open(io.BytesIO(cover.content)).size == (64, 64)
    small = call(base, "getCoverArt", {"id": song_id(catalog, 0), "size": 16}, fmt="")
    assert Image.open(io.BytesIO(small.content)).size == (16, 16)
    album = call(base, "getCoverArt", {"id": songs[0]["albumId"]}, fmt="")
    assert album.status_code == 200 and album.headers["content-type"] == "image/png"
    assert error_code(call(base, "getCoverArt", {"id": song_id(catalog, 2)})) == 70  # an Ogg file without a picture
    assert error_code(call(base, "getCoverArt", {"id": song_id(catalog, N_TRACKS - 1)})) == 70  # no file at all


def test_playlists_are_stored_and_each_user_changes_only_their_own(base, bundle, catalog):
    ana, bob = token_auth(), {"apiKey": API_KEY}
    first = [song_id(catalog, row) for row in (3, 0, 3, 7)]
    made = ok(call(base, "createPlaylist", {"name": "Soirée", "songId": first}, post=True))["playlist"]
    assert made["owner"] == "ana" and made["name"] == "Soirée" and [song["id"] for song in made["entry"]] == first
    assert made["songCount"] == 4 and made["duration"] == round(sum(catalog.duration[[3, 0, 3, 7]]))
    assert [playlist["name"] for playlist in ok(call(base, "getPlaylists"))["playlists"]["playlist"]] == ["Soirée"]
    assert ok(call(base, "getPlaylists", auth=bob))["playlists"].get("playlist", []) == []
    assert error_code(call(base, "getPlaylist", {"id": made["id"]}, auth=bob)) == 70
    assert error_code(call(base, "deletePlaylist", {"id": made["id"]}, auth=bob)) == 70
    assert error_code(call(base, "getPlaylists", {"username": "bob"})) == 50
    assert ok(call(base, "updatePlaylist", {"playlistId": made["id"], "name": "Nuit", "public": "true",
                                            "songIndexToRemove": ["0", "2"], "songIdToAdd": first[3]}))
    changed = ok(call(base, "getPlaylist", {"id": made["id"]}, auth=bob))["playlist"]  # public now: bob sees it
    assert changed["name"] == "Nuit" and [song["id"] for song in changed["entry"]] == [first[1], first[3], first[3]]
    assert error_code(call(base, "updatePlaylist", {"playlistId": made["id"], "name": "x"}, auth=bob)) == 50
    for bad in ({"songIndexToRemove": "3"}, {"songIndexToRemove": "-1"}, {"public": "yes"}, {"songIdToAdd": "so-bm9uZQ"}):
        assert error_code(call(base, "updatePlaylist", {"playlistId": made["id"], **bad})) in (0, 70), bad
    assert [song["id"] for song in ok(call(base, "getPlaylist", {"id": made["id"]}))["playlist"]["entry"]] == [first[1], first[3], first[3]]
    updated = ok(call(base, "createPlaylist", {"playlistId": made["id"], "songId": first[:1]}))["playlist"]
    assert [song["id"] for song in updated["entry"]] == first[:1] and updated["id"] == made["id"]
    with serve(create_app(bundle, subsonic=USERS)) as again:  # kept in the bundle's database
        assert [song["id"] for song in ok(call(again, "getPlaylist", {"id": made["id"]}, auth=ana))["playlist"]["entry"]] == first[:1]
    assert error_code(call(base, "createPlaylist", {"name": "x", "songId": "so-bm9uZQ"})) == 70
    assert error_code(call(base, "createPlaylist", {"name": "x" * 201})) == 0
    assert error_code(call(base, "createPlaylist", {})) == 10
    assert ok(call(base, "deletePlaylist", {"id": made["id"]}))
    assert error_code(call(base, "getPlaylist", {"id": made["id"]})) == 70


def test_album_lists_by_name_artist_genre_and_the_empty_ones(base, catalog):
    by_name = ok(call(base, "getAlbumList2", {"type": "alphabeticalByName", "size": 500}))["albumList2"]["album"]
    names = [album["name"] for album in by_name]
    assert names == sorted(names, key=str.casefold)
    by_artist = ok(call(base, "getAlbumList2", {"type": "alphabeticalByArtist", "size": 500}))["albumList2"]["album"]
    assert [album["artist"] for album in by_artist][:3] == ["Ana Ñandú", "Bob", "Unknown artist"]
    assert len(ok(call(base, "getAlbumList2", {"type": "random", "size": 2, "offset": 1}))["albumList2"]["album"]) == 2
    label = catalog.labels[int(catalog.label_of[0])]
    by_genre = ok(call(base, "getAlbumList2", {"type": "byGenre", "genre": label, "size": 500}))["albumList2"]["album"]
    assert "Routes" in [album["name"] for album in by_genre]
    for kind in ("starred", "frequent", "recent", "highest"):
        assert ok(call(base, "getAlbumList2", {"type": kind}))["albumList2"].get("album", []) == []
    assert error_code(call(base, "getAlbumList2", {"type": "sideways"})) == 0
    assert error_code(call(base, "getAlbumList2", {})) == 10
