"""Stage 3a: pretrain the backbone on the original tags (multi-label), or without labels.

:func:`choose_objective` decides between the two objectives: the tags when enough tracks
carry them, else the self-supervised one of :mod:`moodscape.training.contrastive`.
:func:`pretrain_backbone` trains an :class:`~moodscape.models.backbone.AudioResNet`
with one logit per tag and binary cross-entropy on random crops of the training tracks,
scores the validation tracks after every epoch with the tagging ROC-AUC macro
(:func:`moodscape.evaluation.tagging_metrics`, crop-averaged logits) and returns the
best epoch's model (early stopping after ``patience`` epochs without improvement). The
caller saves it with :func:`moodscape.models.backbone.backbone_checkpoint`. It runs in
one process, on CUDA with mixed precision when available. A training that diverges (a
NaN or infinite loss or validation output) stops with a ConfigError naming the epoch,
so no non-finite model ever reaches the caller.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from moodscape.errors import ConfigError, DataError
from moodscape.evaluation import tagging_metrics
from moodscape.models.backbone import AudioResNet
from moodscape.training.data import Mel, MelCrops, predict_tracks
from moodscape.models.checkpoint import resolve_device
from moodscape.training.loop import TrainingConfig, require_finite_state, seed_everything, stop_if_diverged, train_epoch

logger = logging.getLogger(__name__)

MIN_TAGGED_SHARE = 0.5
"""Under ``objective = "auto"``, the tags are the objective when at least this share of the tracks carries a tag."""
SPLITS = ("train", "validation", "test")


def choose_objective(requested: str, tag_targets: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """The pretraining objective, ``"tags"`` or ``"contrastive"``, and why.

    The tags can be the objective when every split has tracks that carry a tag and some
    tag has both tagged and untagged validation tracks (else no ROC-AUC selects epochs).
    ``"auto"`` then takes them if at least :data:`MIN_TAGGED_SHARE` of the tracks carry a
    tag, and the contrastive objective, which uses every track, otherwise.

    Parameters
    ----------
    requested : {"auto", "tags", "contrastive"}
        ``pretrain.objective``.
    tag_targets : mapping of str to np.ndarray [shape=(n, n_tags), dtype=bool]
        For ``"train"``, ``"validation"`` and ``"test"``: the tags (those that pass the
        dataset's filters) of every track of the split.

    Returns
    -------
    objective : str
    reason : str
        One line for the console and the stage metrics.

    Raises
    ------
    ConfigError
        When ``"tags"`` is requested but the tags cannot be the objective.
    """
    if requested == "contrastive":
        return "contrastive", "pretrain.objective = 'contrastive'"
    tagged = {split: np.asarray(tag_targets[split], bool).any(axis=1) for split in SPLITS}
    n_tagged, n_tracks = sum(int(t.sum()) for t in tagged.values()), sum(len(t) for t in tagged.values())
    untagged_splits = [split for split in SPLITS if not tagged[split].any()]
    validation = np.asarray(tag_targets["validation"], bool)[tagged["validation"]]
    if n_tagged == 0:
        problem = f"none of the {n_tracks} tracks carries a tag"
    elif untagged_splits:
        problem = f"no track of the {', '.join(untagged_splits)} split(s) carries a tag"
    elif tagging_metrics(validation, np.zeros(validation.shape))["n_tags_scored"] == 0:
        problem = "no tag has both tagged and untagged validation tracks (ROC-AUC cannot select epochs)"
    else:
        problem = None
    if requested == "tags":
        if problem:
            raise ConfigError(f"pretrain.objective = 'tags', but {problem}; set pretrain.objective = 'contrastive' "
                              "(or 'auto') to pretrain the backbone without tags, or give the tracks tags")
        return "tags", "pretrain.objective = 'tags'"
    if problem:
        return "contrastive", f"auto: {problem}"
    share = f"{n_tagged} of {n_tracks} tracks carry tags"
    if n_tagged < MIN_TAGGED_SHARE * n_tracks:
        return "contrastive", f"auto: only {share} (fewer than {MIN_TAGGED_SHARE:.0%})"
    return "tags", f"auto: {share}"


class PretrainConfig(TrainingConfig):
    """Settings of :func:`pretrain_backbone` (see :class:`~moodscape.training.loop.TrainingConfig`).

    ``patience`` counts epochs without a better validation ROC-AUC macro.
    """


def pretrain_backbone(
    mels_train: Mapping[str, Mel],
    tag_targets_train: np.ndarray,
    mels_val: Mapping[str, Mel],
    tag_targets_val: np.ndarray,
    config: PretrainConfig | None = None,
) -> tuple[AudioResNet, dict]:
    """Train a backbone to predict the original tags.

    Parameters
    ----------
    mels_train, mels_val : mapping of str to Mel
        Log-mels ``(96, T)`` (arrays or ``.npy`` paths) of the training and validation
        tracks; the rows of the tag targets follow the mappings' key order.
    tag_targets_train, tag_targets_val : np.ndarray [shape=(n, n_tags), dtype=bool]
        Tags of each track.
    config : PretrainConfig, optional

    Returns
    -------
    model : AudioResNet
        The best epoch's model with an ``n_tags``-logit head, on CPU, in eval mode.
    history : dict
        ``best_epoch``, ``best_val_roc_auc_macro``, ``epochs_run``,
        ``train_seconds_per_epoch``, ``config`` and ``epochs``: per epoch ``train_loss``,
        ``train_seconds``, ``val_loss``, ``val_roc_auc_macro``, ``val_pr_auc_macro``.

    Raises
    ------
    ConfigError
        When the training diverges (see :func:`~moodscape.training.loop.stop_if_diverged`).
    DataError
        When a mel crop holds NaN or infinite values (naming its track).
    """
    config = config or PretrainConfig()
    device = resolve_device(config.device)

    # -- data
    train_ids, val_ids = list(mels_train), list(mels_val)
    tag_targets_train = np.asarray(tag_targets_train, bool)  # (n_train, n_tags)
    tag_targets_val = np.asarray(tag_targets_val, bool)  # (n_val, n_tags)
    if tag_targets_train.shape[1:] != tag_targets_val.shape[1:] or tag_targets_train.ndim != 2:
        shapes = f"{tag_targets_train.shape}, {tag_targets_val.shape}"
        raise DataError(f"tag targets must be (n, n_tags) for both splits, got {shapes}")
    if tagging_metrics(tag_targets_val, np.zeros(tag_targets_val.shape))["n_tags_scored"] == 0:
        raise DataError("no tag has positive and negative validation tracks: ROC-AUC cannot select epochs")
    n_tags = tag_targets_train.shape[1]
    train_set = MelCrops(
        mels_train, train_ids, tag_targets_train, crop_frames=config.crop_frames, seed=config.seed
    )
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(config.seed),
        num_workers=config.loader_workers(device),
        pin_memory=device.type == "cuda",
    )

    # -- model
    seed_everything(config.seed)
    model = AudioResNet(n_outputs=n_tags).to(device, memory_format=torch.channels_last)

    # -- optimiser and loss
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")
    loss_fn = nn.BCEWithLogitsLoss()

    # -- loop: train, score validation tags, keep the best epoch
    epochs, best_epoch, best_score, best_state = [], 0, -1.0, copy.deepcopy(model.state_dict())
    for epoch in range(config.epochs):
        train_set.set_epoch(epoch)
        started = time.perf_counter()
        train_loss = train_epoch(
            model,
            loader,
            loss_fn,
            optimizer,
            scaler,
            device=device,
            epoch=epoch + 1,
            description=f"pretrain {epoch + 1}/{config.epochs}",
            show_progress=config.progress,
        )
        train_seconds = time.perf_counter() - started
        logits = predict_tracks(model, mels_val, val_ids, **config.evaluation)  # (n_val, n_tags)
        stop_if_diverged(logits, epoch=epoch + 1, lr=config.lr, what="the validation output")
        scores = tagging_metrics(tag_targets_val, logits)
        val_loss = loss_fn(torch.from_numpy(logits), torch.from_numpy(tag_targets_val).float()).item()
        epochs.append(
            {
                "epoch": epoch + 1,
                "train_loss": train_loss,
                "train_seconds": train_seconds,
                "val_loss": val_loss,
                "val_roc_auc_macro": scores["roc_auc_macro"],
                "val_pr_auc_macro": scores["pr_auc_macro"],
            }
        )
        logger.info("pretrain epoch %d: %s", epoch + 1, epochs[-1])
        if scores["roc_auc_macro"] > best_score:
            best_epoch, best_score = epoch + 1, scores["roc_auc_macro"]
            best_state = copy.deepcopy(model.state_dict())
        elif epoch + 1 - best_epoch >= config.patience:
            break

    # -- the best epoch's model
    model.load_state_dict(require_finite_state(best_state, "pretrained backbone"))
    history = {
        "best_epoch": best_epoch,
        "best_val_roc_auc_macro": best_score,
        "epochs_run": len(epochs),
        "train_seconds_per_epoch": float(np.mean([epoch["train_seconds"] for epoch in epochs])),
        "config": config.model_dump(),
        "epochs": epochs,
    }
    return model.cpu().eval(), history
