"""Artists, albums and genres of the catalog, as Subsonic's ID3 browsing sees them.

Artists and albums come from the files' embedded tags (the catalog's ``artist`` and
``album`` columns). A track without an artist tag belongs to the artist "Unknown artist";
a track without an album tag belongs to an album of its artist named after the track's
predicted label (its display name), so an untagged collection browses as one "Unknown
artist" with one album per label. An album is keyed by its artist and its name (two
artists' albums of the same name stay apart; a compilation tagged with several artists
splits by artist); the ids encode these keys (:mod:`.ids`), so they last.

Genres are the new labels (each song's ``genre`` is its label's display name) and the
original tags. The index is built once per process, on the first browsing call.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from moodscape.artifacts import Workdir

from ..catalog import Catalog
from . import ids

UNKNOWN_ARTIST = "Unknown artist"


@dataclass(frozen=True)
class Album:
    """One album: its id, artist, rows in catalog order, and the label it stands for when untagged."""

    id: str
    name: str
    artist: int
    rows: np.ndarray
    label: int | None


@dataclass(frozen=True)
class Artist:
    """One artist: its id, name (``""``: unknown) and albums (indices into :attr:`Library.albums`)."""

    id: str
    name: str
    albums: list[int]

    @property
    def display_name(self) -> str:
        return self.name or UNKNOWN_ARTIST


class Library:
    """The artist and album of every catalog row, and the original tags' song counts.

    Parameters
    ----------
    catalog : Catalog

    Attributes
    ----------
    artists : list of Artist
        Sorted by name, case-insensitively (the unknown artist last).
    albums : list of Album
    album_of : np.ndarray [shape=(n,), dtype=int64]
        Index of each row's album in :attr:`albums`.
    by_id : dict of str to int
        Index of each album and artist id in its list.
    tag_counts, tag_albums : Counter
        Songs, and albums, with each original tag.
    modified_ms : int
        When the catalog was made (its lookup's time), in milliseconds since 1970.
    created : str
        The same time in ISO 8601 (UTC): every album's ``created``.
    """

    def __init__(self, catalog: Catalog):
        artist_tag = catalog.artist.astype(object)
        album_tag = catalog.album.astype(object)
        label = np.where(album_tag == "", catalog.label_of, -1)
        codes, album_keys = pd.MultiIndex.from_arrays([artist_tag, album_tag, label]).factorize()
        self.album_of = codes.astype(np.int64)
        artist_names = sorted(set(artist_tag.tolist()), key=lambda name: (name == "", name.casefold(), name))
        artist_index = {name: index for index, name in enumerate(artist_names)}
        members = np.argsort(self.album_of, kind="stable")
        bounds = np.searchsorted(self.album_of[members], np.arange(len(album_keys) + 1))
        self.albums = []
        for index, (artist_name, album_name, label_index) in enumerate(album_keys):
            label_index = int(label_index)
            key = [artist_name, album_name] if label_index < 0 else [artist_name, "", catalog.labels[label_index]]
            self.albums.append(Album(ids.encode(ids.ALBUM, _key(key)), album_name, artist_index[artist_name],
                                     members[bounds[index]:bounds[index + 1]], None if label_index < 0 else label_index))
        self.artists = [Artist(ids.encode(ids.ARTIST, _key(name)), name, []) for name in artist_names]
        for index in sorted(range(len(self.albums)), key=lambda index: self.albums[index].name.casefold()):
            self.artists[self.albums[index].artist].albums.append(index)
        self.by_id = {item.id: index for items in (self.albums, self.artists) for index, item in enumerate(items)}
        self.tag_counts: Counter[str] = Counter()
        self.tag_albums: Counter[str] = Counter()
        for album in self.albums:
            tags = [tag for row in album.rows for tag in catalog.tags_of(row)]
            self.tag_counts.update(tags)
            self.tag_albums.update(set(tags))
        self.modified_ms, self.created = _modified(catalog)

    def album(self, identifier: str) -> Album | None:
        index = self.by_id.get(identifier)
        return self.albums[index] if index is not None and identifier.startswith(ids.ALBUM) else None

    def artist(self, identifier: str) -> Artist | None:
        index = self.by_id.get(identifier)
        return self.artists[index] if index is not None and identifier.startswith(ids.ARTIST) else None


def _key(value) -> str:
    """The text an album's or artist's id encodes: its key as compact JSON (unambiguous, stable)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _modified(catalog: Catalog) -> tuple[int, str]:
    try:
        stamp = Workdir(catalog.root).inference_lookup.stat().st_mtime
    except OSError:
        stamp = 0.0
    created = _dt.datetime.fromtimestamp(stamp, _dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    return int(stamp * 1000), created
