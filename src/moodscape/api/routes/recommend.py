"""Recommendations by target mood, by seed tracks, by label; the mood path."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from ..deps import Services, ServicesDep, parse_query, query_parameters
from ..recommender import TrackFilter, mood_waypoints
from ..schemas import LabelQuery, MoodQuery, PathPublic, PathRequest, RecommendationsPublic, SeedQuery
from ..strict_json import StrictJsonRoute

router = APIRouter(tags=["recommend"], route_class=StrictJsonRoute)

# The ranking routes are ``async``: a query costs well under a millisecond of numpy, less
# than a hop to the thread pool, and they answer JSON spliced from cached track records
# (``Services.hits_json``) instead of validating a response model. The model still
# documents the answer in OpenAPI.
NO_MOOD = (
    "this catalog has no valence/arousal predictions, so mood queries cannot run: no valence/arousal "
    "model was trained. Configure the MusAV dataset in the config ([musav] root, audio_root, "
    "metadata_root), run `moodscape train-av` and `moodscape infer` (or `moodscape run`), and restart "
    "the server. Recommendations by seed tracks and by label work without it."
)
"""The 409 answer of a query that needs valence/arousal from a catalog without them."""
_NEEDS_MOOD = {409: {"description": "The catalog has no valence/arousal predictions (no AV model was trained)."}}
_RANKED = {"response_model": None, "response_class": Response,
           "responses": {200: {"model": RecommendationsPublic}, **_NEEDS_MOOD}}


def _require_mood(services: Services, needed: bool = True) -> None:
    """409 with :data:`NO_MOOD` when a query ``needed`` valence/arousal and the catalog has none."""
    if needed and not services.catalog.has_mood:
        raise HTTPException(409, NO_MOOD)


def _bounds_mood(query) -> bool:
    """Whether a query's filters bound valence or arousal."""
    return any(value is not None for value in (query.min_valence, query.max_valence, query.min_arousal, query.max_arousal))


def _filters(services: Services, query) -> TrackFilter:
    """The :class:`TrackFilter` of a query's shared filter fields (422 on an unknown label)."""
    return TrackFilter(
        min_valence=query.min_valence, max_valence=query.max_valence,
        min_arousal=query.min_arousal, max_arousal=query.max_arousal,
        min_probability=query.min_probability, labels=services.label_indices(query.labels),
    )


def _ranking(services: Services, query) -> dict:
    """The recommender's limit, exclusion and diversity arguments of a query's shared fields."""
    return {"limit": query.limit, "exclude": services.excluded_rows(query.exclude), "diversity": query.diversity}


def _recommend(call) -> list:
    try:
        return call()
    except ValueError as error:  # arguments the schema cannot see, e.g. seeds that cancel out
        raise HTTPException(422, str(error)) from None


@router.post("/recommend/mood", **_RANKED)
async def recommend_by_mood(services: ServicesDep, query: MoodQuery) -> Response:
    """Tracks closest to a target valence/arousal, within a tolerance and min/max ranges (Spotify's query style)."""
    _require_mood(services)
    hits = _recommend(lambda: services.recommender.by_mood(
        target_valence=query.target_valence, target_arousal=query.target_arousal, tolerance=query.tolerance,
        where=_filters(services, query), **_ranking(services, query)))
    return _answer(services, hits)


@router.get("/recommend/mood", **_RANKED, openapi_extra={"parameters": query_parameters(MoodQuery)})
async def recommend_by_mood_get(services: ServicesDep, request: Request) -> Response:
    """The same as POST, with the query in the URL (e.g. `?target_valence=0.8&target_arousal=0.3&limit=10`)."""
    return await recommend_by_mood(services, parse_query(MoodQuery, request))


@router.post("/recommend/seeds", **_RANKED)
async def recommend_by_seeds(services: ServicesDep, query: SeedQuery) -> Response:
    """Tracks like the seed tracks (embedding cosine, optionally blended with mood), less like the negative seeds."""
    _require_mood(services, query.va_weight > 0 or _bounds_mood(query))
    seeds = services.rows(query.seeds, "seeds")
    negative = services.rows(query.negative_seeds, "negative_seeds")
    hits = _recommend(lambda: services.recommender.by_seeds(
        seeds, negative=negative, va_weight=query.va_weight,
        where=_filters(services, query), **_ranking(services, query)))
    return _answer(services, hits)


@router.get("/recommend/seeds", **_RANKED, openapi_extra={"parameters": query_parameters(SeedQuery)})
async def recommend_by_seeds_get(services: ServicesDep, request: Request) -> Response:
    """The same as POST, with the query in the URL (e.g. `?seeds=id1&seeds=id2&limit=10`)."""
    return await recommend_by_seeds(services, parse_query(SeedQuery, request))


@router.post("/recommend/label", **_RANKED)
async def recommend_by_label(services: ServicesDep, query: LabelQuery) -> Response:
    """The tracks most confidently predicted as a label."""
    label = services.label_index(query.label)
    hits = _recommend(lambda: services.recommender.by_label(
        label, limit=query.limit, exclude=services.excluded_rows(query.exclude), diversity=query.diversity))
    return _answer(services, hits)


def _answer(services: Services, hits) -> Response:
    return Response(services.hits_json(hits), media_type="application/json")


@router.post("/path", response_model=PathPublic, responses=_NEEDS_MOOD)
def create_mood_path(services: ServicesDep, request: PathRequest) -> dict:
    """A playlist moving in even steps along the line between two moods (or two tracks' moods), no repeats."""
    _require_mood(services)
    start, end = (_point(services, point) for point in (request.start, request.end))
    hits = _recommend(lambda: services.recommender.mood_path(
        start, end, request.steps, labels=services.label_indices(request.labels),
        exclude=services.excluded_rows(request.exclude)))
    targets = mood_waypoints(start, end, request.steps)
    items = services.hit_records(hits)
    for step, item in enumerate(items):
        item["target"] = {"valence": float(targets[step][0]), "arousal": float(targets[step][1])}
    return {"start": {"valence": start[0], "arousal": start[1]}, "end": {"valence": end[0], "arousal": end[1]}, "items": items}


def _point(services: Services, point) -> tuple[float, float]:
    if point.track_id is None:
        return float(point.valence), float(point.arousal)
    row = services.row(point.track_id)
    valence, arousal = float(services.catalog.valence[row]), float(services.catalog.arousal[row])
    if not (np.isfinite(valence) and np.isfinite(arousal)):
        raise HTTPException(422, f"track {point.track_id!r} has no valence/arousal prediction")
    return valence, arousal
