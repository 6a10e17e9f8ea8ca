"""Backbone pretraining on multi-label tags."""

from __future__ import annotations

import numpy as np
import pytest

from moodscape.errors import DataError
from moodscape.models.backbone import AudioResNet
from moodscape.training.pretrain import PretrainConfig, pretrain_backbone

N_TAGS = 4
TINY = {"batch_size": 8, "crop_frames": 64, "n_eval_crops": 2, "lr": 3e-3, "progress": False, "device": "cpu"}


def band_tags(classes: np.ndarray, seed: int) -> np.ndarray:
    """Tags 0-2 mark the band class; tag 3 is random, as uploader tags often are: (n, 4) bool."""
    rng = np.random.default_rng(seed)
    return np.column_stack([classes == 0, classes == 1, classes == 2, rng.random(len(classes)) < 0.5])


@pytest.fixture(scope="module")
def pretrained(make_band_task):
    task = make_band_task(24, 12, 0)
    split_of = task["splits"]
    classes = np.array(list(task["labels"].values()))
    is_train = np.array([split_of[track] == "train" for track in task["mels"]])
    tags = band_tags(classes, seed=0)
    mels_train = {track: mel for track, mel in task["mels"].items() if split_of[track] == "train"}
    mels_val = {track: mel for track, mel in task["mels"].items() if split_of[track] == "validation"}
    config = PretrainConfig(epochs=3, patience=3, **TINY)
    return pretrain_backbone(mels_train, tags[is_train], mels_val, tags[~is_train], config)


def test_pretraining_reduces_the_bce_and_returns_a_tag_model(pretrained):
    model, history = pretrained
    losses = [epoch["train_loss"] for epoch in history["epochs"]]
    print(history["epochs"])
    assert losses[-1] < losses[0]
    assert isinstance(model, AudioResNet) and model.head.out_features == N_TAGS and not model.training
    assert model.model_args == {"n_outputs": N_TAGS}


def test_pretraining_keeps_the_epoch_with_the_best_validation_roc_auc(pretrained):
    _, history = pretrained
    aucs = [epoch["val_roc_auc_macro"] for epoch in history["epochs"]]
    assert history["epochs_run"] == len(aucs) == 3
    assert history["best_val_roc_auc_macro"] == max(aucs)
    assert history["best_epoch"] == 1 + aucs.index(max(aucs))
    assert 0.0 <= history["epochs"][0]["val_pr_auc_macro"] <= 1.0


def test_validation_tags_without_both_classes_cannot_select_epochs():
    mels = {"a": np.zeros((96, 80), np.float32), "b": np.zeros((96, 80), np.float32)}
    with pytest.raises(DataError, match="ROC-AUC cannot select epochs"):
        pretrain_backbone(mels, np.eye(2, dtype=bool), mels, np.ones((2, 2), bool), PretrainConfig(**TINY))
