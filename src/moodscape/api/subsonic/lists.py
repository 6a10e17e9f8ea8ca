"""Lists and search: ``getAlbumList2``, ``getRandomSongs`` (with the mood parameters) and ``search3``."""

from __future__ import annotations

import numpy as np

from .browsing import genre_rows
from .calls import Call, method
from .envelope import GENERIC, SubsonicError
from .moods import mood_filter
from .system import check_music_folder

MAX_SIZE = 500
MAX_SEARCH = 1000
"""Most artists, albums or songs one ``search3`` page holds (an empty query pages through everything)."""
NOTHING_KNOWN = ("highest", "frequent", "recent", "starred", "byYear")
"""Album list types that need ratings, plays, stars or years, which this catalog has none of: empty lists."""


@method("getAlbumList2")
def get_album_list2(call: Call) -> dict:
    """Albums by name, by artist, at random, or by genre; ``newest`` lists them by name (all came in at once)."""
    check_music_folder(call)
    kind = call.params.required("type")
    size = call.params.integer("size", 10, 0, MAX_SIZE)
    offset = call.params.integer("offset", 0, 0, 2**62)
    library, entries = call.library, call.entries()
    order = list(range(len(library.albums)))
    if kind in ("alphabeticalByName", "newest"):
        order.sort(key=lambda index: entries.album_name(library.albums[index]).casefold())
    elif kind == "alphabeticalByArtist":
        order.sort(key=lambda index: (library.albums[index].artist, entries.album_name(library.albums[index]).casefold()))
    elif kind == "random":
        order = np.random.default_rng().permutation(len(order)).tolist()
    elif kind == "byGenre":
        wanted = set(library.album_of[genre_rows(call, call.params.required("genre"))].tolist())
        order = [index for index in order if index in wanted]
    elif kind in NOTHING_KNOWN:
        order = []
    else:
        raise SubsonicError(GENERIC, f"unknown list type {kind[:40]!r}")
    return {"albumList2": {"album": [entries.album(index) for index in order[offset : offset + size]]}}


@method("getRandomSongs")
def get_random_songs(call: Call) -> dict:
    """Random songs, of a genre and within the mood parameters when given (years are unknown here)."""
    check_music_folder(call)
    size = call.params.integer("size", 10, 0, MAX_SIZE)
    keep = mood_filter(call).passes(call.services.recommender, slice(None))
    rows = np.flatnonzero(keep)
    genre = call.params.get("genre")
    if genre:
        rows = np.intersect1d(rows, genre_rows(call, genre))
    chosen = np.random.default_rng().choice(rows, size=min(size, len(rows)), replace=False)
    return {"randomSongs": {"song": call.entries().songs(chosen)}}


@method("search3")
def search3(call: Call) -> dict:
    """Artists, albums and songs whose names (songs: title, artist, album, tags, label) hold the query,
    ignoring case; an empty query (or ``""``) matches everything, for offline sync."""
    check_music_folder(call)
    if "query" not in call.params:
        call.params.required("query")
    needle = (call.params.get("query") or "").strip()
    needle = "" if needle in ('""', "''") else needle.lower()
    library, entries, catalog = call.library, call.entries(), call.services.catalog
    artists = [index for index, artist in enumerate(library.artists) if needle in artist.display_name.lower()]
    albums = [index for index, album in enumerate(library.albums) if needle in entries.album_name(album).lower()]
    if needle:
        labels = [index for index, label in enumerate(catalog.labels) if needle in entries.display[label].lower()]
        matches = np.fromiter((needle in text for text in call.services.search_text()), dtype=bool, count=len(catalog))
        rows = np.flatnonzero(matches | np.isin(catalog.label_of, labels))
    else:
        rows = np.arange(len(catalog))
    return {"searchResult3": {
        "artist": [entries.artist(index) for index in _page(call, "artist", artists)],
        "album": [entries.album(index) for index in _page(call, "album", albums)],
        "song": entries.songs(_page(call, "song", rows)),
    }}


def _page(call: Call, kind: str, found):
    count = call.params.integer(f"{kind}Count", 20, 0, MAX_SEARCH)
    offset = call.params.integer(f"{kind}Offset", 0, 0, 2**62)
    return found[offset : offset + count]
