"""Stage 3b: train a classifier of the new acoustic labels on a pretrained backbone.

Three modes, one loop:

- ``"lora"``: the backbone is frozen (weights by ``requires_grad``, BatchNorm in eval
  mode) and LoRA adapters plus a new head train (:func:`moodscape.models.lora.add_lora`);
- ``"full"``: every parameter trains, BatchNorm in train mode as usual;
- ``"probe"``: the backbone is frozen and only the new head trains.

:func:`train_classifier` reads top to bottom: data, model, optimiser, resume, loop,
evaluation, save. It trains on the ``"train"`` split with single-label cross-entropy
(optionally class-weighted), keeps the epoch with the best validation macro-F1 (early
stopping after ``patience`` epochs without improvement) and scores that epoch on
``"test"``.

Checkpoints are nanoGPT-style dicts that load with ``torch.load(weights_only=True)``:

- ``checkpoint_path``: the best epoch's *trained* tensors only (``state_dict``: for
  ``"lora"`` the adapters and head, for ``"probe"`` the head, for ``"full"`` the whole
  model), with ``backbone_fingerprint``, ``label_to_idx``, ``config``, ``model_args``,
  ``best_val_macro_f1``, ``epoch`` (the best one) and ``epochs_run``;
  :func:`load_classifier` rebuilds the model from it and the backbone.
- :func:`last_checkpoint_path` (``classifier.pt`` → ``classifier-last.pt``): the state
  after the latest epoch, written after every epoch: current and best trained tensors,
  optimiser, grad scaler and RNG states, early-stopping counters and history. A later
  call with the same backbone, labels and settings (``epochs``, ``device``, ``progress``
  and ``num_workers`` may differ) continues from it, so an interrupted run, or one asked
  for more epochs, ends as an uninterrupted run would (bit-identical on CPU). The file
  stays after a run ends; delete it to start over. Under DDP only rank 0's RNG state is
  kept, so exact equality of resumed runs holds for one process.

A training whose loss turns NaN or infinite stops with a ConfigError naming the epoch
and its lr; no state that holds NaN or infinite values is ever saved, so a good
checkpoint of an earlier run is never replaced by a diverged one.

Under ``torchrun --nproc_per_node N`` the same function runs data-parallel: each process
joins the group (gloo on CPU, NCCL on GPU), takes its share of the training tracks
(``DistributedSampler``; ``batch_size`` is per process), and DDP averages gradients, so
the replicas stay identical. Rank 0 evaluates (and shares the validation score so every
rank stops at the same epoch), prints and saves; other ranks return ``metrics=None``.
``moodscape train --nproc N`` starts it so (``torchrun -m moodscape train``).
"""

from __future__ import annotations

import copy
import hashlib
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from moodscape.artifacts import file_stamp
from moodscape.config import ClassifierSettings
from moodscape.errors import ArtifactError, DataError
from moodscape.evaluation import classification_metrics
from moodscape.models.backbone import (
    HEAD_PREFIX,
    AudioResNet,
    backbone_key,
    check_same_tensors,
    load_backbone_weights,
    state_fingerprint,
)
from moodscape.models.checkpoint import read_checkpoint, save_checkpoint
from moodscape.models.lora import adapter_state_dict, add_lora, load_adapter_state, parameter_counts
from moodscape.training.data import Mel, MelCrops, predict_tracks
from moodscape.training.loop import (
    Processes,
    TrainingConfig,
    require_finite_state,
    rng_state,
    seed_everything,
    set_rng_state,
    setup_processes,
    stop_if_diverged,
    teardown_processes,
    train_epoch,
)

logger = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
# Settings that change how a run executes, not what it computes: a run may resume with other values.
RUN_ONLY_SETTINGS = ("epochs", "device", "progress", "num_workers")
BackboneSource = AudioResNet | Mapping[str, torch.Tensor] | str | os.PathLike


class ClassifierConfig(ClassifierSettings, TrainingConfig):
    """Settings of :func:`train_classifier` (defaults and ranges live in
    :class:`moodscape.config.ClassifierSettings`): the shared ones of
    :class:`~moodscape.training.loop.TrainingConfig` (``patience`` counting epochs
    without a better validation macro-F1) and these.

    Attributes
    ----------
    mode : {"lora", "full", "probe"}
        What trains: adapters + head, everything, or the head only.
    r, alpha, dropout, target_modules
        LoRA rank, scale numerator (adapters add ``(alpha / r) · B A x``), dropout on
        the adapters' input, and adapted modules (``None``: every conv of the residual
        blocks); used by ``"lora"`` only.
    class_weighting : bool
        Weight the cross-entropy by ``n / (K · n_class)`` of the training split, so
        small clusters count as much as large ones.
    """


@dataclass
class ClassifierResult:
    """What :func:`train_classifier` returns.

    Attributes
    ----------
    model : nn.Module
        The best epoch's model, on CPU, in eval mode (a peft model for ``"lora"``).
    metrics : dict or None
        JSON-ready test metrics, training summary and history (``None`` off rank 0).
    checkpoint : dict
        The dict saved at ``checkpoint_path``.
    """

    model: nn.Module
    metrics: dict | None
    checkpoint: dict


def train_classifier(
    backbone: BackboneSource,
    mels: Mapping[str, Mel],
    labels: Mapping[str, int],
    splits: Mapping[str, str],
    config: ClassifierConfig | None = None,
    *,
    label_to_idx: Mapping[str, int] | None = None,
    checkpoint_path: str | os.PathLike | None = None,
    state_path: str | os.PathLike | None = None,
) -> ClassifierResult:
    """Train, select on validation and test a classifier of the new labels.

    Parameters
    ----------
    backbone : AudioResNet, state dict, checkpoint dict or path
        The pretrained backbone (its head, if any, is dropped); a model is copied, not
        changed.
    mels : mapping of str to Mel
        Log-mel ``(96, T)`` (array or ``.npy`` path) of every labelled track.
    labels : mapping of str to int
        Class index of each track; tracks without one are left out.
    splits : mapping of str to str
        ``"train"``, ``"validation"`` or ``"test"`` for each track.
    config : ClassifierConfig, optional
    label_to_idx : mapping of str to int, optional
        Name of each class index, ``0..K-1``; default ``"0".."K-1"``.
    checkpoint_path : path, optional
        Where to save the best model; its ``-last`` sibling holds the resumable state.
    state_path : path, optional
        Where the resumable state lives instead (a caller that saves the best model
        itself, from the result's ``checkpoint``, passes this and no ``checkpoint_path``).

    Returns
    -------
    ClassifierResult

    Raises
    ------
    ConfigError
        When the training diverges (a NaN or infinite loss, naming the epoch); nothing is
        saved then, so the checkpoints of an earlier run stay as they were.
    DataError
        When a mel crop holds NaN or infinite values (naming its track).
    """
    config = config or ClassifierConfig()
    processes = setup_processes(config.device)
    try:
        if state_path is None and checkpoint_path is not None:
            state_path = last_checkpoint_path(checkpoint_path)
        state_path = None if state_path is None else Path(state_path)
        return _train(processes, backbone, mels, labels, splits, config, label_to_idx, checkpoint_path, state_path)
    finally:
        teardown_processes(processes)


def _train(
    processes: Processes,
    backbone: BackboneSource,
    mels: Mapping[str, Mel],
    labels: Mapping[str, int],
    splits: Mapping[str, str],
    config: ClassifierConfig,
    label_to_idx: Mapping[str, int] | None,
    checkpoint_path: str | os.PathLike | None,
    last_path: Path | None,
) -> ClassifierResult:
    device, show_progress = processes.device, config.progress and processes.is_main

    # -- data: labelled tracks per split, random crops of the training tracks
    if label_to_idx is None:
        label_to_idx = {str(index): index for index in range(max(labels.values()) + 1)}
    label_to_idx = dict(label_to_idx)
    label_names = _label_names(label_to_idx)
    track_ids, targets = _split_tracks(labels, splits, len(label_names))
    train_set = MelCrops(
        mels, track_ids["train"], targets["train"], crop_frames=config.crop_frames, seed=config.seed
    )
    sampler = DistributedSampler(
        train_set, num_replicas=processes.world_size, rank=processes.rank, shuffle=True, seed=config.seed
    )
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=config.loader_workers(device),
        pin_memory=device.type == "cuda",
    )

    # -- model: the backbone, a new head, and what trains in this mode
    backbone = _backbone_from(backbone)
    fingerprint = state_fingerprint(backbone)
    seed_everything(config.seed)
    model = build_classifier(backbone, len(label_names), config).to(device, memory_format=torch.channels_last)
    counts = parameter_counts(model)

    # -- optimiser and loss
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay, fused=True
    )
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    class_weights = _balanced_weights(targets["train"], len(label_names)) if config.class_weighting else None
    loss_fn = nn.CrossEntropyLoss(weight=None if class_weights is None else class_weights.to(device))

    # -- resume from the state after the latest epoch, when one matches this run
    identity = {
        "mode": config.mode,
        "config": _result_settings(config),
        "backbone_fingerprint": fingerprint,
        "label_to_idx": label_to_idx,
        "data_fingerprint": _data_fingerprint(mels, track_ids, targets),
    }
    run = {"epoch": 0, "best_epoch": 0, "best_val_macro_f1": -1.0, "best_val_loss": float("inf"), "bad_epochs": 0, "history": []}
    best_state = trained_state(model, config.mode)
    last = _read_last_checkpoint(last_path, identity)
    if last is not None:
        load_trained_state(model, config.mode, last["state_dict"])
        optimizer.load_state_dict(last["optimizer"])
        if last["scaler"] and scaler.is_enabled():
            scaler.load_state_dict(last["scaler"])
        set_rng_state(last["rng"])
        run = {key: last[key] for key in run}
        best_state = last["best_state_dict"]
        logger.warning("resuming from %s after epoch %d: same tracks, labels, splits, mels, settings and backbone",
                       last_path, run["epoch"])
    if processes.world_size > 1:
        device_ids = [device.index] if device.type == "cuda" else None
        trained_model = DistributedDataParallel(model, device_ids=device_ids)
    else:
        trained_model = model

    # -- loop: one epoch of training, validation on rank 0, early stopping
    while run["epoch"] < config.epochs and run["bad_epochs"] < config.patience:
        sampler.set_epoch(run["epoch"])
        train_set.set_epoch(run["epoch"])
        started = time.perf_counter()
        train_loss = train_epoch(
            trained_model,
            loader,
            loss_fn,
            optimizer,
            scaler,
            device=device,
            epoch=run["epoch"] + 1,
            description=f"epoch {run['epoch'] + 1}/{config.epochs}",
            show_progress=show_progress,
        )
        train_seconds = time.perf_counter() - started
        validation = None
        if processes.is_main:
            validation = _evaluate(
                model, mels, track_ids["validation"], targets["validation"], label_names, config
            )
        validation = _from_rank_0(validation, processes)
        run["epoch"] += 1
        stop_if_diverged(validation["loss"], epoch=run["epoch"], lr=config.lr, what="the validation loss")
        run["history"].append(
            {
                "epoch": run["epoch"],
                "train_loss": train_loss,
                "train_seconds": train_seconds,
                "val_loss": validation["loss"],
                "val_accuracy": validation["accuracy"],
                "val_macro_f1": validation["macro_f1"],
            }
        )
        if _better(validation, run):
            run.update(best_epoch=run["epoch"], best_val_macro_f1=validation["macro_f1"], best_val_loss=validation["loss"], bad_epochs=0)
            best_state = trained_state(model, config.mode)
        else:
            run["bad_epochs"] += 1
        if processes.is_main:
            logger.info("epoch %d: %s", run["epoch"], run["history"][-1])
            if last_path is not None:
                in_progress = {
                    **identity,
                    **run,
                    "config": config.model_dump(),
                    "state_dict": require_finite_state(trained_state(model, config.mode), "classifier state"),
                    "best_state_dict": best_state,
                    "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(),
                }
                save_checkpoint(in_progress, last_path, describe=False)

    # -- evaluation: the best epoch on the test split
    load_trained_state(model, config.mode, best_state)
    model.eval()
    metrics = None
    history = run["history"]
    if processes.is_main:
        test = _evaluate(model, mels, track_ids["test"], targets["test"], label_names, config)
        metrics = {
            **{key: value for key, value in test.items() if key != "loss"},
            "mode": config.mode,
            "best_epoch": run["best_epoch"],
            "epochs_run": run["epoch"],
            "resumed_after_epoch": 0 if last is None else int(last["epoch"]),
            "best_val_macro_f1": run["best_val_macro_f1"],
            "train_seconds_per_epoch": float(np.mean([epoch["train_seconds"] for epoch in history] or [0.0])),
            "parameters": {**counts, "trainable_share_of_backbone": counts["trainable"] / counts["backbone"]},
            "n_tracks_per_split": {split: len(ids) for split, ids in track_ids.items()},
            "world_size": processes.world_size,
            "device": str(device),
            "config": config.model_dump(),
            "history": history,
        }

    # -- save: only what was trained, with what it needs to be loaded safely
    checkpoint = {
        "mode": config.mode,
        "state_dict": require_finite_state(best_state, "best classifier state"),
        "model_args": {"n_outputs": len(label_names)},
        "backbone_fingerprint": fingerprint,
        "label_to_idx": label_to_idx,
        "config": config.model_dump(),
        "best_val_macro_f1": run["best_val_macro_f1"],
        "epoch": run["best_epoch"],
        "epochs_run": run["epoch"],
    }
    if processes.is_main and checkpoint_path is not None:
        save_checkpoint(checkpoint, checkpoint_path)
    return ClassifierResult(model=model.cpu(), metrics=metrics, checkpoint=checkpoint)


def _better(validation: dict, run: dict) -> bool:
    """A higher validation macro-F1, or the same one at a lower validation loss."""
    if validation["macro_f1"] != run["best_val_macro_f1"]:
        return validation["macro_f1"] > run["best_val_macro_f1"]
    return validation["loss"] < run["best_val_loss"]


def build_classifier(backbone: AudioResNet, n_classes: int, config: ClassifierConfig) -> nn.Module:
    """Put a new ``n_classes`` head on ``backbone`` (in place) and set what trains in ``config.mode``."""
    backbone.replace_head(n_classes)
    if config.mode == "lora":
        return add_lora(
            backbone,
            r=config.r,
            alpha=config.alpha,
            dropout=config.dropout,
            target_modules=config.target_modules,
        )
    if config.mode == "probe":
        backbone.requires_grad_(False)
        backbone.head.requires_grad_(True)
        backbone.freeze_batchnorm()
    return backbone


def trained_state(model: nn.Module, mode: str) -> dict[str, torch.Tensor]:
    """A copy of the tensors that ``mode`` trains: adapters + head, the head, or everything."""
    if mode == "lora":
        return adapter_state_dict(model)
    state = model.state_dict()
    if mode == "probe":
        state = {key: value for key, value in state.items() if key.startswith(HEAD_PREFIX)}
    return {key: value.detach().clone() for key, value in state.items()}


def load_trained_state(model: nn.Module, mode: str, state: Mapping[str, torch.Tensor]) -> None:
    """Load tensors saved by :func:`trained_state`; ArtifactError naming keys that do not fit."""
    if mode == "lora":
        load_adapter_state(model, state)
        return
    check_same_tensors(trained_state(model, mode), state, f"{mode} classifier state")
    model.load_state_dict(state, strict=mode == "full")


def last_checkpoint_path(checkpoint_path: str | os.PathLike) -> Path:
    """Where the in-progress state of ``checkpoint_path`` lives: ``name.pt`` → ``name-last.pt``."""
    path = Path(checkpoint_path)
    return path.with_name(f"{path.stem}-last{path.suffix}")


def load_classifier(
    checkpoint_path: str | os.PathLike, backbone: BackboneSource, label_to_idx: Mapping[str, int]
) -> nn.Module:
    """Rebuild a trained classifier from its checkpoint and the backbone it was trained on.

    Parameters
    ----------
    checkpoint_path : path
        A checkpoint saved by :func:`train_classifier`.
    backbone : AudioResNet, state dict, checkpoint dict or path
        The backbone the classifier was trained on.
    label_to_idx : mapping of str to int
        The label mapping the caller uses; it must be the checkpoint's.

    Returns
    -------
    nn.Module
        The classifier in eval mode, on CPU.

    Raises
    ------
    ArtifactError
        If the file cannot be read with ``weights_only=True``, the backbone is not the
        one the classifier was trained on, or the labels differ (the message lists them).
    """
    checkpoint = read_checkpoint(checkpoint_path, "classifier checkpoint")
    backbone = _backbone_from(backbone)
    if state_fingerprint(backbone) != checkpoint["backbone_fingerprint"]:
        raise ArtifactError(
            f"classifier {checkpoint_path} was trained on a different backbone "
            f"(fingerprint {checkpoint['backbone_fingerprint'][:12]}…, this backbone "
            f"{state_fingerprint(backbone)[:12]}…); give the backbone it was trained on"
        )
    _check_same_labels(checkpoint["label_to_idx"], dict(label_to_idx), checkpoint_path)
    config = ClassifierConfig.from_dict(checkpoint["config"])
    model = build_classifier(backbone, checkpoint["model_args"]["n_outputs"], config).to(memory_format=torch.channels_last)
    load_trained_state(model, config.mode, checkpoint["state_dict"])
    return model.eval()


def _backbone_from(source: BackboneSource) -> AudioResNet:
    """A fresh AudioResNet without head holding the backbone weights of ``source``."""
    if isinstance(source, AudioResNet):
        backbone = copy.deepcopy(source)
        backbone.replace_head(None)
        return backbone
    backbone = AudioResNet(n_outputs=None)
    if isinstance(source, Mapping):
        state = source.get("state_dict", source)
        state = {backbone_key(key): value for key, value in state.items() if backbone_key(key) is not None}
        check_same_tensors(backbone.state_dict(), state, "backbone state")
        backbone.load_state_dict(state)
    else:
        load_backbone_weights(backbone, source)
    return backbone


def _label_names(label_to_idx: Mapping[str, int]) -> list[str]:
    names = sorted(label_to_idx, key=label_to_idx.get)
    if [label_to_idx[name] for name in names] != list(range(len(names))):
        raise DataError(f"label_to_idx must number its labels 0..K-1, got {dict(label_to_idx)}")
    return names


def _split_tracks(
    labels: Mapping[str, int], splits: Mapping[str, str], n_classes: int
) -> tuple[dict[str, list[str]], dict[str, np.ndarray]]:
    """Labelled track ids and their class indices per split, in ``splits`` order."""
    unknown = sorted(set(splits.values()) - set(SPLITS))
    if unknown:
        raise DataError(f"unknown split names {unknown}; expected {', '.join(SPLITS)}")
    track_ids = {
        split: [track for track, name in splits.items() if name == split and track in labels] for split in SPLITS
    }
    empty = [split for split, ids in track_ids.items() if not ids]
    if empty:
        raise DataError(f"no labelled tracks in split(s) {', '.join(empty)}")
    targets = {
        split: np.array([labels[track] for track in ids], dtype=np.int64) for split, ids in track_ids.items()
    }
    for split, indices in targets.items():
        if indices.min() < 0 or indices.max() >= n_classes:
            raise DataError(f"{split} labels must be class indices 0..{n_classes - 1}, got {indices.max()}")
    return track_ids, targets


def _balanced_weights(train_targets: np.ndarray, n_classes: int) -> torch.Tensor:
    """scikit-learn's ``class_weight="balanced"``, ``n / (K · n_class)``; a class with no training track weighs 1."""
    present = np.unique(train_targets)
    weights = np.ones(n_classes)
    weights[present] = compute_class_weight("balanced", classes=present, y=train_targets)
    return torch.tensor(weights, dtype=torch.float32)


def _evaluate(
    model: nn.Module,
    mels: Mapping[str, Mel],
    track_ids: list[str],
    targets: np.ndarray,
    label_names: list[str],
    config: ClassifierConfig,
) -> dict:
    """Classification metrics and unweighted cross-entropy of crop-averaged logits."""
    logits = predict_tracks(model, mels, track_ids, **config.evaluation)  # (n, K)
    metrics = classification_metrics(targets, logits.argmax(axis=1), label_names)
    metrics["loss"] = float(nn.functional.cross_entropy(torch.from_numpy(logits), torch.from_numpy(targets)))
    return metrics


def _from_rank_0(value, processes: Processes):
    """``value`` of rank 0, on every rank."""
    if processes.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _result_settings(config: ClassifierConfig) -> dict:
    return {key: value for key, value in config.model_dump().items() if key not in RUN_ONLY_SETTINGS}


def _data_fingerprint(mels: Mapping[str, Mel], track_ids: Mapping[str, list[str]], targets: Mapping[str, np.ndarray]) -> str:
    """The sha256 of what the run trains and selects on: each split's tracks, their labels and mels.

    A mel given as a ``.npy`` path counts by its path, size and modification time; an
    array by its bytes.
    """
    digest = hashlib.sha256()
    for split in SPLITS:
        for track_id, target in zip(track_ids[split], targets[split].tolist()):
            mel = mels[track_id]
            if isinstance(mel, np.ndarray):
                source = hashlib.sha256(np.ascontiguousarray(mel).tobytes()).hexdigest()
            else:
                source = file_stamp(mel)
            digest.update(f"{split}\t{track_id}\t{target}\t{source}\n".encode())
    return digest.hexdigest()


def _read_last_checkpoint(path: Path | None, identity: dict) -> dict | None:
    """The in-progress state at ``path`` if it belongs to this run, else None."""
    if path is None or not path.exists():
        return None
    last = read_checkpoint(path, "in-progress classifier checkpoint")
    theirs = {key: last.get(key) for key in identity}
    theirs["config"] = _result_settings(ClassifierConfig.from_dict(last["config"]))
    if theirs != identity:
        differing = [key for key in identity if theirs[key] != identity[key]]
        logger.warning("ignoring %s: its %s differ from this run's, starting over", path, ", ".join(differing))
        return None
    return last


def _check_same_labels(trained: dict[str, int], given: dict[str, int], source) -> None:
    if trained == given:
        return
    problems = []
    if only_trained := sorted(trained.keys() - given.keys()):
        problems.append(f"only in the checkpoint: {', '.join(only_trained)}")
    if only_given := sorted(given.keys() - trained.keys()):
        problems.append(f"only in the given labels: {', '.join(only_given)}")
    if renumbered := sorted(name for name in trained.keys() & given.keys() if trained[name] != given[name]):
        pairs = ", ".join(f"{name} ({trained[name]} vs {given[name]})" for name in renumbered)
        problems.append(f"different index: {pairs}")
    raise ArtifactError(f"classifier {source} was trained for other labels: {'; '.join(problems)}")

