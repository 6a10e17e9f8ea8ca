"""Decoding, downmix, resampling, STFT and mel-spectrograms: the only module that touches audio.

Every other module receives arrays from here. Decoding uses ``soundfile`` (libsndfile:
WAV, FLAC, OGG/Vorbis/Opus, MP3), resampling uses ``soxr``; nothing here imports librosa,
so a worker process starts fast.

The log-mel spectrogram reproduces the MTG-Jamendo ``scripts/melspectrograms.py`` chain
(Essentia): 12 kHz, frame 512, hop 256, symmetric Hann window (unnormalised), magnitude
spectrum squared, 96 Slaney mel bands over 0–6000 Hz with ``unit_tri`` normalisation and
``linear`` weighting, then ``UnaryOperator(type='lin2db', scale=2)``, i.e.
``20 * log10(max(power, 1e-10))``. Note the factor 20 on a *power* value: the released
``.npy`` files hold twice the usual power decibels, whatever their README says.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from moodscape.errors import AudioError

SILENCE_PEAK = 1e-4
"""Peak amplitude below which a track counts as silent."""

MEL_SR = 12000
MEL_N_FFT = 512
MEL_HOP = 256
MEL_N_BANDS = 96
MEL_FMAX = 6000.0
MEL_AMIN = 1e-10
MEL_DB_SCALE = 20.0
"""MTG-Jamendo mel settings; ``mel_db = MEL_DB_SCALE * log10(max(power, MEL_AMIN))``."""


def load_audio(
    path: str | os.PathLike,
    *,
    sr: float | None = None,
    mono: bool = True,
    min_duration: float = 1.0,
) -> tuple[np.ndarray, int]:
    """Decode an audio file to float32, downmixed and optionally resampled.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file that libsndfile reads (WAV, FLAC, OGG, MP3, ...).
    sr : float, optional
        Target sample rate. ``None`` keeps the file's native rate; a different rate
        resamples with soxr (high quality).
    mono : bool
        Average the channels into one.
    min_duration : float
        Shortest accepted duration in seconds.

    Returns
    -------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples), dtype=float32]
        The signal.
    sr : int
        Its sample rate.

    Raises
    ------
    AudioError
        When the file is missing, unreadable, in an unsupported format, empty, shorter
        than ``min_duration``, silent (peak below 1e-4) or holds NaN/inf samples. The
        message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: audio file not found")
    try:
        data, native_sr = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, sf.SoundFileError, RuntimeError, ValueError, TypeError) as error:
        raise AudioError(f"{path}: cannot decode audio ({error})") from None
    y = _downmix(data) if mono else np.ascontiguousarray(data.T)
    _check_signal(y, native_sr, min_duration, path)
    if sr is not None and round(sr) != native_sr:
        y = resample(y, native_sr, sr)
        native_sr = round(sr)
    return y, int(native_sr)


def _downmix(data: np.ndarray) -> np.ndarray:
    """Average the channels of a (n_samples, n_channels) block into one float32 signal."""
    if data.shape[1] == 1:
        return data[:, 0]
    if data.shape[1] == 2:
        return (data[:, 0] + data[:, 1]) * np.float32(0.5)
    return data.mean(axis=1, dtype=np.float32)


def _check_signal(y: np.ndarray, sr: int, min_duration: float, path: Path) -> None:
    """Raise AudioError when a decoded signal is empty, too short, non-finite or silent."""
    n_samples = y.shape[-1]
    if n_samples == 0:
        raise AudioError(f"{path}: audio file is empty")
    if n_samples < min_duration * sr:
        raise AudioError(
            f"{path}: audio is {n_samples / sr:.2f} s long, shorter than {min_duration:g} s"
        )
    peak = float(max(y.max(), -y.min()))
    if not np.isfinite(peak):
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path}: audio is silent (peak {peak:.1e})")


def resample(y: np.ndarray, orig_sr: float, target_sr: float) -> np.ndarray:
    """Resample a signal with soxr (high quality, linear phase).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,) or (n_channels, n_samples)]
        The signal.
    orig_sr, target_sr : float
        Its rate and the wanted rate.

    Returns
    -------
    np.ndarray [shape=(..., ceil(n_samples * target_sr / orig_sr)), dtype=float32]
    """
    if orig_sr == target_sr:
        return y
    out = soxr.resample(np.ascontiguousarray(y.T), orig_sr, target_sr, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float32)


def decimate_by_mean(y: np.ndarray, factor: int) -> np.ndarray:
    """Downsample by an integer factor, averaging each block of ``factor`` samples.

    A cheap low-pass (boxcar) for analysis, not for listening: about 10x faster than
    soxr, with some aliasing near the new Nyquist frequency.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    factor : int

    Returns
    -------
    np.ndarray [shape=(n_samples // factor,), dtype=float32]
    """
    if factor <= 1:
        return y
    n_blocks = y.shape[-1] // factor
    blocks = y[: n_blocks * factor].reshape(n_blocks, factor)
    if factor == 2:
        return (blocks[:, 0] + blocks[:, 1]) * np.float32(0.5)
    return blocks.mean(axis=1, dtype=np.float32)


def frame_signal(y: np.ndarray, frame_length: int, hop_length: int) -> np.ndarray:
    """Cut a signal into overlapping frames centred at multiples of ``hop_length``.

    Frame ``t`` covers samples ``t * hop_length - frame_length // 2`` onward, zero-padded
    outside the signal; there are ``ceil(n_samples / hop_length) + 1`` frames, as
    Essentia's ``FrameGenerator(startFromZero=False)`` makes them.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    frame_length, hop_length : int

    Returns
    -------
    np.ndarray [shape=(n_frames, frame_length)]
        A read-only strided view of a padded copy.
    """
    n_frames = -(-y.shape[-1] // hop_length) + 1
    left = frame_length // 2
    total = (n_frames - 1) * hop_length + frame_length
    padded = np.zeros(total, dtype=y.dtype)
    padded[left : left + y.shape[-1]] = y[: total - left]
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop_length]


@functools.lru_cache(maxsize=16)
def hann_window(frame_length: int) -> np.ndarray:
    """Symmetric Hann window ``0.5 - 0.5 cos(2 pi n / (N - 1))`` (Essentia's), float32."""
    window = np.hanning(frame_length).astype(np.float32)
    window.flags.writeable = False
    return window


def stft_magnitude(y: np.ndarray, *, n_fft: int, hop_length: int) -> np.ndarray:
    """Magnitude STFT with a Hann window over centred frames (see :func:`frame_signal`).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    n_fft : int
        Frame and FFT length.
    hop_length : int

    Returns
    -------
    S : np.ndarray [shape=(1 + n_fft // 2, n_frames), dtype=float32]
        ``|X|``; frequency of bin ``k`` is ``k * sr / n_fft``.
    """
    frames = frame_signal(np.asarray(y, dtype=np.float32), n_fft, hop_length)
    spectrum = np.fft.rfft(frames * hann_window(n_fft), axis=1)
    return np.abs(spectrum).astype(np.float32, copy=False).T


def fft_frequencies(sr: float, n_fft: int) -> np.ndarray:
    """Centre frequency of each rfft bin, in Hz.

    Returns
    -------
    np.ndarray [shape=(1 + n_fft // 2,)]
    """
    return np.arange(1 + n_fft // 2) * (sr / n_fft)


def hz_to_mel(frequencies: np.ndarray) -> np.ndarray:
    """Slaney mel scale: linear below 1 kHz (3 mel per 200 Hz), logarithmic above."""
    frequencies = np.asarray(frequencies, dtype=np.float64)
    linear = frequencies * 3.0 / 200.0
    log_part = 15.0 + np.log(np.maximum(frequencies, 1e-12) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(frequencies >= 1000.0, log_part, linear)


def mel_to_hz(mels: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    linear = mels * 200.0 / 3.0
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mels - 15.0))
    return np.where(mels >= 15.0, log_part, linear)


def mel_band_edges(n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Frequencies of the ``n_mels + 2`` triangle corners, equally spaced in Slaney mel.

    Band ``m`` rises from ``edges[m]`` to its centre ``edges[m + 1]`` and falls to
    ``edges[m + 2]``.

    Returns
    -------
    np.ndarray [shape=(n_mels + 2,)]
    """
    return mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))


@functools.lru_cache(maxsize=16)
def mel_filterbank(
    sr: float = MEL_SR,
    n_fft: int = MEL_N_FFT,
    n_mels: int = MEL_N_BANDS,
    fmin: float = 0.0,
    fmax: float | None = MEL_FMAX,
) -> np.ndarray:
    """Slaney mel filterbank with Essentia's ``unit_tri`` normalisation and linear weighting.

    Each triangle has height ``2 / (f_high - f_low)``; a bin at exactly a corner
    frequency belongs to the rising side, as in Essentia's ``TriangularBands``.

    Parameters
    ----------
    sr : float
    n_fft : int
    n_mels : int
    fmin, fmax : float
        Band range in Hz; ``fmax=None`` means ``sr / 2``.

    Returns
    -------
    np.ndarray [shape=(n_mels, 1 + n_fft // 2), dtype=float32], read-only
    """
    fmax = sr / 2.0 if fmax is None else fmax
    edges = mel_band_edges(n_mels, fmin, fmax)
    bin_frequencies = fft_frequencies(sr, n_fft)
    low, centre, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bin_frequencies - low) / (centre - low)
    falling = (high - bin_frequencies) / (high - centre)
    weights = np.where(
        bin_frequencies < centre,
        np.where(bin_frequencies >= low, rising, 0.0),
        np.where(bin_frequencies < high, falling, 0.0),
    )
    weights *= 2.0 / (high - low)
    weights = weights.astype(np.float32)
    weights.flags.writeable = False
    return weights


def log_mel_spectrogram(
    y: np.ndarray,
    sr: int = MEL_SR,
    *,
    n_fft: int = MEL_N_FFT,
    hop_length: int = MEL_HOP,
    n_mels: int = MEL_N_BANDS,
    fmax: float = MEL_FMAX,
) -> np.ndarray:
    """Log-mel spectrogram as in the MTG-Jamendo ``.npy`` files (module docstring).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        A mono signal at ``sr``; use ``load_audio(path, sr=12000)`` for the dataset's
        setting.
    sr : int
    n_fft, hop_length, n_mels : int
    fmax : float

    Returns
    -------
    mel_db : np.ndarray [shape=(n_mels, ceil(n_samples / hop_length) + 1), dtype=float32]
        ``20 * log10(max(mel_power, 1e-10))``.
    """
    magnitude = stft_magnitude(y, n_fft=n_fft, hop_length=hop_length)
    mel_power = mel_filterbank(sr, n_fft, n_mels, 0.0, fmax) @ (magnitude * magnitude)
    return power_to_db(mel_power, scale=MEL_DB_SCALE)


def power_to_db(power: np.ndarray, *, scale: float = 10.0, amin: float = MEL_AMIN) -> np.ndarray:
    """``scale * log10(max(power, amin))`` in float32 (Essentia's ``lin2db`` times scale/10)."""
    return (scale * np.log10(np.maximum(power, np.float32(amin)))).astype(np.float32, copy=False)


def load_mel(path: str | os.PathLike, *, n_mels: int = MEL_N_BANDS, min_frames: int = 32) -> np.ndarray:
    """Read a precomputed MTG-Jamendo mel-spectrogram ``.npy`` file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file holding a float array of shape (n_mels, frames).
    n_mels : int
        Expected number of mel bands.
    min_frames : int
        Fewest frames accepted (32 frames are 0.7 s at 12 kHz, hop 256).

    Returns
    -------
    mel_db : np.ndarray [shape=(n_mels, frames), dtype=float32]

    Raises
    ------
    AudioError
        When the file is missing or unreadable, has another shape, too few frames, or
        non-finite values.
    """
    path = Path(path)
    try:
        mel_db = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise AudioError(f"{path}: mel file not found") from None
    except (OSError, ValueError) as exc:
        raise AudioError(f"{path}: cannot read mel file ({exc})") from None
    if mel_db.ndim != 2 or mel_db.shape[0] != n_mels:
        raise AudioError(f"{path}: expected a ({n_mels}, frames) mel array, got shape {mel_db.shape}")
    if mel_db.shape[1] < min_frames:
        raise AudioError(f"{path}: only {mel_db.shape[1]} frames, fewer than {min_frames}")
    if not np.isfinite(mel_db).all():
        raise AudioError(f"{path}: mel array has NaN or infinite values")
    return mel_db.astype(np.float32, copy=False)


def mel_from_audio(path: str | os.PathLike, *, min_duration: float = 1.0) -> np.ndarray:
    """Decode an audio file and compute its MTG-Jamendo-style log-mel spectrogram.

    Returns
    -------
    mel_db : np.ndarray [shape=(96, frames), dtype=float32]
        Equal, for the same audio, to the dataset's own ``.npy`` files (see module docstring).
    """
    y, sr = load_audio(path, sr=MEL_SR, min_duration=min_duration)
    return log_mel_spectrogram(y, sr)
