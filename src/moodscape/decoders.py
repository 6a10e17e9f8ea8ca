"""FFmpeg decoding (through PyAV) of the audio files libsndfile cannot open.

libsndfile reads WAV, AIFF, FLAC, Ogg Vorbis, MP3 and (from version 1.0.29) Ogg Opus.
MPEG-4 audio (``.m4a``/``.mp4`` with AAC or ALAC, raw ``.aac``), and Opus under an older
libsndfile, are decoded by FFmpeg instead. :func:`moodscape.audio.open_audio` opens a
file with libsndfile first and with :class:`FFmpegReader` only when libsndfile refuses
it; nothing else uses this module, so ``audio.py`` stays the one entry point for
decoding, and PyAV is imported only when a file needs it.

The reader offers the part of :class:`soundfile.SoundFile` that ``audio.py`` uses
(``samplerate``, ``channels``, ``frames``, ``format``, ``subtype``, ``seekable()``,
``read()``), reading forward only. ``frames`` comes from the container's header (exact
for MP4 and Ogg, estimated from the bit rate for raw AAC), and decoding stops with an
:class:`~moodscape.errors.AudioError` when a file holds far more audio than its header
declares, so a size check made on the header bounds what decoding holds in memory.
"""

from __future__ import annotations

import math
import os

import numpy as np

from moodscape.errors import AudioError

FFMPEG_CONTAINERS = frozenset({"mov,mp4,m4a,3gp,3g2,mj2", "ogg", "aac", "matroska,webm", "mp3", "flac", "wav", "aiff", "caf"})
"""FFmpeg demuxers accepted: the containers of common audio files. FFmpeg opens far more
(a text file probes as a ``tty`` video, an image as a picture), none of them music."""

FLOAT_CODECS = {"pcm_f32le": "FLOAT", "pcm_f32be": "FLOAT", "pcm_f64le": "DOUBLE", "pcm_f64be": "DOUBLE"}
"""FFmpeg codecs whose samples are not bounded by full scale, under libsndfile's subtype names."""

OVERRUN_FACTOR = 2.0
OVERRUN_SECONDS = 10.0
"""A file may decode to at most ``OVERRUN_FACTOR * frames + OVERRUN_SECONDS * samplerate`` frames."""


class FFmpegReader:
    """An audio file opened by FFmpeg, read forward like a :class:`soundfile.SoundFile`.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (:func:`moodscape.audio.require_regular_file` checked it).

    Attributes
    ----------
    samplerate, channels : int
    frames : int
        Frames per channel the header declares (an estimate for raw AAC).
    format : str
        The FFmpeg container, upper-case (``"MOV,MP4,M4A,3GP,3G2,MJ2"``, ``"OGG"``).
    subtype : str
        The codec (``"AAC"``, ``"OPUS"``), or ``"FLOAT"``/``"DOUBLE"`` for float PCM.

    Raises
    ------
    AudioError
        When FFmpeg cannot open the file, it is no audio container of
        :data:`FFMPEG_CONTAINERS`, has no audio stream or declares no duration. The
        message is the reason alone: :func:`moodscape.audio.open_audio` names the file
        and libsndfile's reason.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        import av

        self.path = path
        try:
            self._container = av.open(os.fspath(path), metadata_errors="ignore")
        except (av.FFmpegError, OSError, ValueError) as error:
            raise AudioError(_reason(error)) from None
        try:
            self._open_stream()
        except (av.FFmpegError, ValueError, TypeError) as error:  # a stream PyAV cannot describe or convert
            self._container.close()
            raise AudioError(_reason(error)) from None
        except BaseException:
            self._container.close()
            raise

    def _open_stream(self) -> None:
        import av

        container = self._container
        if container.format.name not in FFMPEG_CONTAINERS:
            raise AudioError(f"FFmpeg reads it as {container.format.long_name or container.format.name}, not as audio")
        if not container.streams.audio:
            raise AudioError(f"the {container.format.name} file has no audio stream")
        stream = container.streams.audio[0]
        codec = stream.codec_context
        if codec is None:  # a stream FFmpeg has no decoder for (a WAV of 0 bits per sample)
            raise AudioError(f"FFmpeg has no decoder for its {container.format.name} audio stream")
        self.samplerate, self.channels = int(codec.sample_rate or 0), int(codec.channels or 0)
        if self.samplerate <= 0 or self.channels <= 0:
            raise AudioError(f"its {codec.name} stream has no sample rate or no channels")
        self.format = container.format.name.upper()
        self.subtype = FLOAT_CODECS.get(codec.name, codec.name.upper())
        self.frames = _declared_frames(stream, container, self.samplerate)
        if self.frames <= 0:
            raise AudioError(f"its {container.format.name} header declares no duration")
        self._limit = int(OVERRUN_FACTOR * self.frames + OVERRUN_SECONDS * self.samplerate)
        self._decoded, self._ended = 0, False
        self._packets = container.decode(stream)
        self._to_float = av.AudioResampler(format="fltp", layout=codec.layout, rate=self.samplerate)
        self._pending: list[np.ndarray] = []  # (channels, n) blocks decoded but not yet read

    def seekable(self) -> bool:
        """``False``: crops decode the whole track (:func:`moodscape.audio.mel_crops_from_audio`)."""
        return False

    def read(self, frames: int = -1, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """Decode the next ``frames`` frames (all the rest when negative).

        Returns
        -------
        np.ndarray [shape=(n, channels), dtype=dtype]
            ``n`` is ``frames`` but at the end of the file; samples at full scale ±1.

        Raises
        ------
        AudioError
            ``"<path>: cannot decode audio (FFmpeg: ...)"`` on a corrupt stream, or when the
            file decodes to far more frames than its header declares.
        """
        held = sum(block.shape[1] for block in self._pending)
        while frames < 0 or held < frames:
            block = self._next_block()
            if block is None:
                break
            self._pending.append(block)
            held += block.shape[1]
        data = np.concatenate(self._pending, axis=1) if self._pending else np.zeros((self.channels, 0), np.float32)
        count = data.shape[1] if frames < 0 else min(frames, data.shape[1])
        self._pending = [data[:, count:]] if count < data.shape[1] else []
        out = np.ascontiguousarray(data[:, :count].T, dtype=dtype)
        return out if always_2d or self.channels > 1 else out[:, 0]

    def _next_block(self) -> np.ndarray | None:
        """The next decoded frame as float32 ``(channels, n)``, or ``None`` at the end of the stream."""
        import av

        if self._ended:
            return None
        try:
            frame = next(self._packets, None)
            blocks = [converted.to_ndarray() for converted in self._to_float.resample(frame)]
        except (av.FFmpegError, ValueError) as error:
            raise AudioError(f"{self.path}: cannot decode audio (FFmpeg: {_reason(error)})") from None
        self._ended = frame is None
        if self._ended and not blocks:
            return None
        block = np.concatenate(blocks, axis=1) if blocks else np.zeros((self.channels, 0), np.float32)
        self._decoded += block.shape[1]
        if self._decoded > self._limit:
            raise AudioError(f"{self.path}: cannot decode audio (it holds over {self._decoded / self.samplerate:.0f} s of audio, "
                             f"its header declares {self.frames / self.samplerate:.0f} s)")
        return block

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> FFmpegReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _declared_frames(stream, container, samplerate: int) -> int:
    """Frames per channel the stream's (else the container's) duration declares; 0 when neither does."""
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        seconds = container.duration / 1_000_000  # AV_TIME_BASE
    else:
        return 0
    return max(0, math.floor(seconds * samplerate + 0.5))


def _reason(error: Exception) -> str:
    """FFmpeg's message without the file name PyAV appends."""
    return getattr(error, "strerror", None) or str(error)
