"""Playlists of catalogue tracks as M3U/M3U8 (for a player) or JSON (for another program).

An entry is a track record of the API (``track_id``, ``title``, ``artist``, ``album``,
``label``, ``label_name``, ``valence``, ``arousal``, ``duration``, ``tags``, and
``audio_url``, ``None`` when the server has no audio for it). The M3U playlist points a
player at this server's audio route, so it plays wherever the server is reachable, or at the
audio files themselves (:func:`file_locations`: absolute paths, or paths relative to a base
folder the user chooses, for a player on the same machine or one that mounts the music); it is
UTF-8 text, so the same text serves as M3U8.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import re
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from moodscape.errors import DataError

JSON_FIELDS = ("track_id", "title", "artist", "album", "label", "label_name", "valence", "arousal", "duration", "tags")
MAX_FILENAME_STEM = 80


def to_m3u(name: str, entries: Sequence[Mapping[str, Any]], base_url: str,
           files: Sequence[str | None] | None = None) -> str:
    """An extended M3U playlist whose entries stream from this server, or point at the audio files.

    Parameters
    ----------
    name : str
        Playlist title (``#PLAYLIST``).
    entries : sequence of mapping
        Track records; one whose ``audio_url`` is ``None`` has no audio and becomes a
        comment line.
    base_url : str
        The server's address, e.g. ``"http://localhost:8000"``.
    files : sequence of (str or None), same length as ``entries``, optional
        Each entry's audio file as the player should find it (:func:`file_locations`), in place
        of the server's URL; ``None``: no audio file, a comment line. A path that cannot stand
        on one line (a line break in a file name) becomes a comment line too.

    Returns
    -------
    str
        ``#EXTM3U``, ``#PLAYLIST:<name>``, then per track ``#EXTINF:<seconds>,<artist> - <title>``
        (the title alone without an artist; ``<label name> — <track id>`` without a title) and
        ``<base_url>/api/v1/tracks/<quoted id>/audio`` (or its entry of ``files``); ``\\n`` line ends.

    Examples
    --------
    >>> print(to_m3u("Calm", [{"track_id": "t1", "label_name": "Calm", "duration": 61.6}], "http://host"))
    #EXTM3U
    #PLAYLIST:Calm
    #EXTINF:62,Calm — t1
    http://host/api/v1/tracks/t1/audio
    <BLANKLINE>
    >>> print(to_m3u("Calm", [{"track_id": "t1", "title": "Été", "artist": "Ana", "duration": 61.6}], "http://host"))
    #EXTM3U
    #PLAYLIST:Calm
    #EXTINF:62,Ana - Été
    http://host/api/v1/tracks/t1/audio
    <BLANKLINE>
    >>> print(to_m3u("Calm", [{"track_id": "t1", "title": "Été", "duration": 61.6}], "", files=["Ana/été.mp3"]))
    #EXTM3U
    #PLAYLIST:Calm
    #EXTINF:62,Été
    Ana/été.mp3
    <BLANKLINE>
    """
    base_url = base_url.rstrip("/")
    lines = ["#EXTM3U", f"#PLAYLIST:{_one_line(name)}"]
    for index, entry in enumerate(entries):
        track_id = str(entry["track_id"])
        if files is None:
            location = None if "audio_url" in entry and entry["audio_url"] is None else \
                f"{base_url}/api/v1/tracks/{quote(track_id, safe='')}/audio"
        else:
            location = files[index]
        if location is None or "\n" in location or "\r" in location:
            why = "no audio on this server" if location is None else "its file name holds a line break"
            lines.append(f"# {_one_line(track_id)}: {why}")
            continue
        lines.append(f"#EXTINF:{_whole_seconds(entry.get('duration'))},{_one_line(_display_title(entry))}")
        lines.append(location)
    return "\n".join(lines) + "\n"


def file_locations(paths: Sequence[str], relative_to: str | os.PathLike | None = None,
                   names: Sequence[str] | None = None) -> list[str | None]:
    """Each audio file as an absolute path, or relative to the folder ``relative_to`` (with ``/``).

    Parameters
    ----------
    paths : sequence of str, length n
        The catalog's audio files (``""``: a track without one).
    relative_to : path-like, optional
        The folder the playlist's paths start from (a player reads them relative to the
        playlist file, so the user saves it there); every file must lie under it.
    names : sequence of str, length n, optional
        What a message calls each file (the web app names track ids, not the server's paths).

    Returns
    -------
    list of (str or None), length n
        ``None`` for a track without an audio file.

    Raises
    ------
    DataError
        When a file lies outside ``relative_to`` (naming the first one and what to do).

    Examples
    --------
    >>> file_locations(["/music/Ana/a.mp3", ""], "/music")
    ['Ana/a.mp3', None]
    """
    if relative_to is None:
        return [os.path.abspath(path) if path else None for path in paths]
    root = Path(relative_to).resolve()
    found: list[str | None] = []
    for index, path in enumerate(paths):
        location = path_under(path, root) if path else None
        if path and location is None:
            name = str(path) if names is None else names[index]
            raise DataError(f"{name}: its file is outside {relative_to}; choose a base folder that holds "
                            "every track's file, or export absolute paths")
        found.append(location)
    return found


def path_under(path: str | os.PathLike, root: Path) -> str | None:
    """``path``, symbolic links resolved, relative to the resolved folder ``root`` (with ``/``); ``None`` when outside it."""
    resolved = Path(path).resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else None


def to_json(name: str, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A JSON-ready playlist: ``{"name", "created" (UTC, ISO 8601), "tracks": [...]}``.

    Each track keeps :data:`JSON_FIELDS`; a missing or non-finite number (no
    valence/arousal model) becomes ``None``.
    """
    return {
        "name": name,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "tracks": [{field: _json_value(entry.get(field)) for field in JSON_FIELDS} for entry in entries],
    }


def playlist_filename(name: str, ext: str) -> str:
    """A download file name for a playlist: ASCII letters, digits, ``.``, ``_`` and ``-`` only.

    Examples
    --------
    >>> playlist_filename("Café: late / night!", "m3u")
    'Cafe-late-night.m3u'
    """
    ext = re.sub(r"[^A-Za-z0-9]", "", ext) or "txt"
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_name).strip("-._")[:MAX_FILENAME_STEM].strip("-._")
    return f"{stem or 'playlist'}.{ext}"


def _display_title(entry: Mapping[str, Any]) -> str:
    """``<artist> - <title>``, the title alone, or ``<label name> — <track id>`` for a track without a title."""
    title, artist = entry.get("title"), entry.get("artist")
    if not title:
        return f"{entry.get('label_name', '')} — {entry['track_id']}"
    return f"{artist} - {title}" if artist else str(title)


def _one_line(text: str) -> str:
    """``text`` with line breaks and other control characters turned into spaces."""
    return "".join(char if char.isprintable() else " " for char in text)


def _whole_seconds(duration: Any) -> int:
    """Track length in whole seconds, ``-1`` (M3U's "unknown") when there is none."""
    try:
        seconds = float(duration)
    except (TypeError, ValueError):
        return -1
    return round(seconds) if math.isfinite(seconds) and seconds >= 0 else -1


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return _json_value(value.tolist())
    if isinstance(value, tuple):
        return list(value)
    return value
