"""Subsonic ids of songs, albums and artists: stable, URL-safe, and decoded without a table.

An id is a kind prefix and the unpadded URL-safe base64 of the UTF-8 key it stands for:
``so-`` + a catalog track id, ``al-`` + an album key, ``ar-`` + an artist key
(:mod:`~moodscape.api.subsonic.library`). The same track, album or artist keeps its id
across restarts and rebuilt bundles, and an id holds only ``A-Z a-z 0-9 - _``.

Examples
--------
>>> encode(SONG, "track_0000001")
'so-dHJhY2tfMDAwMDAwMQ'
>>> decode(SONG, "so-dHJhY2tfMDAwMDAwMQ")
'track_0000001'
>>> decode(ALBUM, "so-dHJhY2tfMDAwMDAwMQ") is None
True
"""

from __future__ import annotations

import base64
import binascii

SONG = "so"
ALBUM = "al"
ARTIST = "ar"


def encode(kind: str, key: str) -> str:
    """The id of ``key`` of this ``kind`` (:data:`SONG`, :data:`ALBUM` or :data:`ARTIST`)."""
    return f"{kind}-" + base64.urlsafe_b64encode(key.encode("utf-8", "surrogatepass")).rstrip(b"=").decode("ascii")


def decode(kind: str, identifier: str) -> str | None:
    """The key an id of ``kind`` stands for; ``None`` when it is not such an id."""
    prefix = f"{kind}-"
    if not identifier.startswith(prefix):
        return None
    body = identifier[len(prefix):]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None


def kind_of(identifier: str) -> str | None:
    """The kind of an id (its prefix), ``None`` for an id of no known kind."""
    kind = identifier.partition("-")[0]
    return kind if kind in (SONG, ALBUM, ARTIST) else None
