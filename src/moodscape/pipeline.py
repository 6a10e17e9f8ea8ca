"""Stage runners: read a run's artifacts, call one stage's estimators, write its artifacts.

Each ``run_<stage>`` function is what one CLI command (and ``moodscape run``) calls. It
knows artifacts only through :class:`~moodscape.artifacts.Workdir`, never by file name, and
returns a small summary dict the CLI prints. The modelling itself lives in the stage
modules (``features``, ``clustering``, ``labeling``), which take and return arrays and
tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import artifacts
from .artifacts import Workdir
from .clustering import AcousticClusterer
from .config import Settings
from .datasets import SPLITS, folder, jamendo
from .errors import ArtifactError, ConfigError, DataError
from .features import FEATURE_NAMES, extract_features, features_from_mel
from .labeling import ClusterNamer
from .parallel import clear_chunks, map_tracks
from .stages import stage_request


@dataclass(frozen=True)
class Collection:
    """The tracks of a run and the tag vocabulary they are labelled with."""

    tracks: pd.DataFrame
    vocabulary: list[str]
    problems: list[str]
    source_files: list[Path]

    def with_tracks(self, tracks: pd.DataFrame) -> Collection:
        """The same collection restricted to (or replaced by) ``tracks``."""
        return Collection(tracks, self.vocabulary, self.problems, self.source_files)


def load_collection(settings: Settings) -> Collection:
    """Read the track table of the configured dataset (MTG-Jamendo or an audio folder)."""
    if settings.data.source == "jamendo":
        cfg = settings.jamendo
        tracks, problems = jamendo.load_jamendo(
            cfg.root, audio_root=cfg.audio_root, melspec_root=cfg.melspec_root, split=cfg.split
        )
        root = Path(cfg.root)
        vocabulary = jamendo.read_tag_vocabulary(root / jamendo.VOCABULARY_TXT)
        splits = [root / jamendo.SPLIT_TSV.format(split=cfg.split, name=name) for name in SPLITS]
        sources = [root / jamendo.TRACKS_TSV, root / jamendo.VOCABULARY_TXT, *splits]
    else:
        cfg = settings.folder
        tracks, problems = folder.load_folder(cfg.root, tags_csv=cfg.tags_csv, split_fractions=cfg.split_fractions)
        vocabulary = sorted({tag for tags in tracks["tags"] for tag in tags})
        sources = [cfg.tags_csv] if cfg.tags_csv else []
    return Collection(tracks, vocabulary, [str(problem) for problem in problems], sources)


def inference_tracks(settings: Settings, collection: Collection) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The tracks stage 5 covers: ``infer.folder``, ``infer.track_list`` or a split of the collection.

    Returns the track table and the ``(track_id, reason)`` list of files of
    ``infer.folder`` that could not be read at all (empty otherwise).
    """
    cfg = settings.infer
    if cfg.folder is not None:
        tracks, problems = folder.load_folder(cfg.folder)
        return tracks, [_folder_problem(Path(cfg.folder), problem) for problem in problems]
    tracks = collection.tracks
    if cfg.track_list is not None:
        try:
            wanted = list(dict.fromkeys(Path(cfg.track_list).read_text(encoding="utf-8").split()))
        except OSError as error:
            raise ConfigError(f"infer.track_list: cannot read {cfg.track_list}: {error}") from None
        known = set(tracks["track_id"])
        unknown = [track_id for track_id in wanted if track_id not in known]
        if unknown:
            raise DataError(f"{cfg.track_list}: {len(unknown)} track ids are not in the collection, e.g. {unknown[0]}")
        return tracks.set_index("track_id").loc[wanted].reset_index(), []
    return (tracks if cfg.split == "all" else tracks[tracks["split"] == cfg.split]), []


def _folder_problem(root: Path, problem: str) -> tuple[str, str]:
    """``(track_id, reason)`` from a folder loader message ``"<path>: skipped: <reason>"``."""
    path, _, reason = problem.partition(": skipped: ")
    try:
        track_id = Path(path).relative_to(root).with_suffix("").as_posix()
    except ValueError:
        track_id = path
    return track_id, reason or problem


# --------------------------------------------------------------------------- stage 1a


def track_features(task: tuple[str, str]) -> dict[str, float]:
    """Features of one track from its audio file or its MTG-Jamendo mel ``.npy`` file.

    Top-level so that Dask can send it to worker processes.
    """
    kind, path = task
    if kind == "mel":
        from .audio import load_mel

        return features_from_mel(load_mel(path))
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
        fingerprint = {"source": source, "features": list(FEATURE_NAMES), "version": artifacts.package_versions()}
        outcome = map_tracks(
            track_features,
            tasks,
            chunk_dir=workdir.chunk_dir("features"),
            fingerprint=fingerprint,
            scheduler=cfg.scheduler,
            n_workers=cfg.n_workers,
            chunk_size=cfg.chunk_size,
            description="features",
            show_progress=show_progress,
        )
        table, skipped, resumed = outcome.rows, skipped + outcome.failures, outcome.resumed
    if table.empty:
        raise DataError(f"no track gave features ({len(skipped)} skipped, see {workdir.skipped_report('features')})")
    artifacts.write_table(workdir.features, table)
    artifacts.write_skipped(workdir.skipped_report("features"), skipped)
    artifacts.write_lines(workdir.dataset_problems, collection.problems)
    artifacts.record_stage(
        workdir, "features", [workdir.features], *stage_request("features", settings, workdir, collection), {"source": source}
    )
    clear_chunks(workdir.chunk_dir("features"))
    return {"tracks": len(table), "skipped": len(skipped), "resumed": resumed, "source": source, "problems": len(collection.problems)}


def _essentia_features(tracks: pd.DataFrame, json_root: Path | None) -> tuple[pd.DataFrame, list[tuple[str, str]], str]:
    from .essentia_import import import_essentia_features

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


# --------------------------------------------------------------------------- stage 1b


def run_cluster(settings: Settings, workdir: Workdir) -> dict[str, Any]:
    """Stage 1b: fit scaler + K-Means on the training split, assign every track."""
    collection = load_collection(settings)
    features = artifacts.read_table(workdir.features)
    split = features["track_id"].map(dict(zip(collection.tracks["track_id"], collection.tracks["split"])))
    train = features[split == "train"]
    if train.empty:
        raise DataError("no track of the training split has features: cannot fit the clusters")
    cfg = settings.cluster
    clusterer = AcousticClusterer(
        k=cfg.k,
        k_range=tuple(cfg.k_range),
        algorithm=cfg.algorithm,
        n_init=cfg.n_init,
        silhouette_sample=cfg.silhouette_sample,
        random_state=settings.seed,
    )
    excluded = set(cfg.exclude_features)
    feature_columns = [column for column in features.columns if column != "track_id" and column not in excluded]
    if not feature_columns:
        raise ConfigError("cluster.exclude_features leaves no feature to cluster on")
    clusterer.fit(train[feature_columns])
    cluster_ids = clusterer.predict(features[feature_columns])
    clusters = pd.DataFrame({"track_id": features["track_id"], "cluster_id": cluster_ids.astype(int)})
    selection = {**clusterer.selection_, "n_train": int(len(train)), "n_assigned": int(len(clusters))}
    artifacts.write_table(workdir.clusters, clusters)
    artifacts.write_json(workdir.cluster_selection, selection)
    artifacts.record_stage(
        workdir, "cluster", [workdir.clusters, workdir.cluster_selection], *stage_request("cluster", settings, workdir, collection)
    )
    sizes = clusters["cluster_id"].value_counts().sort_index()
    return {"k": int(clusterer.n_clusters_), "n_train": len(train), "sizes": sizes.to_dict(), "rule": selection.get("reason", "")}


# --------------------------------------------------------------------------- stage 2


def run_label(settings: Settings, workdir: Workdir) -> dict[str, Any]:
    """Stage 2: name clusters from their distinctive tags (fitted on the training split)."""
    collection = load_collection(settings)
    clusters = artifacts.read_table(workdir.clusters, ["track_id", "cluster_id"])
    tracks = collection.tracks.set_index("track_id")
    unknown = clusters.loc[~clusters["track_id"].isin(tracks.index), "track_id"]
    if len(unknown):
        raise ArtifactError(f"{workdir.clusters} has {len(unknown)} track(s) not in the dataset, e.g. {unknown.iloc[0]}")
    clustered = tracks.loc[clusters["track_id"]].reset_index()
    in_train = clustered["split"].to_numpy() == "train"
    tags, tag_names = jamendo.tag_matrix(clustered, collection.vocabulary)
    cfg = settings.label
    namer = ClusterNamer(
        min_size=cfg.min_size,
        min_lift=cfg.min_lift,
        min_tag_count=cfg.min_tag_count,
        max_tags_in_name=cfg.max_tags_in_name,
        min_score=cfg.min_score,
        prior=cfg.prior,
        manual_names=dict(cfg.manual_names) or None,
    )
    cluster_ids = clusters["cluster_id"].to_numpy()
    namer.fit(cluster_ids[in_train], tags[in_train], tag_names)
    names = namer.transform(cluster_ids)
    kept = np.array([name is not None for name in names])
    track_labels = pd.DataFrame({"track_id": clusters["track_id"][kept], "new_acoustic_label": names[kept]})
    artifacts.write_json(workdir.cluster_profiles, _profiles_document(namer, int(in_train.sum())))
    artifacts.write_table(workdir.track_labels, track_labels)
    artifacts.write_json(workdir.label_to_idx, namer.label_to_idx_)
    artifacts.write_skipped(
        workdir.skipped_report("label"),
        [(track_id, f"cluster {cid} dropped: {namer.dropped_[cid]}") for track_id, cid in zip(clusters["track_id"][~kept], cluster_ids[~kept])],
    )
    artifacts.record_stage(
        workdir, "label", [workdir.cluster_profiles, workdir.track_labels, workdir.label_to_idx],
        *stage_request("label", settings, workdir, collection),
    )
    return {"names": dict(namer.names_), "dropped": dict(namer.dropped_), "labelled": int(kept.sum()), "unlabelled": int((~kept).sum())}


def _profiles_document(namer: ClusterNamer, n_fitted: int) -> Mapping[str, Any]:
    return {"fitted_on": "train", "n_tracks": n_fitted, "clusters": namer.profiles_, "dropped": {str(k): v for k, v in namer.dropped_.items()}}

