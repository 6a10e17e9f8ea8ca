"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from ..deps import ServicesDep
from ..schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def read_health() -> dict:
    """Liveness: the process answers (no work at all, the framework's own floor)."""
    return {"status": "ok"}


@router.get("/ready", response_model=Ready)
async def read_ready(services: ServicesDep) -> dict:
    """Readiness: the bundle is loaded and checked; how many tracks and labels it serves."""
    catalog = services.catalog
    return {"status": "ready", "tracks": len(catalog), "labels": len(catalog.labels), "valence_arousal": catalog.has_mood}
