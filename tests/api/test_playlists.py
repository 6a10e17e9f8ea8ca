"""Playlist export: M3U that streams from the server, JSON with the mood fields, safe file names."""

from __future__ import annotations

import datetime as _dt
import json
import math

from hypothesis import given
from hypothesis import strategies as st

from moodscape.api.playlists import JSON_FIELDS, playlist_filename, to_json, to_m3u

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
