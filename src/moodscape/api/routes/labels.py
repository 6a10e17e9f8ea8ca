"""The new labels: sizes, distinctive tags or features, mean mood, renaming; the K selection and model metrics."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, HTTPException
from fastapi.responses import PlainTextResponse

from ..deps import Services, ServicesDep
from ..names import manual_names_toml
from ..schemas import LabelPublic, LabelRename, LabelsPublic
from ..strict_json import StrictJsonRoute

router = APIRouter(tags=["labels"], route_class=StrictJsonRoute)
FEATURES_SHOWN = 10
"""Features of a cluster's acoustic profile listed with its label (farthest from the collection first)."""


@router.get("/labels", response_model=LabelsPublic)
def read_labels(services: ServicesDep) -> dict:
    """The new labels with their size, distinctive original tags, acoustic profile and mean valence/arousal."""
    display = services.display_names(refresh=True)
    return {"items": [_label_record(services, index, display) for index in range(len(services.catalog.labels))]}


@router.put("/labels/{label:path}/name", response_model=LabelPublic)
def update_label_name(services: ServicesDep, label: str, rename: LabelRename) -> dict:
    """Give a label a display name (stored in the bundle's SQLite file; no retraining)."""
    index = services.label_index(label, status=404)
    try:
        services.names.set(label, rename.name, reserved=services.catalog.labels)
    except ValueError as error:
        raise HTTPException(422, str(error)) from None
    return _label_record(services, index, services.display_names(refresh=True))


@router.delete("/labels/{label:path}/name", response_model=LabelPublic)
def delete_label_name(services: ServicesDep, label: str) -> dict:
    """Go back to the label's canonical name."""
    index = services.label_index(label, status=404)
    services.names.reset(label)
    return _label_record(services, index, services.display_names(refresh=True))


@router.get("/labels/manual-names.toml", response_class=PlainTextResponse)
def read_manual_names(services: ServicesDep) -> PlainTextResponse:
    """The renamed labels as the `[label.manual_names]` section of moodscape.toml (names by cluster id)."""
    text = manual_names_toml(services.catalog.profiles, services.names.all())
    return PlainTextResponse(text, headers={"Content-Disposition": 'attachment; filename="manual_names.toml"'})


@router.get("/selection")
def read_selection(services: ServicesDep) -> dict[str, Any]:
    """How stage 1 chose K: the rule, the reason and the scan (inertia, silhouette, Davies–Bouldin, Calinski–Harabasz per K)."""
    if services.catalog.selection is None:
        raise HTTPException(404, "this bundle has no cluster_selection.json")
    return services.catalog.selection


@router.get("/metrics")
def read_metrics(services: ServicesDep) -> dict[str, Any]:
    """The classifier's test metrics (confusion matrix, per class) and the AV regressor's held-out metrics; null when absent."""
    return {"classifier": services.catalog.classifier_metrics, "av": services.catalog.av_metrics}


def _label_record(services: Services, index: int, display: dict[str, str]) -> dict:
    catalog = services.catalog
    label = catalog.labels[index]
    members = catalog.label_of == index
    cluster = next(c for c in catalog.profiles["clusters"] if c.get("name") == label and not c.get("dropped"))
    return {
        "label": label,
        "label_name": display[label],
        "index": index,
        "cluster_id": int(cluster["cluster_id"]),
        "size": int(members.sum()),
        "cluster_size": int(cluster.get("size", 0)),
        "named_by": str(cluster.get("named_by", "tags")),
        "distinctive_tags": list(cluster.get("distinctive_tags", [])),
        "top_tags": [{key: tag[key] for key in ("tag", "count", "share", "lift", "score", "distinctive")}
                     for tag in cluster.get("top_tags", [])],
        "acoustic_features": [{key: feature[key] for key in ("feature", "z", "word", "in_name")}
                              for feature in cluster.get("acoustic_features", [])[:FEATURES_SHOWN]],
        "mean_valence": _mean(catalog.valence[members]),
        "mean_arousal": _mean(catalog.arousal[members]),
    }


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else None
