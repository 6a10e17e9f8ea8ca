"""An OpenSubsonic server over the catalog: ``moodscape serve`` also answers ``/rest/...``.

Any Subsonic player can browse, search, stream and play the catalog, build playlists, and
get moodscape's recommendations through the standard calls and the ``sonicSimilarity``
extension (``getSonicSimilarTracks``, ``findSonicPath``). Each song carries its new label,
valence and arousal in a ``moodscape`` object; ``getRandomSongs`` and ``getSimilarSongs2``
take mood parameters (:mod:`.moods`).

Modules: :mod:`.routes` (the route), :mod:`.auth` (credentials), :mod:`.params`,
:mod:`.envelope` (JSON/XML answers, error codes), :mod:`.ids`, :mod:`.library` (artists,
albums, genres), :mod:`.entries` (songs, albums, artists as Subsonic elements),
:mod:`.store` (playlists in SQLite), and one module per group of methods:
:mod:`.system`, :mod:`.browsing`, :mod:`.lists`, :mod:`.sonic`, :mod:`.playlists`, :mod:`.media`.
"""

from __future__ import annotations

from .calls import METHODS, SubsonicState
from .routes import router

__all__ = ["METHODS", "SubsonicState", "router"]
