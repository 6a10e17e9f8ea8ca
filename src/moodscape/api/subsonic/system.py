"""System methods: ``ping``, ``getLicense``, ``getOpenSubsonicExtensions``, ``getMusicFolders``."""

from __future__ import annotations

from .calls import Call, method
from .envelope import NOT_FOUND, SubsonicError

EXTENSIONS = (
    ("sonicSimilarity", [1]),       # getSonicSimilarTracks, findSonicPath
    ("formPost", [1]),              # every method reads an x-www-form-urlencoded POST body
    ("apiKeyAuthentication", [1]),  # apiKey=...; keys listed and revoked in the config's [subsonic] users
)
MUSIC_FOLDER = 1
"""The id of the one music folder: the catalog."""


@method("ping")
def ping(call: Call) -> dict:
    """Answers ``ok`` to a caller with valid credentials."""
    return {}


@method("getLicense")
def get_license(call: Call) -> dict:
    return {"license": {"valid": True}}


@method("getOpenSubsonicExtensions", public=True)
def get_open_subsonic_extensions(call: Call) -> dict:
    """The extensions this server implements (public, as the spec requires)."""
    return {"openSubsonicExtensions": [{"name": name, "versions": versions} for name, versions in EXTENSIONS]}


@method("getMusicFolders")
def get_music_folders(call: Call) -> dict:
    return {"musicFolders": {"musicFolder": [{"id": MUSIC_FOLDER, "name": "moodscape catalog"}]}}


def check_music_folder(call: Call) -> None:
    """Error 70 when the call names a music folder other than the catalog's."""
    folder = call.params.get("musicFolderId")
    if folder not in (None, "", str(MUSIC_FOLDER)):
        raise SubsonicError(NOT_FOUND, f"Music folder not found: {folder[:40]!r} (this server has one, id {MUSIC_FOLDER})")
