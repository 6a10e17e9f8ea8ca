"""Folder loader on audio files written with soundfile (MP3, FLAC, WAV, OGG; mono and stereo)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile
from hypothesis import given
from hypothesis import strategies as st

from moodscape.datasets import SPLITS, TRACK_COLUMNS
from moodscape.datasets.embedded_tags import FIELDS
from moodscape.datasets.folder import hash_split, load_folder, read_tags_csv
from moodscape.errors import ConfigError, DataError


def write_tone(path: Path, seconds: float, rate: int, channels: int) -> Path:
    """Write a quiet 440 Hz tone of the given length, rate and channel count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(int(seconds * rate)) / rate
    tone = 0.1 * np.sin(2 * np.pi * 440 * time)
    soundfile.write(path, np.repeat(tone[:, None], channels, axis=1), rate)
    return path


@pytest.fixture
def audio_folder(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    write_tone(root / "rock" / "stereo.mp3", 2.0, 44100, 2)
    write_tone(root / "mono.flac", 1.5, 16000, 1)
    write_tone(root / "deep" / "er" / "mono.wav", 1.0, 22050, 1)
    write_tone(root / "stereo.ogg", 0.5, 48000, 2)
    (root / "notes.txt").write_text("not audio")
    return root


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_audio_file_becomes_a_track(audio_folder):
    tracks, problems = load_folder(audio_folder)
    assert problems == []
    assert list(tracks.columns) == TRACK_COLUMNS + list(FIELDS)
    assert tracks["track_id"].tolist() == ["deep/er/mono", "mono", "rock/stereo", "stereo"]
    durations = dict(zip(tracks["track_id"], tracks["duration"]))
    assert durations == pytest.approx({"deep/er/mono": 1.0, "mono": 1.5, "rock/stereo": 2.0, "stereo": 0.5}, abs=0.05)
    assert tracks["audio_path"].tolist()[0] == str((audio_folder / "deep" / "er" / "mono.wav").resolve())
    assert tracks["mel_path"].eq("").all() and tracks["tags"].map(len).eq(0).all()
    assert tracks["split"].isin(SPLITS).all()


def test_unreadable_and_empty_files_are_skipped_and_listed(audio_folder):
    (audio_folder / "corrupt.mp3").write_bytes(b"ID3 this is no mpeg stream")
    soundfile.write(audio_folder / "silent.wav", np.zeros((0, 1)), 8000)
    tracks, problems = load_folder(audio_folder)
    assert "corrupt" not in tracks["track_id"].tolist() and "silent" not in tracks["track_id"].tolist()
    assert len(tracks) == 4
    assert [problem.split(": ")[0] for problem in problems] == [str(audio_folder / "corrupt.mp3"), str(audio_folder / "silent.wav")]


def test_second_file_with_the_same_id_is_reported(audio_folder):
    write_tone(audio_folder / "mono.wav", 1.0, 8000, 1)
    tracks, problems = load_folder(audio_folder)
    assert tracks["track_id"].tolist().count("mono") == 1
    assert len(problems) == 1 and "track id 'mono' is already taken" in problems[0]


def test_extensions_select_files(audio_folder):
    tracks, _ = load_folder(audio_folder, extensions=(".WAV", "flac"))
    assert tracks["track_id"].tolist() == ["deep/er/mono", "mono"]


def test_tags_csv_gives_tags_and_split_overrides(audio_folder):
    tags_csv = write_csv(audio_folder.parent / "tags.csv", (
        "track_id,tags,split\n"
        "mono,happy|calm,test\n"
        'rock/stereo,"energetic, mood/theme---epic",\n'
        "stereo,,validation\n"
    ))
    tracks, problems = load_folder(audio_folder, tags_csv=tags_csv, split_fractions=(1.0, 0.0, 0.0))
    assert problems == []
    by_id = tracks.set_index("track_id")
    assert by_id.loc["mono", "tags"] == ["happy", "calm"]
    assert by_id.loc["rock/stereo", "tags"] == ["energetic", "epic"]
    assert by_id["split"].to_dict() == {"deep/er/mono": "train", "mono": "test", "rock/stereo": "train", "stereo": "validation"}


def test_tags_csv_problems_are_reported(audio_folder):
    tags_csv = write_csv(audio_folder.parent / "tags.csv", (
        "track_id,tags,split\n"
        "mono,happy,holdout\n"
        "mono,sad,\n"
        ",sad,\n"
        "lost/track,sad,\n"
    ))
    tracks, problems = load_folder(audio_folder, tags_csv=tags_csv)
    assert tracks.set_index("track_id").loc["mono", "tags"] == ["happy"]
    assert problems == [
        f"{tags_csv}:2: split 'holdout' is not one of train, validation, test; hash split used",
        f"{tags_csv}:3: line skipped: track id 'mono' repeats line 2",
        f"{tags_csv}:4: line skipped: empty track_id",
        f"{tags_csv}: 1 track ids have no audio under {audio_folder.resolve()}: lost/track",
    ]


def test_tags_csv_without_required_columns_fails(tmp_path):
    tags_csv = write_csv(tmp_path / "tags.csv", "id,labels\nmono,happy\n")
    with pytest.raises(DataError, match=r"tags\.csv:1: missing column\(s\) tags, track_id"):
        read_tags_csv(tags_csv)


def test_hash_split_is_stable_when_files_are_added(audio_folder):
    before, _ = load_folder(audio_folder)
    for i in range(20):
        write_tone(audio_folder / "new" / f"track{i}.wav", 0.1, 8000, 1)
    after, _ = load_folder(audio_folder)
    split_after = dict(zip(after["track_id"], after["split"]))
    assert all(split_after[track_id] == split for track_id, split in zip(before["track_id"], before["split"]))


def test_hash_split_follows_the_fractions():
    splits = [hash_split(f"track_{i}") for i in range(4000)]
    fractions = [splits.count(name) / len(splits) for name in SPLITS]
    assert fractions == pytest.approx([0.7, 0.15, 0.15], abs=0.03)
    assert {hash_split(f"track_{i}", (0.0, 0.0, 1.0)) for i in range(100)} == {"test"}


@given(track_id=st.text(min_size=1), seed=st.integers(0, 2**32))
def test_hash_split_is_a_pure_function_of_id_and_seed(track_id, seed):
    split = hash_split(track_id, seed=seed)
    assert split in SPLITS and hash_split(track_id, seed=seed) == split


@pytest.mark.parametrize("fractions", [(0.5, 0.5), (0.8, 0.3, -0.1), (0.5, 0.2, 0.2)])
def test_bad_split_fractions_are_a_config_error(audio_folder, fractions):
    with pytest.raises(ConfigError, match="split_fractions"):
        load_folder(audio_folder, split_fractions=fractions)


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "absent")
