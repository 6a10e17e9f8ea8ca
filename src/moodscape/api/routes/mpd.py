"""Send a list of tracks to a running MPD."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from ...errors import DataError
from ..deps import ServicesDep
from ..mpd_push import MpdRefused, MpdUnreachable, mpd_uris, push
from ..schemas import MpdPushRequest, MpdPushResult
from ..strict_json import StrictJsonRoute

router = APIRouter(tags=["mpd"], route_class=StrictJsonRoute)
WEB_TIMEOUT_SECONDS = 5.0


@router.post("/mpd/push", response_model=MpdPushResult, responses={
    403: {"description": "an MPD host the server was not started to allow (`moodscape serve --mpd-host`)"},
    422: {"description": "a track without audio or outside the music directory"},
    502: {"description": "MPD refused (it does not know a file; nothing was queued)"},
    503: {"description": "MPD is not reachable at host:port"}})
def push_to_mpd(services: ServicesDep, request: MpdPushRequest) -> MpdPushResult:
    """Queue the tracks in MPD, in order (clear or append, optionally play)."""
    if request.host not in services.mpd_hosts:
        raise HTTPException(403, f"this server pushes only to MPD on {', '.join(sorted(services.mpd_hosts))}; "
                                 f"start it with `moodscape serve --mpd-host {request.host}` to allow {request.host}")
    rows = services.rows(request.track_ids, "track_ids")
    try:
        uris = mpd_uris([services.catalog.audio_path[row] for row in rows], request.music_directory,
                        names=[f"track {services.catalog.track_ids[row]}" for row in rows])
    except DataError as error:
        raise HTTPException(422, str(error)) from None
    try:
        result = push(uris, host=request.host, port=request.port, clear=request.clear, play=request.play,
                      timeout=WEB_TIMEOUT_SECONDS)
    except MpdUnreachable as error:
        raise HTTPException(503, str(error)) from None
    except MpdRefused as error:
        raise HTTPException(502, str(error)) from None
    return MpdPushResult(queued=len(result.uris), queue_length=result.queue_length, playing=result.playing)
