"""Tests of the AcousticBrainz / Essentia MusicExtractor JSON import."""

import json

import numpy as np
import pytest
import soundfile as sf

from moodscape.errors import DataError
from moodscape.essentia_import import hpcp_to_chroma, import_essentia_features, read_essentia_json
from moodscape.features import FEATURE_NAMES

SR = 44100


@pytest.fixture(scope="module")
def extractor_json(tmp_path_factory):
    """JSON written by the real MusicExtractor for 6 s of A-major chords over 120 BPM clicks."""
    es = pytest.importorskip("essentia.standard")
    directory = tmp_path_factory.mktemp("essentia")
    t = np.arange(6 * SR) / SR
    y = 0.15 * sum(np.sin(2 * np.pi * f * t) for f in (220.0, 277.18, 329.63))
    clicks = np.zeros_like(t)
    n = 400
    burst = np.random.default_rng(0).standard_normal(n) * np.exp(-np.arange(n) / 80)
    for start in range(0, t.size - n, SR // 2):
        clicks[start : start + n] = burst
    wav = directory / "track.wav"
    sf.write(wav, (y + 0.5 * clicks).astype(np.float32), SR)
    pool, _ = es.MusicExtractor(
        lowlevelStats=["mean", "stdev"], rhythmStats=["mean", "stdev"],
        tonalStats=["mean", "stdev"],
    )(str(wav))
    path = directory / "track.json"
    es.YamlOutput(filename=str(path), format="json")(pool)
    return path


def test_real_extractor_json_maps_onto_every_column_but_contrast_6(extractor_json):
    features = read_essentia_json(extractor_json)
    assert list(features) == FEATURE_NAMES
    nan = {name for name, value in features.items() if np.isnan(value)}
    assert nan == {"spectral_contrast_mean_6"}
    assert features["bpm"] == pytest.approx(120, abs=3)
    assert features["mode_major"] in (0.0, 1.0)
    assert 0.0 < features["spectral_flatness_mean"] <= 1.0
    chroma = [features[f"chroma_degree_{i}"] for i in range(12)]
    assert max(chroma) == pytest.approx(1.0) and int(np.argmax(chroma)) in (0, 4, 7)  # A major's A, C#, E


def test_import_builds_a_table_with_track_ids(extractor_json):
    table = import_essentia_features({"1": extractor_json, "2": extractor_json})
    assert list(table.columns) == ["track_id", *FEATURE_NAMES]
    assert list(table["track_id"]) == ["1", "2"]
    assert table[FEATURE_NAMES].dtypes.eq(np.float64).all()


def test_missing_descriptors_become_nan_with_one_warning(tmp_path):
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"rhythm": {"bpm": 97.5}, "tonal": {"key_scale": "minor",
                                                                    "key_strength": 0.7}}))
    with pytest.warns(UserWarning, match="partial.json") as caught:
        features = read_essentia_json(path)
    assert len(caught) == 1
    assert features["bpm"] == 97.5 and features["mode_major"] == 0.0
    assert features["key_strength"] == 0.7 and np.isnan(features["mfcc_mean_0"])


@pytest.mark.parametrize("content", ["{not json", "[1, 2, 3]"])
def test_malformed_json_raises_data_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(DataError, match="broken.json"):
        read_essentia_json(path)


def test_hpcp_folds_to_chroma_with_c_first():
    hpcp = np.zeros(36)
    hpcp[[35, 0, 1]] = [0.2, 1.0, 0.2]  # A
    hpcp[9] = 0.5  # C, three semitones above A
    chroma = hpcp_to_chroma(hpcp)
    assert chroma[9] == pytest.approx(1.0) and chroma[0] == pytest.approx(0.5 / 1.4)
