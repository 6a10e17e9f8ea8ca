"""The catalog: list and filter tracks, one track, bulk lookup, similar tracks, audio."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse, Response

from ..deps import ServicesDep
from ..recommender import TrackFilter
from ..schemas import AROUSAL_DOC, VALENCE_DOC, LookupPublic, LookupRequest, RecommendationsPublic, SortKey, TrackPublic, TracksPublic
from ..strict_json import StrictJsonRoute

router = APIRouter(prefix="/tracks", tags=["tracks"], route_class=StrictJsonRoute)

Unit = Annotated[float | None, Query(ge=0.0, le=1.0)]


@router.get("", response_model=TracksPublic)
def read_tracks(
    services: ServicesDep,
    label: Annotated[str | None, Query(max_length=200, description="Only tracks predicted as this label (canonical name).")] = None,
    tag: Annotated[str | None, Query(max_length=200, description="Only tracks with this original tag.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Case-insensitive text search in track ids, titles, artists, albums and tags.")] = None,
    min_valence: Annotated[float | None, Query(ge=0.0, le=1.0, description=VALENCE_DOC)] = None,
    max_valence: Unit = None,
    min_arousal: Annotated[float | None, Query(ge=0.0, le=1.0, description=AROUSAL_DOC)] = None,
    max_arousal: Unit = None,
    sort: SortKey = "track_id",
    order: Literal["asc", "desc"] = "asc",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict:
    """List catalog tracks with filters, sorting and pagination."""
    catalog = services.catalog
    # The recommendation routes' filter, over the recommender's float64 copies of the
    # catalog's columns: a bound keeps the same tracks here as in a recommendation query.
    where = TrackFilter(min_valence=min_valence, max_valence=max_valence, min_arousal=min_arousal,
                        max_arousal=max_arousal, labels=None if label is None else [services.label_index(label)])
    keep = where.passes(services.recommender, slice(None))
    if tag is not None:
        keep &= np.fromiter((tag in tags for tags in catalog.tags), dtype=bool, count=len(catalog))
    if q:
        needle = q.lower()
        keep &= np.fromiter((needle in text for text in services.search_text()), dtype=bool, count=len(catalog))
    rows = np.flatnonzero(keep)
    rows = rows[np.argsort(_sort_values(services, sort)[rows], kind="stable")]
    if order == "desc":
        rows = rows[::-1]
    display = services.display_names()
    page = rows[offset : offset + limit]
    return {"total": len(rows), "offset": offset, "limit": limit,
            "items": [services.track_record(int(row), display) for row in page]}


def _sort_values(services, key: str) -> np.ndarray:
    catalog = services.catalog
    if key == "track_id":
        return catalog.track_ids
    if key == "label":
        return np.asarray(catalog.labels, dtype=object)[catalog.label_of]
    if key == "probability":
        return catalog.probabilities[np.arange(len(catalog)), catalog.label_of]
    return {"title": catalog.title, "artist": catalog.artist, "valence": catalog.valence, "arousal": catalog.arousal,
            "duration": catalog.duration}[key]


@router.post("/lookup", response_model=LookupPublic)
def lookup_tracks(services: ServicesDep, request: LookupRequest) -> dict:
    """Look up many track ids in one request; unknown ids are listed, not an error."""
    display = services.display_names()
    index = services.catalog.index
    wanted = list(dict.fromkeys(request.track_ids))
    return {"items": [services.track_record(index[track_id], display) for track_id in wanted if track_id in index],
            "missing": [track_id for track_id in wanted if track_id not in index]}


@router.get("/{track_id:path}/similar", response_model=None, response_class=Response,
            responses={200: {"model": RecommendationsPublic}})
async def read_similar_tracks(services: ServicesDep, track_id: str, limit: Annotated[int, Query(ge=1, le=100)] = 10) -> Response:
    """The tracks whose embeddings are closest to this track's (cosine similarity)."""
    hits = services.recommender.similar(services.row(track_id), limit=limit)
    return Response(services.hits_json(hits), media_type="application/json")


@router.get("/{track_id:path}/audio", response_class=FileResponse,
            responses={200: {"content": {"audio/mpeg": {}}}, 206: {"description": "A byte range of the audio file."}})
def read_track_audio(services: ServicesDep, track_id: str) -> FileResponse:
    """Stream the track's audio file (HTTP range requests supported); only catalog files are served."""
    path = services.catalog.audio_path[services.row(track_id)]
    if not path or not Path(path).is_file():
        raise HTTPException(404, f"track {track_id!r} has no audio file in this bundle")
    media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    return FileResponse(path, media_type=media_type, filename=Path(path).name, content_disposition_type="inline")


@router.get("/{track_id:path}", response_model=TrackPublic)
def read_track(services: ServicesDep, track_id: str) -> dict:
    """One track's full record."""
    return services.track_record(services.row(track_id))
