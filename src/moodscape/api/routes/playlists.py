"""Export any list of tracks as an M3U or JSON playlist."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from ..deps import ServicesDep
from ..playlists import playlist_filename, to_json, to_m3u
from ..schemas import PlaylistRequest
from ..strict_json import StrictJsonRoute

router = APIRouter(tags=["playlists"], route_class=StrictJsonRoute)


@router.post("/playlists/export", responses={200: {"content": {"audio/x-mpegurl": {}, "application/json": {}}}})
def export_playlist(services: ServicesDep, playlist: PlaylistRequest, request: Request,
                    format: Annotated[Literal["m3u", "m3u8", "json"], Query()] = "m3u") -> Response:
    """Download the tracks as an M3U/M3U8 playlist (UTF-8, audio URLs of this server) or as JSON."""
    rows = services.rows(list(dict.fromkeys(playlist.track_ids)), "track_ids")
    display = services.display_names()
    entries = [services.track_record(row, display) for row in rows]
    disposition = {"Content-Disposition": f'attachment; filename="{playlist_filename(playlist.name, format)}"'}
    if format == "json":
        return JSONResponse(to_json(playlist.name, entries), headers=disposition)
    base_url = str(request.base_url).rstrip("/")
    return Response(to_m3u(playlist.name, entries, base_url), media_type="audio/x-mpegurl; charset=utf-8", headers=disposition)
