"""Stage 1b: K-Means on the standardised features of the training split; every track assigned."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..clustering import AcousticClusterer
from ..config import Settings
from ..errors import ConfigError, DataError
from .collection import load_collection
from .stages import BY_NAME


def run_cluster(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
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
        target_k=cfg.target_k,
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
    with BY_NAME["cluster"].staged(workdir) as out:
        artifacts.write_table(out.clusters, clusters)
        artifacts.write_json(out.cluster_selection, selection)
        BY_NAME["cluster"].record(out, settings, collection)
    sizes = clusters["cluster_id"].value_counts().sort_index()
    structure = {"structure": "none found: K is cluster.target_k"} if selection["structure"] == "none" else {}
    return {"k": int(clusterer.n_clusters_), **structure, "n_train": len(train), "sizes": sizes.to_dict(), "rule": selection["reason"]}

