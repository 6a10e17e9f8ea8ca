"""Stage 2: the clusters named from their distinctive original tags, or their sound (fitted on the training split)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..clustering import fit_standardiser
from ..config import LabelSettings, Settings
from ..datasets import jamendo
from ..errors import ArtifactError, DamagedArtifactError, EmptyStageError
from ..labeling import ClusterNamer
from .collection import load_collection
from .stages import BY_NAME


def run_label(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 2: name clusters from their distinctive tags, or their sound (fitted on the training split)."""
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
        acoustic_names=cfg.acoustic_names,
        max_words_in_name=cfg.max_words_in_name,
        min_feature_z=cfg.min_feature_z,
    )
    cluster_ids = clusters["cluster_id"].to_numpy()
    standardised = _standardised_features(workdir, clusters["track_id"][in_train])
    namer.fit(cluster_ids[in_train], tags[in_train], tag_names, standardised)
    _require_two_labels(namer, cfg)
    names = namer.transform(cluster_ids)
    kept = np.array([name is not None for name in names])
    track_labels = pd.DataFrame({"track_id": clusters["track_id"][kept], "new_acoustic_label": names[kept]})
    with BY_NAME["label"].staged(workdir) as out:
        artifacts.write_json(out.cluster_profiles, _profiles_document(namer, int(in_train.sum())))
        artifacts.write_table(out.track_labels, track_labels)
        artifacts.write_json(out.label_to_idx, namer.label_to_idx_)
        artifacts.write_skipped(
            out.skipped_report("label"),
            [(track_id, f"cluster {cid} dropped: {namer.dropped_[cid]}") for track_id, cid in zip(clusters["track_id"][~kept], cluster_ids[~kept])],
        )
        BY_NAME["label"].record(out, settings, collection)
    return {"names": dict(namer.names_), "dropped": dict(namer.dropped_), "labelled": int(kept.sum()), "unlabelled": int((~kept).sum())}


def _standardised_features(workdir: Workdir, track_ids: pd.Series) -> pd.DataFrame:
    """The clustered stage-1 features of ``track_ids``, standardised over them as the cluster stage did.

    Returns
    -------
    pd.DataFrame [shape=(n_tracks, n_features_used)]
        Columns: the ``features_used`` of ``cluster_selection.json``.
    """
    features = artifacts.read_table(workdir.features).set_index("track_id")
    used = artifacts.read_json(workdir.cluster_selection).get("features_used") or []
    missing = [name for name in used if name not in features.columns]
    if not used or missing:
        raise DamagedArtifactError(workdir.cluster_selection, f"{workdir.cluster_selection} lists features_used that "
                                   f"{workdir.features} lacks ({', '.join(missing) or 'none listed'})")
    absent = track_ids[~track_ids.isin(features.index)]
    if len(absent):
        raise DamagedArtifactError(workdir.clusters, f"{workdir.clusters} has {len(absent)} track(s) without features "
                                   f"in {workdir.features}, e.g. {absent.iloc[0]}")
    values = features.loc[track_ids, used]
    imputer, scaler = fit_standardiser(values)
    return pd.DataFrame(scaler.transform(imputer.transform(values)), columns=used)


def _require_two_labels(namer: ClusterNamer, cfg: LabelSettings) -> None:
    """Stop the stage when fewer than two clusters got a name: the classifier needs two labels at least.

    With acoustic names on, every cluster of ``label.min_size`` training tracks or more is
    named, so only too few such clusters stop the stage.

    Raises
    ------
    EmptyStageError
        Saying how many clusters were dropped for which reason, and which settings change that.
    """
    if len(namer.names_) >= 2:
        return
    sizes = namer.tag_statistics_.size
    too_small = [c for c in namer.dropped_ if sizes[c] < cfg.min_size]
    no_tag = [c for c in namer.dropped_ if c not in too_small]
    reasons = []
    if no_tag:
        reasons.append(f"{_clusters(no_tag, len(sizes))} no distinctive tag (none has lift >= label.min_lift = {cfg.min_lift}, "
                       f"count >= label.min_tag_count = {cfg.min_tag_count} and score >= label.min_score = {cfg.min_score}) "
                       "and label.acoustic_names is off")
    if too_small:
        reasons.append(f"{_clusters(too_small, len(sizes))} fewer training tracks than label.min_size = {cfg.min_size}")
    fixes = ["set label.acoustic_names = true to name them after their sound" if no_tag else "",
             "lower label.min_score, label.min_lift or label.min_tag_count" if no_tag else "",
             "lower label.min_size" if too_small else "",
             "name clusters in [label.manual_names]" if no_tag else "", "or cluster again with another cluster.k"]
    named = "no cluster got a name" if not namer.names_ else f"only cluster {next(iter(namer.names_))} got a name"
    raise EmptyStageError(f"label: {named}, and the classifier needs at least two labels: {'; '.join(reasons)}; "
                          f"{', '.join(fix for fix in fixes if fix)}")


def _clusters(ids: list[int], total: int) -> str:
    return f"all {total} clusters have" if len(ids) == total else f"{len(ids)} of {total} clusters have"


def _profiles_document(namer: ClusterNamer, n_fitted: int) -> Mapping[str, Any]:
    return {"fitted_on": "train", "n_tracks": n_fitted, "clusters": namer.profiles_, "dropped": {str(k): v for k, v in namer.dropped_.items()}}

