"""The serving bundle of a run, copied for tests that let the app write beside it."""

from __future__ import annotations

import shutil
from pathlib import Path

SERVING_FILES = (
    "inference_lookup.csv", "embeddings.parquet", "catalog_tracks.parquet", "label_to_idx.json",
    "cluster_profiles.json", "cluster_selection.json", "metrics/classifier.json", "metrics/av.json",
    "models/inference_bundle.pt", "models/classifier.pt", "models/av_regressor.pth", "report/report.html",
    "models/inference_bundle.pt.json", "models/classifier.pt.json", "models/av_regressor.pth.json",
)


def copy_bundle(run: Path, destination: Path) -> Path:
    """Copy the files ``moodscape serve`` reads from a run (the app writes names and caches beside them)."""
    for name in SERVING_FILES:
        if (run / name).exists():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run / name, destination / name)
    return destination
