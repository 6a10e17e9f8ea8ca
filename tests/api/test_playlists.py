"""Playlist export: M3U that streams from the server or points at the files (absolute, or relative
to a base folder), JSON with the mood fields, safe file names."""

from __future__ import annotations

import datetime as _dt
import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_bundle import point_catalog_at, synthetic_bundle_module

from moodscape.api.catalog import load_catalog
from moodscape.api.playlists import JSON_FIELDS, file_locations, playlist_filename, to_json, to_m3u
from moodscape.errors import DataError

ENTRIES = [
    {"track_id": "track_0001", "label": "Calm", "label_name": "Sunday morning", "valence": 0.7, "arousal": 0.2,
     "duration": 241.6, "tags": ["mood---calm", "genre---ambient"], "audio_url": "/api/v1/tracks/track_0001/audio"},
    {"track_id": "folder/a b#1.mp3", "label": "Dark", "label_name": "Dark", "valence": math.nan, "arousal": None,
     "duration": 10.2, "tags": [], "audio_url": "/api/v1/tracks/folder%2Fa%20b%231.mp3/audio"},
    {"track_id": "mel_only", "label": "Dark", "label_name": "Dark", "valence": 0.1, "arousal": 0.9,
     "duration": 30.0, "tags": [], "audio_url": None},
]


def test_m3u_lists_each_track_with_its_length_name_and_absolute_audio_url():
    text = to_m3u("Evening\nmix", ENTRIES, "http://localhost:8000/")
    assert text.splitlines() == [
        "#EXTM3U",
        "#PLAYLIST:Evening mix",
        "#EXTINF:242,Sunday morning — track_0001",
        "http://localhost:8000/api/v1/tracks/track_0001/audio",
        "#EXTINF:10,Dark — folder/a b#1.mp3",
        "http://localhost:8000/api/v1/tracks/folder%2Fa%20b%231.mp3/audio",
        "# mel_only: no audio on this server",
    ]
    assert text.endswith("\n")


def test_m3u_marks_an_unknown_duration():
    text = to_m3u("x", [{"track_id": "t", "label_name": "Calm", "duration": None}], "http://h")
    assert "#EXTINF:-1,Calm — t" in text.splitlines()


def test_json_playlist_keeps_the_mood_fields_and_is_strict_json():
    playlist = to_json("Evening mix", ENTRIES)
    assert playlist["name"] == "Evening mix"
    created = _dt.datetime.fromisoformat(playlist["created"])
    assert created.utcoffset() == _dt.timedelta(0)
    assert [list(track) for track in playlist["tracks"]] == [list(JSON_FIELDS)] * 3
    assert playlist["tracks"][0]["tags"] == ["mood---calm", "genre---ambient"]
    assert playlist["tracks"][1]["valence"] is None and playlist["tracks"][1]["arousal"] is None
    json.dumps(playlist, allow_nan=False)


def test_filename_is_readable_ascii():
    assert playlist_filename("Café: late / night!", "m3u") == "Cafe-late-night.m3u"
    assert playlist_filename("../../etc/passwd", "json") == "etc-passwd.json"
    assert playlist_filename("🌙🌙", "m3u") == "playlist.m3u"
    assert playlist_filename('a"b', '"json') == "a-b.json"


@given(st.text(max_size=300), st.sampled_from(["m3u", "json"]))
def test_any_name_gives_a_safe_bounded_filename(name, ext):
    filename = playlist_filename(name, ext)
    stem, suffix = filename.rsplit(".", 1)
    assert suffix == ext and 1 <= len(stem) <= 80
    assert all(char.isascii() and (char.isalnum() or char in "._-") for char in filename)
    assert not stem.startswith(".")


def test_m3u_points_at_the_given_files_and_comments_out_the_unplayable():
    lines = to_m3u("x", ENTRIES, "http://h", files=["/music/a.mp3", "b\nc.mp3", None]).splitlines()
    assert lines[2:] == ["#EXTINF:242,Sunday morning — track_0001", "/music/a.mp3",
                         "# folder/a b#1.mp3: its file name holds a line break", "# mel_only: no audio on this server"]


def test_file_locations_are_absolute_or_relative_to_a_base_that_holds_them(tmp_path):
    music = tmp_path / "music"
    (music / "Ana").mkdir(parents=True)
    files = [str(music / "Ana" / "été 1.mp3"), "", str(music / "b.ogg")]
    assert file_locations(files) == [files[0], None, files[2]]
    assert file_locations(files, music) == ["Ana/été 1.mp3", None, "b.ogg"]
    (tmp_path / "link").symlink_to(music)
    assert file_locations(files, tmp_path / "link") == ["Ana/été 1.mp3", None, "b.ogg"]
    with pytest.raises(DataError, match=r"^track b: its file is outside .*/Ana; choose a base folder"):
        file_locations(files, music / "Ana", names=["track a", "track -", "track b"])


@pytest.fixture(scope="module")
def filed(tmp_path_factory):
    """A client over a synthetic bundle whose first two tracks have files under ``music/``, and their ids."""
    from fastapi.testclient import TestClient

    from moodscape.api import create_app

    root = synthetic_bundle_module().write_synthetic_bundle(tmp_path_factory.mktemp("export") / "bundle", 20)
    music = root / "music"
    files = [music / "Ana" / "été 1.ogg", music / "b.flac"]
    for file in files:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_bytes(b"not decoded here")
    catalog = load_catalog(root)
    point_catalog_at(root, [str(file) for file in files])
    with TestClient(create_app(root)) as client:
        yield client, music, catalog.track_ids[:3].tolist()


def export(client, ids, **params):
    return client.post("/api/v1/playlists/export", params={"format": "m3u8", **params}, json={"track_ids": ids})


def test_the_web_export_writes_absolute_or_relative_paths(filed):
    client, music, ids = filed
    absolute = export(client, ids, paths="absolute")
    assert absolute.status_code == 200
    assert absolute.text.splitlines()[3::2] == [str(music / "Ana" / "été 1.ogg"), str(music / "b.flac")]
    assert absolute.text.splitlines()[-1] == f"# {ids[2]}: no audio on this server"
    relative = export(client, ids, paths="relative", relative_to=str(music))
    assert relative.status_code == 200 and relative.text.splitlines()[3:6:2] == ["Ana/été 1.ogg", "b.flac"]
    assert "/api/v1/tracks/" in export(client, ids).text  # the server's URLs stay the default
    as_json = client.post("/api/v1/playlists/export", params={"format": "json", "paths": "absolute"}, json={"track_ids": ids})
    assert as_json.status_code == 200 and str(music) not in as_json.text


def test_the_web_export_refuses_a_bad_base_naming_the_track_not_the_file(filed):
    client, music, ids = filed
    outside = export(client, ids, paths="relative", relative_to=str(music / "Ana"))
    assert outside.status_code == 422 and outside.json()["detail"].startswith(f"track {ids[1]}: its file is outside")
    assert "b.flac" not in outside.text
    for params in ({"paths": "relative"}, {"relative_to": str(music)}, {"paths": "absolute", "relative_to": str(music)},
                   {"paths": "relative", "relative_to": "music"}, {"paths": "relative", "relative_to": "/a\x00b"},
                   {"paths": "relative", "relative_to": "/" + "x" * 5000}, {"paths": "file"}):
        response = export(client, ids, **params)
        assert response.status_code == 422, params
        assert str(music) not in response.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs",)), max_size=300))
def test_no_base_folder_gives_a_server_error(filed, base):
    client, music, ids = filed
    response = export(client, ids, paths="relative", relative_to="/" + base)
    assert response.status_code in (200, 422)
    assert response.status_code == 422 or "/api/v1/tracks/" not in response.text
