"""Count the audio frames libsndfile decodes, to prove a file is decoded once (or not at all)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import soundfile as sf


@contextmanager
def decoded_frames() -> Iterator[list[int]]:
    """Within the block, list the frames of every :meth:`soundfile.SoundFile.read` (whole reads, seeks' crops, blocks).

    Reading a header (:func:`soundfile.info`) decodes no frame.
    """
    reads: list[int] = []
    read = sf.SoundFile.read

    def counted(self, *args, **kwargs):
        data = read(self, *args, **kwargs)
        reads.append(len(data))
        return data

    sf.SoundFile.read = counted
    try:
        yield reads
    finally:
        sf.SoundFile.read = read
