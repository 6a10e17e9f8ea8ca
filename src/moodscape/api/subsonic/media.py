"""Media: ``stream`` and ``download`` (the catalog's own file, HTTP ranges) and ``getCoverArt``
(the picture embedded in a song's file, scaled down to ``size`` when asked).

Files are served as they are (no transcoding: ``maxBitRate`` and ``format`` are ignored),
through the web app's audio route, which serves only the catalog's files. A range asked
with a form POST is honoured as with GET, as players that POST every call expect.
"""

from __future__ import annotations

import io

from fastapi import HTTPException
from fastapi.responses import Response

from moodscape.datasets.embedded_tags import read_cover_art
from moodscape.errors import DataError

from ..routes.tracks import read_track_audio
from . import ids
from .calls import Call, method
from .envelope import NOT_FOUND, SubsonicError

MAX_COVER_SIDE = 3000


@method("stream")
def stream(call: Call) -> Response:
    """The song's audio file, whole or the byte range of the ``Range`` header."""
    row = call.row()
    try:
        audio = read_track_audio(call.services, str(call.services.catalog.track_ids[row]))
    except HTTPException:
        raise SubsonicError(NOT_FOUND, f"Song {call.params.get('id')!r} has no audio file on this server") from None
    return audio if call.http_method == "GET" else _AsGet(audio)


@method("download")
def download(call: Call) -> Response:
    """The same as ``stream`` (files are never transcoded here)."""
    return stream(call)


@method("getCoverArt")
def get_cover_art(call: Call) -> Response:
    """The picture embedded in the file of a song (or of an album's first song with one)."""
    identifier = call.params.required("id")
    found = None
    for path in _audio_files(call, identifier):
        try:
            found = read_cover_art(path)
        except (DataError, OSError):
            found = None
        if found is not None:
            break
    if found is None:
        raise SubsonicError(NOT_FOUND, f"No cover art for {identifier[:100]!r}: its file holds no picture")
    data, media_type = found
    size = call.params.integer("size", 0, 0, MAX_COVER_SIDE)
    if size:
        data, media_type = _scaled(data, media_type, size)
    return Response(data, media_type=media_type, headers={"Cache-Control": "max-age=86400"})


def _audio_files(call: Call, identifier: str) -> list[str]:
    """Audio files whose pictures may stand for ``identifier`` (a song, or an album's first songs)."""
    catalog = call.services.catalog
    kind = ids.kind_of(identifier)
    if kind == ids.SONG:
        rows = [call.row()]
    elif kind == ids.ALBUM and call.library.album(identifier) is not None:
        rows = call.library.album(identifier).rows[:20]
    else:
        rows = []
    return [catalog.audio_path[row] for row in rows if catalog.audio_path[row]]


def _scaled(data: bytes, media_type: str, size: int) -> tuple[bytes, str]:
    """The image shrunk to fit ``size`` × ``size`` (as PNG or JPEG); unchanged when smaller or unreadable."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) <= size:
                return data, media_type
            image.thumbnail((size, size))
            out = io.BytesIO()
            png = image.mode in ("RGBA", "LA", "P")
            (image if png else image.convert("RGB")).save(out, format="PNG" if png else "JPEG")
            return out.getvalue(), "image/png" if png else "image/jpeg"
    except Exception:  # Pillow raises many types on a damaged or huge image
        return data, media_type


class _AsGet(Response):
    """Sends a file response as to a GET, so that a POST's ``Range`` header is honoured."""

    def __init__(self, inner: Response):
        self.inner = inner
        self.status_code = inner.status_code
        self.background = None

    async def __call__(self, scope, receive, send) -> None:
        await self.inner({**scope, "method": "GET"}, receive, send)
