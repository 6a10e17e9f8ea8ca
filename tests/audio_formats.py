"""Write a signal in every audio format moodscape reads: libsndfile for WAV, AIFF, FLAC, Ogg
Vorbis and MP3, FFmpeg (PyAV) for Opus, m4a (AAC) and raw AAC, as a user's files would be;
and embed tags in them with mutagen, as taggers do."""

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



def write_vorbis_comments(path: Path, tags: dict) -> None:
    """Ogg Vorbis, Opus and FLAC: one comment per value, upper-case keys as taggers write them."""
    import mutagen

    file = mutagen.File(path)
    if file.tags is None:
        file.add_tags()
    for key, value in tags.items():
        file.tags[key.upper()] = [str(value)]
    file.save()


def write_id3(path: Path, tags: dict) -> None:
    """MP3, WAV and AIFF: ID3v2.4 frames; genres (``" / "``) and moods (``"; "``) as several null-separated
    values, the style in TXXX."""
    import mutagen
    from mutagen.id3 import TALB, TBPM, TCON, TIT2, TMOO, TPE1, TXXX

    frames = {"title": lambda text: TIT2(encoding=3, text=text), "artist": lambda text: TPE1(encoding=3, text=text),
              "album": lambda text: TALB(encoding=3, text=text), "genre": lambda text: TCON(encoding=3, text=text.split(" / ")),
              "mood": lambda text: TMOO(encoding=3, text=text.split("; ")),
              "style": lambda text: TXXX(encoding=3, desc="STYLE", text=text), "bpm": lambda bpm: TBPM(encoding=3, text=str(int(bpm)))}
    file = mutagen.File(path)
    if file.tags is None:
        file.add_tags()
    for key, value in tags.items():
        file.tags.add(frames[key](value))
    file.save()


def write_mp4_atoms(path: Path, tags: dict) -> None:
    """m4a: the iTunes atoms, BPM as ``tmpo``, mood and style as freeform atoms."""
    from mutagen.mp4 import MP4, MP4FreeForm

    atoms = {"title": "©nam", "artist": "©ART", "album": "©alb", "genre": "©gen"}
    freeform = {"mood": "----:com.apple.iTunes:MOOD", "style": "----:com.apple.iTunes:STYLE"}
    file = MP4(path)
    for key, value in tags.items():
        if key == "bpm":
            file.tags["tmpo"] = [int(value)]
        elif key in freeform:
            file.tags[freeform[key]] = [MP4FreeForm(value.encode())]
        else:
            file.tags[atoms[key]] = value
    file.save()


TAG_WRITERS = {"ogg": write_vorbis_comments, "opus": write_vorbis_comments, "flac": write_vorbis_comments,
               "mp3": write_id3, "wav": write_id3, "aiff": write_id3, "m4a": write_mp4_atoms}
"""Extension: how its tags are embedded (title, artist, album, genre, mood, style and bpm; any of them)."""


def write_tags(path: Path, tags: dict) -> Path:
    """Embed ``tags`` in the audio file ``path`` the way its format stores them (:data:`TAG_WRITERS`)."""
    TAG_WRITERS[path.name.rpartition(".")[2].strip().lower()](path, tags)
    return path
