"""Count the audio frames the decoders decode, to prove a file is decoded once (or not at all)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import soundfile as sf

from moodscape.decoders import FFmpegReader


@contextmanager
def decoded_frames() -> Iterator[list[int]]:
    """Within the block, list the frames of every read of libsndfile and FFmpeg (whole reads, seeks' crops, blocks).

    Reading a header (:func:`moodscape.audio.audio_info`) decodes no frame.
    """
    reads: list[int] = []
    with ExitStack() as patches:
        for reader in (sf.SoundFile, FFmpegReader):
            read = reader.read

            def counted(self, *args, _read=read, **kwargs):
                data = _read(self, *args, **kwargs)
                reads.append(len(data))
                return data

            reader.read = counted
            patches.callback(setattr, reader, "read", read)
        yield reads
