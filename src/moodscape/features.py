"""Stage 1a: one row of hand-crafted acoustic features per track.

A track is decoded once, downmixed and resampled once with soxr
(:func:`moodscape.audio.load_audio`) to the **analysis rate** :data:`ANALYSIS_SR` = 8 kHz,
whatever its own rate (files below it are upsampled). 8 kHz is the lowest rate supported,
so every feature is defined on the 0–4 kHz band that every file has, and on frames of
fixed duration: none moves with the file's rate (tested from 8 to 96 kHz). The signal is
then analysed with ONE STFT (Hann, :data:`N_FFT` = 96 ms, hop :data:`HOP_LENGTH` = 24 ms),
computed in cache-sized blocks by :func:`project_stft`: every frame's power goes through
one stacked filterbank (mel, chroma, Parseval), and the magnitude ``S`` of every 8th frame
(non-overlapping frames) feeds the spectral-shape features. Like librosa's, each feature
function takes the precomputed ``S`` (or its power / mel projection). Per-frame values
are summarised by their mean (and std where named).

Columns (:data:`FEATURE_NAMES`, in order):

``bpm``
    Tempo from the autocorrelation of the onset envelope with a log-normal prior
    around 120 BPM (one octave wide), refined to sub-frame precision.
``spectral_centroid_mean``, ``spectral_centroid_std``
    Magnitude-weighted mean frequency per frame, Hz.
``spectral_rolloff_mean``
    Frequency below which 85 % of a frame's magnitude lies, Hz.
``spectral_bandwidth_mean``
    Magnitude-weighted standard deviation of frequency around the centroid, Hz.
``spectral_flatness_mean``
    Geometric over arithmetic mean of the power spectrum (0 tonal … 1 noise).
``spectral_contrast_mean_0`` … ``_6``
    Peak-to-valley level difference in dB (top vs bottom 2 % of bins) in 7 bands:
    0–100 Hz, then octaves 100–200, …, 1.6–3.2 kHz, 3.2–4 kHz (librosa's definition
    with ``fmin`` = 100 Hz).
``zcr_mean``
    Zero crossings of the 0–4 kHz signal per second / 22050 (librosa's per-sample
    rate at 22.05 kHz).
``rms_mean``, ``rms_std``
    Frame RMS amplitude (Hann-weighted, full scale = 1), from the power spectrum.
``onset_rate``
    Onsets per second, from peaks of the onset envelope.
``mfcc_mean_0`` … ``_12``
    Mean MFCCs: DCT-II (orthonormal) of the 40-band Slaney log-mel power (dB, 0–4 kHz)
    of each frame, averaged (computed as the DCT of the mean log-mel, which is the same).
``chroma_degree_0`` … ``_11``
    Mean chroma, each frame normalised to max 1, rotated so that degree 0 is the estimated
    key's tonic (degree 7 its fifth): a transposed song keeps its columns, because the
    key of a song says nothing about its mood. Pitch classes assume A = 440 Hz (no tuning
    estimation). With absolute pitch classes, the demo's K scan split one archetype by key
    and chose K = 7 or 8 for six planted archetypes on three seeds; relative to the tonic
    it chooses 6 on all three.
``mode_major``
    1.0 when the mean chroma correlates best with a Krumhansl–Kessler major key
    profile (the key whose tonic is degree 0), 0.0 for minor.
``key_strength``
    That best Pearson correlation (−1 … 1).
``loudness_db``
    Track level, 10·log10 of the mean frame power, dBFS.
``dynamic_complexity``
    Mean absolute deviation of the frame level (dB) from its mean, over frames within
    60 dB of the loudest (after Essentia's descriptor of that name).
``spectral_flux_mean``
    Mean of the onset envelope: positive log-mel difference between frames, dB.

A valid track never yields NaN or infinity; a bad file raises
:class:`~moodscape.errors.AudioError`. :func:`features_from_mel` derives the same
columns, where possible, from a 96-band dB mel-spectrogram (MTG-Jamendo ``.npy``).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter1d, maximum_filter1d, uniform_filter1d

from moodscape import audio

ANALYSIS_SR = 8000
"""Every track is resampled to this rate before analysis: the lowest supported rate, so
every feature lies in the 0–4 kHz band all files have."""
N_FFT = 768
"""96 ms frames at :data:`ANALYSIS_SR` (2^8 · 3 points: an FFT as fast as a power of two)."""
HOP_LENGTH = N_FFT // 4
ZCR_UNIT_SR = 22050
"""``zcr_mean`` is crossings per second divided by this (librosa's scale at 22.05 kHz)."""

N_MFCC = 13
N_CHROMA = 12
N_CONTRAST_BANDS = 6
CONTRAST_FMIN = 100.0
N_ANALYSIS_MELS = 40
STFT_BLOCK_FRAMES = 128
SHAPE_FRAME_STEP = 8
"""Spectral-shape features (centroid, bandwidth, rolloff, flatness, contrast) use every
8th frame: with hop = n_fft / 4 these are non-overlapping frames covering half of the
track evenly, at an eighth of the cost; rhythm, level, MFCC and chroma use every frame."""
TOP_DB = 80.0

FEATURE_NAMES: list[str] = [
    "bpm",
    "spectral_centroid_mean",
    "spectral_centroid_std",
    "spectral_rolloff_mean",
    "spectral_bandwidth_mean",
    "spectral_flatness_mean",
    *(f"spectral_contrast_mean_{i}" for i in range(N_CONTRAST_BANDS + 1)),
    "zcr_mean",
    "rms_mean",
    "rms_std",
    "onset_rate",
    *(f"mfcc_mean_{i}" for i in range(N_MFCC)),
    *(f"chroma_degree_{i}" for i in range(N_CHROMA)),
    "mode_major",
    "key_strength",
    "loudness_db",
    "dynamic_complexity",
    "spectral_flux_mean",
]
"""The feature columns, in table order."""

FEATURE_WORDS: dict[str, tuple[str, str, str]] = {
    "bpm": ("tempo", "Slow", "Fast"),
    "onset_rate": ("attack", "Smooth", "Percussive"),
    "spectral_flux_mean": ("attack", "Smooth", "Percussive"),
    "spectral_centroid_mean": ("brightness", "Dark", "Bright"),
    "spectral_rolloff_mean": ("brightness", "Dark", "Bright"),
    "mfcc_mean_1": ("brightness", "Bright", "Dark"),  # a high c1 is energy in the low bands
    "zcr_mean": ("brightness", "Dark", "Bright"),
    "spectral_centroid_std": ("timbre change", "Steady", "Shifting"),
    "spectral_flatness_mean": ("texture", "Clean", "Noisy"),
    **{f"spectral_contrast_mean_{i}": ("texture", "Dense", "Clear") for i in range(N_CONTRAST_BANDS + 1)},
    "rms_mean": ("level", "Quiet", "Loud"),
    "loudness_db": ("level", "Quiet", "Loud"),
    "rms_std": ("dynamics", "Even", "Dynamic"),
    "dynamic_complexity": ("dynamics", "Even", "Dynamic"),
    "mode_major": ("mode", "Minor", "Major"),
    "key_strength": ("tonality", "Atonal", "Tonal"),
}
"""Plain words for a feature well below or above the collection: ``{name: (quality, low, high)}``.

Stage 2 names a cluster without a distinctive tag from them (:mod:`moodscape.acoustic_names`);
features of one quality give a name one word at most. Columns with no plain meaning (the
bandwidth, MFCCs but the spectral-slope term ``mfcc_mean_1``, single chroma bins) have none."""

# Krumhansl & Kessler (1982) key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])

_TINY = np.float32(1e-10)


# --------------------------------------------------------------------------- track level


def extract_features(path: str | os.PathLike, *, min_duration: float = 1.0) -> dict[str, float]:
    """Decode one track, resample it to :data:`ANALYSIS_SR` and compute every column of :data:`FEATURE_NAMES`.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file, at any sample rate.
    min_duration : float
        Shortest accepted track, seconds.

    Returns
    -------
    dict[str, float]
        One finite value per feature name, in :data:`FEATURE_NAMES` order.

    Raises
    ------
    AudioError
        The file is missing, unreadable, too short or silent, or a feature is not finite.
    """
    y, sr = audio.load_audio(path, min_duration=min_duration)
    return features_from_decoded(y, sr, path)


def features_from_decoded(y: np.ndarray, sr: int, path: str | os.PathLike) -> dict[str, float]:
    """The features of :func:`extract_features` from a signal :func:`~moodscape.audio.load_audio` decoded at the file's rate.

    The signal is resampled once to :data:`ANALYSIS_SR` (:func:`features_from_signal`).

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
        The mono signal.
    sr : int
        Its sample rate.
    path : str or os.PathLike
        The file it came from, named in an error.

    Raises
    ------
    AudioError
        When a feature is not finite.
    """
    return require_finite_features(features_from_signal(y, sr), path, samples=y)


def require_finite_features(
    row: dict[str, float],
    path: str | os.PathLike,
    *,
    samples: np.ndarray | None = None,
    allowed_nan: frozenset[str] = frozenset(),
) -> dict[str, float]:
    """Return a feature row if every value is finite (or NaN where ``allowed_nan`` says so).

    Parameters
    ----------
    row : dict[str, float]
        Features of the track at ``path``.
    path : str or os.PathLike
        The file they come from, named in the message.
    samples : np.ndarray, optional
        The decoded signal, whose peak the message names.
    allowed_nan : frozenset of str
        Columns that may be NaN (those :func:`features_from_mel` cannot resolve).

    Raises
    ------
    AudioError
        Naming the columns that are NaN or infinite.
    """
    bad = [name for name, value in row.items() if not np.isfinite(value) and not (name in allowed_nan and np.isnan(value))]
    if bad:
        shown = ", ".join(bad[:4]) + (f" and {len(bad) - 4} more" if len(bad) > 4 else "")
        raise audio.non_finite_error(f"feature row ({shown})", path, samples)
    return row


def features_from_signal(y: np.ndarray, sr: float) -> dict[str, float]:
    """Compute every column of :data:`FEATURE_NAMES` from a mono signal at any rate.

    The signal is resampled to :data:`ANALYSIS_SR` first, as :func:`extract_features` does.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Mono float signal.
    sr : float
        Its sample rate.

    Returns
    -------
    dict[str, float]
    """
    return features_at_rate(audio.resample(np.asarray(y, dtype=np.float32), sr, ANALYSIS_SR), ANALYSIS_SR)


def features_at_rate(y: np.ndarray, sr: float, *, n_fft: int | None = None) -> dict[str, float]:
    """Compute every column of :data:`FEATURE_NAMES` from a signal at its own rate.

    At :data:`ANALYSIS_SR` (the default frame length is :data:`N_FFT` there) this is the
    feature definition; at another rate the band and frames follow that rate, so the
    values are not comparable. Other rates serve benchmarks of earlier analysis chains.

    Parameters
    ----------
    y, sr
        As :func:`features_from_signal`.
    n_fft : int, optional
        Frame length; by default ~96 ms (:func:`analysis_frame_length`). Hop: ``n_fft // 4``.
    """
    y = np.asarray(y, dtype=np.float32)
    n_fft = n_fft or analysis_frame_length(sr)
    hop_length = n_fft // 4
    frame_rate = sr / hop_length
    projected, sparse_S = project_stft(
        y,
        n_fft=n_fft,
        hop_length=hop_length,
        filterbank=analysis_filterbank(sr, n_fft),
        keep_every=SHAPE_FRAME_STEP,
    )
    freqs = audio.fft_frequencies(sr, n_fft)
    log_mel = log_power(projected[:N_ANALYSIS_MELS])
    chroma = projected[N_ANALYSIS_MELS : N_ANALYSIS_MELS + N_CHROMA]
    rms = np.sqrt(projected[-1], dtype=np.float64)

    centroid, bandwidth = spectral_centroid_bandwidth(sparse_S, freqs)
    onset_env = onset_strength(log_mel)
    pitch_classes = chroma_mean(chroma)
    tonic, mode_major, key_strength = estimate_key(pitch_classes)

    columns: dict[str, float] = {
        "bpm": estimate_tempo(onset_env, frame_rate),
        "spectral_centroid_mean": centroid.mean(),
        "spectral_centroid_std": centroid.std(),
        "spectral_rolloff_mean": spectral_rolloff(sparse_S, freqs).mean(),
        "spectral_bandwidth_mean": bandwidth.mean(),
        "spectral_flatness_mean": spectral_flatness(sparse_S * sparse_S).mean(),
        **_indexed("spectral_contrast_mean", spectral_contrast(sparse_S, freqs).mean(axis=1)),
        "zcr_mean": zero_crossing_rate(y, sr),
        "rms_mean": rms.mean(),
        "rms_std": rms.std(),
        "onset_rate": onset_rate(onset_env, frame_rate),
        **_indexed("mfcc_mean", mfcc_from_log_mel(log_mel.mean(axis=1))),
        **_indexed("chroma_degree", np.roll(pitch_classes, -tonic)),
        "mode_major": mode_major,
        "key_strength": key_strength,
        **level_features(rms),
        "spectral_flux_mean": onset_env.mean(),
    }
    return {name: float(columns[name]) for name in FEATURE_NAMES}


def _indexed(prefix: str, values: np.ndarray) -> dict[str, float]:
    return {f"{prefix}_{i}": value for i, value in enumerate(values)}


# --------------------------------------------------------------------------- spectra


def analysis_frame_length(sr: float) -> int:
    """FFT length of ~96 ms frames at ``sr``: :data:`N_FFT` at :data:`ANALYSIS_SR`, else a multiple of 4 near it."""
    return N_FFT if sr == ANALYSIS_SR else 4 * max(1, round(N_FFT * sr / ANALYSIS_SR / 4))


def project_stft(
    y: np.ndarray, *, n_fft: int, hop_length: int, filterbank: np.ndarray, keep_every: int
) -> tuple[np.ndarray, np.ndarray]:
    """One STFT pass: filterbank projections of every frame's power, and sparse magnitudes.

    Same framing and window as :func:`moodscape.audio.stft_magnitude`. Frames are
    transformed in cache-sized blocks; each block's power spectrum is projected at once,
    and only the magnitude of every ``keep_every``-th frame is kept, so the full
    spectrogram never goes to memory.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
    n_fft, hop_length : int
    filterbank : np.ndarray [shape=(n_rows, 1 + n_fft // 2)]
        Applied to the power spectrum ``|X|²``.
    keep_every : int
        Spacing of the frames whose magnitude is returned; divides the block size.

    Returns
    -------
    projected : np.ndarray [shape=(n_rows, n_frames), dtype=float32]
        ``filterbank @ |X|²``.
    S : np.ndarray [shape=(1 + n_fft // 2, n_kept), dtype=float32]
        ``|X|`` of every ``keep_every``-th frame, from the first frame that starts inside
        the signal to the last that ends inside it (zero padding at the edges would
        add leakage).
    """
    frames = audio.frame_signal(y, n_fft, hop_length)
    n_frames = frames.shape[0]
    window = audio.hann_window(n_fft)
    projected = np.empty((n_frames, filterbank.shape[0]), dtype=np.float32)
    first_kept = min(n_fft // (2 * hop_length), keep_every - 1)  # first frame free of padding
    kept = np.empty((-(-(n_frames - first_kept) // keep_every), 1 + n_fft // 2), np.float32)
    windowed = np.empty((STFT_BLOCK_FRAMES, n_fft), dtype=np.float32)
    for start in range(0, n_frames, STFT_BLOCK_FRAMES):  # blocks stay in cache
        block = frames[start : start + STFT_BLOCK_FRAMES]
        size = block.shape[0]
        np.multiply(block, window, out=windowed[:size])
        magnitude = np.abs(scipy.fft.rfft(windowed[:size], axis=1, overwrite_x=True))
        kept[start // keep_every : -(-(start + size) // keep_every)] = magnitude[
            first_kept::keep_every
        ]
        np.matmul(magnitude * magnitude, filterbank.T, out=projected[start : start + size])
    inside = (np.arange(kept.shape[0]) * keep_every + first_kept) * hop_length + n_fft // 2
    return projected.T, kept[: max(1, np.count_nonzero(inside <= y.shape[-1]))].T


@functools.lru_cache(maxsize=16)
def analysis_filterbank(sr: float, n_fft: int) -> np.ndarray:
    """Mel, chroma and mean-square projections of a power spectrum, stacked for one matmul.

    Rows: 40 Slaney mel bands over 0–Nyquist (``unit_tri``), 12 chroma bins
    (:func:`chroma_filterbank`), and one Parseval row giving the Hann-weighted mean
    square of the frame, ``sum((x w)^2) / sum(w^2)``.

    Returns
    -------
    np.ndarray [shape=(40 + 12 + 1, 1 + n_fft // 2), dtype=float32]
    """
    mel = audio.mel_filterbank(sr, n_fft, N_ANALYSIS_MELS, 0.0, None)
    parseval = np.full(1 + n_fft // 2, 2.0)
    parseval[[0, -1]] = 1.0
    parseval /= n_fft * np.sum(audio.hann_window(n_fft).astype(np.float64) ** 2)
    bank = np.vstack([mel, chroma_filterbank(sr, n_fft), parseval]).astype(np.float32)
    bank.flags.writeable = False
    return bank


@functools.lru_cache(maxsize=16)
def chroma_filterbank(sr: float, n_fft: int, fmin: float = 50.0, fmax: float = 5000.0) -> np.ndarray:
    """Map STFT bins to the 12 pitch classes (C first, A = 440 Hz).

    Each bin between ``fmin`` and ``fmax`` spreads its power over pitch classes with a
    Gaussian in semitones, at least as wide as the bin itself, weighted by a Gaussian
    over octaves centred on C5 (two octaves wide), as librosa's ``filters.chroma``.

    Returns
    -------
    np.ndarray [shape=(12, 1 + n_fft // 2), dtype=float32]
    """
    freqs = audio.fft_frequencies(sr, n_fft)
    usable = (freqs >= fmin) & (freqs <= min(fmax, sr / 2))
    semitones = 12.0 * np.log2(np.maximum(freqs, 1e-3) / 440.0) + 69.0  # MIDI number
    bin_width = 12.0 * np.log2(1.0 + (sr / n_fft) / np.maximum(freqs, 1e-3))
    sigma = np.maximum(0.5, bin_width / 2.0)
    distance = (semitones[None, :] - np.arange(N_CHROMA)[:, None] + 6.0) % 12.0 - 6.0
    weights = np.exp(-0.5 * (distance / sigma) ** 2)
    weights /= weights.sum(axis=0, keepdims=True)
    octave_weight = np.exp(-0.5 * ((semitones / 12.0 - 6.0) / 2.0) ** 2)  # C5 = MIDI 72
    return (weights * octave_weight * usable).astype(np.float32)


def log_power(power: np.ndarray, top_db: float = TOP_DB) -> np.ndarray:
    """``10·log10`` of a power array, floored ``top_db`` below its maximum (librosa's)."""
    db = 10.0 * np.log10(np.maximum(power, _TINY))
    return np.maximum(db, db.max() - top_db)


# --------------------------------------------------------------------------- spectral shape


def spectral_centroid_bandwidth(S: np.ndarray, freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectral centroid and bandwidth (p = 2) of each frame.

    Parameters
    ----------
    S : np.ndarray [shape=(n_bins, n_frames)]
        Magnitude spectrogram.
    freqs : np.ndarray [shape=(n_bins,)]
        Bin frequencies, Hz.

    Returns
    -------
    centroid, bandwidth : np.ndarray [shape=(n_frames,)]
        Hz; silent frames give 0.
    """
    moments = np.vstack([np.ones_like(freqs), freqs, freqs**2]).astype(np.float32) @ S
    total = moments[0] + _TINY
    centroid = moments[1] / total
    variance = np.maximum(moments[2] / total - centroid**2, 0.0)
    return centroid.astype(np.float64), np.sqrt(variance, dtype=np.float64)


def spectral_rolloff(S: np.ndarray, freqs: np.ndarray, roll_percent: float = 0.85) -> np.ndarray:
    """Frequency below which ``roll_percent`` of each frame's magnitude lies.

    Returns
    -------
    np.ndarray [shape=(n_frames,)]
        Hz.
    """
    cumulative = np.cumsum(S, axis=0)
    threshold = roll_percent * cumulative[-1]
    index = np.count_nonzero(cumulative < threshold, axis=0)
    return freqs[np.minimum(index, freqs.size - 1)]


def spectral_flatness(power: np.ndarray) -> np.ndarray:
    """Geometric over arithmetic mean of each frame's power spectrum.

    Returns
    -------
    np.ndarray [shape=(n_frames,)]
        In (0, 1].
    """
    floored = np.maximum(power, _TINY)
    geometric = np.exp(np.log(floored).mean(axis=0))
    return geometric / floored.mean(axis=0)


def spectral_contrast(
    S: np.ndarray,
    freqs: np.ndarray,
    *,
    n_bands: int = N_CONTRAST_BANDS,
    fmin: float = CONTRAST_FMIN,
    quantile: float = 0.02,
) -> np.ndarray:
    """Spectral contrast in octave bands (librosa's band layout and quantiles).

    Parameters
    ----------
    S : np.ndarray [shape=(n_bins, n_frames)]
        Magnitude spectrogram.
    freqs : np.ndarray [shape=(n_bins,)]
    n_bands : int
        Octave bands above ``fmin``; one more band covers 0–``fmin``.
    fmin : float
    quantile : float
        Share of a band's bins averaged for its peak and for its valley.

    Returns
    -------
    np.ndarray [shape=(n_bands + 1, n_frames)]
        ``10·log10(peak) - 10·log10(valley)`` per band, dB; 0 for an empty band.
    """
    edges = np.concatenate([[0.0], fmin * 2.0 ** np.arange(n_bands + 1)])
    frames_first = np.ascontiguousarray(S.T)
    contrast = np.zeros((n_bands + 1, S.shape[1]))
    for band in range(n_bands + 1):
        rows = _contrast_band_bins(freqs, edges, band, n_bands)
        if rows.stop - rows.start < 1:
            continue
        sub_band = frames_first[:, rows]
        n = sub_band.shape[1]
        # librosa counts the band with its top bin, which it then leaves out of the band below the last
        k = max(1, int(np.rint(quantile * (n + (band < n_bands)))))
        ordered = np.sort(sub_band, axis=1)
        valley = ordered[:, :k].mean(axis=1)
        peak = ordered[:, n - k :].mean(axis=1)
        contrast[band] = 10.0 * (
            np.log10(np.maximum(peak, _TINY)) - np.log10(np.maximum(valley, _TINY))
        )
    return contrast


def _contrast_band_bins(freqs: np.ndarray, edges: np.ndarray, band: int, n_bands: int) -> slice:
    """Bin range of one contrast band, with librosa's one-bin overlaps."""
    inside = np.flatnonzero((freqs >= edges[band]) & (freqs <= edges[band + 1]))
    if inside.size == 0:
        return slice(0, 0)
    start = max(inside[0] - 1, 0) if band > 0 else inside[0]
    stop = freqs.size if band == n_bands else inside[-1]
    return slice(int(start), int(stop))


# --------------------------------------------------------------------------- time domain


def zero_crossing_rate(y: np.ndarray, sr: float) -> float:
    """Sign changes per second divided by :data:`ZCR_UNIT_SR` (librosa's per-sample rate at 22.05 kHz)."""
    negative = np.signbit(y)
    crossings = np.count_nonzero(negative[1:] != negative[:-1])
    return crossings * sr / max(y.size - 1, 1) / ZCR_UNIT_SR


def level_features(rms: np.ndarray) -> dict[str, float]:
    """``loudness_db`` and ``dynamic_complexity`` from frame RMS.

    Hann windows at hop n_fft / 4 weight every sample equally, so the mean frame power
    is the track's mean power.
    """
    mean_power = float(np.mean(rms * rms))
    return {
        "loudness_db": 10.0 * np.log10(mean_power + 1e-20),
        "dynamic_complexity": dynamic_complexity(20.0 * np.log10(rms + 1e-10)),
    }


def dynamic_complexity(frame_db: np.ndarray, floor_db: float = 60.0) -> float:
    """Mean absolute deviation of frame levels (dB) within ``floor_db`` of the loudest."""
    audible = frame_db[frame_db >= frame_db.max() - floor_db]
    return float(np.mean(np.abs(audible - audible.mean())))


# --------------------------------------------------------------------------- rhythm


def onset_strength(log_mel: np.ndarray) -> np.ndarray:
    """Spectral-flux onset envelope: mean over bands of the positive log-mel increase.

    Parameters
    ----------
    log_mel : np.ndarray [shape=(n_mels, n_frames)]
        Log-mel power, dB.

    Returns
    -------
    np.ndarray [shape=(n_frames,)]
        Aligned with the frames; the first value is 0.
    """
    rise = np.maximum(np.diff(log_mel, axis=1), 0.0).mean(axis=0)
    return np.concatenate([[0.0], rise])


def estimate_tempo(
    onset_env: np.ndarray,
    frame_rate: float,
    *,
    start_bpm: float = 120.0,
    std_octaves: float = 1.0,
    bpm_range: tuple[float, float] = (30.0, 300.0),
) -> float:
    """Tempo from the autocorrelation of the onset envelope.

    The lag maximising ``log1p(1e6·r) + prior`` (``r``: normalised autocorrelation of
    the envelope smoothed over ±1 frame; prior: log-normal around ``start_bpm``, as
    librosa's) is refined by parabolic interpolation and by the matching peaks at 2–4
    times the lag.

    Parameters
    ----------
    onset_env : np.ndarray [shape=(n_frames,)]
    frame_rate : float
        Envelope frames per second.
    start_bpm, std_octaves : float
        Centre and width (octaves) of the prior.
    bpm_range : tuple of float
        Tempi considered.

    Returns
    -------
    float
        BPM; ``start_bpm`` when the envelope has no periodicity.
    """
    # smoothing keeps a period that falls between two frames from splitting its peak
    ac = autocorrelation(gaussian_filter1d(onset_env, 1.0))
    min_lag = max(1, int(np.ceil(60.0 * frame_rate / bpm_range[1])))
    max_lag = min(ac.size - 2, int(np.floor(60.0 * frame_rate / bpm_range[0])))
    if max_lag <= min_lag or ac[0] <= 0:
        return start_bpm
    lags = np.arange(min_lag, max_lag + 1)
    prior = -0.5 * ((np.log2(60.0 * frame_rate / lags) - np.log2(start_bpm)) / std_octaves) ** 2
    best = lags[np.argmax(np.log1p(1e6 * np.maximum(ac[lags], 0.0)) + prior)]
    period = _refine_period(ac, int(best))
    return float(60.0 * frame_rate / period)


def autocorrelation(x: np.ndarray) -> np.ndarray:
    """Autocorrelation of a mean-removed sequence, normalised so lag 0 is 1 (0 if flat)."""
    x = np.asarray(x, dtype=np.float64) - np.mean(x)
    n_fft = 1 << int(np.ceil(np.log2(2 * x.size - 1)))
    spectrum = scipy.fft.rfft(x, n_fft)
    ac = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n_fft)[: x.size]
    return ac / ac[0] if ac[0] > 0 else np.zeros_like(ac)


def _refine_period(ac: np.ndarray, lag: int, max_multiple: int = 4) -> float:
    """Sub-frame period from the peaks of ``ac`` near ``k·lag`` for k = 1 … max_multiple.

    The estimate from the highest multiple whose peak is a true local maximum is used,
    as its error is divided by k.
    """
    period = _parabolic_peak(ac, lag)
    for multiple in range(2, max_multiple + 1):
        centre = int(round(multiple * period))
        if centre + 2 >= ac.size:
            break
        peak = centre - 1 + int(np.argmax(ac[centre - 1 : centre + 2]))
        if not ac[peak - 1] <= ac[peak] >= ac[peak + 1]:
            break
        period = _parabolic_peak(ac, peak) / multiple
    return period


def _parabolic_peak(values: np.ndarray, index: int) -> float:
    """Vertex of the parabola through a local maximum and its neighbours (±0.5 at most)."""
    if index <= 0 or index >= values.size - 1:
        return float(index)
    left, centre, right = values[index - 1], values[index], values[index + 1]
    curvature = left - 2.0 * centre + right
    if curvature >= 0:
        return float(index)
    return index + float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))


def onset_rate(
    onset_env: np.ndarray, frame_rate: float, *, delta: float = 0.07, wait_s: float = 0.07
) -> float:
    """Onsets per second: local maxima of the normalised envelope above a moving mean.

    A frame is an onset when it is the largest within ``±wait_s`` and exceeds the
    mean of the surrounding ±0.23 s by ``delta`` (envelope scaled to max 1).

    Returns
    -------
    float
    """
    peak_value = onset_env.max()
    if peak_value <= 0:
        return 0.0
    env = onset_env / peak_value
    half_wait = max(1, int(round(wait_s * frame_rate)))
    local_max = maximum_filter1d(env, 2 * half_wait + 1, mode="constant")
    local_mean = uniform_filter1d(env, 2 * int(round(0.23 * frame_rate)) + 1, mode="constant")
    onsets = (env >= local_max) & (env > local_mean + delta)
    return float(np.count_nonzero(onsets) * frame_rate / env.size)


# --------------------------------------------------------------------------- timbre, tonality


def mfcc_from_log_mel(log_mel: np.ndarray, n_mfcc: int = N_MFCC) -> np.ndarray:
    """MFCCs as the orthonormal DCT-II of log-mel power over the band axis.

    Parameters
    ----------
    log_mel : np.ndarray [shape=(n_mels, ...)]
        dB; the DCT is linear, so the mean over frames commutes with it.

    Returns
    -------
    np.ndarray [shape=(n_mfcc, ...)]
    """
    return scipy.fft.dct(log_mel, type=2, norm="ortho", axis=0)[:n_mfcc]


def chroma_mean(chroma_power: np.ndarray) -> np.ndarray:
    """Mean over frames of chroma normalised to max 1 per frame.

    Parameters
    ----------
    chroma_power : np.ndarray [shape=(12, n_frames)]

    Returns
    -------
    np.ndarray [shape=(12,)]
    """
    return (chroma_power / (chroma_power.max(axis=0) + _TINY)).mean(axis=1)


def estimate_key(chroma: np.ndarray) -> tuple[int, float, float]:
    """Tonic, major/minor mode and key strength by Krumhansl–Schmuckler profile correlation.

    Parameters
    ----------
    chroma : np.ndarray [shape=(12,)]
        Pitch-class profile, C first.

    Returns
    -------
    tonic : int
        Pitch class of the best-correlated key's tonic (0 = C); 0 for a flat profile.
    mode_major : float
        1.0 if the best-correlated of the 24 key profiles is major, else 0.0.
    key_strength : float
        That correlation; 0.0 for a flat profile.
    """
    profiles = key_profiles()
    centred = chroma - chroma.mean()
    norm = np.linalg.norm(centred)
    if norm < 1e-9:
        return 0, 1.0, 0.0
    correlations = profiles @ (centred / norm)
    best = int(np.argmax(correlations))
    return best % N_CHROMA, float(best < N_CHROMA), float(correlations[best])


@functools.lru_cache(maxsize=1)
def key_profiles() -> np.ndarray:
    """The 24 centred, unit-norm key profiles: 12 major keys (C…B), then 12 minor.

    Returns
    -------
    np.ndarray [shape=(24, 12)]
    """
    rows = [np.roll(profile, tonic) for profile in (MAJOR_PROFILE, MINOR_PROFILE) for tonic in range(12)]
    profiles = np.array(rows) - np.mean(rows, axis=1, keepdims=True)
    return profiles / np.linalg.norm(profiles, axis=1, keepdims=True)


# --------------------------------------------------------------------------- from mel


MEL_UNRESOLVED = frozenset(
    ["zcr_mean", *(f"chroma_degree_{i}" for i in range(N_CHROMA)), "mode_major", "key_strength"]
)
"""The columns :func:`features_from_mel` leaves NaN: a mel axis cannot resolve them."""


def features_from_mel(
    mel_db: np.ndarray,
    *,
    sr: float = audio.MEL_SR,
    hop_length: int = audio.MEL_HOP,
    n_fft: int = audio.MEL_N_FFT,
    fmax: float = audio.MEL_FMAX,
    db_scale: float = audio.MEL_DB_SCALE,
) -> dict[str, float]:
    """The feature columns, as far as a dB mel-spectrogram allows (MTG-Jamendo ``.npy``).

    Only the bands within the analysis band (0–4 kHz, as the audio path) are used.
    Spectral shape features use band centre frequencies on the mel axis, with each
    band's magnitude weighted by its spacing in Hz so that sums approximate sums over
    linear bins; rms comes from mel power by Parseval's theorem; MFCCs are the DCT of
    the log-mel power (the MTG-Jamendo file's bands up to 4 kHz: not on the same scale as
    the audio path's 40 bands); tempo, onset rate and flux come from the mel onset
    envelope. NaN, because the mel axis cannot resolve them (:data:`MEL_UNRESOLVED`):
    ``zcr_mean``, all ``chroma_degree_*``, ``mode_major`` and ``key_strength``.

    Parameters
    ----------
    mel_db : np.ndarray [shape=(n_mels, n_frames)]
        ``db_scale · log10(power)`` per Slaney mel band (``unit_tri``) over 0–``fmax``.
    sr, hop_length, n_fft : int
        The settings the spectrogram was made with.
    fmax : float
        Upper band limit, Hz.
    db_scale : float
        20 for the MTG-Jamendo files (Essentia ``lin2db`` with ``scale=2``), 10 for
        ordinary power dB.

    Returns
    -------
    dict[str, float]
        Every name in :data:`FEATURE_NAMES`.
    """
    edges = audio.mel_band_edges(len(mel_db), 0.0, fmax)
    n_bands = max(1, int(np.count_nonzero(edges[2:] <= ANALYSIS_SR / 2.0 + 1e-6)))
    mel_db, edges = np.asarray(mel_db[:n_bands], dtype=np.float64), edges[: n_bands + 2]
    frame_rate = sr / hop_length
    power = 10.0 ** (mel_db / db_scale)
    centres, spacing = edges[1:-1], (edges[2:] - edges[:-2]) / 2.0
    linear_power = power * spacing[:, None]  # ≈ sum of |X|² over the bins a band stands for
    band_magnitude = np.sqrt(power) * spacing[:, None]
    log_mel = log_power(power)

    centroid, bandwidth = spectral_centroid_bandwidth(band_magnitude, centres)
    onset_env = onset_strength(log_mel)
    window_energy = float(np.sum(audio.hann_window(n_fft).astype(np.float64) ** 2))
    rms = np.sqrt(2.0 * linear_power.sum(axis=0) / (n_fft * window_energy))
    columns = {
        "bpm": estimate_tempo(onset_env, frame_rate),
        "spectral_centroid_mean": centroid.mean(),
        "spectral_centroid_std": centroid.std(),
        "spectral_rolloff_mean": spectral_rolloff(band_magnitude, centres).mean(),
        "spectral_bandwidth_mean": bandwidth.mean(),
        "spectral_flatness_mean": spectral_flatness(power).mean(),
        **_indexed("spectral_contrast_mean", spectral_contrast(band_magnitude, centres).mean(axis=1)),
        "rms_mean": rms.mean(),
        "rms_std": rms.std(),
        "onset_rate": onset_rate(onset_env, frame_rate),
        **_indexed("mfcc_mean", mfcc_from_log_mel(log_mel.mean(axis=1))),
        **level_features(rms),
        "spectral_flux_mean": onset_env.mean(),
    }
    return {name: float(columns.get(name, np.nan)) for name in FEATURE_NAMES}
