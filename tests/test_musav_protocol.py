"""The MusAV pairwise-accuracy protocol against hand counts and the dataset's own loop.

The reference is ``scripts/evaluate.py`` of MTG/musav-dataset (Bogdanov et al., ISMIR 2022).
"""

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.datasets.musav import PREDICTION_COLUMNS, read_ground_truth, read_predictions
from moodscape.errors import DataError
from moodscape.evaluation import evaluate_musav, pairwise_accuracy, regression_metrics

SHARED_DATA = Path(os.environ.get("MOODSCAPE_SHARED_DATA") or Path(__file__).resolve().parents[1].parent / "shared" / "data")
MUSAV = SHARED_DATA / "musav"

# Written by hand: song -> (arousal_mean, valence_mean) for models alpha and beta.
PREDICTIONS = """\
{"songid": "s1", "model": "alpha", "arousal_mean": 0.9, "valence_mean": 0.1}
{"songid": "s2", "model": "alpha", "arousal_mean": 0.7, "valence_mean": 0.3}
{"songid": "s3", "model": "alpha", "arousal_mean": 0.5, "valence_mean": 0.5}
{"songid": "s4", "model": "alpha", "arousal_mean": 0.3, "valence_mean": 0.7}
{"songid": "s5", "model": "alpha", "arousal_mean": 0.1, "valence_mean": 0.9}
{"songid": "s6", "model": "alpha", "arousal_mean": 0.5, "valence_mean": 0.2}
{"songid": "s1", "model": "beta", "arousal_mean": 0.1, "valence_mean": 0.5}
{"songid": "s2", "model": "beta", "arousal_mean": 0.2, "valence_mean": 0.5}
{"songid": "s3", "model": "beta", "arousal_mean": 0.3, "valence_mean": 0.6}
{"songid": "s4", "model": "beta", "arousal_mean": 0.4, "valence_mean": 0.2}
{"songid": "s5", "model": "beta", "arousal_mean": 0.5, "valence_mean": 0.9}
{"songid": "s6", "model": "beta", "arousal_mean": 0.6, "valence_mean": 0.1}
"""

# file -> (pairid, higher_value). Song s7 has no prediction: it only appears in an "ab" pair,
# which the protocol skips before looking predictions up.
GROUND_TRUTH = {
    "annotations.arousal.all.agreement.gt": [
        ("s1-s2", "a"),  # alpha 0.9 > 0.7 correct;   beta 0.1 < 0.2 incorrect
        ("s2-s3", "b"),  # alpha 0.7 > 0.5 incorrect; beta 0.2 < 0.3 correct
        ("s3-s6", "a"),  # alpha 0.5 = 0.5 equal;     beta 0.3 < 0.6 incorrect
        ("s4-s7", "ab"),  # skipped_ab for both
        ("s5-s1", "undefined"),  # alpha 0.1 vs 0.9, beta 0.5 vs 0.1: skipped_other for both
        ("s4-s1", "b"),  # alpha 0.3 < 0.9 correct;   beta 0.4 > 0.1 incorrect
    ],
    "annotations.valence.all.agreement.gt": [
        ("s1-s5", "b"),  # alpha 0.1 < 0.9 correct;   beta 0.5 < 0.9 correct
        ("s2-s4", "a"),  # alpha 0.3 < 0.7 incorrect; beta 0.5 > 0.2 correct
        ("s1-s2", "ab"),  # skipped_ab for both
        ("s2-s1", "a"),  # alpha 0.3 > 0.1 correct;   beta 0.5 = 0.5 equal
        ("s6-s3", "b"),  # alpha 0.2 < 0.5 correct;   beta 0.1 < 0.6 correct
    ],
    "annotations.arousal.all.agreement.gt.ct": [
        ("s3-s6", "ab"),  # only an "ab" pair: nothing counted, accuracy None
    ],
    "ismir2022/annotations.arousal.all.agreement.gt.fa": [
        ("s1-s5", "a"),  # alpha 0.9 > 0.1 correct;   beta 0.1 < 0.5 incorrect
        ("s3-s6", "ab"),  # skipped_ab for both
    ],
}

# (file, model, type, correct, incorrect, skipped_ab, skipped_equal, skipped_other, accuracy)
EXPECTED = [
    ("annotations.arousal.all.agreement.gt", "alpha", "arousal", 2, 1, 1, 1, 1, 100 * 2 / 3),  # 2 of 3
    ("annotations.arousal.all.agreement.gt", "beta", "arousal", 1, 3, 1, 0, 1, 25.0),  # 1 of 4
    ("annotations.valence.all.agreement.gt", "alpha", "valence", 3, 1, 1, 0, 0, 75.0),  # 3 of 4
    ("annotations.valence.all.agreement.gt", "beta", "valence", 3, 0, 1, 1, 0, 100.0),  # 3 of 3
    ("annotations.arousal.all.agreement.gt.ct", "alpha", "arousal", 0, 0, 1, 0, 0, None),  # 0 of 0
    ("annotations.arousal.all.agreement.gt.ct", "beta", "arousal", 0, 0, 1, 0, 0, None),
    ("ismir2022/annotations.arousal.all.agreement.gt.fa", "alpha", "arousal", 1, 0, 1, 0, 0, 100.0),  # 1 of 1
    ("ismir2022/annotations.arousal.all.agreement.gt.fa", "beta", "arousal", 0, 1, 1, 0, 0, 0.0),  # 0 of 1
]
ROW_KEYS = ["file", "model", "type", "correct", "incorrect", "skipped_ab", "skipped_equal", "skipped_other", "accuracy"]


def ground_truth_line(pairid: str, higher_value: str) -> str:
    return json.dumps({"tripletid": "t1", "triplet_type": "global_triplet", "pairid": pairid,
                       "agreement": "full-agreement", "higher_value": higher_value}) + "\n"


@pytest.fixture
def annotations(tmp_path: Path) -> Path:
    folder = tmp_path / "annotations"
    (folder / "ismir2022").mkdir(parents=True)
    for name, pairs in GROUND_TRUTH.items():
        (folder / name).write_text("".join(ground_truth_line(*pair) for pair in pairs))
    (folder / "annotations.arousal.all.agreement.gt.songids").write_text("s1\ns2\n")  # not a ground-truth file
    return folder


@pytest.fixture
def predictions(tmp_path: Path) -> pd.DataFrame:
    path = tmp_path / "predictions.jsonl"
    path.write_text(PREDICTIONS)
    return read_predictions(path)


def test_evaluate_musav_matches_the_hand_counts(annotations, predictions):
    rows = evaluate_musav(predictions, annotations)
    assert [list(row) for row in rows] == [ROW_KEYS] * len(EXPECTED)
    assert rows == [dict(zip(ROW_KEYS, expected)) for expected in EXPECTED]  # 200 / 3 computed as the code does


def test_missing_prediction_names_song_file_and_model(annotations, predictions):
    without_s3 = predictions[~((predictions["songid"] == "s3") & (predictions["model"] == "beta"))]
    with pytest.raises(DataError, match=r"song s3 \(file annotations\.arousal\.all\.agreement\.gt, model beta\)"):
        evaluate_musav(without_s3, annotations)


def test_pairwise_accuracy_names_the_missing_song():
    pairs = pd.DataFrame({"songid_a": ["x"], "songid_b": ["y"], "higher_value": ["undefined"]})
    with pytest.raises(DataError, match="no prediction for song y$"):
        pairwise_accuracy(pairs, {"x": 0.5})


def test_pairwise_accuracy_refuses_a_nan_prediction():
    pairs = pd.DataFrame({"songid_a": ["x"], "songid_b": ["y"], "higher_value": ["a"]})
    with pytest.raises(DataError, match=r"song y is nan \(gt\)"):
        pairwise_accuracy(pairs, {"x": 0.5, "y": float("nan")}, source="gt")


def test_evaluate_musav_without_ground_truth_fails(tmp_path, predictions):
    with pytest.raises(DataError, match="no MusAV ground-truth file"):
        evaluate_musav(predictions, tmp_path)


def test_evaluate_musav_without_predictions_fails(annotations):
    with pytest.raises(DataError, match="no predictions"):
        evaluate_musav(pd.DataFrame(columns=PREDICTION_COLUMNS), annotations)


def reference_loop(pairs: pd.DataFrame, predictions: dict[str, dict[str, float]]) -> tuple[dict, int, int]:
    """The loop of MusAV's scripts/evaluate.py, transcribed line for line.

    ``predictions`` is ``{songid: {model: value}}``; returns the per-model
    ``{"correct", "incorrect"}``, ``skipped_ab`` and ``skipped_ab_predictions`` (all models).
    """
    models = {model for values in predictions.values() for model in values}
    results = {model: {"correct": 0, "incorrect": 0} for model in models}
    skipped_ab = 0
    skipped_ab_predictions = 0
    for pairid, higher_value in zip(pairs["pairid"], pairs["higher_value"]):
        a, b = pairid.split("-")
        if higher_value == "ab":
            skipped_ab += 1
            continue
        for model in models:
            a_value = predictions[a][model]
            b_value = predictions[b][model]
            if a_value == b_value:
                skipped_ab_predictions += 1
                continue
            if higher_value == "a":
                if a_value > b_value:
                    results[model]["correct"] += 1
                elif a_value < b_value:
                    results[model]["incorrect"] += 1
            elif higher_value == "b":
                if a_value > b_value:
                    results[model]["incorrect"] += 1
                elif a_value < b_value:
                    results[model]["correct"] += 1
    return results, skipped_ab, skipped_ab_predictions


@pytest.mark.parametrize("seed", range(5))
def test_pairwise_accuracy_counts_equal_the_reference_loop(seed):
    rng = np.random.default_rng(seed)
    songs = [f"song{i}" for i in range(30)]
    first, second = rng.integers(0, len(songs), (2, 300))
    pairs = pd.DataFrame({
        "pairid": [f"{songs[i]}-{songs[j]}" for i, j in zip(first, second)],
        "songid_a": [songs[i] for i in first],
        "songid_b": [songs[j] for j in second],
        "higher_value": rng.choice(["a", "b", "ab", "undefined"], size=300, p=[0.4, 0.4, 0.1, 0.1]),
    })
    # Few distinct values, so that equal predictions are frequent.
    values = {model: dict(zip(songs, rng.integers(0, 6, len(songs)) / 5)) for model in ("m1", "m2", "m3")}
    results, skipped_ab, skipped_ab_predictions = reference_loop(
        pairs, {song: {model: values[model][song] for model in values} for song in songs})
    ours = {model: pairwise_accuracy(pairs, values[model]) for model in values}
    for model, counts in ours.items():
        assert (counts["correct"], counts["incorrect"]) == (results[model]["correct"], results[model]["incorrect"])
        assert counts["skipped_ab"] == skipped_ab
        total = results[model]["correct"] + results[model]["incorrect"]
        assert counts["accuracy"] == pytest.approx(100.0 * results[model]["correct"] / total)
        assert sum(counts[key] for key in ("correct", "incorrect", "skipped_ab", "skipped_equal", "skipped_other")) == 300
    assert sum(counts["skipped_equal"] for counts in ours.values()) == skipped_ab_predictions


@settings(max_examples=50, deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=10, unique=True),
    pairs=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 9), st.sampled_from("ab")), min_size=1, max_size=20),
)
def test_negated_predictions_give_the_complementary_accuracy(values, pairs):
    pairs = [(i % len(values), j % len(values), higher) for i, j, higher in pairs]
    pairs = [(i, j, higher) for i, j, higher in pairs if i != j] or [(0, 1, "a")]
    ground_truth = pd.DataFrame(
        [(f"s{i}", f"s{j}", higher) for i, j, higher in pairs], columns=["songid_a", "songid_b", "higher_value"])
    prediction = {f"s{i}": value for i, value in enumerate(values)}
    negated = {song: -value for song, value in prediction.items()}
    forward, backward = pairwise_accuracy(ground_truth, prediction), pairwise_accuracy(ground_truth, negated)
    assert forward["accuracy"] + backward["accuracy"] == pytest.approx(100.0)
    assert forward["correct"] == backward["incorrect"] and forward["skipped_equal"] == 0


def test_regression_metrics_of_perfect_predictions():
    metrics = regression_metrics([0.1, 0.4, 0.35, 0.8], [0.1, 0.4, 0.35, 0.8])
    assert metrics == pytest.approx({"r2": 1.0, "pearson_r": 1.0, "rmse": 0.0, "n": 4})


def test_regression_metrics_drop_pairs_with_nan():
    # Kept pairs (0, 1), (1, 0), (2, 2): errors -1, 1, 0 -> rmse sqrt(2/3);
    # r2 = 1 - 2 / 2 = 0 (total sum of squares of 0, 1, 2 is 2); r = 0.5 (cov 0.5 over 1 * 1).
    metrics = regression_metrics([0, 1, 2, np.nan, 5], [1, 0, 2, 3, np.nan])
    assert metrics == pytest.approx({"r2": 0.0, "pearson_r": 0.5, "rmse": np.sqrt(2 / 3), "n": 3})


def test_regression_metrics_with_under_two_pairs_give_none():
    assert regression_metrics([0.5, np.nan], [np.nan, 0.2]) == {"r2": None, "pearson_r": None, "rmse": None, "n": 0}
    assert regression_metrics([0.5], [0.2]) == {"r2": None, "pearson_r": None, "rmse": None, "n": 1}


def test_regression_metrics_of_constant_predictions_have_no_pearson():
    assert regression_metrics([0.1, 0.5, 0.9], [0.5, 0.5, 0.5])["pearson_r"] is None


def test_regression_metrics_refuse_unequal_lengths():
    with pytest.raises(DataError, match="equal-length"):
        regression_metrics([0.1, 0.2], [0.1])


@pytest.mark.realdata
@pytest.mark.skipif(not MUSAV.is_dir(), reason=f"real MusAV files not found in {SHARED_DATA}")
def test_real_annotations_give_16_rows_per_model_and_skip_every_ab_pair():
    songids = (MUSAV / "audio.chunk_000-006.songids").read_text().split()
    rng = np.random.default_rng(0)
    predictions = pd.DataFrame([
        {"songid": song, "model": model, "arousal_mean": rng.random(), "valence_mean": rng.random()}
        for model in ("random-1", "random-2") for song in songids
    ])
    rows = evaluate_musav(predictions, MUSAV / "annotations")
    assert len(rows) == 2 * 16
    assert sum(row["file"].startswith("ismir2022/") for row in rows) == 2 * 8
    for row in rows:
        path = MUSAV / "annotations" / row["file"]
        lines = path.read_text().splitlines()
        assert row["skipped_ab"] == sum('"higher_value": "ab"' in line for line in lines), row["file"]
        counted = row["correct"] + row["incorrect"] + row["skipped_ab"] + row["skipped_equal"] + row["skipped_other"]
        assert counted == len(read_ground_truth(path)) == len(lines)
        assert 40 < row["accuracy"] < 60  # random predictions are right about half the time
