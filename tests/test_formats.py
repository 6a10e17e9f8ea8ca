"""Issue 15, formats: every common audio format decodes to its content, through libsndfile or
FFmpeg (PyAV) where libsndfile cannot, with the same checks and bounds on both paths."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf
from audio_formats import EXTENSIONS, FFMPEG_FORMATS, write_audio
from fresh_python import run_python

from moodscape import audio, decoders
from moodscape.api.analyze import ALLOWED_SUFFIXES, sniff_audio, too_large_to_decode, too_long, upload_refusal
from moodscape.config import Settings
from moodscape.datasets.folder import load_folder
from moodscape.errors import AudioError, ConfigError

SR = 44100
SECONDS = 4.0
ONLY_FFMPEG = {"m4a", "aac"}
"""Formats libsndfile cannot open; Opus is libsndfile's from version 1.0.29 on, FFmpeg's before."""


def music(seconds: float = SECONDS, sr: int = SR, seed: int = 4) -> np.ndarray:
    """A few seconds of stereo demo music, shape (n, 2)."""
    from moodscape.datasets.demo_synth import draw_track_params, render_track

    return render_track(draw_track_params(2, np.random.default_rng(seed)), seconds, sr, 2)


@pytest.fixture(scope="module")
def source() -> np.ndarray:
    return music()


@pytest.fixture(scope="module")
def files(tmp_path_factory, source) -> dict[str, Path]:
    """The same music in every format, in one folder."""
    folder = tmp_path_factory.mktemp("formats")
    return {extension: write_audio(folder / f"track.{extension}", source, SR) for extension in EXTENSIONS}


def best_correlation(decoded: np.ndarray, reference: np.ndarray) -> float:
    """Normalised cross-correlation at the best lag (codecs delay the signal by their priming samples)."""
    xcorr = scipy.signal.correlate(decoded, reference, mode="full", method="fft")
    return float(xcorr.max() / (np.linalg.norm(decoded) * np.linalg.norm(reference)))


@pytest.mark.parametrize("extension", EXTENSIONS)
def test_every_format_decodes_to_its_content(files, source, extension):
    decoded, sr = audio.load_audio(files[extension], sr=22050)
    reference = audio.resample(source.mean(axis=1).astype(np.float32), SR, 22050)
    assert sr == 22050 and decoded.dtype == np.float32
    assert abs(len(decoded) - len(reference)) < 0.1 * 22050  # encoders add priming and padding, not more
    assert best_correlation(decoded, reference) > 0.95
    info = audio.audio_info(files[extension])
    if extension != "opus":
        assert info.decoder == ("ffmpeg" if extension in ONLY_FFMPEG else "libsndfile")
    assert info.duration == pytest.approx(SECONDS, abs=0.1) and info.channels == 2


def test_opus_decodes_through_ffmpeg_where_libsndfile_cannot(files, monkeypatch):
    """An older libsndfile refuses Opus: the file then goes to FFmpeg, with the same samples.

    libsndfile 1.2 drops Opus's pre-skip (312 priming samples here) only after a seek, so a
    plain read was 312 samples late, and the whole track's mel did not match its crops."""
    libsndfile_opus, _ = audio.load_audio(files["opus"])
    real_soundfile = sf.SoundFile

    def without_opus(path, *args, **kwargs):
        if str(path).endswith(".opus"):
            raise sf.LibsndfileError(1, f"Error opening {str(path)!r}: ")
        return real_soundfile(path, *args, **kwargs)

    monkeypatch.setattr(audio.sf, "SoundFile", without_opus)
    assert audio.audio_info(files["opus"]).decoder == "ffmpeg"
    ffmpeg_opus, sr = audio.load_audio(files["opus"])
    assert sr == 48000 and ffmpeg_opus.shape == libsndfile_opus.shape
    np.testing.assert_allclose(ffmpeg_opus, libsndfile_opus, atol=1e-3)  # libopus in both, float round-off apart


@pytest.mark.parametrize("extension", sorted(FFMPEG_FORMATS))
def test_crops_are_those_of_the_whole_track(tmp_path, extension):
    """FFmpeg's files are decoded whole for their crops; Opus files libsndfile reads are seeked."""
    path = write_audio(tmp_path / f"long.{extension}", music(12.0), SR)
    whole = audio.mel_from_audio(path)
    crops, n_frames = audio.mel_crops_from_audio(path, 128, 3)
    expected = np.stack([audio.crop(whole, start, 128) for start in audio.eval_crop_starts(whole.shape[1], 128, 3)])
    assert n_frames == whole.shape[1]
    np.testing.assert_allclose(np.maximum(crops, -100), np.maximum(expected, -100), atol=0.05)  # as tests/test_audio.py


@pytest.mark.parametrize("extension", sorted(FFMPEG_FORMATS))
def test_ffmpeg_files_get_the_checks_of_every_file(tmp_path, extension):
    checks = {"silent": np.zeros((SR * 2, 2)), "short": music(0.5)}
    for name, signal in checks.items():
        path = write_audio(tmp_path / f"{name}.{extension}", signal, SR)
        with pytest.raises(AudioError, match="silent" if name == "silent" else "shorter than") as caught:
            audio.load_audio(path)
        assert path.name in str(caught.value)
    text = tmp_path / f"notes.{extension}"
    text.write_text("not audio at all\n" * 50)
    picture = tmp_path / f"cover.{extension}"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    for path in (text, picture):
        with pytest.raises(AudioError, match=rf"{path.name}: cannot decode audio: .*; FFmpeg: "):
            audio.load_audio(path)
        with pytest.raises(AudioError, match="cannot decode"):
            audio.mel_crops_from_audio(path, 128, 3)
    fifo = tmp_path / f"pipe.{extension}"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="FIFO"):
        audio.audio_info(fifo)


def test_a_file_that_decodes_to_far_more_than_its_header_says_is_refused(files, monkeypatch):
    monkeypatch.setattr(decoders, "OVERRUN_FACTOR", 0.5)
    monkeypatch.setattr(decoders, "OVERRUN_SECONDS", 0.0)
    with pytest.raises(AudioError, match="track.m4a: cannot decode audio .*its header declares 4 s"):
        audio.load_audio(files["m4a"])


def test_uploads_of_every_format_pass_the_header_checks(files):
    for extension, path in files.items():
        assert f".{extension}" in ALLOWED_SUFFIXES
        assert sniff_audio(path) is None and upload_refusal(path) is None, extension
    m4a = audio.audio_info(files["m4a"])
    assert "limit is 0 minutes" in too_long(m4a, limit=1.0)
    assert "decoding it would take" in too_large_to_decode(m4a, limit=SR)


def test_extensions_setting_chooses_the_files_read(files):
    assert Settings.load(None, {"data.source": "folder", "folder.root": "x"}).folder.extensions == EXTENSIONS_DEFAULT
    chosen = Settings.load(None, {"data.source": "folder", "folder.root": "x", "folder.extensions": [".M4A", "opus"]})
    assert chosen.folder.extensions == ["m4a", "opus"]
    with pytest.raises(ConfigError, match="extensions"):
        Settings.load(None, {"data.source": "folder", "folder.root": "x", "folder.extensions": [" "]})
    tracks, problems = load_folder(files["m4a"].parent, extensions=chosen.folder.extensions)
    assert tracks["audio_path"].map(lambda path: Path(path).suffix).tolist() == [".m4a"]  # one id, the first of its files
    assert any("track.wav: skipped: audio format .wav is not read" in problem for problem in problems)


EXTENSIONS_DEFAULT = ["mp3", "ogg", "oga", "opus", "flac", "wav", "aif", "aiff", "m4a", "mp4", "aac"]


@pytest.mark.slow
def test_moodscape_features_reads_a_folder_of_every_format(tmp_path, source):
    folder = tmp_path / "music"
    for index, extension in enumerate(EXTENSIONS):
        write_audio(folder / f"{index:02d} {extension}.{extension}", source, SR)
    write_audio(folder / "Café — été.m4a", music(SECONDS, 48000, seed=5), 48000)  # another recording
    config = tmp_path / "folder.toml"
    config.write_text(f'[data]\nsource = "folder"\n[folder]\nroot = "{folder}"\n[features]\nscheduler = "synchronous"\n')
    workdir = tmp_path / "run"
    result = run_python("from moodscape.cli import app; app()", "features", "--config", config, "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    features = pd.read_parquet(workdir / "features.parquet").set_index("track_id")
    expected = [f"{index:02d} {extension}" for index, extension in enumerate(EXTENSIONS)] + ["Café — été"]
    assert sorted(features.index) == sorted(expected)
    problems = workdir / "reports" / "dataset_problems.txt"
    assert not problems.exists() or problems.read_text().strip() == ""
    numbers = features.select_dtypes("number")
    assert np.isfinite(numbers.to_numpy()).all()
    # the same music in every format: every track's features lie closer to the WAV's than to another recording's
    spread = numbers.std().replace(0, 1)
    distance = ((numbers - numbers.loc["00 wav"]) / spread).abs().mean(axis=1)
    assert distance.drop("Café — été").max() < distance["Café — été"]
