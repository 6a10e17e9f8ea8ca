"""Stage runners of stages 4 and 5: the valence/arousal regressor and unified inference.

Both stages run the stage-3 network the same way: :func:`_network_map` exports the
classifier (adapters merged) and, for stage 5, the AV regressor into one bundle, and maps
:func:`moodscape.inference.infer_chunk` over the tracks through Dask, in resumable
chunks. Stage 4 uses the embeddings of that map for the MusAV songs, so the regressor is
trained on exactly the embeddings stage 5 feeds it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import artifacts
from .artifacts import Workdir
from .config import Settings
from .datasets import musav
from .errors import ArtifactError, ConfigError, DataError
from .evaluation import pairwise_accuracy, regression_metrics
from .inference import AV_COLUMNS, embedding_matrix, embedding_table, export_bundle, infer_chunk, lookup_tables
from .parallel import MapOutcome, clear_chunks, map_tracks
from .pipeline import feature_tasks, inference_tracks, load_collection
from .stages import stage_request
from .training.loop import save_atomic

def _label_names(workdir: Workdir) -> list[str]:
    label_to_idx = artifacts.read_json(workdir.label_to_idx)
    return sorted(label_to_idx, key=label_to_idx.get)


def _network_map(
    settings: Settings, workdir: Workdir, stage: str, tasks: dict[str, tuple[str, str]],
    av_checkpoint: dict | None, show_progress: bool,
) -> MapOutcome:
    """Run the stage-3 network (and the AV regressor, if given) over ``tasks`` in one pass per track."""
    from .training.classify import load_classifier

    for required in (workdir.backbone, workdir.classifier, workdir.label_to_idx):
        if not required.exists():
            raise ArtifactError(f"missing artifact {required}: run `moodscape train` first")
    label_to_idx = artifacts.read_json(workdir.label_to_idx)
    names = sorted(label_to_idx, key=label_to_idx.get)
    classifier = load_classifier(workdir.classifier, workdir.backbone, label_to_idx)
    bundle = export_bundle(
        classifier, names, av_checkpoint, crop_frames=settings.train.crop_frames,
        n_eval_crops=settings.train.n_eval_crops, batch_size=settings.infer.batch_size, device=settings.infer.device,
    )
    bundle_path = workdir.inference_bundle(stage)
    save_atomic(bundle, bundle_path)
    model_files = [workdir.backbone, workdir.classifier] + ([workdir.av_regressor] if av_checkpoint else [])
    fingerprint = {"models": [artifacts.file_hash(path) for path in model_files],
                   "settings": settings.stage_settings("infer"), "crops": [settings.train.crop_frames, settings.train.n_eval_crops]}
    cfg = settings.features
    return map_tracks(
        functools.partial(infer_chunk, str(bundle_path)), tasks, chunk_dir=workdir.chunk_dir(stage), fingerprint=fingerprint,
        scheduler=cfg.scheduler, n_workers=cfg.n_workers, chunk_size=cfg.chunk_size, batched=True,
        description="network" if stage == "infer" else "MusAV embeddings", show_progress=show_progress and bool(tasks),
    )


def catalog_table(tracks: pd.DataFrame, track_ids: pd.Series) -> pd.DataFrame:
    """The serving catalog: ``track_id``, ``audio_path`` (absolute, ``""`` when none), ``split``
    and the dataset's ``artist_id``/``album_id`` when it has them, for ``track_ids`` in order."""
    columns = ["track_id", "audio_path", "split"] + [c for c in ("artist_id", "album_id") if c in tracks]
    table = tracks.reindex(columns=columns).drop_duplicates("track_id").set_index("track_id").loc[list(track_ids)]
    audio = table["audio_path"].fillna("").astype(str)
    table["audio_path"] = [str(Path(path).resolve()) if path else "" for path in audio]
    return table.fillna("").astype(str).reset_index()


# --------------------------------------------------------------------------- stage 4


def run_train_av(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 4: embed the MusAV songs, cross-fit the AV regressor, score it the MusAV way."""
    from .models.av import av_checkpoint
    from .training.av import AVConfig, cross_fit_av

    cfg = settings.musav
    if cfg.root is None:
        raise ConfigError("train-av needs the MusAV dataset: set [musav] root, audio_root and metadata_root")
    songs, problems = musav.load_musav(cfg.root, audio_root=cfg.audio_root, metadata_root=cfg.metadata_root)
    tasks = {songid: ("audio", path) for songid, path in zip(songs["songid"], songs["audio_path"]) if path}
    skipped = [(songid, "no audio preview found") for songid, path in zip(songs["songid"], songs["audio_path"]) if not path]
    if not tasks:
        raise DataError(f"no MusAV song has audio under {cfg.audio_root} (set [musav] audio_root)")
    outcome = _network_map(settings, workdir, "train-av", tasks, None, show_progress)
    skipped += outcome.failures
    embedded = outcome.rows
    if len(embedded) < 3 * settings.av.folds:
        raise DataError(f"only {len(embedded)} MusAV songs could be embedded; {3 * settings.av.folds} needed for {settings.av.folds} folds")
    targets = songs.set_index("songid").loc[embedded["track_id"], list(AV_COLUMNS)].to_numpy(dtype=float)
    pairs = _ground_truth_pairs(Path(cfg.root))
    av_cfg = settings.av.model_dump(exclude={"model_name"})
    config = AVConfig(**av_cfg, seed=settings.seed, progress=show_progress)
    embeddings = embedding_matrix(embedded)
    fit = cross_fit_av(embeddings, embedded["track_id"].tolist(), targets, pairs, config)
    oof = pd.DataFrame({"songid": embedded["track_id"], "model": f"{settings.av.model_name}-{settings.av.mode}",
                        "arousal_mean": fit.oof[:, 1], "valence_mean": fit.oof[:, 0]})
    metrics = _av_metrics(settings, Path(cfg.root), targets, fit, oof, len(songs), problems)
    workdir.av_regressor.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(av_checkpoint(fit.ensemble, config=av_cfg, label_names=_label_names(workdir),
                              classifier_sha256=artifacts.file_hash(workdir.classifier)), workdir.av_regressor)
    artifacts.write_table(workdir.musav_embeddings, embedding_table(embedded))
    with artifacts.atomic_path(workdir.musav_predictions) as tmp:
        tmp.write_text(musav.format_predictions(oof), encoding="utf-8")
    artifacts.write_json(workdir.av_metrics, metrics)
    artifacts.write_skipped(workdir.skipped_report("train-av"), skipped)
    outputs = [workdir.av_regressor, workdir.av_metrics, workdir.musav_embeddings, workdir.musav_predictions]
    artifacts.record_stage(workdir, "train-av", outputs, *stage_request("train-av", settings, workdir))
    clear_chunks(workdir.chunk_dir("train-av"))
    headline = metrics["pairwise_accuracy"]
    return {"songs": len(embedded), "skipped": len(skipped), "mode": settings.av.mode,
            "arousal pairwise accuracy": _percent(headline["arousal"]), "valence pairwise accuracy": _percent(headline["valence"]),
            "arousal R²": f"{metrics['held_out']['arousal']['r2']:.3f}", "valence R²": f"{metrics['held_out']['valence']['r2']:.3f}"}


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"


def _ground_truth_pairs(root: Path) -> pd.DataFrame:
    """All ground-truth pairs (``.gt``) of both types, the pairs the ranking loss trains on."""
    tables = []
    for subset, av_type, path in musav.ground_truth_files(root / "annotations"):
        if subset == "gt":
            tables.append(musav.read_ground_truth(path).assign(type=av_type))
    if not tables:
        raise DataError(f"{root / 'annotations'}: no ground-truth file annotations.{{arousal,valence}}.all.agreement.gt")
    return pd.concat(tables, ignore_index=True)


def _av_metrics(settings, root: Path, targets: np.ndarray, fit, oof: pd.DataFrame, n_songs: int, problems: list[str]) -> dict:
    """Held-out (out-of-fold) R², Pearson r, RMSE and MusAV pairwise accuracy per ground-truth file."""
    held_out = {name: regression_metrics(targets[:, column], fit.oof[:, column]) for column, name in enumerate(AV_COLUMNS)}
    predicted = set(oof["songid"])
    values = {av_type: dict(zip(oof["songid"], oof[f"{av_type}_mean"])) for av_type in AV_COLUMNS}
    files = []
    for subset, av_type, path in musav.ground_truth_files(root / "annotations"):
        truth = musav.read_ground_truth(path)
        scored = truth["songid_a"].isin(predicted) & truth["songid_b"].isin(predicted)
        counts = pairwise_accuracy(truth[scored], values[av_type], source=str(path))
        files.append({"file": f"{subset}", "type": av_type, **counts, "pairs_without_prediction": int((~scored).sum())})
    headline = {row["type"]: row["accuracy"] for row in files if row["file"] == "gt"}
    return {
        "mode": settings.av.mode, "folds": settings.av.folds, "held_out_by": "whole-triplet folds (out-of-fold predictions)",
        "n_songs": {"listed": n_songs, "embedded": int(len(oof))},
        "held_out": held_out, "pairwise_accuracy": headline, "pairwise": files,
        "history": fit.history, "dataset_problems": problems,
    }


# --------------------------------------------------------------------------- stage 5


def _av_checkpoint_dict(workdir: Workdir) -> dict | None:
    from .models.backbone import read_checkpoint

    if not workdir.av_regressor.exists():
        return None
    return read_checkpoint(workdir.av_regressor, "AV regressor checkpoint", ("state_dict", "model_args"))


def run_infer(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 5: labels, probabilities, valence/arousal and embeddings of every requested track."""
    collection = load_collection(settings)
    tracks, unreadable = inference_tracks(settings, collection)
    if tracks.empty and not unreadable:
        raise DataError(f"no track to infer (infer.split = {settings.infer.split!r})")
    source = settings.features.source if settings.features.source in ("audio", "mel") else "auto"
    tasks, skipped, _ = feature_tasks(tracks, "auto" if settings.infer.folder else source)
    skipped = unreadable + skipped
    av = _av_checkpoint_dict(workdir)
    outcome = _network_map(settings, workdir, "infer", tasks, av, show_progress)
    skipped += outcome.failures
    if outcome.rows.empty:
        raise DataError(f"no track could be inferred ({len(skipped)} skipped, see {workdir.skipped_report('infer')})")
    lookup, embeddings = lookup_tables(outcome.rows, _label_names(workdir), tracks)
    artifacts.write_table(workdir.inference_lookup, lookup)
    artifacts.write_table(workdir.embeddings, embeddings)
    artifacts.write_table(workdir.catalog, catalog_table(tracks, lookup["track_id"]))
    artifacts.write_bytes(workdir.serving_model, workdir.inference_bundle("infer").read_bytes())
    artifacts.write_skipped(workdir.skipped_report("infer"), skipped)
    outputs = [workdir.inference_lookup, workdir.embeddings, workdir.catalog, workdir.serving_model]
    artifacts.record_stage(workdir, "infer", outputs,
                           *stage_request("infer", settings, workdir, collection.with_tracks(tracks)))
    clear_chunks(workdir.chunk_dir("infer"))
    return {"tracks": len(lookup), "skipped": len(skipped), "labels": int(lookup["new_acoustic_label"].nunique()),
            "valence/arousal": "yes" if av else "no (run train-av)", "resumed": outcome.resumed}
