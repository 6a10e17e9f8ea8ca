"""MTG-Jamendo readers on small TSV fixtures written in the real format (CRLF, variable tags)."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.datasets import TRACK_COLUMNS
from moodscape.datasets.jamendo import (
    TAG_PREFIX,
    load_jamendo,
    read_tag_vocabulary,
    read_tracks_tsv,
    tag_matrix,
)
from moodscape.errors import ConfigError, DataError

HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"


def row(track_id: str, *tags: str, duration: str = "212.7", number: int = 948) -> str:
    """One TSV row in the real layout: one column per prefixed tag."""
    fields = [track_id, "artist_000087", "album_000149", f"{number % 100:02d}/{number}.mp3", duration]
    return "\t".join(fields + [TAG_PREFIX + tag for tag in tags])


def write_tsv(path: Path, rows: list[str], header: str = HEADER) -> Path:
    """Write a TSV with CRLF line endings, as the real files have."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join([header, *rows]) + "\r\n").encode())
    return path


def write_vocabulary(path: Path, tags: list[str]) -> Path:
    path.write_text("".join(f"{TAG_PREFIX}{tag}\n" for tag in tags))
    return path


@pytest.fixture
def jamendo_root(tmp_path: Path) -> Path:
    """A tiny dataset: 5 tracks in the main TSV, one only in a split file, one in no split."""
    write_vocabulary(tmp_path / "moodtheme_split.txt", ["calm", "happy", "sad"])
    write_tsv(tmp_path / "autotagging_moodtheme.tsv", [
        row("track_1", "happy", number=1),
        row("track_2", "calm", "sad", number=2),
        row("track_3", "sad", "horror", number=3),
        row("track_4", "horror", number=4),
        row("track_5", "happy", "calm", "sad", number=5),
    ])
    splits = tmp_path / "splits" / "split-0"
    write_tsv(splits / "autotagging_moodtheme-train.tsv", [row("track_1", "happy", number=1), row("track_2", "calm", "sad", number=2)])
    write_tsv(splits / "autotagging_moodtheme-validation.tsv", [row("track_3", "sad", number=3), row("track_9", "calm", number=9)])
    write_tsv(splits / "autotagging_moodtheme-test.tsv", [row("track_5", "happy", "calm", "sad", number=5), row("track_1", "happy", number=1)])
    return tmp_path


def test_vocabulary_is_short_names_in_file_order(tmp_path):
    path = write_vocabulary(tmp_path / "vocab.txt", ["happy", "sad", "film"])
    assert read_tag_vocabulary(path) == ["happy", "sad", "film"]


@pytest.mark.parametrize("lines", [["mood/theme---happy", "happy"], ["mood/theme---happy", "mood/theme---happy"]])
def test_vocabulary_without_prefix_or_with_repeat_names_file_and_line(tmp_path, lines):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"vocab\.txt:2:"):
        read_tag_vocabulary(path)


def test_tsv_rows_have_variable_tag_columns(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [row("track_1", "happy"), row("track_2", "calm", "sad", "epic", duration="30")])
    tracks, problems = read_tracks_tsv(path)
    assert problems == []
    assert list(tracks.columns) == ["track_id", "artist_id", "album_id", "path", "duration", "tags"]
    assert tracks["tags"].tolist() == [["happy"], ["calm", "sad", "epic"]]
    assert tracks["duration"].tolist() == [212.7, 30.0]
    assert tracks["path"].iloc[0] == "48/948.mp3"


@pytest.mark.parametrize(
    ("bad_row", "reason"),
    [
        (row("track_2", "sad", duration="abc"), "not a number"),
        (row("", "sad"), "empty TRACK_ID"),
        (row("track_2", "sad").replace(TAG_PREFIX + "sad", "genre---rock"), "lacks the 'mood/theme---' prefix"),
        ("track_2\tartist_1\talbum_1", "at least 5 columns"),
    ],
)
def test_malformed_row_is_skipped_and_reported_with_line(tmp_path, bad_row, reason):
    path = write_tsv(tmp_path / "t.tsv", [row("track_1", "happy"), bad_row, row("track_3", "calm")])
    tracks, problems = read_tracks_tsv(path)
    assert tracks["track_id"].tolist() == ["track_1", "track_3"]
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")
    assert reason in problems[0]


def test_repeated_track_id_keeps_first_row(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [row("track_1", "happy"), row("track_1", "sad")])
    tracks, problems = read_tracks_tsv(path)
    assert tracks["tags"].tolist() == [["happy"]]
    assert problems == [f"{path}:3: row skipped: track id track_1 repeats line 2"]


def test_wrong_header_fails_the_file(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [row("track_1", "happy")], header="TRACK_ID,PATH,TAGS")
    with pytest.raises(DataError, match=r"t\.tsv:1: expected the header"):
        read_tracks_tsv(path)


def test_file_without_a_valid_row_fails(tmp_path):
    path = write_tsv(tmp_path / "t.tsv", [row("track_1", duration="?"), row("", "happy")])
    with pytest.raises(DataError, match="none of its 2 rows is valid"):
        read_tracks_tsv(path)


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="cannot read"):
        read_tracks_tsv(tmp_path / "absent.tsv")


tag_characters = st.characters(categories=["L", "N"], include_characters="-_ /&")
tag_names = st.text(alphabet=tag_characters, min_size=1, max_size=12).map(str.strip).filter(bool)


@settings(max_examples=50, deadline=None)
@given(tracks=st.lists(
    st.tuples(st.lists(tag_names, max_size=6, unique=True), st.floats(0, 1e5, allow_nan=False).map(lambda x: round(x, 1))),
    min_size=1, max_size=8,
))
def test_random_tag_lists_round_trip_through_a_tsv(tmp_path_factory, tracks):
    rows = [row(f"track_{i}", *tags, duration=str(duration), number=i) for i, (tags, duration) in enumerate(tracks)]
    path = write_tsv(tmp_path_factory.mktemp("tsv") / "t.tsv", rows)
    read, problems = read_tracks_tsv(path)
    assert problems == []
    assert read["tags"].tolist() == [tags for tags, _ in tracks]
    assert read["duration"].tolist() == [duration for _, duration in tracks]


def test_load_gives_the_track_table_with_splits(jamendo_root):
    tracks, _ = load_jamendo(jamendo_root)
    assert list(tracks.columns) == TRACK_COLUMNS
    split_of = dict(zip(tracks["track_id"], tracks["split"]))
    assert split_of == {
        "track_1": "train", "track_2": "train", "track_3": "validation",
        "track_4": "", "track_5": "test", "track_9": "validation",
    }
    assert tracks["audio_path"].eq("").all() and tracks["mel_path"].eq("").all()


def test_load_drops_and_counts_tags_outside_the_vocabulary(jamendo_root):
    tracks, problems = load_jamendo(jamendo_root)
    tags_of = dict(zip(tracks["track_id"], tracks["tags"]))
    assert tags_of["track_3"] == ["sad"] and tags_of["track_4"] == []
    assert any("dropped 2 tags outside the 3-tag vocabulary: horror (2)" in problem for problem in problems)


def test_load_reports_split_conflicts_and_split_only_tracks(jamendo_root):
    _, problems = load_jamendo(jamendo_root)
    assert any("track track_1 is already in train; kept there" in problem for problem in problems)
    assert any("1 tracks appear only in split files" in problem for problem in problems)


def test_load_builds_audio_and_mel_paths(jamendo_root, tmp_path):
    tracks, _ = load_jamendo(jamendo_root, audio_root=tmp_path / "audio", melspec_root=tmp_path / "mel")
    first = tracks.iloc[0]
    assert first["audio_path"] == str((tmp_path / "audio" / "01" / "1.mp3").resolve())
    assert first["mel_path"] == str((tmp_path / "mel" / "01" / "1.npy").resolve())


def test_load_without_split_and_with_all_tags(jamendo_root):
    tracks, problems = load_jamendo(jamendo_root, split=None, vocabulary="all")
    assert len(tracks) == 5 and tracks["split"].eq("").all()
    assert tracks.set_index("track_id").loc["track_4", "tags"] == ["horror"]
    assert problems == []


def test_load_rejects_an_unknown_vocabulary_name(jamendo_root):
    with pytest.raises(ConfigError, match="vocabulary"):
        load_jamendo(jamendo_root, vocabulary="full")


def test_load_with_missing_split_file_fails(jamendo_root):
    with pytest.raises(DataError, match="split-3"):
        load_jamendo(jamendo_root, split=3)


def test_tag_matrix_is_multi_hot_in_vocabulary_order(jamendo_root):
    tracks, _ = load_jamendo(jamendo_root)
    matrix, vocabulary = tag_matrix(tracks, ["sad", "happy", "calm"])
    assert vocabulary == ["sad", "happy", "calm"]
    assert matrix.dtype == bool and matrix.shape == (6, 3)
    np.testing.assert_array_equal(matrix[4], [True, True, True])
    np.testing.assert_array_equal(matrix[3], [False, False, False])


def test_tag_matrix_default_vocabulary_is_sorted_tags_and_ignores_others(jamendo_root):
    tracks, _ = load_jamendo(jamendo_root, vocabulary="all")
    matrix, vocabulary = tag_matrix(tracks)
    assert vocabulary == ["calm", "happy", "horror", "sad"]
    assert matrix.sum() == sum(len(tags) for tags in tracks["tags"])
    assert tag_matrix(tracks, ["happy"])[0].sum() == 2


def test_tag_matrix_rejects_repeated_vocabulary(jamendo_root):
    tracks, _ = load_jamendo(jamendo_root)
    with pytest.raises(DataError, match="repeats"):
        tag_matrix(tracks, ["sad", "sad"])
