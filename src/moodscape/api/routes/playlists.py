"""Export any list of tracks as an M3U or JSON playlist."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from moodscape.errors import DataError

from ..deps import ServicesDep
from ..playlists import file_locations, playlist_filename, to_json, to_m3u
from ..schemas import PlaylistRequest
from ..strict_json import StrictJsonRoute

router = APIRouter(tags=["playlists"], route_class=StrictJsonRoute)


@router.post("/playlists/export", responses={
    200: {"content": {"audio/x-mpegurl": {}, "application/json": {}}},
    422: {"description": "a track's file outside `relative_to`, or `relative_to` without `paths=relative`"}})
def export_playlist(
    services: ServicesDep, playlist: PlaylistRequest, request: Request,
    format: Annotated[Literal["m3u", "m3u8", "json"], Query()] = "m3u",
    paths: Annotated[Literal["url", "absolute", "relative"], Query(
        description="M3U entries: this server's audio URLs, the audio files' absolute paths, "
                    "or their paths relative to `relative_to`.")] = "url",
    relative_to: Annotated[str | None, Query(
        min_length=1, max_length=4096, pattern=r"^/[^\x00]*$",
        description="The absolute folder the relative paths start from (save the playlist there); "
                    "every track's file must lie under it.")] = None,
) -> Response:
    """Download the tracks as an M3U/M3U8 playlist (UTF-8; audio URLs of this server, or file paths) or as JSON."""
    if (paths == "relative") != (relative_to is not None):
        raise HTTPException(422, "paths=relative needs relative_to (an absolute folder), and relative_to needs paths=relative")
    rows = services.rows(list(dict.fromkeys(playlist.track_ids)), "track_ids")
    display = services.display_names()
    entries = [services.track_record(row, display) for row in rows]
    disposition = {"Content-Disposition": f'attachment; filename="{playlist_filename(playlist.name, format)}"'}
    if format == "json":
        return JSONResponse(to_json(playlist.name, entries), headers=disposition)
    files = None
    if paths != "url":
        try:
            files = file_locations([services.catalog.audio_path[row] for row in rows], relative_to,
                                   names=[f"track {entry['track_id']}" for entry in entries])
        except DataError as error:
            raise HTTPException(422, str(error)) from None
    base_url = str(request.base_url).rstrip("/")
    return Response(to_m3u(playlist.name, entries, base_url, files), media_type="audio/x-mpegurl; charset=utf-8",
                    headers=disposition)
