"""Stage 2: the clusters named from their distinctive original tags (fitted on the training split)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from ..datasets import jamendo
from ..errors import ArtifactError
from ..labeling import ClusterNamer
from .collection import load_collection
from .stages import BY_NAME


def run_label(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
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
    BY_NAME["label"].record(workdir, settings, collection)
    return {"names": dict(namer.names_), "dropped": dict(namer.dropped_), "labelled": int(kept.sum()), "unlabelled": int((~kept).sum())}


def _profiles_document(namer: ClusterNamer, n_fitted: int) -> Mapping[str, Any]:
    return {"fitted_on": "train", "n_tracks": n_fitted, "clusters": namer.profiles_, "dropped": {str(k): v for k, v in namer.dropped_.items()}}

