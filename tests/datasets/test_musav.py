"""MusAV readers on JSON-lines and YAML fixtures written in the real formats."""

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.datasets.musav import (
    GROUND_TRUTH_COLUMNS,
    PREDICTION_COLUMNS,
    format_predictions,
    ground_truth_files,
    load_musav,
    read_ground_truth,
    read_judgments,
    read_predictions,
    read_spotify_metadata,
)
from moodscape.errors import DataError

SONG_A, SONG_B, SONG_C = "2SJygkVMOLAp8690LOee1h", "6xHhssqSdb3cyaZOZaHTHV", "4h3BF2A3suImf5Qp7GFcIH"


def judgment(songid_a: str, songid_b: str, higher_value: str = "a", av_type: str = "arousal") -> dict:
    return {"tripletid": "fc4fbe0f", "songid_a": songid_a, "songid_b": songid_b,
            "annotator": "annotations-annotator014", "type": av_type, "higher_value": higher_value}


def ground_truth_pair(songid_a: str, songid_b: str, **extra) -> dict:
    return {"tripletid": "fc4fbe0f", "triplet_type": "global_triplet", "pairid": f"{songid_a}-{songid_b}",
            "agreement": "full-agreement", "higher_value": "b", **extra}


def write_json_lines(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def write_metadata(path: Path, valence, energy) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"id": path.stem, "audio_features": {"valence": valence, "energy": energy, "tempo": 120.0}}))
    return path


def test_judgments_have_one_row_per_line(tmp_path):
    path = write_json_lines(tmp_path / "annotations.arousal.all", [judgment(SONG_A, SONG_B), judgment(SONG_B, SONG_C, "not_selected")])
    judgments = read_judgments(path)
    assert judgments.columns.tolist() == ["tripletid", "songid_a", "songid_b", "annotator", "type", "higher_value"]
    assert judgments["higher_value"].tolist() == ["a", "not_selected"]


@pytest.mark.parametrize("bad_line", ['{"tripletid": "x"', '["a", "b"]', json.dumps({**judgment(SONG_A, SONG_B), "annotator": ""})])
def test_malformed_judgment_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "annotations.arousal.all"
    path.write_text(json.dumps(judgment(SONG_A, SONG_B)) + "\n" + bad_line + "\n")
    with pytest.raises(DataError, match=r"annotations\.arousal\.all:2:"):
        read_judgments(path)


def test_ground_truth_splits_the_pair_id(tmp_path):
    path = write_json_lines(tmp_path / "gt", [
        ground_truth_pair(SONG_A, SONG_B, triplet_consistency="consistent"),
        ground_truth_pair(SONG_B, "demo-song-7"),
    ])
    pairs = read_ground_truth(path)
    assert pairs.columns.tolist() == GROUND_TRUTH_COLUMNS
    assert pairs[["songid_a", "songid_b"]].values.tolist() == [[SONG_A, SONG_B], [SONG_B, "demo-song-7"]]
    assert pairs["triplet_consistency"].iloc[0] == "consistent"
    assert math.isnan(pairs["triplet_consistency"].iloc[1])


@pytest.mark.parametrize("pairid", [SONG_A, f"-{SONG_A}", f"{SONG_A}-"])
def test_ground_truth_with_bad_pair_id_fails(tmp_path, pairid):
    path = write_json_lines(tmp_path / "gt", [{**ground_truth_pair(SONG_A, SONG_B), "pairid": pairid}])
    with pytest.raises(DataError, match=r"gt:1: pairid"):
        read_ground_truth(path)


def test_ground_truth_files_lists_the_protocol_subsets_present(tmp_path):
    annotations = tmp_path / "annotations"
    names = ["arousal.all.agreement.gt", "valence.all.agreement.gt", "arousal.all.agreement.gt.ct.fa",
             "arousal.all.agreement.gt.songids", "arousal.all.agreement", "ismir2022/annotations.valence.all.agreement.gt.fa"]
    for name in names:
        write_json_lines(annotations / (name if "/" in name else f"annotations.{name}"), [])
    found = [(subset, av_type, path.relative_to(annotations).as_posix()) for subset, av_type, path in ground_truth_files(annotations)]
    assert found == [
        ("gt", "arousal", "annotations.arousal.all.agreement.gt"),
        ("gt", "valence", "annotations.valence.all.agreement.gt"),
        ("gt.ct.fa", "arousal", "annotations.arousal.all.agreement.gt.ct.fa"),
        ("ismir2022/gt.fa", "valence", "ismir2022/annotations.valence.all.agreement.gt.fa"),
    ]


def test_spotify_metadata_gives_valence_and_energy_as_arousal(tmp_path):
    assert read_spotify_metadata(write_metadata(tmp_path / "x.yaml", 0.25, 1)) == {"valence": 0.25, "arousal": 1.0}


@pytest.mark.parametrize(("valence", "energy"), [(0.5, None), (1.5, 0.5), ("high", 0.5), (True, 0.5)])
def test_spotify_metadata_out_of_range_or_missing_fails(tmp_path, valence, energy):
    with pytest.raises(DataError, match=r"x\.yaml: audio_features\."):
        read_spotify_metadata(write_metadata(tmp_path / "x.yaml", valence, energy))


def test_spotify_metadata_without_audio_features_fails(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("id: x\n")
    with pytest.raises(DataError, match="no 'audio_features'"):
        read_spotify_metadata(path)


@pytest.fixture
def musav_root(tmp_path: Path) -> Path:
    root = tmp_path / "musav"
    root.mkdir()
    (root / "audio.chunk_000-006.songids").write_text(f"{SONG_A}\n{SONG_B}\n{SONG_C}\n")
    write_json_lines(root / "annotations" / "annotations.arousal.all", [judgment(SONG_C, SONG_A)])
    write_json_lines(root / "annotations" / "annotations.valence.all", [judgment(SONG_A, SONG_B, av_type="valence")])
    return root


def test_load_lists_songs_of_the_songids_file(musav_root):
    songs, problems = load_musav(musav_root)
    assert songs.columns.tolist() == ["songid", "audio_path", "valence", "arousal"]
    assert songs["songid"].tolist() == [SONG_A, SONG_B, SONG_C]
    assert songs["audio_path"].eq("").all() and songs["valence"].isna().all()
    assert problems == []


def test_load_falls_back_to_the_annotated_songs(musav_root):
    (musav_root / "audio.chunk_000-006.songids").unlink()
    songs, _ = load_musav(musav_root)
    assert songs["songid"].tolist() == [SONG_C, SONG_A, SONG_B]


def test_load_without_any_song_list_fails(tmp_path):
    with pytest.raises(DataError, match="neither"):
        load_musav(tmp_path)


def test_load_finds_audio_and_metadata_and_lists_the_missing(musav_root, tmp_path):
    audio, metadata = tmp_path / "audio", tmp_path / "metadata"
    (audio / SONG_A[:2]).mkdir(parents=True)
    (audio / SONG_A[:2] / f"{SONG_A}.mp3").write_bytes(b"")
    write_metadata(metadata / SONG_A[:2] / f"{SONG_A}.yaml", 0.2, 0.9)
    write_metadata(metadata / f"{SONG_B}.yaml", 0.6, 0.1)
    write_metadata(metadata / f"{SONG_C}.yaml", 0.6, 7)
    songs, problems = load_musav(musav_root, audio_root=audio, metadata_root=metadata)
    assert songs["audio_path"].tolist() == [str((audio / SONG_A[:2] / f"{SONG_A}.mp3").resolve()), "", ""]
    assert songs["valence"].tolist()[:2] == [0.2, 0.6] and songs["arousal"].tolist()[:2] == [0.9, 0.1]
    assert math.isnan(songs["valence"].iloc[2])
    assert problems[0] == f"{audio.resolve()}: 2 songs have no audio: {SONG_B}, {SONG_C}"
    assert problems[1].startswith(f"{metadata / SONG_C}.yaml: audio_features.energy is 7")
    assert len(problems) == 2


def prediction(songid: str = SONG_A, model: str = "m", arousal=0.41, valence=0.38) -> dict:
    return {"songid": songid, "model": model, "arousal_mean": arousal, "valence_mean": valence}


def test_predictions_have_one_row_per_line_with_float_means(tmp_path):
    path = write_json_lines(tmp_path / "predictions.jsonl", [prediction(), prediction(SONG_B, arousal=1, valence=0)])
    predictions = read_predictions(path)
    assert predictions.columns.tolist() == PREDICTION_COLUMNS
    assert predictions.values.tolist() == [[SONG_A, "m", 0.41, 0.38], [SONG_B, "m", 1.0, 0.0]]
    assert predictions.dtypes[["arousal_mean", "valence_mean"]].eq(float).all()


def test_empty_predictions_file_gives_an_empty_table(tmp_path):
    path = tmp_path / "predictions.jsonl"
    path.write_text("\n")
    assert read_predictions(path).columns.tolist() == PREDICTION_COLUMNS


@pytest.mark.parametrize("bad_line", [
    '{"songid": "x"',
    "[1, 2]",
    json.dumps(prediction(songid="")),
    json.dumps({key: value for key, value in prediction().items() if key != "model"}),
    json.dumps(prediction(arousal=True)),
    json.dumps(prediction(valence="0.5")),
    json.dumps(prediction(valence=None)),
    '{"songid": "x", "model": "m", "arousal_mean": NaN, "valence_mean": 0.5}',
    '{"songid": "x", "model": "m", "arousal_mean": 0.5, "valence_mean": Infinity}',
    json.dumps(prediction(arousal=10**400)),
    json.dumps(prediction()),  # the same song and model as line 1
])
def test_malformed_prediction_names_file_and_line(tmp_path, bad_line):
    path = tmp_path / "predictions.jsonl"
    path.write_text(json.dumps(prediction()) + "\n" + bad_line + "\n")
    with pytest.raises(DataError, match=r"predictions\.jsonl:2:"):
        read_predictions(path)


def test_format_predictions_writes_the_dataset_line_format():
    table = pd.DataFrame([prediction(), prediction(SONG_B, "other", 1, 0)])
    assert format_predictions(table) == (
        f'{{"songid": "{SONG_A}", "model": "m", "arousal_mean": 0.41, "valence_mean": 0.38}}\n'
        f'{{"songid": "{SONG_B}", "model": "other", "arousal_mean": 1.0, "valence_mean": 0.0}}\n'
    )


@pytest.mark.parametrize("table", [
    pd.DataFrame([prediction(arousal=math.nan)]),
    pd.DataFrame([prediction()]).drop(columns="valence_mean"),
])
def test_format_predictions_refuses_nan_or_missing_columns(table):
    with pytest.raises(DataError, match="finite|lack column"):
        format_predictions(table)


@settings(max_examples=50, deadline=None)
@given(st.lists(
    st.tuples(st.text(min_size=1), st.text(min_size=1), st.floats(allow_nan=False, allow_infinity=False),
              st.floats(allow_nan=False, allow_infinity=False)),
    min_size=1, max_size=5, unique_by=lambda row: row[:2],
))
def test_format_predictions_round_trips_through_read_predictions(tmp_path_factory, rows):
    table = pd.DataFrame(rows, columns=PREDICTION_COLUMNS)
    path = tmp_path_factory.mktemp("predictions") / "predictions.jsonl"
    path.write_text(format_predictions(table), encoding="utf-8")
    pd.testing.assert_frame_equal(read_predictions(path), table)
