"""Playlists: ``getPlaylists``, ``getPlaylist``, ``createPlaylist`` (create, or replace the songs
of an own playlist), ``updatePlaylist`` and ``deletePlaylist``, kept by :class:`~.store.PlaylistStore`.

A user sees the playlists they own and the public ones, and changes only their own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import ids
from .calls import Call, method
from .envelope import GENERIC, NOT_AUTHORIZED, NOT_FOUND, SubsonicError
from .store import MAX_NAME_LENGTH, MAX_TRACKS, StoredPlaylist


@method("getPlaylists")
def get_playlists(call: Call) -> dict:
    username = call.params.get("username")
    if username not in (None, "", call.user):
        raise SubsonicError(NOT_AUTHORIZED, "Only the admin may list another user's playlists, and this server has no admin")
    return {"playlists": {"playlist": [_summary(call, playlist) for playlist in call.state.playlists.visible_to(call.user)]}}


@method("getPlaylist")
def get_playlist(call: Call) -> dict:
    return {"playlist": _with_songs(call, _visible(call, call.params.required("id")))}


@method("createPlaylist")
def create_playlist(call: Call) -> dict:
    """A new playlist named ``name``, or, with ``playlistId``, the songs of an own playlist replaced."""
    track_ids = [str(call.services.catalog.track_ids[row]) for row in _song_rows(call)]
    store = call.state.playlists
    playlist_id = call.params.get("playlistId")
    if playlist_id:
        playlist = _own(call, playlist_id)
        store.update(playlist.id, track_ids=track_ids)
        return {"playlist": _with_songs(call, store.get(playlist.id))}
    name = _checked_name(call.params.required("name"))
    return {"playlist": _with_songs(call, store.get(store.create(call.user, name, track_ids)))}


@method("updatePlaylist")
def update_playlist(call: Call) -> dict:
    """Rename an own playlist, make it public or private, remove songs by index and append songs.

    ``songIndexToRemove`` counts in the playlist as it was before the call; ``comment`` is
    accepted and not kept (the store has no comments).
    """
    playlist = _own(call, call.params.required("playlistId"))
    name = call.params.get("name")
    public = call.params.get("public")
    if public not in (None, "true", "false"):
        raise SubsonicError(GENERIC, f"public is true or false, got {public[:40]!r}")
    removed = {_position(text, len(playlist.track_ids)) for text in call.params.all("songIndexToRemove")}
    kept = [track for position, track in enumerate(playlist.track_ids) if position not in removed]
    added = [str(call.services.catalog.track_ids[row]) for row in _song_rows(call, "songIdToAdd")]
    if len(kept) + len(added) > MAX_TRACKS:
        raise SubsonicError(GENERIC, f"a playlist holds at most {MAX_TRACKS} songs")
    call.state.playlists.update(playlist.id, name=None if name is None else _checked_name(name),
                                public=None if public is None else public == "true",
                                track_ids=kept + added if removed or added else None)
    return {}


@method("deletePlaylist")
def delete_playlist(call: Call) -> dict:
    call.state.playlists.delete(_own(call, call.params.required("id")).id)
    return {}


def _position(text: str, length: int) -> int:
    """A ``songIndexToRemove``: an index of the playlist's songs (error 0 otherwise, never clamped)."""
    stripped = text.strip()
    if not (stripped.isascii() and stripped.isdigit() and len(stripped) < 10 and int(stripped) < length):
        raise SubsonicError(GENERIC, f"songIndexToRemove {text[:40]!r} is not an index of this playlist's {length} songs")
    return int(stripped)


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise SubsonicError(GENERIC, f"a playlist name has 1 to {MAX_NAME_LENGTH} printable characters")
    return name


def _song_rows(call: Call, parameter: str = "songId") -> list[int]:
    identifiers = call.params.all(parameter)
    if len(identifiers) > MAX_TRACKS:
        raise SubsonicError(GENERIC, f"a playlist holds at most {MAX_TRACKS} songs, got {len(identifiers)}")
    index = call.services.catalog.index
    rows = []
    for identifier in identifiers:
        track_id = ids.decode(ids.SONG, identifier)
        if track_id not in index:
            raise SubsonicError(NOT_FOUND, f"Song not found: {identifier[:100]!r}")
        rows.append(index[track_id])
    return rows


def _visible(call: Call, identifier: str) -> StoredPlaylist:
    """The playlist ``identifier`` when the caller may see it; error 70 otherwise."""
    playlist = call.state.playlists.get(int(identifier)) if identifier.isascii() and identifier.isdigit() and len(identifier) < 19 else None
    if playlist is None or not (playlist.public or playlist.owner == call.user):
        raise SubsonicError(NOT_FOUND, f"Playlist not found: {identifier[:40]!r}")
    return playlist


def _own(call: Call, identifier: str) -> StoredPlaylist:
    playlist = _visible(call, identifier)
    if playlist.owner != call.user:
        raise SubsonicError(NOT_AUTHORIZED, f"Playlist {identifier!r} belongs to {playlist.owner!r}")
    return playlist


def _rows(call: Call, playlist: StoredPlaylist) -> list[int]:
    """Rows of the playlist's tracks still in the catalog, in order."""
    index = call.services.catalog.index
    return [index[track_id] for track_id in playlist.track_ids if track_id in index]


def _summary(call: Call, playlist: StoredPlaylist) -> dict[str, Any]:
    rows = _rows(call, playlist)
    duration = float(np.nansum(call.services.catalog.duration[rows])) if rows else 0.0
    with_audio = [row for row in rows if call.services.catalog.audio_path[row]]
    return {"id": str(playlist.id), "name": playlist.name, "owner": playlist.owner, "public": playlist.public,
            "songCount": len(rows), "duration": int(round(duration)), "created": playlist.created, "changed": playlist.changed,
            "coverArt": ids.encode(ids.SONG, str(call.services.catalog.track_ids[with_audio[0]])) if with_audio else None}


def _with_songs(call: Call, playlist: StoredPlaylist) -> dict[str, Any]:
    return {**_summary(call, playlist), "entry": call.entries().songs(_rows(call, playlist))}
