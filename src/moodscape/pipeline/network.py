"""Stage runners of the network stages: mel cache, pretrain (3a), train (3b) and ablate.

Like :mod:`moodscape.pipeline`, each runner reads artifacts through
:class:`~moodscape.artifacts.Workdir`, calls the training code with arrays and mappings,
writes its artifacts and returns a summary for the CLI. Torch is imported here, not in
the stage 1–2 runners, so those commands start fast.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .. import artifacts
from ..artifacts import Workdir
from ..audio import MEL_FMAX, MEL_HOP, MEL_N_BANDS, MEL_SR
from ..config import Settings
from ..datasets import SPLITS, jamendo
from ..errors import ArtifactError, DataError, MissingArtifactError, MoodscapeError
from ..evaluation import tag_f1_macro, tagging_metrics
from ..models.backbone import backbone_checkpoint, build_backbone, load_backbone_weights
from ..models.checkpoint import save_checkpoint
from ..training.classify import ClassifierConfig, last_checkpoint_path, train_classifier
from ..launch import under_torchrun
from ..training.loop import setup_processes, teardown_processes
from ..training.data import embed_tracks, predict_tracks
from ..training.contrastive import ContrastiveConfig, CropPairs, pair_scores, pretrain_contrastive
from ..training.pretrain import PretrainConfig, choose_objective, pretrain_backbone
from ..training.probe import (
    feature_matrices,
    label_probe_metrics,
    stage1_label_baseline,
    stage1_tag_baseline,
    tag_probe_metrics,
)
from .collection import load_collection
from .features import feature_tasks
from .parallel import clear_chunks, map_tracks
from .stages import BY_NAME


MEL_CACHE_FORMAT = f"float32 dB, sr={MEL_SR}, hop={MEL_HOP}, bands={MEL_N_BANDS}, fmax={MEL_FMAX}, v2"
"""What a cached mel is; part of every cache key, so a change of the mel settings recomputes the cache."""


def cache_mel(task: tuple[str, str, str]) -> dict[str, int]:
    """Compute one track's log-mel spectrogram and store it (float32, as inference reads it) in the cache.

    A released mel file that is already float32 in C order is checked and linked, not
    copied: the training stages memory-map it where it lies, so the full MTG-Jamendo
    (73 GB of mels) is not stored twice. Top-level so that Dask can send it to worker
    processes.
    """
    from ..audio import load_mel, mel_from_audio

    kind, source, target = task
    mel_db = load_mel(source) if kind == "mel" else mel_from_audio(source)
    if not (kind == "mel" and _memory_mappable(source) and artifacts.link_file(Path(target), source)):
        artifacts.write_array(Path(target), mel_db.astype(np.float32))
    return {"frames": int(mel_db.shape[1])}


def _memory_mappable(path: str) -> bool:
    """Whether a ``.npy`` file holds float32 in C order, as the training crops read it."""
    header = np.load(path, mmap_mode="r")
    return header.dtype == np.float32 and header.flags.c_contiguous


def mel_source_key(kind: str, source: str) -> str:
    """The cache key of a track's mel: the mel settings and the source file's path, size and modification time.

    Raises
    ------
    OSError
        When the source cannot be read.
    """
    return hashlib.sha256(f"{MEL_CACHE_FORMAT}|{kind}|{artifacts.file_stamp(source)}".encode()).hexdigest()[:16]


def prepare_mels(
    settings: Settings, workdir: Workdir, tracks: pd.DataFrame, *, show_progress: bool = True
) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """Log-mel spectrograms of ``tracks``, decoded once and cached in the work directory.

    A cached mel is reused only while its source file (path, size, modification time)
    and the mel settings are unchanged; otherwise it is computed again and the stale
    file removed. So every training stage and epoch reads the same files, and they
    describe the audio that is there now. Returns ``{track_id: cache path}`` and the
    ``(track_id, reason)`` list of tracks without a usable audio or mel file.
    """
    source = settings.features.source if settings.features.source in ("audio", "mel") else "auto"
    tasks, missing, _ = feature_tasks(tracks, source)
    cached, unreadable = {}, []
    for track_id, (kind, path) in tasks.items():
        try:
            cached[track_id] = workdir.mel_path(track_id, mel_source_key(kind, path))
        except OSError as exc:
            unreadable.append((track_id, f"cannot read {path}: {exc.strerror or exc}"))
    for track_id, paths in workdir.cached_mels().items():
        for stale in (path for path in paths if track_id in cached and path != cached[track_id]):
            stale.unlink(missing_ok=True)
    todo = {tid: (*tasks[tid], str(path)) for tid, path in cached.items() if not path.exists()}
    cfg = settings.features
    outcome = map_tracks(
        cache_mel, todo, chunk_dir=workdir.chunk_dir("mels"), fingerprint={"mel": MEL_CACHE_FORMAT},
        scheduler=cfg.scheduler, n_workers=cfg.n_workers, chunk_size=cfg.chunk_size, track_timeout_s=cfg.track_timeout_s,
        description="mel-spectrograms", show_progress=show_progress and bool(todo),
    )
    clear_chunks(workdir.chunk_dir("mels"))
    failed = {track_id for track_id, _ in outcome.failures}
    mels = {tid: path for tid, path in cached.items() if tid not in failed and path.exists()}
    return mels, missing + unreadable + outcome.failures


def _by_split(tracks: pd.DataFrame, mels: dict[str, Path]) -> dict[str, pd.DataFrame]:
    usable = tracks[tracks["track_id"].isin(mels)]
    return {split: usable[usable["split"] == split] for split in ("train", "validation", "test")}


def _require(parts: dict[str, pd.DataFrame], stage: str) -> None:
    empty = [split for split, part in parts.items() if part.empty]
    if empty:
        raise DataError(f"{stage}: no usable track in the {', '.join(empty)} split(s)")


# --------------------------------------------------------------------------- stage 3a


def run_pretrain(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 3a: pretrain the backbone on the original tags or self-supervised, or adopt ``pretrain.backbone``.

    The objective (``pretrain.objective``, see :func:`~moodscape.training.pretrain.choose_objective`)
    and why it was chosen go to the summary, the stage metrics and the checkpoint.
    """
    collection = load_collection(settings)
    if settings.pretrain.backbone is not None:
        return _adopt_backbone(settings, workdir, collection)
    every_track = {split: jamendo.tag_matrix(collection.tracks[collection.tracks["split"] == split], collection.vocabulary)[0]
                   for split in ("train", "validation", "test")}
    objective, reason = choose_objective(settings.pretrain.objective, every_track)
    chosen = {"objective": objective, "reason": reason}
    if objective == "contrastive":
        return _pretrain_contrastive(settings, workdir, collection, chosen, show_progress)
    tracks = collection.tracks[collection.tracks["tags"].map(len) > 0]
    mels, skipped = prepare_mels(settings, workdir, tracks, show_progress=show_progress)
    parts = _by_split(tracks, mels)
    _require(parts, "pretrain")
    targets = {split: jamendo.tag_matrix(part, collection.vocabulary)[0] for split, part in parts.items()}
    config = _pretrain_config(PretrainConfig, settings, show_progress)
    model, history = pretrain_backbone(
        _mels_of(parts["train"], mels), targets["train"], _mels_of(parts["validation"], mels), targets["validation"], config
    )
    test_ids = parts["test"]["track_id"].tolist()
    scores = torch.sigmoid(torch.from_numpy(predict_tracks(model, mels, test_ids, **config.evaluation))).numpy()
    test = {**tagging_metrics(targets["test"], scores, collection.vocabulary), "f1_macro": tag_f1_macro(targets["test"], scores)}
    metrics = {"test": test, "history": history, "tags": collection.vocabulary, "n_tracks": {s: len(p) for s, p in parts.items()},
               **chosen}
    with BY_NAME["pretrain"].staged(workdir) as out:
        save_checkpoint(backbone_checkpoint(model, tags=list(collection.vocabulary), objective=objective), out.backbone)
        _write_tag_baselines(out, parts, targets, collection.vocabulary, test)
        _record_pretrain(settings, out, collection, metrics, skipped)
    return {**chosen, "epochs": history["epochs_run"], "best_epoch": history["best_epoch"],
            "test_roc_auc_macro": test["roc_auc_macro"], "test_tag_f1_macro": test["f1_macro"], "skipped": len(skipped)}


def _pretrain_contrastive(settings: Settings, workdir: Workdir, collection, chosen: dict[str, str],
                          show_progress: bool) -> dict[str, Any]:
    """Stage 3a without labels: every track with a mel, two crops of a track against the batch."""
    mels, skipped = prepare_mels(settings, workdir, collection.tracks, show_progress=show_progress)
    parts = _by_split(collection.tracks, mels)
    _require(parts, "pretrain")
    config = _pretrain_config(ContrastiveConfig, settings, show_progress)
    model, history = pretrain_contrastive(_mels_of(parts["train"], mels), _mels_of(parts["validation"], mels), config)
    test_pairs = CropPairs(mels, parts["test"]["track_id"].tolist(), crop_frames=config.crop_frames, seed=config.seed)
    test = {"embedding_retrieval_top1": pair_scores(model, test_pairs, batch_size=config.batch_size,
                                                    temperature=config.temperature)["retrieval_top1"]}
    metrics = {"test": test, "history": history, "n_tracks": {s: len(p) for s, p in parts.items()}, **chosen}
    with BY_NAME["pretrain"].staged(workdir) as out:
        save_checkpoint(backbone_checkpoint(model, objective=chosen["objective"]), out.backbone)
        artifacts.update_baselines(out, "tags", {"backbone": None, "note": "the backbone was pretrained without tags "
                                                f"(objective contrastive, {chosen['reason']}): no tag model to compare"})
        _record_pretrain(settings, out, collection, metrics, skipped)
    return {**chosen, "epochs": history["epochs_run"], "best_epoch": history["best_epoch"],
            "best_val_nt_xent": history["best_val_nt_xent"], **{f"test_{k}": v for k, v in test.items()},
            "skipped": len(skipped)}


def _pretrain_config(kind: type[PretrainConfig] | type[ContrastiveConfig], settings: Settings, show_progress: bool):
    """The training call's config of ``kind`` from ``[pretrain]`` (the keys it knows), the run's seed and progress."""
    return kind(**settings.pretrain.model_dump(include=set(kind.model_fields)), seed=settings.seed, progress=show_progress)


def _record_pretrain(settings: Settings, out: artifacts.StagedWorkdir, collection, metrics: dict[str, Any],
                     skipped: list) -> None:
    artifacts.write_json(out.pretrain_metrics, metrics)
    artifacts.write_skipped(out.skipped_report("pretrain"), skipped)
    BY_NAME["pretrain"].record(out, settings, collection, extra_outputs=[out.pretrain_metrics])


def _write_tag_baselines(out: artifacts.StagedWorkdir, parts: dict[str, pd.DataFrame], targets: dict[str, np.ndarray],
                         vocabulary: list[str], backbone: dict) -> None:
    """``baselines.json`` ``tags``: a tag probe on stage-1 features, on the backbone's own test tracks."""
    section: dict[str, Any] = {"backbone": {"roc_auc_macro": backbone["roc_auc_macro"], "pr_auc_macro": backbone["pr_auc_macro"],
                                            "n_tracks": {s: len(parts[s]) for s in ("train", "test")}}}
    workdir = out.committed
    if workdir.features.exists():
        section["stage1_features_logistic"] = stage1_tag_baseline(
            artifacts.read_table(workdir.features), parts["train"]["track_id"].tolist(), targets["train"],
            parts["test"]["track_id"].tolist(), targets["test"], vocabulary)
    else:
        section["stage1_features_logistic"] = None
        section["note"] = f"no {workdir.features.name}: run `moodscape features` for the stage-1 baseline"
    artifacts.update_baselines(out, "tags", section)


def _write_label_baselines(out: artifacts.StagedWorkdir, labels: dict[str, int], splits: dict[str, str],
                           label_to_idx: dict[str, int], classifier: dict) -> None:
    """``baselines.json`` ``labels``: logistic regression on stage-1 features, on the classifier's test tracks."""
    ids = {split: [t for t in labels if splits.get(t) == split] for split in ("train", "test")}
    section: dict[str, Any] = {"classifier": {"accuracy": classifier["accuracy"], "macro_f1": classifier["macro_f1"],
                                              "n_tracks": {s: len(p) for s, p in ids.items()}}}
    workdir = out.committed
    if workdir.features.exists():
        section["stage1_features_logistic"] = stage1_label_baseline(
            artifacts.read_table(workdir.features), ids["train"], np.array([labels[t] for t in ids["train"]], dtype=int),
            ids["test"], np.array([labels[t] for t in ids["test"]], dtype=int), sorted(label_to_idx, key=label_to_idx.get))
    else:
        section["stage1_features_logistic"] = None
        section["note"] = f"no {workdir.features.name}: run `moodscape features` for the stage-1 baseline"
    artifacts.update_baselines(out, "labels", section)


def _adopt_backbone(settings: Settings, workdir: Workdir, collection) -> dict[str, Any]:
    backbone_file = Path(settings.pretrain.backbone)
    model = build_backbone(None)
    load_backbone_weights(model, backbone_file)
    with BY_NAME["pretrain"].staged(workdir) as out:
        save_checkpoint(backbone_checkpoint(model, source=str(backbone_file)), out.backbone)
        BY_NAME["pretrain"].record(out, settings, collection)
    return {"backbone": str(backbone_file), "pretrained": "given"}


def _mels_of(part: pd.DataFrame, mels: dict[str, Path]) -> dict[str, Path]:
    return {track_id: mels[track_id] for track_id in part["track_id"]}


# --------------------------------------------------------------------------- stage 3b


def _labelled(settings: Settings, workdir: Workdir, show_progress: bool):
    collection = load_collection(settings)
    label_table = artifacts.read_table(workdir.track_labels, ["track_id", "new_acoustic_label"])
    label_to_idx = artifacts.read_json(workdir.label_to_idx)
    unknown = sorted(set(label_table["new_acoustic_label"]) - set(label_to_idx))
    if unknown:
        raise ArtifactError(f"{workdir.track_labels} has labels missing from {workdir.label_to_idx}: {', '.join(unknown)}")
    if not workdir.backbone.exists():
        raise MissingArtifactError(workdir.backbone)
    in_split = collection.tracks["split"].isin(SPLITS)  # MTG-Jamendo lists tracks in no split
    tracks = collection.tracks[collection.tracks["track_id"].isin(label_table["track_id"]) & in_split]
    mels, skipped = prepare_mels(settings, workdir, tracks, show_progress=show_progress)
    labels = {t: label_to_idx[name] for t, name in zip(label_table["track_id"], label_table["new_acoustic_label"]) if t in mels}
    splits = dict(zip(tracks["track_id"], tracks["split"]))
    return collection, tracks, mels, labels, splits, label_to_idx, skipped


def _classifier_config(settings: Settings, show_progress: bool, **overrides: Any) -> ClassifierConfig:
    values = settings.train.model_dump(exclude={"nproc"})
    return ClassifierConfig(**{**values, **overrides}, seed=settings.seed, progress=show_progress)


def run_train(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 3b: LoRA adapters + head on the frozen backbone for the new labels.

    With ``train.nproc`` > 1 it starts itself under ``torchrun`` (see
    :func:`_relaunch_under_torchrun`); under ``torchrun`` every process runs this function,
    rank 0 prepares the mel cache before the others read it, and only rank 0 writes
    artifacts and returns a summary (the other ranks return ``{}``).
    """
    if settings.train.nproc > 1 and not under_torchrun():
        return _relaunch_under_torchrun(settings, workdir, show_progress)
    processes = setup_processes(settings.train.device)
    try:
        if not processes.is_main:
            torch.distributed.barrier()  # rank 0 fills the mel cache first
        collection, _, mels, labels, splits, label_to_idx, skipped = _labelled(settings, workdir, show_progress)
        if processes.is_main and processes.world_size > 1:
            torch.distributed.barrier()
        config = _classifier_config(settings, show_progress)
        workdir.classifier.parent.mkdir(parents=True, exist_ok=True)
        result = train_classifier(workdir.backbone, mels, labels, splits, config, label_to_idx=label_to_idx,
                                  state_path=last_checkpoint_path(workdir.classifier))
    finally:
        teardown_processes(processes)
    if not processes.is_main:
        return {}
    metrics = result.metrics
    with BY_NAME["train"].staged(workdir) as out:
        save_checkpoint(result.checkpoint, out.classifier)
        artifacts.write_json(out.classifier_metrics, metrics)
        artifacts.write_skipped(out.skipped_report("train"), skipped)
        _write_label_baselines(out, labels, splits, label_to_idx, metrics)
        BY_NAME["train"].record(out, settings, collection)
    return _train_summary(metrics, len(skipped))


def _train_summary(metrics: dict[str, Any], n_skipped: int) -> dict[str, Any]:
    return {"mode": metrics["mode"], "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
            "best_epoch": metrics["best_epoch"], "trainable_parameters": metrics["parameters"]["trainable"],
            "world_size": metrics.get("world_size", 1), "resumed_after_epoch": metrics.get("resumed_after_epoch", 0),
            "skipped": n_skipped}


def _relaunch_under_torchrun(settings: Settings, workdir: Workdir, show_progress: bool) -> dict[str, Any]:
    """Run ``torchrun --standalone --nproc_per_node N -m moodscape train --config S --workdir W``.

    ``S`` holds this run's settings (JSON, paths absolute), so the processes train exactly
    what was asked here, whether it came from a config file, ``--set`` or ``moodscape run``.
    The mel cache is filled here first, so no rank waits long for rank 0.
    """
    *_, skipped = _labelled(settings, workdir, show_progress)
    snapshot = workdir.settings_snapshot("train")
    artifacts.write_json(snapshot, settings.model_dump(mode="json"))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={settings.train.nproc}",
               "-m", "moodscape", "train", "--config", str(snapshot), "--workdir", str(workdir.root)]
    if subprocess.run(command).returncode != 0:
        raise MoodscapeError(f"distributed training failed ({' '.join(command[2:])}); see the messages above")
    metrics = artifacts.read_json(workdir.classifier_metrics)
    return _train_summary(metrics, len(skipped))


# --------------------------------------------------------------------------- ablation


def run_ablate(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Compare LoRA ranks, full fine-tuning, a linear probe, the tag-trained backbone and no network.

    Every trained variant runs on the same splits with the ``[train]`` settings and at
    most ``ablate.epochs`` epochs; the run's own classifier stands for its rank when it is
    current (``ablate.reuse_run_classifier``). Each variant is scored three ways:

    - on the new labels (test accuracy / macro-F1; a logistic probe for the tag-trained
      backbone). The labels are K-Means clusters of the stage-1 features, so this says
      more about the labels than about the network;
    - on the original tags, by a logistic probe on its embeddings (test ROC-AUC / PR-AUC macro);
    - by transfer to valence/arousal (``ablate.transfer``, when ``[musav]`` is set): the
      stage-4 regressor with the run's ``[av]`` settings and seed, cross-fitted on the
      same whole-triplet folds, on the variant's embeddings of the MusAV previews, scored
      with the MusAV protocol per ground-truth file.

    A ``stage1_features`` row gives the same probes and regressor on the standardised
    stage-1 features, with no network at all. Each variant's tracks are embedded once.
    MusAV songs without a readable preview are left out of the transfer and listed in
    ``reports/skipped_ablate.csv``; the summary counts them.
    """
    collection, _, mels, labels, splits, label_to_idx, _ = _labelled(settings, workdir, show_progress)
    names = sorted(label_to_idx, key=label_to_idx.get)
    tag_tracks = collection.tracks[collection.tracks["track_id"].isin(mels)]
    tag_ids = {split: tag_tracks.loc[tag_tracks["split"] == split, "track_id"].tolist() for split in ("train", "test")}
    tag_targets = {split: jamendo.tag_matrix(tag_tracks[tag_tracks["split"] == split], collection.vocabulary)[0]
                   for split in ("train", "test")}
    label_ids = {split: [t for t in labels if splits.get(t) == split] for split in ("train", "test")}
    label_targets = {split: np.array([labels[t] for t in ids], dtype=int) for split, ids in label_ids.items()}
    embed_ids = list(dict.fromkeys([*tag_ids["train"], *tag_ids["test"], *label_ids["train"], *label_ids["test"]]))
    crops = {"crop_frames": settings.train.crop_frames, "n_eval_crops": settings.train.n_eval_crops}
    transfer = _transfer_set(settings, show_progress) if settings.ablate.transfer else None

    rows, scored = [], {}
    for variant, overrides in _variants(settings):
        started = time.perf_counter()
        if variant == "tags":
            model = build_backbone(None)
            load_backbone_weights(model, workdir.backbone)
            row = _tag_model_row(workdir, model)
        else:
            model, row = _classifier_variant(settings, workdir, collection, variant, overrides, mels, labels, splits,
                                             label_to_idx, show_progress)
        # The linear probe trains only a head on the frozen backbone: its embedding is the tag-trained
        # backbone's, so both rows share one embedding pass, tag probe and regressor.
        key = "backbone" if variant in ("tags", "probe") else variant
        if key not in scored:
            embedded = dict(zip(embed_ids, embed_tracks(model, mels, embed_ids, **crops)))
            tags = tag_probe_metrics(_rows(embedded, tag_ids["train"]), tag_targets["train"],
                                     _rows(embedded, tag_ids["test"]), tag_targets["test"], collection.vocabulary)
            transferred = {"tag_roc_auc_macro": tags["roc_auc_macro"], "tag_pr_auc_macro": tags["pr_auc_macro"]}
            if transfer is not None:
                transferred |= _transfer_scores(settings, transfer, embed_tracks(model, transfer.mels, transfer.songids, **crops))
            scored[key] = embedded, transferred
        embedded, transferred = scored[key]
        if variant == "tags":
            probe = label_probe_metrics(_rows(embedded, label_ids["train"]), label_targets["train"],
                                        _rows(embedded, label_ids["test"]), label_targets["test"], names)
            row.update(accuracy=probe["accuracy"], macro_f1=probe["macro_f1"])
        if key == "backbone" and variant != _first_backbone_variant(settings):
            row["embedding_shared_with"] = _first_backbone_variant(settings)
        rows.append({"variant": variant, **row, **transferred, "wall_seconds": time.perf_counter() - started})
        if key != "backbone":
            del scored[key]
        del model, embedded
    rows.append(_stage1_row(settings, workdir, transfer, tag_ids, tag_targets, label_ids, label_targets, names,
                            collection.vocabulary, show_progress))
    document = {"variants": rows, "label_to_idx": label_to_idx, "n_tracks": {s: len(p) for s, p in label_ids.items()},
                "n_tag_tracks": {s: len(p) for s, p in tag_ids.items()},
                "train_settings": settings.stage_settings("train")["train"],
                "ablate_settings": settings.stage_settings("ablate")["ablate"],
                "transfer": None if transfer is None else {
                    "n_songs": {"listed": transfer.n_listed, "embedded": len(transfer.songids), "skipped": len(transfer.skipped)},
                    "av_settings": settings.stage_settings("av")["av"], "seed": settings.seed, "folds": transfer.folds,
                    "held_out_by": "whole-triplet folds (out-of-fold predictions), the same folds for every row"}}
    skipped = [] if transfer is None else transfer.skipped
    with BY_NAME["ablate"].staged(workdir) as out:
        artifacts.write_json(out.ablation_metrics, document)
        artifacts.write_skipped(out.skipped_report("ablate"), skipped)
        BY_NAME["ablate"].record(out, settings, collection)
    return {**{row["variant"]: _summary(row) for row in rows}, "skipped": len(skipped)}


def _first_backbone_variant(settings: Settings) -> str | None:
    """The first of ``probe`` and ``tags`` to run: the row that embeds with the tag-trained backbone."""
    return next((variant for variant, _ in _variants(settings) if variant in ("tags", "probe")), None)


def _summary(row: dict) -> str:
    parts = [f"macro-F1 {row['macro_f1']:.3f}" if row.get("macro_f1") is not None else None,
             f"tag ROC-AUC {row['tag_roc_auc_macro']:.3f}" if row.get("tag_roc_auc_macro") is not None else None]
    accuracy = row.get("musav_pairwise_accuracy") or {}
    if accuracy.get("arousal") is not None and accuracy.get("valence") is not None:
        parts.append(f"MusAV arousal {accuracy['arousal']:.1f} % / valence {accuracy['valence']:.1f} %")
    return ", ".join(part for part in parts if part)


def _rows(embedded: dict[str, np.ndarray], ids: list[str]) -> np.ndarray:
    return np.stack([embedded[t] for t in ids]) if ids else np.zeros((0, 512), dtype=np.float32)


def _variants(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    variants = []
    for kind in settings.ablate.include:
        if kind == "lora":
            variants += [(f"lora-r{r}", {"mode": "lora", "r": r, "alpha": 2.0 * r}) for r in settings.ablate.ranks]
        else:
            variants.append((kind, {"mode": kind}))
    return variants


def _classifier_variant(settings, workdir, collection, variant, overrides, mels, labels, splits, label_to_idx, show_progress):
    """Train one variant (at most ``ablate.epochs`` epochs), or adopt the run's classifier when it is that variant."""
    reused = _run_classifier(settings, workdir, collection, overrides, label_to_idx)
    if reused is not None:
        return reused
    config = _classifier_config(settings, show_progress, **overrides, epochs=settings.ablate.epochs)
    checkpoint = workdir.ablation_checkpoint(variant)
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    result = train_classifier(workdir.backbone, mels, labels, splits, config, label_to_idx=label_to_idx, checkpoint_path=checkpoint)
    return result.model, _classifier_row(result.metrics, checkpoint, settings.ablate.epochs)


def _classifier_row(metrics: dict, checkpoint: Path, epochs: int, reused_from: str | None = None) -> dict[str, Any]:
    return {"trainable_parameters": metrics["parameters"]["trainable"], "checkpoint_bytes": checkpoint.stat().st_size,
            "seconds_per_epoch": metrics["train_seconds_per_epoch"], "epochs": epochs, "epochs_run": metrics.get("epochs_run"),
            "best_epoch": metrics.get("best_epoch"), "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "reused_from": reused_from}


def _run_classifier(settings, workdir, collection, overrides, label_to_idx):
    """``(model, row)`` of the run's own classifier if it is current and is this variant, else ``None``."""
    from ..training.classify import load_classifier

    train = settings.train
    if not settings.ablate.reuse_run_classifier or overrides.get("mode") != train.mode:
        return None
    if train.mode == "lora" and (overrides.get("r") != train.r or overrides.get("alpha") != train.alpha):
        return None
    if not (workdir.classifier.exists() and workdir.classifier_metrics.exists()):
        return None
    if artifacts.stale_reason(workdir, "train", *BY_NAME["train"].request(settings, workdir, collection)) is not None:
        return None
    try:
        model = load_classifier(workdir.classifier, workdir.backbone, label_to_idx)
    except ArtifactError:
        return None
    metrics = artifacts.read_json(workdir.classifier_metrics)
    return model, _classifier_row(metrics, workdir.classifier, train.epochs, reused_from=_in_workdir(workdir, workdir.classifier))


def _in_workdir(workdir: Workdir, path: Path) -> str:
    try:
        return Path(path).resolve().relative_to(Path(workdir.root).resolve()).as_posix()
    except ValueError:
        return str(path)


def _tag_model_row(workdir: Workdir, model) -> dict[str, Any]:
    """The backbone trained on the original tags; its new-label scores come from a probe."""
    pretrain = artifacts.read_json(workdir.pretrain_metrics) if workdir.pretrain_metrics.exists() else {}
    history = pretrain.get("history", {})
    trainable = sum(p.numel() for p in model.parameters())
    return {"trainable_parameters": trainable, "checkpoint_bytes": workdir.backbone.stat().st_size,
            "seconds_per_epoch": history.get("train_seconds_per_epoch"), "epochs_run": history.get("epochs_run"),
            "best_epoch": history.get("best_epoch"), "reused_from": _in_workdir(workdir, workdir.backbone)}


# --------------------------------------------------------------------------- transfer to valence/arousal


@dataclasses.dataclass
class _TransferSet:
    """The MusAV previews every ablation row is scored on, in one fixed order (so one set of folds)."""

    songids: list[str]
    audio: dict[str, str]
    mels: dict[str, np.ndarray]
    targets: pd.DataFrame  # index songid, columns valence, arousal; NaN where unknown
    pairs: pd.DataFrame  # the ground-truth pairs of both types, which the rank loss trains on
    ground_truth: list[tuple[str, str, pd.DataFrame]]  # every ground-truth file, for scoring
    n_listed: int
    skipped: list[tuple[str, str]]  # (songid, reason) of the listed songs left out
    folds: dict[str, int] | None = None  # test fold of each song, the same for every row


def _transfer_set(settings: Settings, show_progress: bool) -> _TransferSet | None:
    """Load the MusAV previews and cut each one's evaluation crops once (``None`` without ``[musav]``).

    A preview's crops are those stage 4 embeds (:func:`moodscape.audio.mel_crops_from_audio`),
    laid end to end: :func:`embed_tracks` then takes exactly those crops again. The
    regressor trains on the pairs of the ``gt`` files, as in stage 4.
    """
    from ..audio import mel_crops_from_audio
    from ..datasets import musav
    from ..evaluation import ground_truth_training_pairs, musav_ground_truth

    cfg = settings.musav
    if cfg.root is None:
        return None
    songs, _ = musav.load_musav(cfg.root, audio_root=cfg.audio_root, metadata_root=cfg.metadata_root)
    audio = {songid: str(path) for songid, path in zip(songs["songid"], songs["audio_path"]) if path}
    crop_frames, n_crops = settings.train.crop_frames, settings.train.n_eval_crops
    mels, skipped = {}, [(songid, "no audio preview found") for songid in songs["songid"] if songid not in audio]
    for songid, path in audio.items():
        try:
            crops, _ = mel_crops_from_audio(path, crop_frames, n_crops)
        except MoodscapeError as error:
            skipped.append((songid, str(error)))
            continue
        mels[songid] = np.concatenate(list(crops), axis=1)  # (96, n_crops * crop_frames)
    if len(mels) < 3 * settings.av.folds:
        first = f" (first skipped: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"ablate: only {len(mels)} MusAV previews could be read; {3 * settings.av.folds} needed "
                        f"for {settings.av.folds} folds (or set ablate.transfer = false){first}")
    songids = list(mels)
    annotations = Path(cfg.root) / "annotations"
    ground_truth = musav_ground_truth(annotations)
    pairs = ground_truth_training_pairs(ground_truth, annotations)
    targets = songs.set_index("songid").loc[songids, list(artifacts.AV_COLUMNS)].astype(float)
    return _TransferSet(songids, audio, mels, targets, pairs, ground_truth, len(songs), skipped)


def _transfer_scores(settings: Settings, transfer: _TransferSet, embeddings: np.ndarray) -> dict[str, Any]:
    """Cross-fit the stage-4 regressor on ``embeddings`` (one row per song) and score it as stage 4 does."""
    from ..evaluation import av_table, score_av_predictions
    from ..training.av import AVConfig, cross_fit_av

    config = AVConfig(**settings.av.model_dump(exclude={"model_name"}), seed=settings.seed, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 512 → 128 → 2 MLP on ~100 songs: more threads only add synchronisation
    try:
        fit = cross_fit_av(embeddings, transfer.songids, transfer.targets.to_numpy(dtype=float), transfer.pairs, config)
    finally:
        torch.set_num_threads(threads)
    folds = dict(zip(transfer.songids, fit.folds.tolist()))
    if transfer.folds is None:
        transfer.folds = folds
    elif folds != transfer.folds:
        raise MoodscapeError("ablate: the MusAV folds differ between rows; the comparison would not be on the same songs")
    scores = score_av_predictions(av_table(transfer.songids, fit.oof), transfer.ground_truth, transfer.targets)
    return {"musav_pairwise_accuracy": scores["pairwise_accuracy"], "musav_pairwise": scores["pairwise"],
            "av_r2": {name: values.get("r2") for name, values in scores["held_out"].items()},
            "av_pearson_r": {name: values.get("pearson_r") for name, values in scores["held_out"].items()}}


def _musav_features(workdir: Workdir, transfer: _TransferSet, show_progress: bool) -> pd.DataFrame:
    """Stage-1 features of the MusAV previews: stage 4's ``musav_features.parquet``, else computed here."""
    from ..features import FEATURE_NAMES, extract_features

    table = pd.DataFrame(columns=["track_id", *FEATURE_NAMES])
    if workdir.musav_features.exists():
        table = artifacts.read_table(workdir.musav_features)
    missing = [songid for songid in transfer.songids if songid not in set(table["track_id"])]
    computed = []
    for songid in missing:
        try:
            computed.append({"track_id": songid, **extract_features(transfer.audio[songid])})
        except MoodscapeError:
            continue
    if computed:
        table = pd.concat([table, pd.DataFrame(computed)], ignore_index=True) if len(table) else pd.DataFrame(computed)
    return table


def _stage1_row(settings, workdir, transfer, tag_ids, tag_targets, label_ids, label_targets, names, vocabulary, show_progress):
    """The same probes and regressor on standardised stage-1 features: no network at all."""
    started = time.perf_counter()
    row: dict[str, Any] = {"variant": "stage1_features", "trainable_parameters": None}
    if workdir.features.exists():
        features = artifacts.read_table(workdir.features)
        labels = stage1_label_baseline(features, label_ids["train"], label_targets["train"], label_ids["test"],
                                       label_targets["test"], names)
        tags = stage1_tag_baseline(features, tag_ids["train"], tag_targets["train"], tag_ids["test"], tag_targets["test"],
                                   vocabulary)
        row.update(accuracy=labels["accuracy"], macro_f1=labels["macro_f1"], tag_roc_auc_macro=tags["roc_auc_macro"],
                   tag_pr_auc_macro=tags["pr_auc_macro"], n_tracks_without_features=labels["n_tracks_without_features"])
    if transfer is not None:
        table = _musav_features(workdir, transfer, show_progress)
        have = set(table["track_id"])
        if all(songid in have for songid in transfer.songids):
            (matrix,) = feature_matrices(table, transfer.songids)
            row.update(_transfer_scores(settings, transfer, matrix))
        else:
            row["musav_note"] = f"{sum(s not in have for s in transfer.songids)} MusAV previews without stage-1 features"
    row["wall_seconds"] = time.perf_counter() - started
    return row
