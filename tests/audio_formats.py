"""Write a signal in every audio format moodscape reads: libsndfile for WAV, AIFF, FLAC, Ogg
Vorbis and MP3, FFmpeg (PyAV) for Opus, m4a (AAC) and raw AAC, as a user's files would be."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

SOUNDFILE_FORMATS = {"wav": "WAV", "aiff": "AIFF", "flac": "FLAC", "ogg": "OGG", "mp3": "MP3"}
FFMPEG_FORMATS = {"opus": ("ogg", "libopus", 48000), "m4a": ("ipod", "aac", None), "aac": ("adts", "aac", None)}
"""Extension: (FFmpeg muxer, encoder, the rate the encoder needs or None for the signal's)."""
EXTENSIONS = [*SOUNDFILE_FORMATS, *FFMPEG_FORMATS]


def write_audio(path: Path, signal: np.ndarray, sr: int) -> Path:
    """Write ``signal`` [shape=(n,) or (n, channels), float in ±1] at ``sr`` in the format of ``path``'s extension
    (the text after the last dot, spaces around it ignored: ``"song.m4a "`` is an m4a)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    extension = path.name.rpartition(".")[2].strip().lower()
    signal = np.asarray(signal, dtype=np.float32).reshape(len(signal), -1)
    if extension in SOUNDFILE_FORMATS:
        # in blocks: libsndfile 1.2.2's Vorbis encoder crashes on one write of a few minutes of audio
        with sf.SoundFile(path, "w", sr, signal.shape[1], format=SOUNDFILE_FORMATS[extension]) as file:
            for start in range(0, len(signal), sr):
                file.write(signal[start : start + sr])
        return path
    muxer, encoder, rate = FFMPEG_FORMATS[extension]
    if rate is not None and rate != sr:
        signal = soxr.resample(signal, sr, rate).astype(np.float32)
    rate = rate or sr
    layout = "mono" if signal.shape[1] == 1 else "stereo"
    with av.open(str(path), "w", format=muxer) as container:
        stream = container.add_stream(encoder, rate=rate, layout=layout)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(signal.T), format="fltp", layout=layout)
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    return path
