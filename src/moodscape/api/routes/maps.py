"""Points to plot: the valence/arousal map and the 2-D projections of the embeddings."""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter, HTTPException, Query

from ..deps import Services, ServicesDep
from ..projections import MAX_POINTS, sample_indices
from ..schemas import MapPublic

router = APIRouter(tags=["maps"])


@router.get("/map", response_model=MapPublic)
def read_mood_map(services: ServicesDep) -> dict:
    """Every track (or a sample of 20,000) on the valence/arousal plane, with its label and tags."""
    catalog = services.catalog
    rows = sample_indices(len(catalog), MAX_POINTS, seed=0)
    rows = rows[np.isfinite(catalog.valence[rows]) & np.isfinite(catalog.arousal[rows])]
    return _points(services, "valence_arousal", rows, catalog.valence[rows], catalog.arousal[rows])


@router.get("/projection", response_model=MapPublic)
def read_projection(services: ServicesDep, method: Annotated[Literal["pca", "umap", "tsne"], Query()] = "pca") -> dict:
    """A 2-D projection of the 512-d embeddings (PCA, UMAP or t-SNE), computed once and cached in the bundle."""
    try:
        rows, xy = services.projections.get_or_compute(services.catalog.version, method, services.catalog.embeddings)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return _points(services, method, np.asarray(rows), xy[:, 0], xy[:, 1])


def _points(services: Services, method: str, rows: np.ndarray, x: np.ndarray, y: np.ndarray) -> dict:
    catalog = services.catalog
    display = services.display_names()
    labels = [catalog.labels[index] for index in catalog.label_of[rows]]
    return {
        "method": method, "total": len(catalog),
        "track_id": catalog.track_ids[rows].tolist(),
        "x": np.round(np.asarray(x, dtype=np.float64), 5).tolist(),
        "y": np.round(np.asarray(y, dtype=np.float64), 5).tolist(),
        "label": labels, "label_name": [display[label] for label in labels],
        "tags": [",".join(catalog.tags[row]) for row in rows],
    }
