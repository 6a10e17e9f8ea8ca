"""What each pipeline stage depends on: the settings and the files it reads.

One function, :func:`stage_request`, answers for every stage. The stage runners record
its answer in ``manifest.json`` when they finish, and ``moodscape run`` compares it with
the manifest before each stage to decide whether the stage must run again
(:func:`moodscape.artifacts.stale_reason`). Keeping both uses on one definition is what
makes "nothing changed → nothing re-runs" hold.

Audio files themselves are not hashed (a collection has thousands); the track table is,
through :func:`collection_fingerprint`, so added, removed, moved or re-split tracks are
seen.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from .artifacts import Workdir
from .config import Settings
from .datasets import musav

STAGES = ("features", "cluster", "label", "pretrain", "train", "train-av", "infer", "report")
"""The stages ``moodscape run`` runs, in order."""

_TRACK_COLUMNS = ["track_id", "audio_path", "mel_path", "split"]
_EXECUTION_ONLY = ("scheduler", "n_workers", "chunk_size")
"""Feature settings that change how the map runs, never what it computes."""


def collection_fingerprint(tracks: pd.DataFrame) -> str:
    """SHA-256 of a track table's ids, files, splits and tags (row order included)."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(tracks[_TRACK_COLUMNS].astype(str), index=False).to_numpy().tobytes())
    digest.update("\n".join(",".join(tags) for tags in tracks["tags"]).encode())
    return digest.hexdigest()


def musav_files(settings: Settings) -> list[Path]:
    """The MusAV files stage 4 reads besides audio and metadata: song ids and ground truth."""
    root = settings.musav.root
    if root is None:
        return []
    files = [Path(root) / musav.SONGIDS_FILE]
    return files + [path for _, _, path in musav.ground_truth_files(Path(root) / "annotations")]


def stage_request(
    stage: str, settings: Settings, workdir: Workdir, collection: Any = None
) -> tuple[dict[str, Any], list[Path]]:
    """The settings and input files that determine ``stage``'s outputs.

    Parameters
    ----------
    stage : str
        One of :data:`STAGES` (or ``"ablate"``).
    settings : Settings
    workdir : Workdir
    collection : moodscape.pipeline.Collection, optional
        The loaded collection (its source files and track table enter every stage but
        ``train-av``, which reads only MusAV and the network, and may omit it).

    Returns
    -------
    settings : dict
        JSON-ready; its hash is what the manifest compares.
    inputs : list of Path
    """
    seeded = {"seed": settings.seed}
    if stage == "train-av":
        network = [workdir.backbone, workdir.classifier, workdir.label_to_idx]
        return {**settings.stage_settings("musav", "av"), **seeded}, network + musav_files(settings)
    sources = list(collection.source_files)
    fingerprint = {"collection": collection_fingerprint(collection.tracks)}
    if stage == "features":
        dataset = "jamendo" if settings.data.source == "jamendo" else "folder"
        chosen = settings.stage_settings("data", dataset, "features")
        chosen["features"] = {k: v for k, v in chosen["features"].items() if k not in _EXECUTION_ONLY}
        return {**chosen, **fingerprint}, sources
    if stage == "cluster":
        return {**settings.stage_settings("cluster"), **seeded, **fingerprint}, [workdir.features, *sources]
    if stage == "label":
        return {**settings.stage_settings("label"), **fingerprint}, [workdir.clusters, *sources]
    if stage == "pretrain":
        if settings.pretrain.backbone is not None:
            return {"backbone_file": str(settings.pretrain.backbone)}, [settings.pretrain.backbone]
        return {**settings.stage_settings("pretrain"), **seeded, **fingerprint}, sources
    if stage == "train":
        return ({**settings.stage_settings("train"), **seeded, **fingerprint},
                [workdir.backbone, workdir.track_labels, workdir.label_to_idx, *sources])
    if stage == "infer":
        network = [workdir.backbone, workdir.classifier, workdir.label_to_idx, workdir.av_regressor]
        return {**settings.stage_settings("infer"), **fingerprint}, network + sources
    if stage == "report":
        return {"settings": settings.model_dump(mode="json"), **fingerprint}, report_inputs(workdir) + sources
    if stage == "ablate":
        transfer = [workdir.classifier, workdir.features, workdir.musav_features, *musav_files(settings)]
        return ({**settings.stage_settings("train", "ablate", "musav", "av"), **seeded},
                [workdir.backbone, workdir.track_labels, *transfer])
    raise ValueError(f"unknown stage {stage!r}")


def report_inputs(workdir: Workdir) -> list[Path]:
    """The artifacts the report reads (those that exist count for staleness)."""
    return [workdir.features, workdir.clusters, workdir.cluster_selection, workdir.cluster_profiles, workdir.track_labels,
            workdir.pretrain_metrics, workdir.classifier, workdir.classifier_metrics, workdir.ablation_metrics,
            workdir.av_metrics, workdir.musav_predictions, workdir.baselines, workdir.inference_lookup, workdir.dataset_problems,
            *(workdir.skipped_report(stage) for stage in STAGES)]
