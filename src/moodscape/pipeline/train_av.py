"""Stage 4: the valence/arousal regressor, cross-fitted on the MusAV songs' embeddings and scored beside its baselines."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from ..datasets import musav
from ..errors import ConfigError, DataError
from ..evaluation import av_baselines, av_table, ground_truth_training_pairs, musav_ground_truth, score_av_predictions
from ..features import FEATURE_NAMES
from ..inference import AV_COLUMNS, embedding_matrix, embedding_table
from ..models.checkpoint import save_checkpoint
from .features import track_features
from .infer import label_names, network_map
from .parallel import MapOutcome, map_tracks
from .stages import BY_NAME
from .summary import av_summary


def run_train_av(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 4: embed the MusAV songs, cross-fit the AV regressor, score it the MusAV way beside its baselines."""
    from ..models.av import av_checkpoint
    from ..training.av import AVConfig, cross_fit_av

    cfg = settings.musav
    if cfg.root is None:
        raise ConfigError("train-av needs the MusAV dataset: set [musav] root, audio_root and metadata_root")
    root = Path(cfg.root)
    songs, problems = musav.load_musav(cfg.root, audio_root=cfg.audio_root, metadata_root=cfg.metadata_root)
    tasks = {songid: ("audio", path) for songid, path in zip(songs["songid"], songs["audio_path"]) if path}
    skipped = [(songid, "no audio preview found") for songid, path in zip(songs["songid"], songs["audio_path"]) if not path]
    if not tasks:
        raise DataError(f"no MusAV song has audio under {cfg.audio_root} (set [musav] audio_root)")
    outcome = network_map(settings, workdir, "train-av", tasks, None, show_progress)
    skipped += outcome.failures
    embedded = outcome.rows
    if len(embedded) < 3 * settings.av.folds:
        raise DataError(f"only {len(embedded)} MusAV songs could be embedded; {3 * settings.av.folds} needed for {settings.av.folds} folds")
    features = _musav_features(settings, workdir, {songid: tasks[songid] for songid in embedded["track_id"]}, show_progress)
    songids = embedded["track_id"].tolist()
    targets = songs.set_index("songid").loc[songids, list(AV_COLUMNS)]
    ground_truth = musav_ground_truth(root / "annotations")
    pairs = ground_truth_training_pairs(ground_truth, root / "annotations")
    av_cfg = settings.av.model_dump(exclude={"model_name"})
    config = AVConfig(**av_cfg, seed=settings.seed, progress=show_progress)
    embeddings = embedding_matrix(embedded)
    fit = cross_fit_av(embeddings, songids, targets.to_numpy(dtype=float), pairs, config)
    oof = pd.DataFrame({"songid": embedded["track_id"], "model": f"{settings.av.model_name}-{settings.av.mode}",
                        "arousal_mean": fit.oof[:, 1], "valence_mean": fit.oof[:, 0]})
    metrics = _av_metrics(settings, ground_truth, targets, av_table(songids, fit.oof), fit.history, len(songs), problems)
    baselines = _av_baselines(settings, songids, targets, pairs, fit.folds, fit.oof, features, ground_truth)
    metrics |= {key: baselines[key] for key in ("musav_set", "in_domain", "in_domain_note")}
    metrics["baselines"] = _baseline_summary(baselines)
    checkpoint = av_checkpoint(fit.ensemble, config=av_cfg, label_names=label_names(workdir),
                               classifier_sha256=artifacts.file_hash(workdir.classifier))
    with BY_NAME["train-av"].staged(workdir) as out:
        save_checkpoint(checkpoint, out.av_regressor)
        artifacts.write_table(out.musav_embeddings, embedding_table(embedded))
        artifacts.write_table(out.musav_features, features.rows)
        artifacts.write_bytes(out.musav_predictions, musav.format_predictions(oof).encode("utf-8"))
        artifacts.write_json(out.av_metrics, metrics)
        artifacts.update_baselines(out, "av", baselines)
        artifacts.write_skipped(out.skipped_report("train-av"),
                                skipped + [(songid, f"stage-1 features (baselines only): {reason}") for songid, reason in features.failures])
        BY_NAME["train-av"].record(out, settings)
        out.remove(workdir.chunk_dir("train-av"))
        out.remove(workdir.chunk_dir(MUSAV_FEATURES_MAP))
    return {"songs": len(embedded), "skipped": len(skipped), "mode": settings.av.mode,
            **av_summary(metrics, baselines)}


MUSAV_FEATURES_MAP = "train-av-features"
"""Chunk folder of the stage-1 feature map over the MusAV previews."""
IN_DOMAIN_NOTE = ("The model's valence/arousal numbers are out-of-fold, but the model is trained on MusAV's own pairs "
                  "and Spotify-style targets in cross-fitting (in-domain), as are the best-feature and ridge baselines; "
                  "the Spotify-target row uses no training at all.")


def _musav_features(settings: Settings, workdir: Workdir, tasks: dict[str, tuple[str, str]], show_progress: bool) -> MapOutcome:
    """Stage-1 features of the MusAV previews, mapped like stage 1a (a failed preview is listed, not fatal)."""
    cfg = settings.features
    fingerprint = {"source": "audio", "features": list(FEATURE_NAMES), "version": artifacts.package_versions()}
    return map_tracks(track_features, tasks, chunk_dir=workdir.chunk_dir(MUSAV_FEATURES_MAP), fingerprint=fingerprint,
                      scheduler=cfg.scheduler, n_workers=cfg.n_workers, chunk_size=cfg.chunk_size,
                      track_timeout_s=cfg.track_timeout_s, description="MusAV features", show_progress=show_progress and bool(tasks))


def musav_set_name(settings: Settings) -> str:
    """Name the MusAV set an AV number comes from: the demo's synthetic one, or the real dataset."""
    if settings.musav.planted_truth is not None:
        return "synthetic demo MusAV (moodscape demo-data)"
    return f"MusAV (Bogdanov et al., ISMIR 2022) at {settings.musav.root}"


def _planted_archetypes(truth: Path | None, songids: list[str]) -> list[str] | None:
    """The demo's planted archetype of every song, or ``None`` (no truth configured, or it misses a song)."""
    if truth is None:
        return None
    planted = artifacts.read_json(truth).get("tracks", {})
    if not all(isinstance(planted.get(songid), dict) and "archetype" in planted[songid] for songid in songids):
        return None
    return [str(planted[songid]["archetype"]) for songid in songids]


def _av_baselines(settings: Settings, songids: list[str], targets: pd.DataFrame, pairs: pd.DataFrame, folds: np.ndarray,
                  model_oof: np.ndarray, features: MapOutcome, ground_truth: list) -> dict:
    """The ``"av"`` section of ``metrics/baselines.json``: model and baselines on the songs that have features too."""
    table = features.rows.set_index("track_id") if len(features.rows) else pd.DataFrame(columns=FEATURE_NAMES)
    featured = np.isin(songids, table.index)
    scored = [songid for songid, keep in zip(songids, featured) if keep]
    if len(np.unique(folds[featured])) < 2:
        first = f" (first failure: {features.failures[0][0]}: {features.failures[0][1]})" if features.failures else ""
        raise DataError(f"only {len(scored)} of {len(songids)} MusAV previews gave stage-1 features: too few for the "
                        f"baselines{first}")
    result = av_baselines(scored, table.loc[scored, list(FEATURE_NAMES)].to_numpy(float), FEATURE_NAMES,
                          targets.loc[scored, list(AV_COLUMNS)].to_numpy(float), pairs, folds[featured], ground_truth,
                          model_oof[featured], _planted_archetypes(settings.musav.planted_truth, scored))
    return {"musav_set": musav_set_name(settings), "in_domain": True, "in_domain_note": IN_DOMAIN_NOTE,
            "scored_on": (f"the {len(scored)} of {len(songids)} model-predicted songs that also have stage-1 features, "
                          "with the model's own folds; every row is scored on the same ground-truth pairs, less the pairs of "
                          "a song it has no prediction for (pairs_without_prediction)"),
            "n_songs_model": len(songids), **result,
            "feature_failures": [{"songid": songid, "reason": reason} for songid, reason in features.failures]}


def _baseline_summary(baselines: dict) -> dict:
    """The compact ``"baselines"`` entry of ``metrics/av.json`` (the full rows are in ``metrics/baselines.json``)."""
    predictors = baselines["predictors"]
    return {
        "n_songs": baselines["n_songs"],
        "pairs": {row["type"]: row["pairs"] for row in predictors["model"]["pairwise"] if row["file"] == "gt"},
        "pairwise_accuracy": {key: row["pairwise_accuracy"] for key, row in predictors.items()},
        "r2": {key: {name: row["held_out"][name]["r2"] for name in AV_COLUMNS}
               for key, row in predictors.items() if "held_out" in row},
        "best_feature": predictors["best_feature"]["feature"],
    }


def _av_metrics(settings, ground_truth: list, targets: pd.DataFrame, predictions: pd.DataFrame, history: list,
                n_songs: int, problems: list[str]) -> dict:
    """Held-out (out-of-fold) R², Pearson r, RMSE and MusAV pairwise accuracy per ground-truth file."""
    scores = score_av_predictions(predictions, ground_truth, targets)
    return {
        "mode": settings.av.mode, "folds": settings.av.folds, "held_out_by": "whole-triplet folds (out-of-fold predictions)",
        "n_songs": {"listed": n_songs, "embedded": int(len(predictions))},
        "held_out": scores["held_out"], "pairwise_accuracy": scores["pairwise_accuracy"], "pairwise": scores["pairwise"],
        "history": history, "dataset_problems": problems,
    }

