"""Similar songs: ``getSimilarSongs2`` (with the mood parameters) and the ``sonicSimilarity``
extension, ``getSonicSimilarTracks`` and ``findSonicPath``.

Similarity is the cosine of two tracks' embeddings mapped onto [0, 1] as the extension
defines it (1 the same song, 0 the most different): ``(1 + cosine) / 2``.
"""

from __future__ import annotations

import numpy as np

from .calls import Call, method
from .envelope import GENERIC, NOT_FOUND, SubsonicError
from .moods import mood_filter
from . import ids

MAX_COUNT = 500
MAX_SEEDS = 50
"""Songs of an album or artist that stand for it as seeds (the first ones)."""


@method("getSimilarSongs2")
def get_similar_songs2(call: Call) -> dict:
    """Songs that sound like a song, an album or an artist (the mean of their embeddings), within the mood parameters."""
    return {"similarSongs2": {"song": _similar_songs(call)}}


@method("getSimilarSongs")
def get_similar_songs(call: Call) -> dict:
    """The same as ``getSimilarSongs2`` (this server browses by tags only)."""
    return {"similarSongs": {"song": _similar_songs(call)}}


@method("getSonicSimilarTracks")
def get_sonic_similar_tracks(call: Call) -> dict:
    """The songs most similar to a song by their embeddings, most similar first."""
    row = call.row()
    count = call.params.integer("count", 10, 1, MAX_COUNT)
    hits = _ranked(lambda: call.services.recommender.similar(row, limit=count))
    return {"sonicMatch": _matches(call, hits)}


@method("findSonicPath")
def find_sonic_path(call: Call) -> dict:
    """A path of ``count`` songs from one song to another through embedding space, each similarity to the start."""
    start, end = call.row("startSongId"), call.row("endSongId")
    count = call.params.integer("count", 25, 2, MAX_COUNT)
    hits = _ranked(lambda: call.services.recommender.sonic_path(start, end, count))
    return {"sonicMatch": _matches(call, hits)}


def _similar_songs(call: Call) -> list[dict]:
    seeds = _seed_rows(call)
    count = call.params.integer("count", 50, 1, MAX_COUNT)
    hits = _ranked(lambda: call.services.recommender.by_seeds(seeds, where=mood_filter(call), limit=count))
    return call.entries().songs(hit.index for hit in hits)


def _seed_rows(call: Call) -> list[int]:
    """The rows an id stands for: a song's, or the first songs of an album or an artist."""
    identifier = call.params.required("id")
    kind = ids.kind_of(identifier)
    if kind == ids.SONG:
        return [call.row()]
    library = call.library
    if kind == ids.ALBUM and library.album(identifier) is not None:
        rows = library.album(identifier).rows
    elif kind == ids.ARTIST and library.artist(identifier) is not None:
        rows = np.concatenate([library.albums[album].rows for album in library.artist(identifier).albums])
    else:
        raise SubsonicError(NOT_FOUND, f"No song, album or artist with id {identifier[:100]!r}")
    return [int(row) for row in rows[:MAX_SEEDS]]


def _ranked(query) -> list:
    try:
        return query()
    except ValueError as error:  # arguments only the recommender can judge, e.g. seeds that cancel out
        raise SubsonicError(GENERIC, str(error)) from None


def _matches(call: Call, hits) -> list[dict]:
    entries = call.entries()
    return [{"entry": entries.song(hit.index), "similarity": float(np.clip((1.0 + hit.score) / 2.0, 0.0, 1.0))} for hit in hits]
