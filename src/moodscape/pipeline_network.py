"""Stage runners of the network stages: mel cache, pretrain (3a), train (3b) and ablate.

Like :mod:`moodscape.pipeline`, each runner reads artifacts through
:class:`~moodscape.artifacts.Workdir`, calls the training code with arrays and mappings,
writes its artifacts and returns a summary for the CLI. Torch is imported here, not in
the stage 1–2 runners, so those commands start fast.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from . import artifacts
from .artifacts import Workdir
from .config import Settings
from .datasets import jamendo
from .errors import ArtifactError, DataError, MoodscapeError
from .models.backbone import backbone_checkpoint, build_backbone, load_backbone_weights
from .parallel import clear_chunks, map_tracks
from .pipeline import feature_tasks, load_collection
from .stages import stage_request
from .training.classify import ClassifierConfig, train_classifier
from .training.data import embed_tracks, predict_tracks
from .training.loop import save_atomic
from .training.pretrain import PretrainConfig, pretrain_backbone
from .training.probe import label_probe_metrics, tag_probe_metrics
from .evaluation import tag_f1_macro, tagging_metrics

# --------------------------------------------------------------------------- mel cache


def cache_mel(task: tuple[str, str, str]) -> dict[str, int]:
    """Compute one track's log-mel spectrogram and store it (float16) in the cache.

    Top-level so that Dask can send it to worker processes.
    """
    from .audio import load_mel, mel_from_audio

    kind, source, target = task
    mel_db = load_mel(source) if kind == "mel" else mel_from_audio(source)
    artifacts.write_array(Path(target), mel_db.astype(np.float16))
    return {"frames": int(mel_db.shape[1])}


def prepare_mels(
    settings: Settings, workdir: Workdir, tracks: pd.DataFrame, *, show_progress: bool = True
) -> tuple[dict[str, Path], list[tuple[str, str]]]:
    """Log-mel spectrograms of ``tracks``, decoded once and cached in the work directory.

    Tracks already cached are not recomputed, so every training stage and epoch reads the
    same files. Returns ``{track_id: cache path}`` and the ``(track_id, reason)`` list of
    tracks without a usable audio or mel file.
    """
    source = settings.features.source if settings.features.source in ("audio", "mel") else "auto"
    tasks, missing, _ = feature_tasks(tracks, source)
    cached = {track_id: workdir.mel_path(track_id) for track_id in tasks}
    todo = {tid: (kind, path, str(cached[tid])) for tid, (kind, path) in tasks.items() if not cached[tid].exists()}
    cfg = settings.features
    outcome = map_tracks(
        cache_mel, todo, chunk_dir=workdir.chunk_dir("mels"), fingerprint={"mel": "v1"},
        scheduler=cfg.scheduler, n_workers=cfg.n_workers, chunk_size=cfg.chunk_size,
        description="mel-spectrograms", show_progress=show_progress and bool(todo),
    )
    clear_chunks(workdir.chunk_dir("mels"))
    failed = {track_id for track_id, _ in outcome.failures}
    mels = {tid: path for tid, path in cached.items() if tid not in failed and path.exists()}
    return mels, missing + outcome.failures


def _by_split(tracks: pd.DataFrame, mels: dict[str, Path]) -> dict[str, pd.DataFrame]:
    usable = tracks[tracks["track_id"].isin(mels)]
    return {split: usable[usable["split"] == split] for split in ("train", "validation", "test")}


def _require(parts: dict[str, pd.DataFrame], stage: str) -> None:
    empty = [split for split, part in parts.items() if part.empty]
    if empty:
        raise DataError(f"{stage}: no usable track in the {', '.join(empty)} split(s)")


# --------------------------------------------------------------------------- stage 3a


def run_pretrain(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 3a: pretrain the backbone on the original tags, or adopt ``pretrain.backbone``."""
    collection = load_collection(settings)
    if settings.pretrain.backbone is not None:
        return _adopt_backbone(settings, workdir, collection)
    tracks = collection.tracks[collection.tracks["tags"].map(len) > 0]
    mels, skipped = prepare_mels(settings, workdir, tracks, show_progress=show_progress)
    parts = _by_split(tracks, mels)
    _require(parts, "pretrain")
    targets = {split: jamendo.tag_matrix(part, collection.vocabulary)[0] for split, part in parts.items()}
    config = PretrainConfig(**settings.pretrain.model_dump(exclude={"backbone"}), seed=settings.seed, progress=show_progress)
    model, history = pretrain_backbone(
        _mels_of(parts["train"], mels), targets["train"], _mels_of(parts["validation"], mels), targets["validation"], config
    )
    test_ids = parts["test"]["track_id"].tolist()
    scores = torch.sigmoid(torch.from_numpy(predict_tracks(
        model, mels, test_ids, crop_frames=config.crop_frames, n_eval_crops=config.n_eval_crops
    ))).numpy()
    test = {**tagging_metrics(targets["test"], scores, collection.vocabulary), "f1_macro": tag_f1_macro(targets["test"], scores)}
    metrics = {"test": test, "history": history, "tags": collection.vocabulary, "n_tracks": {s: len(p) for s, p in parts.items()}}
    workdir.backbone.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(backbone_checkpoint(model, tags=list(collection.vocabulary)), workdir.backbone)
    artifacts.write_json(workdir.pretrain_metrics, metrics)
    artifacts.write_skipped(workdir.skipped_report("pretrain"), skipped)
    artifacts.record_stage(
        workdir, "pretrain", [workdir.backbone, workdir.pretrain_metrics], *stage_request("pretrain", settings, workdir, collection)
    )
    return {"epochs": history["epochs_run"], "best_epoch": history["best_epoch"], "test_roc_auc_macro": test["roc_auc_macro"],
            "test_tag_f1_macro": test["f1_macro"], "skipped": len(skipped)}


def _adopt_backbone(settings: Settings, workdir: Workdir, collection) -> dict[str, Any]:
    backbone_file = Path(settings.pretrain.backbone)
    model = build_backbone(None)
    load_backbone_weights(model, backbone_file)
    workdir.backbone.parent.mkdir(parents=True, exist_ok=True)
    save_atomic(backbone_checkpoint(model, source=str(backbone_file)), workdir.backbone)
    artifacts.record_stage(workdir, "pretrain", [workdir.backbone], *stage_request("pretrain", settings, workdir, collection))
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
        raise ArtifactError(f"missing artifact {workdir.backbone}: run `moodscape pretrain` first")
    tracks = collection.tracks[collection.tracks["track_id"].isin(label_table["track_id"])]
    mels, skipped = prepare_mels(settings, workdir, tracks, show_progress=show_progress)
    labels = {t: label_to_idx[name] for t, name in zip(label_table["track_id"], label_table["new_acoustic_label"]) if t in mels}
    splits = dict(zip(tracks["track_id"], tracks["split"]))
    return collection, tracks, mels, labels, splits, label_to_idx, skipped


def _classifier_config(settings: Settings, show_progress: bool, **overrides: Any) -> ClassifierConfig:
    values = settings.train.model_dump(exclude={"nproc"})
    return ClassifierConfig(**{**values, **overrides}, seed=settings.seed, progress=show_progress)


def run_train(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 3b: LoRA adapters + head on the frozen backbone for the new labels."""
    collection, _, mels, labels, splits, label_to_idx, skipped = _labelled(settings, workdir, show_progress)
    config = _classifier_config(settings, show_progress)
    workdir.classifier.parent.mkdir(parents=True, exist_ok=True)
    if settings.train.nproc > 1:
        metrics = _train_with_torchrun(workdir, config, mels, labels, splits, label_to_idx, settings.train.nproc)
    else:
        metrics = train_classifier(
            workdir.backbone, mels, labels, splits, config, label_to_idx=label_to_idx, checkpoint_path=workdir.classifier
        ).metrics
    artifacts.write_json(workdir.classifier_metrics, metrics)
    artifacts.write_skipped(workdir.skipped_report("train"), skipped)
    artifacts.record_stage(
        workdir, "train", [workdir.classifier, workdir.classifier_metrics], *stage_request("train", settings, workdir, collection)
    )
    return {"mode": metrics["mode"], "test_accuracy": metrics["accuracy"], "test_macro_f1": metrics["macro_f1"],
            "best_epoch": metrics["best_epoch"], "trainable_parameters": metrics["parameters"]["trainable"],
            "skipped": len(skipped)}


def _train_with_torchrun(workdir, config, mels, labels, splits, label_to_idx, nproc) -> dict:
    """Run the classifier under ``torchrun`` (DDP, gloo on CPU) through a job file."""
    job_path = workdir.training_job("train")
    stem = {track_id: workdir.mel_path(track_id).stem for track_id in mels}
    parts = {
        "labels": {stem[t]: label for t, label in labels.items()},
        "splits": {stem[t]: split for t, split in splits.items() if t in stem},
        "label_to_idx": label_to_idx,
    }
    for name, content in parts.items():
        artifacts.write_json(job_path.with_name(f"train-{name}.json"), content)
    metrics_path = job_path.with_name("train-metrics.json")
    job = {
        "mels": str(workdir.mel_cache.resolve()), "backbone": str(workdir.backbone.resolve()),
        "checkpoint": str(workdir.classifier.resolve()), "metrics": str(metrics_path.resolve()),
        "config": dataclasses.asdict(config),
        **{name: str(job_path.with_name(f"train-{name}.json").resolve()) for name in parts},
    }
    artifacts.write_json(job_path, job)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "-m", "moodscape.training.classify", str(job_path)]
    if subprocess.run(command).returncode != 0:
        raise MoodscapeError(f"distributed training failed (job {job_path}); see the messages above")
    return artifacts.read_json(metrics_path)


# --------------------------------------------------------------------------- ablation


def run_ablate(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Compare LoRA ranks, full fine-tuning, a linear probe and the tag-trained backbone.

    Every variant trains on the same splits with the same settings; each is then scored
    on the new labels (test accuracy / macro-F1) and, through a logistic probe on its
    embeddings, on the original tags (ROC-AUC / PR-AUC macro on the test split).
    """
    collection, tracks, mels, labels, splits, label_to_idx, _ = _labelled(settings, workdir, show_progress)
    names = sorted(label_to_idx, key=label_to_idx.get)
    tag_tracks = collection.tracks[collection.tracks["track_id"].isin(mels)]
    tag_parts = {split: tag_tracks[tag_tracks["split"] == split] for split in ("train", "test")}
    tag_targets = {split: jamendo.tag_matrix(part, collection.vocabulary)[0] for split, part in tag_parts.items()}
    label_parts = {split: [t for t in labels if splits.get(t) == split] for split in ("train", "test")}
    rows = []
    for variant, overrides in _variants(settings):
        started = time.perf_counter()
        if variant == "tags":
            model, row = _tag_model_row(workdir, mels, labels, label_parts, names, settings)
        else:
            config = _classifier_config(settings, show_progress, **overrides)
            checkpoint = workdir.ablation_checkpoint(variant)
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            result = train_classifier(workdir.backbone, mels, labels, splits, config, label_to_idx=label_to_idx, checkpoint_path=checkpoint)
            model, metrics = result.model, result.metrics
            row = {"trainable_parameters": metrics["parameters"]["trainable"], "checkpoint_bytes": checkpoint.stat().st_size,
                   "seconds_per_epoch": metrics["train_seconds_per_epoch"], "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
        embeddings = {split: embed_tracks(model, mels, part["track_id"].tolist()) for split, part in tag_parts.items()}
        tags = tag_probe_metrics(embeddings["train"], tag_targets["train"], embeddings["test"], tag_targets["test"], collection.vocabulary)
        rows.append({"variant": variant, **row, "tag_roc_auc_macro": tags["roc_auc_macro"], "tag_pr_auc_macro": tags["pr_auc_macro"],
                     "wall_seconds": time.perf_counter() - started})
    document = {"variants": rows, "label_to_idx": label_to_idx, "n_tracks": {s: len(p) for s, p in label_parts.items()},
                "train_settings": settings.stage_settings("train")["train"]}
    artifacts.write_json(workdir.ablation_metrics, document)
    artifacts.record_stage(workdir, "ablate", [workdir.ablation_metrics], *stage_request("ablate", settings, workdir, collection))
    return {row["variant"]: f"macro-F1 {row['macro_f1']:.3f}, tag ROC-AUC {row['tag_roc_auc_macro']:.3f}" for row in rows}


def _variants(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    variants = []
    for kind in settings.ablate.include:
        if kind == "lora":
            variants += [(f"lora-r{r}", {"mode": "lora", "r": r, "alpha": 2.0 * r}) for r in settings.ablate.ranks]
        else:
            variants.append((kind, {"mode": kind}))
    return variants


def _tag_model_row(workdir, mels, labels, label_parts, names, settings):
    """The backbone trained on the original tags, scored on the new labels by a probe."""
    model = build_backbone(None)
    load_backbone_weights(model, workdir.backbone)
    embeddings = {split: embed_tracks(model, mels, ids) for split, ids in label_parts.items()}
    targets = {split: np.array([labels[t] for t in ids]) for split, ids in label_parts.items()}
    metrics = label_probe_metrics(embeddings["train"], targets["train"], embeddings["test"], targets["test"], names)
    pretrain = artifacts.read_json(workdir.pretrain_metrics) if workdir.pretrain_metrics.exists() else {}
    seconds = pretrain.get("history", {}).get("train_seconds_per_epoch")
    trainable = sum(p.numel() for p in model.parameters())
    return model, {"trainable_parameters": trainable, "checkpoint_bytes": workdir.backbone.stat().st_size,
                   "seconds_per_epoch": seconds, "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"]}
