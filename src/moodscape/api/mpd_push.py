"""Send catalog tracks to a running MPD's queue (``moodscape mpd push``, ``POST /api/v1/mpd/push``).

MPD knows its songs by URIs relative to its ``music_directory``; :func:`mpd_uris` maps the
catalog's absolute files onto them. :func:`push` checks that MPD knows every URI before it
touches the queue, so a push either queues all the tracks, in order, or changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError, MoodscapeError
from .playlists import path_under

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6600
TIMEOUT_SECONDS = 10.0


class MpdUnreachable(MoodscapeError):
    """MPD does not answer at the given address, or broke off the connection."""


class MpdRefused(MoodscapeError):
    """MPD answered with an error (an unknown song, a password it wants)."""


@dataclass(frozen=True)
class PushResult:
    """What a push did: the URIs queued and the queue's length after it."""

    uris: list[str]
    queue_length: int
    playing: bool


def parse_mood_path(text: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """``"V,A:V,A"`` (start and end valence, arousal on 0–1) as two points; raises DataError otherwise."""
    try:
        start, end = (tuple(float(value) for value in point.split(",")) for point in text.split(":"))
        if len(start) != 2 or len(end) != 2 or not all(0 <= value <= 1 for value in (*start, *end)):
            raise ValueError
    except ValueError:
        raise DataError(f"--path {text!r}: give start and end moods as valence,arousal:valence,arousal on 0-1, "
                        "e.g. 0.2,0.2:0.8,0.9") from None
    return start, end  # type: ignore[return-value]


def playlist_track_ids(path: str | os.PathLike) -> list[str]:
    """The track ids of a JSON playlist as ``moodscape`` exports it (``{"tracks": [{"track_id": ...}]}``)."""
    import json

    try:
        tracks = json.loads(Path(path).read_text(encoding="utf-8"))["tracks"]
        return [str(track["track_id"]) for track in tracks]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise DataError(f"{path}: not a moodscape JSON playlist ({error}); export one from the web page") from None


def select_files(catalog, track_ids: Sequence[str] = (), *, mood_path: str | None = None, steps: int = 10,
                 playlist: str | os.PathLike | None = None) -> list[str]:
    """The audio files of one source of tracks: ``track_ids``, a ``mood_path`` of ``steps`` tracks, or a JSON ``playlist``.

    Parameters
    ----------
    catalog : moodscape.api.catalog.Catalog

    Raises
    ------
    DataError
        When not exactly one source is given, or a track id is not in the catalog.
    """
    if sum(map(bool, (track_ids, mood_path, playlist))) != 1:
        raise DataError("give exactly one of: track ids, --path or --playlist")
    if mood_path:
        from .recommender import Recommender

        start, end = parse_mood_path(mood_path)
        recommender = Recommender(catalog.embeddings, catalog.valence, catalog.arousal, catalog.probabilities, catalog.label_of)
        rows = [hit.index for hit in recommender.mood_path(start, end, steps)]
    else:
        ids = playlist_track_ids(playlist) if playlist else list(track_ids)
        unknown = [track_id for track_id in ids if track_id not in catalog.index]
        if unknown:
            raise DataError(f"track {unknown[0]!r} is not in the catalog of {catalog.root}")
        rows = [catalog.index[track_id] for track_id in ids]
    return [str(catalog.audio_path[row]) for row in rows]


def mpd_uris(paths: Sequence[str | os.PathLike], music_directory: str | os.PathLike,
             names: Sequence[str] | None = None) -> list[str]:
    """MPD's URI of each audio file: its path relative to MPD's ``music_directory``, with ``/``.

    Parameters
    ----------
    paths : sequence of path-like, length n
        The audio files.
    music_directory : path-like
        MPD's ``music_directory``.
    names : sequence of str, length n, optional
        What a message calls each file (the web app names track ids, not the server's paths).

    Raises
    ------
    DataError
        When a file lies outside ``music_directory`` (naming the first one and what to do).
    """
    root = Path(music_directory).expanduser().resolve()
    uris = []
    for index, path in enumerate(paths):
        name = str(path) if names is None else names[index]
        if not str(path):
            raise DataError(f"{name}: no audio file, so MPD cannot play it; leave it out")
        uri = path_under(Path(path).expanduser(), root)
        if uri is None:
            raise DataError(f"{name}: outside MPD's music directory {music_directory}; "
                            "pass the music_directory of mpd.conf as --music-directory, or add the folder to it")
        uris.append(uri)
    return uris


def push(uris: Sequence[str], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, clear: bool = False,
         play: bool = False, password: str | None = None, timeout: float = TIMEOUT_SECONDS) -> PushResult:
    """Queue ``uris`` in MPD, in order: replacing the queue (``clear``) or after it, then play the first one (``play``).

    Raises
    ------
    MpdUnreachable
        When MPD does not answer at ``host:port``.
    MpdRefused
        When MPD does not know one of the URIs (nothing queued then) or refuses a command.
    """
    import mpd

    client = mpd.MPDClient()
    client.timeout = timeout
    address = f"{host}:{port}"
    try:
        client.connect(host, port)
    except (OSError, mpd.ConnectionError) as error:
        raise MpdUnreachable(f"cannot reach MPD at {address} ({getattr(error, 'strerror', None) or error}); "
                             "is mpd running there? check the host and port") from None
    try:
        if password:
            client.password(password)
        for uri in uris:
            try:
                client.lsinfo(uri)
            except mpd.CommandError:
                raise MpdRefused(f"MPD at {address} does not know {uri!r}; update its database (mpc update) or "
                                 "check that --music-directory is its music_directory; nothing was queued") from None
        if clear:
            client.clear()
        first = int(client.status().get("playlistlength", 0))
        client.command_list_ok_begin()
        for uri in uris:
            client.add(uri)
        client.command_list_end()
        if play and uris:
            client.play(first)
        status = client.status()
        return PushResult(list(uris), int(status.get("playlistlength", 0)), status.get("state") == "play")
    except mpd.CommandError as error:
        raise MpdRefused(f"MPD at {address} refused: {error}") from None
    except (OSError, mpd.ConnectionError) as error:
        raise MpdUnreachable(f"MPD at {address} broke off the connection ({error}); check that it is running") from None
    finally:
        try:
            client.close()
            client.disconnect()
        except Exception:  # already gone
            pass
