"""Upload analysis: the whole-track result is stage 5's; the timeline covers the track."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import soundfile as sf
import torch
from decoded_frames import decoded_frames
from torch import nn

from moodscape.api.analyze import ALLOWED_SUFFIXES, MAX_UPLOAD_BYTES, analyze_file, sniff_audio, timeline
from moodscape.audio import mel_from_audio
from moodscape.errors import AudioError, ConfigError
from moodscape.features import FEATURE_NAMES, extract_features
from moodscape.inference import export_bundle, infer_chunk, load_bundle, predict_mels
from moodscape.models.av import av_checkpoint, build_av_ensemble
from moodscape.models.backbone import build_backbone
from moodscape.models.checkpoint import save_checkpoint

SR = 22050
SECONDS = 4.0
CROP, N_CROPS = 64, 3
LABELS = ["Calm", "Energetic / Party", "Dark"]


def write_tone(path, seconds: float = SECONDS, *, format: str | None = None, amplitude: float = 0.3) -> None:
    """A 330 Hz tone with a little noise and a rising second partial, so crops differ."""
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(0).normal(0, 0.02, t.size)
    signal = amplitude * (np.sin(2 * np.pi * 330 * t) + t / seconds * np.sin(2 * np.pi * 1200 * t)) / 2 + noise
    sf.write(path, (signal * (amplitude > 0)).astype(np.float32), SR, format=format)


@pytest.fixture(scope="module")
def track(tmp_path_factory):
    path = tmp_path_factory.mktemp("upload") / "song.wav"
    write_tone(path)
    return path


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory, track):
    """An untrained classifier (batch norm calibrated on the track) and an AV ensemble, exported."""
    torch.manual_seed(0)
    backbone = build_backbone(len(LABELS))
    for module in backbone.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # one pass in train mode sets the running statistics
    mel = mel_from_audio(track)
    with torch.no_grad():
        backbone.train()(torch.from_numpy(np.stack([mel[:, :CROP], mel[:, -CROP:]]))[:, None])
    av = build_av_ensemble(2)
    bundle = export_bundle(backbone.eval(), LABELS, av_checkpoint(av), crop_frames=CROP, n_eval_crops=N_CROPS, batch_size=4, device="cpu")
    path = tmp_path_factory.mktemp("bundle") / "bundle.pt"
    save_checkpoint(bundle, path)
    return path


@pytest.fixture(scope="module")
def bundle(bundle_path):
    return load_bundle(bundle_path)


@pytest.fixture(scope="module")
def analysis(bundle, track):
    return analyze_file(bundle, track)


def test_whole_track_result_equals_what_moodscape_infer_writes(analysis, bundle_path, track):
    [(_, row, error)] = infer_chunk(bundle_path, [("song", ("audio", str(track)))])
    assert error is None
    np.testing.assert_allclose(analysis.probabilities, [row[f"prob_{i}"] for i in range(len(LABELS))], atol=1e-6)
    np.testing.assert_allclose(analysis.embedding, row["embedding"], atol=1e-6)
    np.testing.assert_allclose([analysis.valence, analysis.arousal], [row["valence"], row["arousal"]], atol=1e-6)
    assert analysis.duration == row["duration"]
    assert analysis.label == int(np.argmax(analysis.probabilities))
    assert analysis.probability == pytest.approx(analysis.probabilities.max())
    assert analysis.embedding.shape == (512,) and math.isfinite(analysis.valence)


def test_features_are_the_stage_one_features(analysis, track):
    assert analysis.features == extract_features(track)
    assert list(analysis.features) == FEATURE_NAMES
    assert all(math.isfinite(value) for value in analysis.features.values())


def test_the_file_is_decoded_once(bundle, track):
    with decoded_frames() as reads:
        analyze_file(bundle, track)
    assert reads and sum(reads) == sf.info(str(track)).frames, f"frames decoded per read: {reads}"


def test_timeline_covers_the_track_contiguously(analysis):
    segments = analysis.timeline
    assert len(segments) == round((SECONDS * 12000 / 256) / CROP)  # one crop per segment by default
    assert segments[0].start == 0.0 and segments[-1].end == pytest.approx(analysis.duration)
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    assert all(segment.end > segment.start for segment in segments)
    for segment in segments:
        assert segment.probabilities.shape == (len(LABELS),)
        assert segment.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
        assert segment.label == int(segment.probabilities.argmax())
        assert math.isfinite(segment.valence) and math.isfinite(segment.arousal)


def test_a_segment_is_predicted_as_stage_5_predicts_a_track_of_that_length(bundle, track):
    mel = mel_from_audio(track)
    segments = timeline(bundle, mel, CROP, max_segments=120)
    edges = np.linspace(0, mel.shape[1], len(segments) + 1).round().astype(int)
    expected = predict_mels(bundle, [mel[:, lo:hi] for lo, hi in zip(edges[:-1], edges[1:])])  # n_eval_crops identical crops each
    np.testing.assert_allclose(np.stack([s.probabilities for s in segments]), expected.probabilities, atol=1e-5)
    np.testing.assert_allclose([[s.valence, s.arousal] for s in segments], expected.valence_arousal, atol=1e-5)


def test_long_tracks_get_at_most_max_segments_wider_segments(bundle, track):
    many = analyze_file(bundle, track, segment_seconds=0.25)
    capped = analyze_file(bundle, track, segment_seconds=0.25, max_segments=5)
    assert len(many.timeline) == round(SECONDS / 0.25)
    assert len(capped.timeline) == 5
    assert capped.timeline[-1].end == pytest.approx(capped.duration)
    np.testing.assert_allclose(capped.probabilities, many.probabilities)  # the whole-track result does not depend on the timeline


def test_without_regressor_mood_is_nan(bundle, track):
    analysis = analyze_file(dataclasses.replace(bundle, av_model=None), track)
    assert math.isnan(analysis.valence) and math.isnan(analysis.arousal)
    assert all(math.isnan(segment.valence) for segment in analysis.timeline)


def test_bad_settings_and_silent_audio_raise(bundle, track, tmp_path):
    with pytest.raises(ConfigError, match="segment_seconds"):
        analyze_file(bundle, track, segment_seconds=0)
    with pytest.raises(ConfigError, match="max_segments"):
        analyze_file(bundle, track, max_segments=0)
    silent = tmp_path / "silent.wav"
    write_tone(silent, amplitude=0.0)
    with pytest.raises(AudioError, match="silent"):
        analyze_file(bundle, silent)


@pytest.mark.parametrize("format, suffix", [("WAV", ".wav"), ("FLAC", ".flac"), ("MP3", ".mp3"), ("OGG", ".ogg"), ("AIFF", ".aiff")])
def test_sniff_accepts_audio_libsndfile_decodes(tmp_path, format, suffix):
    path = tmp_path / f"song{suffix}"
    write_tone(path, 1.5, format=format)
    assert sniff_audio(path) is None
    assert suffix in ALLOWED_SUFFIXES


def test_sniff_refuses_text_named_like_audio_and_empty_files(tmp_path):
    text = tmp_path / "lyrics.mp3"
    text.write_text("not music, only words\n" * 50)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    assert "not an audio file" in sniff_audio(text)
    assert "not an audio file" in sniff_audio(empty)
    assert MAX_UPLOAD_BYTES == 50 * 1024 * 1024
