"""One uploaded audio file through stage 5: label, mood, embedding, features and a timeline.

The file is decoded once, at its own rate (:func:`moodscape.audio.load_audio`), and that
signal feeds every result, each through the function its pipeline counterpart uses:

- the stage-1 acoustic features (:func:`moodscape.features.features_from_decoded`, what
  :func:`~moodscape.features.extract_features` computes);
- the whole track's log-mel (:func:`moodscape.audio.mel_from_signal`, what
  :func:`~moodscape.audio.mel_from_audio` computes), whose evenly spaced crops
  (:func:`moodscape.inference.mel_crops`) give the whole-track prediction through
  :func:`~moodscape.inference.predict_crops`, as ``moodscape infer`` predicts a track.
  ``infer`` decodes a long track only around its crops, which agrees with the whole
  log-mel's crops up to resampling round-off at their edges, and a short one whole, as
  here: an uploaded copy of a catalogue track gets the catalogue's probabilities and
  embedding.

The timeline cuts the track's whole log-mel into consecutive segments about one crop
long and runs each segment as stage 5 runs a track: evenly spaced crops whose mean
embedding gives probabilities and (valence, arousal). A segment that fits in one crop is
run as one crop, through a copy of the bundle whose ``n_eval_crops`` says so, rather than
as ``n_eval_crops`` identical crops; wider segments (long files, see ``max_segments``)
get one crop per crop length, at most ``n_eval_crops``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from moodscape.audio import (MAX_DECODED_SAMPLES, MEL_HOP, MEL_SR, MIN_SAMPLE_RATE, audio_info, load_audio, mel_from_signal,
                             sample_peak)
from moodscape.errors import AudioError, ConfigError
from moodscape.features import features_from_decoded

if TYPE_CHECKING:  # torch loads with the networks, on the first upload, not at server start
    from moodscape.inference import InferenceBundle

ALLOWED_SUFFIXES = frozenset({".mp3", ".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".m4a", ".mp4", ".aac"})
"""File name endings an upload may have (what :func:`moodscape.audio.open_audio` decodes)."""

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""Default largest upload, 50 MiB (about 50 minutes of 128 kbit/s MP3)."""

MAX_ANALYZE_SECONDS = 20 * 60
"""Longest upload analysed: each decode of an hour of stereo audio would hold over a gigabyte."""

UNKNOWN_FRAMES = 2**63 - 1
"""The frames libsndfile reports for a file whose header gives no length (a FLAC stream's ``total_samples`` of 0)."""

MAX_FLOAT_PEAK = 1e10
"""Largest decoded sample analysed (float files may hold any value). Full scale is ±1; this
admits floats holding integer-scaled samples (±2**31) and stays below 1e15, the largest peak
measured to analyse like a quiet copy (at 1e18 the float32 spectra overflow and the
prediction is NaN)."""

MAX_CONCURRENT_ANALYSES = 2
"""Uploads one server process decodes and analyses at once (each holds its decoded audio)."""

MAX_TIMELINE_SEGMENTS = 120
"""Most segments in a timeline; longer tracks get wider segments."""


@dataclass
class Segment:
    """Prediction for one stretch of a track.

    Attributes
    ----------
    start, end : float
        Seconds from the start of the track.
    probabilities : np.ndarray [shape=(n_labels,), dtype=float32]
    label : int
        Index of the most probable label.
    valence, arousal : float
        NaN when the bundle has no regressor.
    """

    start: float
    end: float
    probabilities: np.ndarray
    label: int
    valence: float
    arousal: float


@dataclass
class Analysis:
    """What :func:`analyze_file` finds in one track.

    Attributes
    ----------
    duration : float
        Seconds, as ``moodscape infer`` reports it.
    probabilities : np.ndarray [shape=(n_labels,), dtype=float32]
        Label probabilities, in the bundle's label order.
    label : int
        Index of the most probable label.
    valence, arousal : float
        NaN when the bundle has no regressor.
    embedding : np.ndarray [shape=(512,), dtype=float32]
        Mean crop embedding (not normalised), as in ``embeddings.parquet``.
    features : dict[str, float]
        Stage-1 acoustic features (:data:`moodscape.features.FEATURE_NAMES`), finite only.
    timeline : list of Segment
        Consecutive segments from 0 to ``duration``.
    """

    duration: float
    probabilities: np.ndarray
    label: int
    valence: float
    arousal: float
    embedding: np.ndarray
    features: dict[str, float]
    timeline: list[Segment]

    @property
    def probability(self) -> float:
        """Probability of the most probable label."""
        return float(self.probabilities[self.label])


def sniff_audio(path: str | os.PathLike) -> str | None:
    """Say why a file is not audio that :func:`moodscape.audio.open_audio` reads, or ``None`` when it is.

    Only the header is read, so a wrongly named text or image file is refused before any
    decoding.

    Parameters
    ----------
    path : path

    Returns
    -------
    str or None
        A short reason for the client (e.g. for an HTTP 415), or ``None``.
    """
    try:
        info = audio_info(path)
    except AudioError:
        return "not an audio file this server can decode (WAV, FLAC, OGG, Opus, MP3, AIFF or m4a/AAC)"
    if info.samplerate <= 0 or info.channels <= 0 or info.frames <= 0:
        return f"{info.format} file without audio samples"
    return None


def too_long(info, limit: float = MAX_ANALYZE_SECONDS) -> str | None:
    """Say why a file is too long to analyse (``info.duration``, from :func:`moodscape.audio.audio_info`), or ``None``."""
    seconds = info.duration
    return f"{seconds / 60:.0f} minutes of audio; the limit is {limit / 60:.0f} minutes" if seconds > limit else None


def upload_refusal(path: str | os.PathLike) -> tuple[int, str] | None:
    """Why a file :func:`sniff_audio` accepts should not be analysed, or ``None`` when it may be.

    Only the header is read; the samples' range is judged as they are decoded, by
    :func:`analyze_file` (:func:`samples_out_of_range`).

    Returns
    -------
    tuple of (int, str) or None
        An HTTP status and a reason: 413 for a file too long (:func:`too_long`) or too
        large once decoded (:func:`too_large_to_decode`), 422 for a file whose length is
        unknown (:func:`unknown_length`) or a sample rate too low (:func:`too_low_rate`).
    """
    info = audio_info(path)
    if (reason := unknown_length(info)) is not None:
        return 422, reason
    if (reason := too_long(info) or too_large_to_decode(info)) is not None:
        return 413, reason
    if (reason := too_low_rate(info)) is not None:
        return 422, reason
    return None


def too_large_to_decode(info, limit: int = MAX_DECODED_SAMPLES) -> str | None:
    """Say why a file's samples (channels × frames) are too many to decode, or ``None``.

    Parameters
    ----------
    info : moodscape.audio.AudioInfo
        What :func:`moodscape.audio.audio_info` read from the file's header.
    limit : int
        Most samples, all channels together.
    """
    samples = info.channels * info.frames
    if samples <= limit:
        return None
    return (f"decoding it would take {_gibibytes(samples)} ({info.channels} channels of {_duration(info.duration)} "
            f"at {info.samplerate} Hz); the limit is {_gibibytes(limit)}")


def unknown_length(info) -> str | None:
    """Say why a file whose header gives no length (``info.frames``, from :func:`moodscape.audio.audio_info`) is refused.

    Its decoded size cannot be bounded before decoding it. ``None`` when the length is known.
    """
    if info.frames < UNKNOWN_FRAMES:
        return None
    return (f"its {info.format} header does not say how many samples it holds (as in a streamed FLAC), so its decoded "
            "size cannot be checked; re-encode it as a file that states its length")


def too_low_rate(info, lowest: int = MIN_SAMPLE_RATE) -> str | None:
    """Say why a file's sample rate (``info.samplerate``, from :func:`moodscape.audio.audio_info`) is too low to analyse, or ``None``."""
    if info.samplerate >= lowest:
        return None
    return f"its sample rate of {info.samplerate} Hz is below {lowest} Hz, the lowest this server analyses"


def samples_out_of_range(y: np.ndarray, limit: float = MAX_FLOAT_PEAK) -> str | None:
    """Say why decoded samples cannot be analysed (beyond ``±limit``, as only float files hold), or ``None``.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,)]
        Finite samples (:func:`moodscape.audio.load_audio` refuses the others).
    limit : float
    """
    peak = sample_peak(y)
    return f"its float samples reach {peak:.3g}, beyond ±{limit:g} (full scale is ±1)" if peak > limit else None


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} minutes"


def _gibibytes(samples: int) -> str:
    return f"{samples * 4 / (1 << 30):.2f} GiB"


def analyze_file(
    bundle: InferenceBundle,
    path: str | os.PathLike,
    *,
    segment_seconds: float | None = None,
    max_segments: int = MAX_TIMELINE_SEGMENTS,
) -> Analysis:
    """Analyse one audio file as ``moodscape infer`` would, plus features and a timeline.

    Parameters
    ----------
    bundle : InferenceBundle
        The serving bundle (:func:`moodscape.inference.load_bundle`).
    path : path
        An audio file :func:`moodscape.audio.open_audio` decodes (check it first with :func:`sniff_audio`).
    segment_seconds : float, optional
        Length of a timeline segment; default one crop (``bundle.crop_frames`` frames).
    max_segments : int
        Most timeline segments; segments widen so that a long file has no more.

    Returns
    -------
    Analysis

    Raises
    ------
    AudioError
        The file cannot be decoded, is shorter than 1 s, silent, holds samples beyond
        :data:`MAX_FLOAT_PEAK` (:func:`samples_out_of_range`) or non-finite ones, or gives
        non-finite features or log-mel.
    ConfigError
        ``segment_seconds`` or ``max_segments`` is not positive.
    """
    from moodscape.inference import mel_crops, predict_crops, track_duration

    segment_frames = _segment_frames(bundle, segment_seconds)
    if max_segments < 1:
        raise ConfigError(f"max_segments must be at least 1, got {max_segments}")
    y, sr = load_audio(path)  # the one decode
    if (reason := samples_out_of_range(y)) is not None:
        raise AudioError(f"{path}: {reason}")
    features = features_from_decoded(y, sr, path)  # every value finite, or AudioError
    mel = mel_from_signal(y, sr, path)
    del y
    outputs = predict_crops(bundle, [mel_crops(mel, bundle.crop_frames, bundle.n_eval_crops)])
    probabilities = outputs.probabilities[0]
    valence, arousal = (float(value) for value in outputs.valence_arousal[0])
    return Analysis(
        duration=track_duration(mel.shape[1]),
        probabilities=probabilities,
        label=int(probabilities.argmax()),
        valence=valence,
        arousal=arousal,
        embedding=outputs.embeddings[0],
        features=features,
        timeline=timeline(bundle, mel, segment_frames, max_segments),
    )


def timeline(bundle: InferenceBundle, mel: np.ndarray, segment_frames: int, max_segments: int = MAX_TIMELINE_SEGMENTS) -> list[Segment]:
    """Predictions for consecutive, near-equal segments of a track's log-mel.

    Parameters
    ----------
    bundle : InferenceBundle
    mel : np.ndarray [shape=(96, n_frames)]
        The whole track's log-mel (:func:`moodscape.audio.mel_from_audio`).
    segment_frames : int
        Wanted segment length in frames; the track is split into the nearest whole
        number of equal segments, at most ``max_segments``.
    max_segments : int

    Returns
    -------
    list of Segment
        Contiguous: each ``end`` is the next ``start``; the first starts at 0, the last
        ends at the track's duration.
    """
    from moodscape.inference import mel_crops, predict_crops, track_duration

    n_frames = mel.shape[1]
    n_segments = min(max(1, round(n_frames / segment_frames)), max_segments)
    edges = np.linspace(0, n_frames, n_segments + 1).round().astype(int)
    widest = int(np.diff(edges).max())
    crops_per_segment = min(bundle.n_eval_crops, math.ceil(widest / bundle.crop_frames))
    segment_bundle = dataclasses.replace(bundle, n_eval_crops=crops_per_segment)
    crops = [mel_crops(mel[:, lo:hi], bundle.crop_frames, crops_per_segment) for lo, hi in zip(edges[:-1], edges[1:])]
    outputs = predict_crops(segment_bundle, crops)
    times = edges * (track_duration(n_frames) / n_frames)  # within a hop of the frames' own times; the last ends at the duration
    return [
        Segment(
            start=float(times[index]),
            end=float(times[index + 1]),
            probabilities=outputs.probabilities[index],
            label=int(outputs.probabilities[index].argmax()),
            valence=float(outputs.valence_arousal[index, 0]),
            arousal=float(outputs.valence_arousal[index, 1]),
        )
        for index in range(n_segments)
    ]


def _segment_frames(bundle: InferenceBundle, segment_seconds: float | None) -> int:
    """Timeline segment length in mel frames: one crop, or ``segment_seconds``."""
    if segment_seconds is None:
        return bundle.crop_frames
    if not segment_seconds > 0:
        raise ConfigError(f"segment_seconds must be positive, got {segment_seconds}")
    return max(1, round(segment_seconds * MEL_SR / MEL_HOP))
