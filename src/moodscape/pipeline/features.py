"""Stage 1a: the acoustic features of every track, mapped through Dask in resumable chunks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from ..errors import ConfigError, DataError
from ..features import (
    ANALYSIS_SR, FEATURE_NAMES, MEL_UNRESOLVED, extract_features, features_from_mel, require_finite_features,
)
from .collection import load_collection
from .parallel import map_tracks
from .stages import BY_NAME


def track_features(task: tuple[str, str]) -> dict[str, float]:
    """Features of one track from its audio file or its MTG-Jamendo mel ``.npy`` file.

    Top-level so that Dask can send it to worker processes. Every value is finite, but
    for the columns a mel cannot resolve; a track that gives others raises AudioError.
    """
    kind, path = task
    if kind == "mel":
        from ..audio import load_mel

        return require_finite_features(features_from_mel(load_mel(path)), path, allowed_nan=MEL_UNRESOLVED)
    return extract_features(path)


def feature_tasks(tracks: pd.DataFrame, source: str) -> tuple[dict[str, tuple[str, str]], list[tuple[str, str]], str]:
    """Decide, per track, which file stage 1a reads; list the tracks that have none.

    ``source="auto"`` uses audio when any track has an audio path, else mel files.
    """
    if source == "auto":
        source = "audio" if (tracks["audio_path"] != "").any() else "mel"
    column = "audio_path" if source == "audio" else "mel_path"
    tasks, missing = {}, []
    for track_id, path in zip(tracks["track_id"], tracks[column]):
        if path:
            tasks[track_id] = (source, path)
        else:
            missing.append((track_id, f"no {source} file configured for this track"))
    return tasks, missing, source


def run_features(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 1a: one row of low-level features per track → ``features.parquet``."""
    collection = load_collection(settings)
    cfg = settings.features
    resumed = 0
    if cfg.source == "essentia":
        table, skipped, source = _essentia_features(collection.tracks, cfg.essentia_json_root)
    else:
        tasks, skipped, source = feature_tasks(collection.tracks, cfg.source)
        fingerprint = {"source": source, "features": list(FEATURE_NAMES), "analysis_sr": ANALYSIS_SR,
                       "version": artifacts.package_versions()}
        outcome = map_tracks(
            track_features,
            tasks,
            chunk_dir=workdir.chunk_dir("features"),
            fingerprint=fingerprint,
            scheduler=cfg.scheduler,
            n_workers=cfg.n_workers,
            chunk_size=cfg.chunk_size,
            track_timeout_s=cfg.track_timeout_s,
            description="features",
            show_progress=show_progress,
        )
        table, skipped, resumed = outcome.rows, skipped + outcome.failures, outcome.resumed
    if table.empty:
        raise DataError(f"no track gave features ({len(skipped)} skipped, see {workdir.skipped_report('features')})")
    with BY_NAME["features"].staged(workdir) as out:
        artifacts.write_table(out.features, table)
        artifacts.write_skipped(out.skipped_report("features"), skipped)
        artifacts.write_lines(out.dataset_problems, collection.problems)
        artifacts.write_lines(out.duplicates_report, collection.duplicates)
        BY_NAME["features"].record(out, settings, collection, details={"source": source})
        out.remove(workdir.chunk_dir("features"))
    return {"tracks": len(table), "skipped": len(skipped), "resumed": resumed, "source": source, "problems": len(collection.problems),
            "duplicates": len(collection.duplicates)}


def _essentia_features(tracks: pd.DataFrame, json_root: Path | None) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    from ..essentia_import import import_essentia_features

    if json_root is None:
        raise ConfigError("features.source = 'essentia' needs features.essentia_json_root")
    paths, skipped = {}, []
    for track_id in tracks["track_id"]:
        path = Path(json_root) / f"{track_id}.json"
        if path.exists():
            paths[track_id] = path
        else:
            skipped.append((track_id, f"no Essentia JSON at {path}"))
    return import_essentia_features(paths), skipped, "essentia"

