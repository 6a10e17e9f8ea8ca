"""Issue 15, tags from the files: titles, artists, genres, moods written with mutagen into
Ogg Vorbis, Opus, FLAC, MP3, WAV, AIFF and m4a files reach the folder's track table, and
``tags_from`` turns the chosen fields into original tags."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from audio_formats import TAG_WRITERS, write_audio, write_id3, write_tags

from moodscape.config import Settings
from moodscape.datasets.embedded_tags import FIELDS, read_embedded_tags, split_values, tags_from_fields
from moodscape.datasets.folder import load_folder
from moodscape.errors import ConfigError
from moodscape.pipeline.collection import inference_tracks, load_collection
from moodscape.pipeline.infer import catalog_table

SR = 22050
TAGS = {"title": "Été indien", "artist": "Ana Ñandú", "album": "Routes", "genre": "Synth-Pop / Rock",
        "mood": "Calm; Warm", "style": "Chiptune", "bpm": 96.0}
"""What each file carries; the table expects the same (values as written)."""


def tone(seconds: float = 1.5, frequency: float = 330.0) -> np.ndarray:
    time = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32)


def tagged_file(path: Path, tags: dict = TAGS, frequency: float = 330.0) -> Path:
    return write_tags(write_audio(path, tone(frequency=frequency), SR), tags)


def expected(tags: dict) -> dict:
    """The table's values: ID3 stores genres and moods as lists, read back joined by "; "."""
    return {**tags, "genre": tags["genre"].replace(" / ", "; ")}


@pytest.mark.parametrize("extension", sorted(TAG_WRITERS))
def test_each_tagging_system_gives_title_artist_album_genre_mood_style_and_bpm(tmp_path, extension):
    path = tagged_file(tmp_path / f"song.{extension}")
    tags = read_embedded_tags(path)
    want = expected(TAGS) if TAG_WRITERS[extension] is write_id3 else TAGS
    assert tags == want


def test_a_file_named_like_another_format_is_read_by_its_content(tmp_path):
    """mutagen picks its parser by the extension first: a tagged WAV named ``.flac`` failed as "not a valid FLAC file"."""
    wav = tagged_file(tmp_path / "song.wav")
    misnamed = wav.rename(tmp_path / "song.flac")
    assert read_embedded_tags(misnamed) == expected(TAGS)


def test_a_file_without_tags_has_empty_fields(tmp_path):
    tags = read_embedded_tags(write_audio(tmp_path / "plain.flac", tone(), SR))
    assert {key: value for key, value in tags.items() if key != "bpm"} == dict.fromkeys(FIELDS[:-1], "")
    assert math.isnan(tags["bpm"])


def test_values_split_on_the_usual_separators_and_are_normalised():
    assert split_values(" Rock/Pop ; rock |Synth-Pop\x00ambient,, ") == ["rock", "pop", "synth-pop", "ambient"]
    assert tags_from_fields({"genre": "Rock; Jazz", "mood": "JAZZ|calm", "style": ""}, ["mood", "genre", "style"]) == ["jazz", "calm", "rock"]


@pytest.fixture
def tagged_folder(tmp_path) -> Path:
    """A file of every tagging system, names with non-ASCII letters and a trailing space among them."""
    music = tmp_path / "music"
    tagged_file(music / "vorbis.ogg")
    tagged_file(music / "Café — été.flac", {**TAGS, "title": "Café", "genre": "Jazz", "mood": "Warm"}, 440.0)
    tagged_file(music / "trail.mp3 ", {**TAGS, "title": "Trail", "genre": "Rock|Blues", "mood": "Dark"}, 550.0)
    tagged_file(music / "apple.m4a", {**TAGS, "title": "Apple", "genre": "Pop", "mood": "Happy; Warm"}, 660.0)
    write_audio(music / "untagged.wav", tone(frequency=770.0), SR)
    return music


def test_the_track_table_holds_every_files_tags(tagged_folder):
    tracks, problems = load_folder(tagged_folder)
    assert problems == []
    table = tracks.set_index("track_id")
    assert table.loc["Café — été", "title"] == "Café" and table.loc["trail", "title"] == "Trail"
    assert table.loc["apple", ["artist", "album", "style", "bpm"]].tolist() == ["Ana Ñandú", "Routes", "Chiptune", 96.0]
    assert table.loc["untagged", "title"] == "" and math.isnan(table.loc["untagged", "bpm"])
    assert tracks["tags"].map(len).eq(0).all()  # embedded tags are no original tags unless asked


def test_tags_from_makes_the_chosen_fields_original_tags(tagged_folder):
    tracks, _ = load_folder(tagged_folder, tags_from=["genre", "mood"])
    assert dict(zip(tracks["track_id"], tracks["tags"])) == {
        "Café — été": ["jazz", "warm"],
        "apple": ["pop", "happy", "warm"],
        "trail": ["rock", "blues", "dark"],
        "untagged": [],
        "vorbis": ["synth-pop", "rock", "calm", "warm"],
    }


def test_a_tags_csv_and_embedded_tags_merge(tagged_folder, tmp_path):
    tags_csv = tmp_path / "tags.csv"
    tags_csv.write_text('track_id,tags,split\ntrail,Sad|rock,test\nuntagged,"quiet",\n', encoding="utf-8")
    tracks, problems = load_folder(tagged_folder, tags_csv=tags_csv, tags_from=["genre"])
    assert problems == []
    table = tracks.set_index("track_id")
    assert table.loc["trail", "tags"] == ["Sad", "rock", "blues"]  # the CSV's first, then the genres it lacks
    assert table.loc["untagged", "tags"] == ["quiet"] and table.loc["apple", "tags"] == ["pop"]
    assert table.loc["trail", "split"] == "test"


def test_tags_from_is_validated(tagged_folder):
    with pytest.raises(ConfigError, match="tags_from"):
        Settings.load(None, {"data.source": "folder", "folder.root": "x", "folder.tags_from": ["colour"]})
    with pytest.raises(ConfigError, match="tags_from: title"):
        load_folder(tagged_folder, tags_from=["title"])
    assert Settings.load(None, {"data.source": "folder", "folder.root": "x", "folder.tags_from": ["genre", "mood"]}).folder.tags_from == ["genre", "mood"]


def test_damaged_tags_keep_the_track_and_are_listed(tagged_folder):
    damaged = tagged_folder / "damaged.mp3"
    audio = write_audio(tagged_folder / "plain.mp3", tone(frequency=880.0), SR).read_bytes()
    damaged.write_bytes(b"ID3\x05\x00\x00\x00\x00\x00\x0a" + bytes(10) + audio)  # an ID3v2.5 header: no such version
    tracks, problems = load_folder(tagged_folder)
    assert "damaged" in set(tracks["track_id"])
    assert len(problems) == 1 and problems[0].startswith(f"{damaged}: embedded tags not read: ") and "ID3v2.5" in problems[0]
    settings = Settings.load(None, {"data.source": "folder", "folder.root": tagged_folder, "infer.folder": tagged_folder})
    inferred, skipped = inference_tracks(settings, load_collection(settings))
    assert "damaged" in set(inferred["track_id"]) and skipped == []  # inferred, so not listed as skipped


def test_the_catalog_table_carries_titles_artists_and_albums(tagged_folder):
    tracks, _ = load_folder(tagged_folder)
    catalog = catalog_table(tracks, pd.Series(["apple", "untagged"]))
    assert catalog[["track_id", "title", "artist", "album"]].to_dict("records") == [
        {"track_id": "apple", "title": "Apple", "artist": "Ana Ñandú", "album": "Routes"},
        {"track_id": "untagged", "title": "", "artist": "", "album": ""},
    ]
