"""Browsing by ID3 tags: ``getIndexes``, ``getArtists``, ``getArtist``, ``getAlbum``, ``getSong``,
``getGenres`` and ``getSongsByGenre`` (artists and albums as :mod:`.library` groups them)."""

from __future__ import annotations

import numpy as np

from .calls import Call, method
from .envelope import NOT_FOUND, SubsonicError
from .system import check_music_folder


@method("getArtists")
def get_artists(call: Call) -> dict:
    """Every artist, grouped by the first letter of its name."""
    check_music_folder(call)
    return {"artists": {"ignoredArticles": "", "index": _indexed(call)}}


@method("getIndexes")
def get_indexes(call: Call) -> dict:
    """The artists as ``getArtists`` lists them, with the catalog's time as ``lastModified``."""
    check_music_folder(call)
    modified = call.library.modified_ms
    since = call.params.integer("ifModifiedSince", 0, 0, 2**62)
    indexes = {"ignoredArticles": "", "lastModified": modified}
    if since < modified:
        indexes["index"] = _indexed(call)
    return {"indexes": indexes}


@method("getArtist")
def get_artist(call: Call) -> dict:
    identifier = call.params.required("id")
    index = call.library.by_id.get(identifier)
    if call.library.artist(identifier) is None:
        raise SubsonicError(NOT_FOUND, f"Artist not found: {identifier[:100]!r}")
    return {"artist": call.entries().artist(index, with_albums=True)}


@method("getAlbum")
def get_album(call: Call) -> dict:
    identifier = call.params.required("id")
    if call.library.album(identifier) is None:
        raise SubsonicError(NOT_FOUND, f"Album not found: {identifier[:100]!r}")
    return {"album": call.entries().album(call.library.by_id[identifier], with_songs=True)}


@method("getSong")
def get_song(call: Call) -> dict:
    return {"song": call.entries().song(call.row())}


@method("getGenres")
def get_genres(call: Call) -> dict:
    """The labels (display names) and the original tags as genres, with their song and album counts."""
    catalog, library = call.services.catalog, call.library
    display = call.services.display_names()
    n_labels = len(catalog.labels)
    songs = np.bincount(catalog.label_of, minlength=n_labels)
    albums = np.bincount(np.unique(library.album_of * n_labels + catalog.label_of) % n_labels, minlength=n_labels)
    genres = [{"value": display[label], "songCount": int(songs[index]), "albumCount": int(albums[index])}
              for index, label in enumerate(catalog.labels)]
    shown = set(display.values())
    genres += [{"value": tag, "songCount": count, "albumCount": library.tag_albums[tag]}
               for tag, count in sorted(library.tag_counts.items()) if tag not in shown]
    return {"genres": {"genre": genres}}


@method("getSongsByGenre")
def get_songs_by_genre(call: Call) -> dict:
    check_music_folder(call)
    genre = call.params.required("genre")
    count = call.params.integer("count", 10, 0, 500)
    offset = call.params.integer("offset", 0, 0, 2**62)
    rows = genre_rows(call, genre)[offset : offset + count]
    return {"songsByGenre": {"song": call.entries().songs(rows)}}


def genre_rows(call: Call, genre: str) -> np.ndarray:
    """Rows of a genre: a label (by display or canonical name), else an original tag."""
    catalog = call.services.catalog
    display = call.services.display_names()
    for index, label in enumerate(catalog.labels):
        if genre in (label, display[label]):
            return np.flatnonzero(catalog.label_of == index)
    if genre not in call.library.tag_counts:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(np.fromiter((genre in tags for tags in catalog.tags), dtype=bool, count=len(catalog)))


def _indexed(call: Call) -> list[dict]:
    """Artists grouped under the upper-case first letter of their names (``#`` for others)."""
    entries = call.entries()
    groups: dict[str, list[dict]] = {}
    for index, artist in enumerate(call.library.artists):
        first = artist.display_name[:1].upper()
        groups.setdefault(first if first.isalpha() else "#", []).append(entries.artist(index))
    return [{"name": name, "artist": artists} for name, artists in sorted(groups.items())]
