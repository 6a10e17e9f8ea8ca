"""Songs, albums and artists as Subsonic elements (``Child``, ``AlbumID3``, ``ArtistID3``).

A song carries the usual ``Child`` fields, the OpenSubsonic lists (``genres`` — its label,
then its original tags —, ``moods`` — its label —, ``artists``), and a ``moodscape`` object
with the new label (canonical ``label`` and display ``labelName``), its ``probability``,
and the predicted ``valence`` and ``arousal`` (0–1; left out when the bundle has no
valence/arousal model), to four decimals. ``path`` is a virtual ``<artist>/<album>/<title>.<suffix>``,
never the file's place on the server.
"""

from __future__ import annotations

import math
import mimetypes
import os
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from ..catalog import Catalog
from . import ids
from .library import Album, Library


class Entries:
    """Builds the elements of one call, with the label display names of that moment.

    Parameters
    ----------
    catalog : Catalog
    library : Library
    display : dict of str to str
        Display name of each canonical label.
    """

    def __init__(self, catalog: Catalog, library: Library, display: dict[str, str]):
        self.catalog = catalog
        self.library = library
        self.display = display

    def song(self, row: int) -> dict[str, Any]:
        """The ``Child`` of catalog row ``row``."""
        catalog, library = self.catalog, self.library
        row = int(row)
        track_id = str(catalog.track_ids[row])
        label = catalog.labels[catalog.label_of[row]]
        label_name = self.display[label]
        album = library.albums[library.album_of[row]]
        artist = library.artists[album.artist]
        album_name = self.album_name(album)
        title = catalog.title[row] or PurePosixPath(track_id).name or track_id
        path = catalog.audio_path[row]
        suffix = Path(path).suffix.lstrip(".").lower() if path else ""
        song_id = ids.encode(ids.SONG, track_id)
        return {
            "id": song_id, "parent": album.id, "isDir": False, "title": title,
            "album": album_name, "artist": artist.display_name, "albumId": album.id, "artistId": artist.id,
            "duration": _seconds(catalog.duration[row]),
            "suffix": suffix or None,
            "contentType": (mimetypes.guess_type(path)[0] or "application/octet-stream") if path else None,
            "size": _size(path),
            "path": "/".join(_part(part) for part in (artist.display_name, album_name, title)) + (f".{suffix}" if suffix else ""),
            "coverArt": song_id if path else None,
            "genre": label_name,
            "genres": [{"name": label_name}] + [{"name": tag} for tag in catalog.tags_of(row)],
            "moods": [label_name],
            "artists": [{"id": artist.id, "name": artist.display_name}],
            "displayArtist": artist.display_name,
            "type": "music", "mediaType": "song", "isVideo": False,
            "moodscape": {
                "label": label, "labelName": label_name,
                "probability": round(float(catalog.probabilities[row, catalog.label_of[row]]), 4),
                "valence": round(float(catalog.valence[row]), 4), "arousal": round(float(catalog.arousal[row]), 4),
            },
        }

    def songs(self, rows) -> list[dict[str, Any]]:
        return [self.song(row) for row in rows]

    def album_name(self, album: Album) -> str:
        """An album's tag, or its label's display name for the untagged tracks of an artist."""
        return album.name if album.label is None else self.display[self.catalog.labels[album.label]]

    def album(self, index: int, *, with_songs: bool = False) -> dict[str, Any]:
        """The ``AlbumID3`` of album ``index`` (``AlbumID3WithSongs`` when ``with_songs``)."""
        album = self.library.albums[index]
        artist = self.library.artists[album.artist]
        rows = album.rows
        labels = np.bincount(self.catalog.label_of[rows], minlength=len(self.catalog.labels))
        genre = self.display[self.catalog.labels[int(np.argmax(labels))]]
        with_audio = [row for row in rows[:50] if self.catalog.audio_path[row]]
        entry = {
            "id": album.id, "name": self.album_name(album), "artist": artist.display_name, "artistId": artist.id,
            "songCount": len(rows), "duration": _seconds(float(np.nansum(self.catalog.duration[rows]))),
            "created": self.library.created, "genre": genre, "genres": [{"name": genre}],
            "coverArt": ids.encode(ids.SONG, str(self.catalog.track_ids[with_audio[0]])) if with_audio else None,
            "artists": [{"id": artist.id, "name": artist.display_name}], "displayArtist": artist.display_name,
        }
        if with_songs:
            entry["song"] = self.songs(rows)
        return entry

    def artist(self, index: int, *, with_albums: bool = False) -> dict[str, Any]:
        """The ``ArtistID3`` of artist ``index`` (``ArtistWithAlbumsID3`` when ``with_albums``)."""
        artist = self.library.artists[index]
        entry: dict[str, Any] = {"id": artist.id, "name": artist.display_name, "albumCount": len(artist.albums)}
        if with_albums:
            entry["album"] = [self.album(album) for album in artist.albums]
        return entry


def _seconds(value: float) -> int | None:
    value = float(value)
    return int(round(value)) if math.isfinite(value) and value >= 0 else None


def _size(path: str) -> int | None:
    if not path:
        return None
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _part(text: str) -> str:
    """A virtual path part: no slashes, no leading dots."""
    return text.replace("/", "_").replace("\\", "_").lstrip(".") or "_"
