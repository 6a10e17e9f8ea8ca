"""Tests of decoding, framing and the MTG-Jamendo log-mel spectrogram."""

import numpy as np
import pytest
import soundfile as sf

from moodscape import audio
from moodscape.errors import AudioError

SR = 44100


def tone(frequency=440.0, seconds=2.0, sr=SR, amplitude=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)


@pytest.fixture
def stereo_mp3(tmp_path):
    left, right = tone(440.0), tone(660.0)
    path = tmp_path / "stereo.mp3"
    sf.write(path, np.stack([left, right], axis=1), SR, format="MP3")
    return path


def test_load_audio_decodes_stereo_mp3_to_mono_float32(stereo_mp3):
    y, sr = audio.load_audio(stereo_mp3)
    assert sr == SR and y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size - 2 * SR) < 0.05 * SR  # MP3 adds encoder padding


def test_load_audio_keeps_channels_when_not_mono(stereo_mp3):
    y, _ = audio.load_audio(stereo_mp3, mono=False)
    assert y.shape[0] == 2


def test_load_audio_resamples_to_requested_rate(tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, tone(), SR)
    y, sr = audio.load_audio(path, sr=12000)
    assert sr == 12000 and abs(y.size - 24000) <= 1 and y.dtype == np.float32


def test_downmix_averages_channels(tmp_path):
    path = tmp_path / "opposite.wav"
    left = tone(440.0)
    sf.write(path, np.stack([left, 0.5 * left], axis=1), SR, subtype="FLOAT")
    y, _ = audio.load_audio(path)
    np.testing.assert_allclose(y, 0.75 * left, atol=1e-6)


def write_bytes(path, data):
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "make_file, message",
    [
        (lambda d: d / "absent.wav", "not found"),
        (lambda d: write_bytes(d / "corrupt.mp3", b"\x00garbage" * 100), "cannot decode"),
        (lambda d: write_bytes(d / "notes.txt", b"not audio at all\n" * 50), "cannot decode"),
    ],
)
def test_load_audio_rejects_unreadable_files(tmp_path, make_file, message):
    path = make_file(tmp_path)
    with pytest.raises(AudioError, match=message) as caught:
        audio.load_audio(path)
    assert path.name in str(caught.value)


@pytest.mark.parametrize(
    "signal, message",
    [
        (np.zeros(0, np.float32), "empty"),
        (tone(seconds=0.5), "shorter than"),
        (np.zeros(SR * 2, np.float32), "silent"),
        (np.full(SR * 2, 5e-5, np.float32), "silent"),
        (np.where(np.arange(SR * 2) == 100, np.nan, tone()).astype(np.float32), "NaN"),
    ],
)
def test_load_audio_rejects_bad_signals(tmp_path, signal, message):
    path = tmp_path / "bad.wav"
    sf.write(path, signal, SR, subtype="FLOAT")
    with pytest.raises(AudioError, match=message) as caught:
        audio.load_audio(path)
    assert "bad.wav" in str(caught.value)


def test_frame_signal_centres_frames_like_essentia():
    y = np.arange(1, 1001, dtype=np.float32)
    frames = audio.frame_signal(y, 512, 256)
    assert frames.shape == (-(-1000 // 256) + 1, 512)
    assert frames[0, 256] == 1.0 and not frames[0, :256].any()
    assert frames[1, 0] == 1.0


def test_stft_magnitude_peaks_at_tone_bin():
    S = audio.stft_magnitude(tone(1000.0, sr=16000), n_fft=1024, hop_length=256)
    assert S.shape[0] == 513
    assert np.argmax(S[:, S.shape[1] // 2]) == round(1000 * 1024 / 16000)


def test_mel_filterbank_triangles_have_unit_tri_heights():
    bank = audio.mel_filterbank(12000, 512, 96, 0.0, 6000.0)
    assert bank.shape == (96, 257)
    edges = audio.mel_band_edges(96, 0.0, 6000.0)
    np.testing.assert_allclose(bank.max(axis=1), 2.0 / (edges[2:] - edges[:-2]), rtol=0.5)
    assert (bank >= 0).all()


def essentia_log_mel(path) -> np.ndarray:
    """The MTG-Jamendo ``melspectrograms.py`` chain, run by the real Essentia: (96, frames)."""
    es = pytest.importorskip("essentia.standard")
    loaded = es.MonoLoader(filename=str(path), sampleRate=12000, resampleQuality=4)()
    windowing = es.Windowing(type="hann", normalized=False, zeroPadding=0)
    spectrum = es.Spectrum()
    melbands = es.MelBands(
        numberBands=96, sampleRate=12000, lowFrequencyBound=0, highFrequencyBound=6000,
        inputSize=257, weighting="linear", normalize="unit_tri",
        warpingFormula="slaneyMel", type="power",
    )
    amp2db = es.UnaryOperator(type="lin2db", scale=2)
    return np.array([
        amp2db(melbands(spectrum(windowing(frame))))
        for frame in es.FrameGenerator(loaded, frameSize=512, hopSize=256, startFromZero=False)
    ]).T


def demo_track(n: int) -> np.ndarray:
    from moodscape.datasets.demo_synth import draw_track_params, render_track

    params = draw_track_params(0, np.random.default_rng(0))
    return render_track(params, n / 12000, 12000, 1).reshape(-1)[:n]


def noisy_tone(n: int) -> np.ndarray:
    t = np.arange(n) / 12000
    y = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2
    return y + 0.02 * np.random.default_rng(0).standard_normal(n)


@pytest.mark.parametrize("signal", [noisy_tone, demo_track])
def test_log_mel_matches_essentia(tmp_path, signal):
    """Our log-mel equals the MTG-Jamendo Essentia chain within 0.05 dB on a 12 kHz file.

    The file is written at 12 kHz so that no resampler is involved; MonoLoader returns
    its samples unchanged. ``demo_track`` is a 3-s track of the demo corpus's first archetype.
    """
    n = int(12000 * 3) + 77
    path = tmp_path / "track.wav"
    sf.write(path, signal(n).astype(np.float32), 12000, subtype="FLOAT")
    expected = essentia_log_mel(path)
    ours, sr = audio.load_audio(path)
    mel_db = audio.log_mel_spectrogram(ours, sr)
    assert mel_db.shape == expected.shape == (96, -(-n // 256) + 1)
    np.testing.assert_allclose(mel_db, expected, atol=0.05)


def test_load_mel_checks_shape_and_values(tmp_path):
    from moodscape.audio import load_mel

    good = tmp_path / "good.npy"
    np.save(good, np.full((96, 64), -40.0))
    assert load_mel(good).dtype == np.float32
    cases = {"shape": np.zeros((40, 64)), "frames": np.zeros((96, 8)), "NaN": np.full((96, 64), np.nan)}
    for reason, array in cases.items():
        np.save(tmp_path / "bad.npy", array)
        with pytest.raises(AudioError, match=reason):
            load_mel(tmp_path / "bad.npy")
    with pytest.raises(AudioError, match="not found"):
        load_mel(tmp_path / "absent.npy")


def demo_music(seconds: float, sr: int, channels: int) -> np.ndarray:
    from moodscape.datasets.demo_synth import draw_track_params, render_track

    return render_track(draw_track_params(3, np.random.default_rng(1)), seconds, sr, channels)


@pytest.mark.parametrize(("suffix", "sr", "channels", "seconds"), [
    ("mp3", 44100, 2, 30.0),   # a MusAV-like preview
    ("flac", 48000, 1, 75.0),  # longer than its crops: most of it is never decoded
    ("wav", 22050, 1, 3.0),    # shorter than the crops: decoded whole
])
def test_mel_crops_from_audio_equal_the_crops_of_the_whole_track(tmp_path, suffix, sr, channels, seconds):
    path = tmp_path / f"track.{suffix}"
    sf.write(path, demo_music(seconds, sr, channels), sr, format=suffix.upper())
    whole = audio.mel_from_audio(path)
    expected = np.stack([audio.crop(whole, start, 256) for start in audio.eval_crop_starts(whole.shape[1], 256, 4)])
    crops, n_frames = audio.mel_crops_from_audio(path, 256, 4)
    assert n_frames == whole.shape[1]
    assert crops.shape == (4, 96, 256) and crops.dtype == np.float32
    # only resampling round-off at the crops' margins differs; below -100 dB (power 1e-5 of
    # full scale, the mels' floor is -200 dB) round-off is relatively large and inaudible
    np.testing.assert_allclose(np.maximum(crops, -100), np.maximum(expected, -100), atol=0.05)


def test_mel_crops_from_audio_rejects_bad_files_like_load_audio(tmp_path):
    broken = tmp_path / "broken.mp3"
    broken.write_bytes(b"not audio")
    with pytest.raises(AudioError, match="broken.mp3"):
        audio.mel_crops_from_audio(broken, 256, 4)
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(48000 * 60, dtype=np.float32), 48000)
    with pytest.raises(AudioError, match="silent"):
        audio.mel_crops_from_audio(silent, 256, 4)


def test_mel_crops_from_the_middle_of_an_mp3_print_no_decoder_errors(tmp_path, capfd):
    path = tmp_path / "demo.mp3"
    sf.write(path, demo_music(20.0, 22050, 1), 22050, format="MP3")  # the demo corpus's format
    whole = audio.mel_from_audio(path)
    crops, _ = audio.mel_crops_from_audio(path, 128, 4)
    expected = np.stack([audio.crop(whole, start, 128) for start in audio.eval_crop_starts(whole.shape[1], 128, 4)])
    np.testing.assert_allclose(np.maximum(crops, -100), np.maximum(expected, -100), atol=0.05)
    assert capfd.readouterr().err == ""
