"""Decoding, downmix, resampling, STFT and mel-spectrograms: the only module that touches audio.

Every other module receives arrays from here. Decoding (:func:`open_audio`) uses
``soundfile`` (libsndfile: WAV, AIFF, FLAC, Ogg Vorbis/Opus, MP3), and FFmpeg through PyAV
for what libsndfile cannot open (m4a/AAC/ALAC, and Opus under an old libsndfile:
:mod:`moodscape.decoders`); resampling uses ``soxr``. Nothing here imports librosa (or
PyAV, until a file needs it), so a worker process starts fast.

The log-mel spectrogram reproduces the MTG-Jamendo ``scripts/melspectrograms.py`` chain
(Essentia): 12 kHz, frame 512, hop 256, symmetric Hann window (unnormalised), magnitude
spectrum squared, 96 Slaney mel bands over 0–6000 Hz with ``unit_tri`` normalisation and
``linear`` weighting, then ``UnaryOperator(type='lin2db', scale=2)``, i.e.
``20 * log10(max(power, 1e-10))``. Note the factor 20 on a *power* value: the released
``.npy`` files hold twice the usual power decibels, whatever their README says.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import math
import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from moodscape.decoders import FFmpegReader
from moodscape.errors import AudioError

SILENCE_PEAK = 1e-4
"""Peak amplitude below which a track counts as silent."""

MIN_SAMPLE_RATE = 8000
"""Lowest sample rate analysed, telephone audio's (a 1 Hz file broke the feature frames)."""

MAX_DECODED_SAMPLES = 2 * 48_000 * 20 * 60
"""Most samples, all channels together, one decode reads: 20 minutes of 48 kHz stereo
(0.43 GiB as float32). A longer track is analysed on its first ``MAX_DECODED_SAMPLES //
channels`` frames, and a header that claims hours allocates no more than that."""

MEL_SR = 12000
MEL_N_FFT = 512
MEL_HOP = 256
MEL_N_BANDS = 96
MEL_FMAX = 6000.0
MEL_AMIN = 1e-10
MEL_DB_SCALE = 20.0
"""MTG-Jamendo mel settings; ``mel_db = MEL_DB_SCALE * log10(max(power, MEL_AMIN))``."""

_SOUNDFILE_ERRORS = (sf.LibsndfileError, sf.SoundFileError, RuntimeError, ValueError, TypeError)


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
        An audio file that :func:`open_audio` opens (WAV, AIFF, FLAC, Ogg, Opus, MP3, m4a, ...).
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
        The signal: at most its first :data:`MAX_DECODED_SAMPLES` samples, all channels
        together, whatever length its header claims.
    sr : int
        Its sample rate.

    Raises
    ------
    AudioError
        When the file is missing, no regular file (a FIFO, a folder: :func:`file_problem`),
        unreadable, in an unsupported format, damaged, empty, sampled below
        :data:`MIN_SAMPLE_RATE`, shorter than ``min_duration``, silent (peak below 1e-4)
        or holds NaN/inf samples. The message names the file and what is wrong
        (:func:`decode_error`).
    """
    path = require_regular_file(path)
    try:
        with open_audio(path) as audio:
            native_sr = _require_rate(audio.samplerate, path)
            bounded = audio.frames * audio.channels > MAX_DECODED_SAMPLES
            data = audio.read(MAX_DECODED_SAMPLES // audio.channels if bounded else -1, dtype="float32", always_2d=True)
    except _SOUNDFILE_ERRORS as error:
        raise decode_error(path, error) from None
    y = _downmix(data) if mono else np.ascontiguousarray(data.T)
    _check_signal(y, native_sr, min_duration, path)
    if sr is not None and round(sr) != native_sr:
        y = resample(y, native_sr, sr)
        native_sr = round(sr)
    return y, int(native_sr)


def open_audio(path: str | os.PathLike):
    """Open an audio file for reading: with libsndfile, else with FFmpeg (PyAV).

    The one place that chooses a decoder. libsndfile reads WAV, AIFF, FLAC, Ogg
    Vorbis/Opus and MP3, and can seek; what it refuses goes to
    :class:`moodscape.decoders.FFmpegReader` (m4a/AAC/ALAC, Opus under libsndfile < 1.0.29),
    which reads forward only.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    soundfile.SoundFile or moodscape.decoders.FFmpegReader
        An open file (a context manager) with ``samplerate``, ``channels``, ``frames``,
        ``format``, ``subtype``, ``seekable()`` and ``read(frames, dtype, always_2d)``.

    Raises
    ------
    AudioError
        When the file is no regular file (:func:`require_regular_file`) or neither decoder
        opens it; the message names the file and both decoders' reasons.
    """
    path = require_regular_file(path)
    try:
        audio = sf.SoundFile(path)
    except _SOUNDFILE_ERRORS as error:
        refused = error
    else:
        try:
            audio.seek(0)  # libsndfile 1.2 drops an Ogg Opus file's pre-skip samples only after a seek
        except _SOUNDFILE_ERRORS as error:
            audio.close()
            raise decode_error(path, error) from None
        return audio
    try:
        return FFmpegReader(path)  # PyAV loads here, for the first file that needs it
    except AudioError as error:
        raise decode_error(path, refused, ffmpeg=str(error)) from None


_LIBSNDFILE_MEANINGS = {
    "Format not recognised.": "not in an audio format that is read",
    "File does not exist or is not a regular file (possibly a pipe?).": "no audio stream found in it",
    "Supported file format but file is malformed.": "the file is damaged or truncated",
    "Internal psf_fseek() failed.": "the stream ends before the length its header gives (a damaged or truncated file)",
    "Error : flac decoder lost sync.": "the FLAC stream is damaged or truncated",
    "Error : unknown error in flac decoder.": "the FLAC stream is damaged or truncated",
}
"""What libsndfile's messages mean for a regular file (the others are shown as they are)."""


def decode_error(path: str | os.PathLike, error: Exception, *, ffmpeg: str | None = None) -> AudioError:
    """The AudioError of a file that cannot be decoded: ``"<path>: cannot decode audio: <why>"``.

    ``why`` says what is wrong in words (an empty file, a format that is not read, a damaged
    stream) rather than libsndfile's message, whose "possibly a pipe?" misleads for a
    regular file; ``ffmpeg`` is FFmpeg's reason, when it was asked too.
    """
    text = str(error).removeprefix(f"Error opening {os.fspath(path)!r}: ")
    with contextlib.suppress(OSError):
        if os.path.getsize(path) == 0:
            return AudioError(f"{path}: cannot decode audio: the file is empty (0 bytes)")
    why = _LIBSNDFILE_MEANINGS.get(text, text) + (f"; FFmpeg: {ffmpeg}" if ffmpeg else "")
    return AudioError(f"{path}: cannot decode audio: {why}")


def _require_rate(sr: int, path: Path) -> int:
    """``sr`` if it is at least :data:`MIN_SAMPLE_RATE`; else AudioError naming the file."""
    if sr < MIN_SAMPLE_RATE:
        raise AudioError(f"{path}: sample rate of {sr} Hz is below {MIN_SAMPLE_RATE} Hz, the lowest analysed")
    return sr


@dataclass(frozen=True)
class AudioInfo:
    """What an audio file's header says (:func:`audio_info`).

    Attributes
    ----------
    samplerate, channels, frames : int
        ``frames`` per channel (FFmpeg estimates it for raw AAC).
    format, subtype : str
        Container and encoding in libsndfile's words (``"WAV"``, ``"PCM_16"``; ``"FLOAT"``
        for float samples); for FFmpeg's files its container and codec (``"OGG"``, ``"OPUS"``).
    decoder : str
        ``"libsndfile"`` or ``"ffmpeg"``.
    """

    samplerate: int
    channels: int
    frames: int
    format: str
    subtype: str
    decoder: str

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.frames / self.samplerate


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read an audio file's header (:func:`open_audio`), decoding no audio.

    Raises
    ------
    AudioError
        As :func:`open_audio`.
    """
    with open_audio(path) as audio:
        decoder = "ffmpeg" if isinstance(audio, FFmpegReader) else "libsndfile"
        return AudioInfo(int(audio.samplerate), int(audio.channels), int(audio.frames), audio.format, audio.subtype, decoder)


def sample_blocks(path: str | os.PathLike, blocksize: int, dtype: str = "float32") -> Iterator[np.ndarray]:
    """The samples of an audio file in consecutive blocks, so a scan holds one block at a time.

    Yields
    ------
    np.ndarray [shape=(<= blocksize, n_channels), dtype=dtype]

    Raises
    ------
    AudioError
        As :func:`open_audio`, or when the audio cannot be decoded.
    """
    try:
        with open_audio(path) as audio:
            while len(block := audio.read(blocksize, dtype=dtype, always_2d=True)):
                yield block
    except _SOUNDFILE_ERRORS as error:
        raise decode_error(path, error) from None


_FILE_KINDS = {stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFDIR: "a folder", stat.S_IFSOCK: "a socket",
               stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device"}


def file_problem(path: str | os.PathLike, what: str = "audio file") -> str | None:
    """Why ``path`` is no regular file that a decoder may open, or None when it is one.

    Opening a FIFO for reading blocks until something writes to it, and a device may
    never end, so every decoding path asks this first (:func:`require_regular_file`);
    the folder scan lists what it says.

    Parameters
    ----------
    path : str or os.PathLike
    what : str
        What the file should be, for the message (``"audio file"``, ``"mel file"``).

    Returns
    -------
    str or None
        ``"<what> not found"``, ``"broken symbolic link ..."``, ``"symbolic link loop"``,
        ``"not a regular file but a FIFO (named pipe)"`` and the like.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"broken symbolic link to {os.readlink(path)}" if os.path.islink(path) else f"{what} not found"
    except OSError as error:
        return "symbolic link loop" if error.errno == errno.ELOOP else f"cannot read {what} ({error.strerror or error})"
    if stat.S_ISREG(mode):
        return None
    return f"not a regular file but {_FILE_KINDS.get(stat.S_IFMT(mode), 'a special file')}"


def require_regular_file(path: str | os.PathLike, what: str = "audio file") -> Path:
    """Return ``path`` as a Path if it is a regular file (following links).

    Raises
    ------
    AudioError
        ``"<path>: <why>"`` with the reason of :func:`file_problem`.
    """
    problem = file_problem(path, what)
    if problem is not None:
        raise AudioError(f"{path}: {problem}")
    return Path(path)


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
            f"{path}: audio is {n_samples / sr:.3g} s long, shorter than {min_duration:g} s"
        )
    peak = sample_peak(y)
    if not np.isfinite(peak):
        raise AudioError(f"{path}: audio holds NaN or infinite samples")
    if peak < SILENCE_PEAK:
        raise AudioError(f"{path}: audio is silent (peak {peak:.1e})")


def sample_peak(y: np.ndarray) -> float:
    """Largest absolute sample value of a signal (NaN or inf when it holds such samples)."""
    return float(max(y.max(), -y.min()))


def require_finite(values: np.ndarray, what: str, path: str | os.PathLike, samples: np.ndarray | None = None) -> np.ndarray:
    """Return ``values`` computed from the audio at ``path`` if they are all finite.

    Parameters
    ----------
    values : np.ndarray
        A log-mel, crops or features of the track.
    what : str
        What they are, for the message (``"log-mel spectrogram"``).
    path : str or os.PathLike
        The audio file, named in the message.
    samples : np.ndarray, optional
        The decoded signal; its peak is named in the message.

    Raises
    ------
    AudioError
        When ``values`` hold NaN or infinity, as float samples far outside [-1, 1] give.
    """
    if not np.isfinite(values).all():
        raise non_finite_error(what, path, samples)
    return values


def non_finite_error(what: str, path: str | os.PathLike, samples: np.ndarray | None = None) -> AudioError:
    """The AudioError of a track whose ``what`` came out NaN or infinite, naming its file and sample peak."""
    peak = "" if samples is None else f" (samples peak at {sample_peak(samples):.3g}; float audio should lie within [-1, 1])"
    return AudioError(f"{path}: {what} has NaN or infinite values{peak}")


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
    return _magnitude(frame_signal(np.asarray(y, dtype=np.float32), n_fft, hop_length))


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


def crop(mel: np.ndarray, start: int, crop_frames: int) -> np.ndarray:
    """Return ``mel[:, start:start + crop_frames]`` as float32, a short mel repeated to fill it."""
    if mel.shape[1] < crop_frames:
        mel = np.pad(np.asarray(mel), ((0, 0), (0, crop_frames - mel.shape[1])), mode="wrap")
    return np.array(mel[:, start : start + crop_frames], dtype=np.float32)


def eval_crop_starts(n_frames: int, crop_frames: int, n_eval_crops: int) -> np.ndarray:
    """Start frames of ``n_eval_crops`` evenly spaced crops, the first and last at the track's ends."""
    last_start = max(n_frames - crop_frames, 0)
    return np.linspace(0, last_start, n_eval_crops).round().astype(int)


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
    return _mel_db(magnitude, sr, n_fft, n_mels, fmax)


def _mel_db(magnitude: np.ndarray, sr: int, n_fft: int, n_mels: int, fmax: float) -> np.ndarray:
    """``(n_mels, T)`` mel decibels of a ``(1 + n_fft // 2, T)`` magnitude spectrogram."""
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
        When the file is missing, no regular file, unreadable, has another shape, too few
        frames, or non-finite values.
    """
    path = require_regular_file(path, "mel file")
    try:
        mel_db = np.load(path, allow_pickle=False)
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

    Raises
    ------
    AudioError
        As :func:`load_audio`, and when the spectrogram is not finite (:func:`require_finite`).
    """
    return mel_from_signal(*load_audio(path, min_duration=min_duration), path)


def mel_from_signal(y: np.ndarray, sr: int, path: str | os.PathLike) -> np.ndarray:
    """The log-mel of :func:`mel_from_audio` from a signal :func:`load_audio` decoded at the file's rate.

    Parameters
    ----------
    y : np.ndarray [shape=(n_samples,), dtype=float32]
        The mono signal.
    sr : int
        Its sample rate (resampled here to 12 kHz).
    path : str or os.PathLike
        The file it came from, named in an error.

    Returns
    -------
    mel_db : np.ndarray [shape=(96, frames), dtype=float32]

    Raises
    ------
    AudioError
        When the spectrogram is not finite (:func:`require_finite`).
    """
    y = resample(y, sr, MEL_SR)
    return require_finite(log_mel_spectrogram(y, MEL_SR), "log-mel spectrogram", path, y)


# Crops read from 50 ms before to 50 ms after the samples they need: the resampler's
# filter and the MP3 decoder after a seek settle well within that.
_CROP_MARGIN_SECONDS = 0.05
# Above this share of the track, decoding it whole is as cheap as seeking crop by crop.
_WHOLE_TRACK_SHARE = 0.75


def mel_crops_from_audio(
    path: str | os.PathLike, crop_frames: int, n_crops: int, *, min_duration: float = 1.0
) -> tuple[np.ndarray, int]:
    """Log-mel crops at :func:`eval_crop_starts` of a track, decoding only the audio they need.

    Inference averages ``n_crops`` evenly spaced crops of a track, so for a 4-minute track
    it needs about 20 s of its audio. Each crop's samples (plus a short margin) are read
    after a seek, resampled and framed on the track's global frame grid, so a crop equals
    the same frames of :func:`mel_from_audio` up to resampling round-off at the margins.
    Tracks the crops would mostly cover, and files only FFmpeg reads (no seeking), are
    decoded whole.

    Parameters
    ----------
    path : str or os.PathLike
    crop_frames, n_crops : int
        Crop length in mel frames and number of crops.
    min_duration : float
        Shortest accepted duration in seconds.

    Returns
    -------
    crops : np.ndarray [shape=(n_crops, 96, crop_frames), dtype=float32]
    n_frames : int
        Frames of the whole track's log-mel (its duration is ``(n_frames - 1) * 256 / 12000``).

    Raises
    ------
    AudioError
        As :func:`load_audio`; silence and non-finite samples are judged on the decoded crops,
        and crops that are not finite are refused (:func:`require_finite`). A file whose
        crops cannot be read as its header promises (truncated, damaged) is decoded whole,
        which reads what it holds and says what is wrong with it.
    """
    path = require_regular_file(path)
    try:
        with open_audio(path) as audio:
            if not audio.seekable():  # FFmpeg's files read forward only: bounded by its header, like any decode
                raise _DecodeWhole
            sr, n_native = _require_rate(audio.samplerate, path), audio.frames
            n_samples = math.floor(n_native * MEL_SR / sr + 0.5)  # soxr's output length
            n_frames = -(-n_samples // MEL_HOP) + 1
            needed = n_crops * ((crop_frames - 1) * MEL_HOP + MEL_N_FFT + 2 * _CROP_MARGIN_SECONDS * MEL_SR)
            if n_native <= 0 or needed >= _WHOLE_TRACK_SHARE * n_samples:
                raise _DecodeWhole
            if n_native < min_duration * sr:
                raise AudioError(f"{path}: audio is {n_native / sr:.3g} s long, shorter than {min_duration:g} s")
            starts = eval_crop_starts(n_frames, crop_frames, n_crops)
            signals = [_crop_signal(audio, start, crop_frames, n_samples) for start in starts]
    except (_DecodeWhole, *_SOUNDFILE_ERRORS):
        mel = mel_from_audio(path, min_duration=min_duration)
        starts = eval_crop_starts(mel.shape[1], crop_frames, n_crops)
        return np.stack([crop(mel, start, crop_frames) for start in starts]), int(mel.shape[1])
    samples = np.concatenate(signals)
    _check_signal(samples, MEL_SR, 0.0, path)
    crops = np.stack([_mel_db(_magnitude(_frames(signal)), MEL_SR, MEL_N_FFT, MEL_N_BANDS, MEL_FMAX) for signal in signals])
    return require_finite(crops.astype(np.float32, copy=False), "log-mel spectrogram", path, samples), int(n_frames)


@contextlib.contextmanager
def _quiet_decoder(active: bool) -> Iterator[None]:
    """Silence the C library's stderr while an MP3 is read from the middle.

    The first MP3 frame after a seek refers to bits of the frames before it (the bit
    reservoir), so libmpg123 prints a "part2_3_length ... too large" error for it and
    decodes it partly; it lies inside the crop's margin, never in the crop (tested). The
    message is not Python's to catch, so file descriptor 2 points to ``/dev/null`` for the
    few milliseconds of the read (other threads' stderr output in that window is lost).
    """
    if not active:
        yield
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class _DecodeWhole(Exception):
    """Internal: the crops would cover most of the track; decode it whole instead."""


def _crop_signal(audio: sf.SoundFile, start: int, crop_frames: int, n_samples: int) -> np.ndarray:
    """The 12 kHz samples behind mel frames ``start .. start + crop_frames - 1`` (zeros outside the track).

    Frame ``t`` covers 12 kHz samples ``t * hop - n_fft // 2`` to ``t * hop + n_fft // 2``
    (:func:`frame_signal`). The read starts on a sample where the native and the 12 kHz
    grids meet, so the resampled block lies exactly on the global 12 kHz grid.
    """
    sr = audio.samplerate
    common = math.gcd(sr, MEL_SR)
    native_step, mel_step = sr // common, MEL_SR // common  # native samples ↔ 12 kHz samples
    first = start * MEL_HOP - MEL_N_FFT // 2
    length = (crop_frames - 1) * MEL_HOP + MEL_N_FFT
    margin = int(_CROP_MARGIN_SECONDS * MEL_SR)
    read_from = max(first - margin, 0) // mel_step * mel_step  # 12 kHz sample on both grids
    read_to = min(first + length + margin, n_samples)
    native_from = read_from // mel_step * native_step
    native_count = min(math.ceil(read_to * sr / MEL_SR), audio.frames) - native_from
    with _quiet_decoder(audio.format == "MP3" and native_from > 0):
        audio.seek(native_from)
        block = _downmix(audio.read(native_count, dtype="float32", always_2d=True))
    if len(block) < native_count:  # the stream ends before its header says
        raise _DecodeWhole
    block = resample(block, sr, MEL_SR)  # 12 kHz samples from read_from on
    signal = np.zeros(length, dtype=np.float32)
    lo, hi = max(first, read_from), min(first + length, read_from + len(block), n_samples)
    signal[lo - first : hi - first] = block[lo - read_from : hi - read_from]
    return signal


def _frames(signal: np.ndarray) -> np.ndarray:
    """Frames of a crop's samples: frame ``i`` starts at sample ``i * hop`` (no centring padding)."""
    return np.lib.stride_tricks.sliding_window_view(signal, MEL_N_FFT)[::MEL_HOP]


def _magnitude(frames: np.ndarray) -> np.ndarray:
    """``(1 + n_fft // 2, n_frames)`` Hann-windowed magnitude spectrum of ``(n_frames, n_fft)`` frames."""
    spectrum = np.fft.rfft(frames * hann_window(frames.shape[1]), axis=1)
    return np.abs(spectrum).astype(np.float32, copy=False).T
