"""Subsonic playlists, kept in the bundle's SQLite file beside the label display names.

A playlist has an owner (the Subsonic user who made it), a name and its catalog track ids
in order. Track ids, not rows or Subsonic ids, are stored, so a playlist survives a
rebuilt bundle; a track no longer in the catalog is left out when the playlist is read.
The file is shared by the threads and processes of a server as the names are (WAL journal,
one write transaction per change).
"""

from __future__ import annotations

import datetime as _dt
import os
import threading
from dataclasses import dataclass

from ..names import open_database, write_transaction

MAX_NAME_LENGTH = 200
MAX_TRACKS = 10_000
"""Most tracks one playlist holds."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS subsonic_playlists (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        public INTEGER NOT NULL DEFAULT 0,
        created TEXT NOT NULL,
        changed TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS subsonic_playlist_tracks (
        playlist_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        track_id TEXT NOT NULL,
        PRIMARY KEY (playlist_id, position)
    )""",
)


@dataclass(frozen=True)
class StoredPlaylist:
    """One playlist as stored: ``created``/``changed`` are ISO 8601 UTC times."""

    id: int
    name: str
    owner: str
    public: bool
    created: str
    changed: str
    track_ids: list[str]


class PlaylistStore:
    """The Subsonic playlists of a bundle.

    Parameters
    ----------
    path : path
        The SQLite file (the bundle's label names database); created when missing.

    Raises
    ------
    moodscape.errors.ArtifactError
        When the file is not a sound SQLite database.
    """

    def __init__(self, path: str | os.PathLike):
        self._lock = threading.Lock()
        self._connection = open_database(path, _SCHEMA)

    def create(self, owner: str, name: str, track_ids: list[str]) -> int:
        """Store a new playlist; returns its id."""
        now = _now()
        with self._lock, write_transaction(self._connection):
            cursor = self._connection.execute(
                "INSERT INTO subsonic_playlists (name, owner, created, changed) VALUES (?, ?, ?, ?)", (name, owner, now, now))
            self._write_tracks(cursor.lastrowid, track_ids)
        return int(cursor.lastrowid)

    def update(self, playlist_id: int, *, name: str | None = None, public: bool | None = None,
               track_ids: list[str] | None = None) -> None:
        """Change the given fields of a playlist in one transaction (``None``: keep)."""
        with self._lock, write_transaction(self._connection):
            if name is not None:
                self._connection.execute("UPDATE subsonic_playlists SET name = ? WHERE id = ?", (name, playlist_id))
            if public is not None:
                self._connection.execute("UPDATE subsonic_playlists SET public = ? WHERE id = ?", (int(public), playlist_id))
            if track_ids is not None:
                self._connection.execute("DELETE FROM subsonic_playlist_tracks WHERE playlist_id = ?", (playlist_id,))
                self._write_tracks(playlist_id, track_ids)
            self._connection.execute("UPDATE subsonic_playlists SET changed = ? WHERE id = ?", (_now(), playlist_id))

    def get(self, playlist_id: int) -> StoredPlaylist | None:
        """The playlist with this id, ``None`` when there is none."""
        with self._lock:
            row = self._connection.execute(
                "SELECT id, name, owner, public, created, changed FROM subsonic_playlists WHERE id = ?", (playlist_id,)).fetchone()
            if row is None:
                return None
            tracks = self._connection.execute(
                "SELECT track_id FROM subsonic_playlist_tracks WHERE playlist_id = ? ORDER BY position", (playlist_id,)).fetchall()
        return StoredPlaylist(row[0], row[1], row[2], bool(row[3]), row[4], row[5], [track for (track,) in tracks])

    def visible_to(self, user: str) -> list[StoredPlaylist]:
        """The playlists ``user`` owns and the public ones, by id."""
        with self._lock:
            found = self._connection.execute(
                "SELECT id FROM subsonic_playlists WHERE owner = ? OR public = 1 ORDER BY id", (user,)).fetchall()
        return [playlist for (playlist_id,) in found if (playlist := self.get(playlist_id)) is not None]

    def delete(self, playlist_id: int) -> None:
        """Remove the playlist and its tracks."""
        with self._lock, write_transaction(self._connection):
            self._connection.execute("DELETE FROM subsonic_playlist_tracks WHERE playlist_id = ?", (playlist_id,))
            self._connection.execute("DELETE FROM subsonic_playlists WHERE id = ?", (playlist_id,))

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def _write_tracks(self, playlist_id: int, track_ids: list[str]) -> None:
        self._connection.executemany("INSERT INTO subsonic_playlist_tracks (playlist_id, position, track_id) VALUES (?, ?, ?)",
                                     [(playlist_id, position, track_id) for position, track_id in enumerate(track_ids)])


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")

