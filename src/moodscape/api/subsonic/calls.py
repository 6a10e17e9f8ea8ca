"""What a Subsonic method gets (:class:`Call`) and the table of methods (:func:`method`).

Each method module registers its functions with ``@method("getSong")``; the route looks a
call's method up in :data:`METHODS` by name (a ``.view`` suffix dropped), checks the
credentials unless the method is public, and runs it with a :class:`Call`. A method returns
its payload (the elements under ``subsonic-response``) or a finished response (audio, an
image), and raises :class:`~moodscape.api.subsonic.envelope.SubsonicError` to fail.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.responses import Response

from moodscape.config import SubsonicSettings

from ..deps import Services
from . import ids
from .entries import Entries
from .envelope import NOT_FOUND, SubsonicError
from .library import Library
from .params import Params
from .store import PlaylistStore


class SubsonicState:
    """The Subsonic side of one server process: its users, playlists and (lazily) its library.

    Parameters
    ----------
    settings : SubsonicSettings
        The ``[subsonic]`` users.
    database : path
        The bundle's SQLite file (playlists are kept beside the label names).
    """

    def __init__(self, settings: SubsonicSettings, database: Path):
        self.settings = settings
        self.playlists = PlaylistStore(database)
        self._library: Library | None = None
        self._lock = threading.Lock()

    def library(self, services: Services) -> Library:
        """The artists and albums of the catalog, indexed by whichever call needs them first."""
        with self._lock:
            if self._library is None:
                self._library = Library(services.catalog)
            return self._library


@dataclass
class Call:
    """One call of a Subsonic method.

    Attributes
    ----------
    services : Services
        The loaded bundle.
    state : SubsonicState
    params : Params
    user : str or None
        Who called (``None`` for a public method).
    http_method : str
        ``GET`` or ``POST``.
    """

    services: Services
    state: SubsonicState
    params: Params
    user: str | None
    http_method: str

    @property
    def library(self) -> Library:
        return self.state.library(self.services)

    def entries(self) -> Entries:
        return Entries(self.services.catalog, self.library, self.services.display_names())

    def row(self, name: str = "id") -> int:
        """Catalog row of the song whose id is parameter ``name``; error 10 when missing, 70 when unknown."""
        identifier = self.params.required(name)
        track_id = ids.decode(ids.SONG, identifier)
        row = None if track_id is None else self.services.catalog.index.get(track_id)
        if row is None:
            raise SubsonicError(NOT_FOUND, f"Song not found: {identifier[:100]!r}")
        return row


@dataclass(frozen=True)
class Method:
    """A registered Subsonic method; ``public`` ones answer without credentials."""

    function: Callable[[Call], dict[str, Any] | Response]
    public: bool = False


METHODS: dict[str, Method] = {}


def method(name: str, *, public: bool = False):
    """Register the decorated function as the Subsonic method ``name``."""
    def register(function):
        METHODS[name] = Method(function, public)
        return function

    return register
