"""Tests of stage 1a feature extraction against synthetic ground truth."""

import numpy as np
import pytest
import soundfile as sf

from moodscape import audio
from moodscape.errors import AudioError
from moodscape.features import (
    ANALYSIS_SR,
    FEATURE_NAMES,
    extract_features,
    features_from_mel,
    features_from_signal,
)

SR = 22050
REQUIRED = [
    "bpm", "spectral_centroid_mean", "spectral_centroid_std", "spectral_rolloff_mean",
    "spectral_bandwidth_mean", "spectral_flatness_mean",
    *(f"spectral_contrast_mean_{i}" for i in range(7)), "zcr_mean", "rms_mean", "rms_std",
    "onset_rate", *(f"mfcc_mean_{i}" for i in range(13)),
    *(f"chroma_degree_{i}" for i in range(12)), "mode_major", "key_strength",
]
MEL_NAN = {"zcr_mean", "mode_major", "key_strength"} | {
    f"chroma_degree_{i}" for i in range(12)
}


def sine(frequency, seconds=5.0, sr=SR, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


def click_track(bpm, seconds=20.0, sr=SR):
    y = np.zeros(int(seconds * sr), np.float32)
    n = sr // 100
    click = np.random.default_rng(1).standard_normal(n) * np.exp(-np.arange(n) / (n / 5))
    for onset in np.arange(0.0, seconds - 0.02, 60.0 / bpm):
        start = int(onset * sr)
        y[start : start + n] += click.astype(np.float32)
    return y


def progression(chords, seconds_per_chord=2.0, sr=SR):
    t = np.arange(int(seconds_per_chord * sr)) / sr
    midi_hz = lambda note: 440.0 * 2 ** ((note - 69) / 12)
    return np.concatenate(
        [0.2 * sum(np.sin(2 * np.pi * midi_hz(n) * t) for n in chord) for chord in chords]
    ).astype(np.float32)


def major_cadence(tonic):
    return [[tonic - 12, tonic, tonic + 4, tonic + 7], [tonic - 7, tonic + 5, tonic + 9, tonic + 12],
            [tonic - 5, tonic + 2, tonic + 7, tonic + 11], [tonic - 12, tonic, tonic + 4, tonic + 7]]


def minor_cadence(tonic):
    return [[tonic - 12, tonic, tonic + 3, tonic + 7], [tonic - 7, tonic + 5, tonic + 8, tonic + 12],
            [tonic - 5, tonic + 2, tonic + 7, tonic + 10], [tonic - 12, tonic, tonic + 3, tonic + 7]]


def test_feature_names_are_unique_and_include_the_required_columns():
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert FEATURE_NAMES[: len(REQUIRED)] == REQUIRED


@pytest.mark.parametrize("bpm", [100, 140])
def test_tempo_of_click_track(bpm):
    features = features_from_signal(click_track(bpm), SR)
    assert features["bpm"] == pytest.approx(bpm, abs=2.0)
    assert features["onset_rate"] == pytest.approx(bpm / 60, rel=0.1)


@pytest.mark.parametrize("frequency", [440.0, 2000.0])
def test_pure_tone_centroid_and_rolloff_sit_at_its_frequency(frequency):
    features = features_from_signal(sine(frequency), SR)
    assert features["spectral_centroid_mean"] == pytest.approx(frequency, rel=0.03)
    assert features["spectral_rolloff_mean"] == pytest.approx(frequency, rel=0.05)
    assert features["spectral_bandwidth_mean"] < 100.0
    assert features["zcr_mean"] == pytest.approx(2 * frequency / SR, rel=0.01)
    assert features["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.02)
    assert features["loudness_db"] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.2)


def test_noise_is_flatter_and_brighter_than_a_tone():
    noise = 0.2 * np.random.default_rng(0).standard_normal(5 * SR).astype(np.float32)
    noisy, tonal = features_from_signal(noise, SR), features_from_signal(sine(440.0), SR)
    assert noisy["spectral_flatness_mean"] > 0.3 > 0.01 > tonal["spectral_flatness_mean"]
    assert noisy["spectral_centroid_mean"] == pytest.approx(ANALYSIS_SR / 4, rel=0.05), "white noise: the middle of the 0-4 kHz band"


def degrees(features: dict) -> np.ndarray:
    return np.array([features[f"chroma_degree_{i}"] for i in range(12)])


def test_chroma_of_a_tone_peaks_at_the_tonic_of_its_key():
    assert int(np.argmax(degrees(features_from_signal(sine(440.0), SR)))) == 0


@pytest.mark.parametrize("cadence", ["major", "minor"])
def test_chroma_degrees_do_not_change_when_a_song_is_transposed(cadence):
    chords = {"major": major_cadence, "minor": minor_cadence}[cadence]
    in_c, in_a = (degrees(features_from_signal(progression(chords(tonic)), SR)) for tonic in (60, 57))
    assert np.abs(in_c - in_a).max() < 0.1, (in_c.round(2), in_a.round(2))  # absolute pitch classes differ by 0.58 or more
    assert in_c[7] > 0.5  # the fifth: the tonic's triad is in every chord of a cadence


@pytest.mark.parametrize("tonic", [60, 57])
def test_mode_separates_major_from_minor_cadences(tonic):
    major = features_from_signal(progression(major_cadence(tonic)), SR)
    minor = features_from_signal(progression(minor_cadence(tonic)), SR)
    assert major["mode_major"] == 1.0 and minor["mode_major"] == 0.0
    assert major["key_strength"] > 0.6 and minor["key_strength"] > 0.6


@pytest.mark.parametrize(
    "signal",
    [
        0.3 * np.random.default_rng(0).standard_normal(3 * SR),
        sine(440.0, seconds=3.0),
        click_track(120, seconds=3.0),
        sine(200.0, seconds=3.0, amplitude=2e-4),
        np.concatenate([np.zeros(SR), sine(300.0, seconds=1.0), np.zeros(SR)]),
    ],
    ids=["noise", "sine", "clicks", "near-silent", "mostly-digital-silence"],
)
def test_valid_signals_give_finite_features(signal):
    values = np.array(list(features_from_signal(np.asarray(signal, np.float32), SR).values()))
    assert np.isfinite(values).all()


def test_extract_features_decodes_a_stereo_mp3(tmp_path):
    path = tmp_path / "clicks.mp3"
    clicks = click_track(120, seconds=8.0, sr=44100)
    sf.write(path, np.stack([clicks, clicks], axis=1), 44100, format="MP3")
    features = extract_features(path)
    assert list(features) == FEATURE_NAMES
    assert np.isfinite(list(features.values())).all()
    assert features["bpm"] == pytest.approx(120, abs=2.0)


def test_extract_features_raises_audio_error_for_a_bad_file(tmp_path):
    path = tmp_path / "broken.mp3"
    path.write_bytes(b"ID3" + b"\x00" * 200)
    with pytest.raises(AudioError, match="broken.mp3"):
        extract_features(path)


def mel_of(y, sr=SR):
    return audio.log_mel_spectrogram(audio.resample(y, sr, audio.MEL_SR), audio.MEL_SR)


def test_features_from_mel_marks_underivable_columns_nan():
    features = features_from_mel(mel_of(click_track(100, seconds=10.0)))
    assert list(features) == FEATURE_NAMES
    assert {name for name, value in features.items() if np.isnan(value)} == MEL_NAN


def test_features_from_mel_recovers_tempo_level_and_brightness():
    clicks = features_from_mel(mel_of(click_track(140)))
    assert clicks["bpm"] == pytest.approx(140, abs=2.0)
    tone = features_from_mel(mel_of(sine(1000.0)))
    assert tone["rms_mean"] == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert tone["spectral_centroid_mean"] == pytest.approx(1000.0, rel=0.1)
