"""The spectral-shape features follow librosa's definitions, checked on the same spectrogram.

``moodscape.features`` computes them from one shared STFT (faster than librosa's separate
calls, see ``bench/bench_features.py``); each function must still give what
``librosa.feature.*(S=...)`` gives, since the docs say it follows librosa.
"""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from moodscape.features import (
    CONTRAST_FMIN,
    N_CONTRAST_BANDS,
    spectral_centroid_bandwidth,
    spectral_contrast,
    spectral_flatness,
    spectral_rolloff,
)


@pytest.fixture(params=[(22050, 2048), (16000, 1024), (44100, 4096)], ids=lambda p: f"{p[0]}Hz")
def spectrogram(request):
    """A magnitude spectrogram of a tone, a chord of partials and noise, at three rates and FFT sizes."""
    sr, n_fft = request.param
    t = np.arange(3 * sr) / sr
    rng = np.random.default_rng(sr)
    y = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate((220.0, 440.0, 660.0, 1320.0, 3100.0), 1))
    y = (y + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    S = np.abs(librosa.stft(y, n_fft=n_fft, hop_length=512))
    return S, librosa.fft_frequencies(sr=sr, n_fft=n_fft), sr, n_fft


def test_centroid_and_bandwidth(spectrogram):
    S, freqs, sr, n_fft = spectrogram
    centroid, bandwidth = spectral_centroid_bandwidth(S, freqs)
    np.testing.assert_allclose(centroid, librosa.feature.spectral_centroid(S=S, sr=sr, n_fft=n_fft)[0], rtol=1e-5)
    np.testing.assert_allclose(bandwidth, librosa.feature.spectral_bandwidth(S=S, sr=sr, n_fft=n_fft)[0], rtol=1e-5)


def test_rolloff(spectrogram):
    S, freqs, sr, n_fft = spectrogram
    np.testing.assert_allclose(spectral_rolloff(S, freqs), librosa.feature.spectral_rolloff(S=S, sr=sr, n_fft=n_fft)[0])


def test_flatness(spectrogram):
    S, *_ = spectrogram
    np.testing.assert_allclose(spectral_flatness(S * S), librosa.feature.spectral_flatness(S=S)[0], rtol=1e-4)


def test_contrast_in_every_band(spectrogram):
    """The band counted for the 2 % quantile includes its top bin, as librosa counts it (band 3 was 8 dB off)."""
    S, freqs, sr, n_fft = spectrogram
    expected = librosa.feature.spectral_contrast(S=S, sr=sr, n_fft=n_fft, fmin=CONTRAST_FMIN, n_bands=N_CONTRAST_BANDS)
    np.testing.assert_allclose(spectral_contrast(S, freqs), expected, atol=1e-3)  # dB; float32 rounding only
