"""Issue 14, item 2: a diverging training stops with a clear error and never replaces a good checkpoint.

The config caps ``lr`` at 10, so these tests reach a divergence through the training
API with a config copied to lr = 1e30 (validation skipped), or through a NaN mel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from moodscape.errors import DataError, MoodscapeError
from moodscape.models.backbone import AudioResNet
from moodscape.training.av import AVConfig, cross_fit_av
from moodscape.training.classify import ClassifierConfig, last_checkpoint_path, train_classifier
from moodscape.training.pretrain import PretrainConfig, pretrain_backbone

N_MELS, N_FRAMES, CROP, N_CLASSES = 96, 96, 32, 3
DIVERGING_LR = 1e30
FAST = {"epochs": 2, "batch_size": 4, "crop_frames": CROP, "n_eval_crops": 1, "device": "cpu", "progress": False}


def band_mels(n_tracks: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mels whose class c is loud in the c-th third of the bands, and each track's class."""
    rng = np.random.default_rng(0)
    classes = np.arange(n_tracks) % N_CLASSES
    band = N_MELS // N_CLASSES
    mels = {}
    for index, label in enumerate(classes):
        mel = rng.normal(-40.0, 6.0, size=(N_MELS, N_FRAMES))
        mel[label * band : (label + 1) * band] += 25.0
        mels[f"track_{index:02d}"] = mel.astype(np.float32)
    return mels, classes


def calibrated_backbone(mels: dict[str, np.ndarray]) -> AudioResNet:
    """A random backbone whose BatchNorm statistics are those of ``mels``."""
    torch.manual_seed(0)
    model = AudioResNet(n_outputs=None)
    batchnorms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for module in batchnorms:
        module.momentum = None
    with torch.no_grad():
        model.train()(torch.from_numpy(np.stack([mel[:, :CROP] for mel in mels.values()]))[:, None])
    return model.eval()


@pytest.fixture(scope="module")
def task() -> dict:
    """Twelve tracks of three classes (6 train, 3 validation, 3 test) and a calibrated backbone."""
    mels, classes = band_mels(12)
    ids = list(mels)
    splits = dict(zip(ids, ["train"] * 6 + ["validation"] * 3 + ["test"] * 3))
    return {"mels": mels, "labels": dict(zip(ids, classes.tolist())), "splits": splits, "backbone": calibrated_backbone(mels)}


def classifier_config(**overrides) -> ClassifierConfig:
    lr = overrides.pop("lr", None)
    config = ClassifierConfig(**{**FAST, **overrides})
    return config if lr is None else config.model_copy(update={"lr": lr})


def train(task: dict, config: ClassifierConfig, checkpoint, mels: dict | None = None):
    return train_classifier(task["backbone"], mels or task["mels"], task["labels"], task["splits"], config,
                            checkpoint_path=checkpoint)


def saved_bytes(checkpoint) -> dict[str, bytes]:
    paths = [checkpoint, last_checkpoint_path(checkpoint), checkpoint.with_name(checkpoint.name + ".json")]
    return {path.name: path.read_bytes() for path in paths if path.exists()}


@pytest.fixture
def good_checkpoint(task, tmp_path):
    """A classifier trained at a sane lr, saved at ``classifier.pt`` (and its ``-last`` state)."""
    checkpoint = tmp_path / "classifier.pt"
    train(task, classifier_config(), checkpoint)
    return checkpoint


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_a_diverging_classifier_stops_naming_the_epoch_and_keeps_the_good_checkpoint(task, good_checkpoint, mode):
    before = saved_bytes(good_checkpoint)
    with pytest.raises(MoodscapeError, match=r"epoch 1\b.*lower.*lr") as raised:
        train(task, classifier_config(mode=mode, lr=DIVERGING_LR), good_checkpoint)
    assert "1e+30" in str(raised.value)
    assert saved_bytes(good_checkpoint) == before


def test_a_nan_training_mel_stops_the_classifier_naming_the_track(task, good_checkpoint):
    mels = dict(task["mels"])
    mels["track_01"] = np.full_like(mels["track_01"], np.nan)
    before = saved_bytes(good_checkpoint)
    with pytest.raises(DataError, match=r"track_01.*NaN or infinite"):
        train(task, classifier_config(epochs=3), good_checkpoint, mels)
    assert saved_bytes(good_checkpoint) == before


def test_an_infinite_validation_mel_file_stops_the_classifier_naming_the_track_and_file(task, good_checkpoint, tmp_path):
    mels = {}
    for track_id, mel in task["mels"].items():
        mels[track_id] = tmp_path / f"{track_id}.npy"
        np.save(mels[track_id], np.full_like(mel, np.inf) if track_id == "track_07" else mel)
    before = saved_bytes(good_checkpoint)
    with pytest.raises(DataError, match=rf"track_07: its mel file {tmp_path / 'track_07.npy'} holds NaN or infinite"):
        train(task, classifier_config(epochs=3), good_checkpoint, mels)
    assert saved_bytes(good_checkpoint) == before


def test_a_diverging_pretraining_stops_naming_the_epoch(task):
    ids = list(task["mels"])
    tags = np.eye(N_CLASSES, dtype=bool)[[task["labels"][track] for track in ids]]
    config = PretrainConfig(**FAST).model_copy(update={"lr": DIVERGING_LR})
    with pytest.raises(MoodscapeError, match=r"epoch 1\b.*lower.*lr"):
        pretrain_backbone({t: task["mels"][t] for t in ids[:6]}, tags[:6], {t: task["mels"][t] for t in ids[6:]}, tags[6:], config)


def planted_songs(n_triplets: int = 12, dim: int = 8) -> dict:
    """Songs in judged triplets whose valence and arousal follow the first two embedding dimensions."""
    rng = np.random.default_rng(0)
    embeddings = rng.normal(size=(3 * n_triplets, dim)).astype(np.float32)
    targets = 1 / (1 + np.exp(-embeddings[:, :2].astype(np.float64)))
    songids = [f"song{i:02d}" for i in range(len(embeddings))]
    rows = []
    for triplet in range(n_triplets):
        for a, b in ((0, 1), (0, 2), (1, 2)):
            a, b = 3 * triplet + a, 3 * triplet + b
            for column, kind in enumerate(("valence", "arousal")):
                rows.append((songids[a], songids[b], kind, "a" if targets[a, column] > targets[b, column] else "b"))
    pairs = pd.DataFrame(rows, columns=["songid_a", "songid_b", "type", "higher_value"])
    return {"embeddings": embeddings, "songids": songids, "targets": targets, "pairs": pairs}


@pytest.mark.parametrize("mode", ["mse", "rank", "combined"])
def test_a_diverging_av_regressor_stops_naming_the_epoch(mode):
    songs = planted_songs()
    config = AVConfig(mode=mode, hidden=16, epochs=20, patience=20, batch_size=9, folds=3).model_copy(update={"lr": DIVERGING_LR})
    with pytest.raises(MoodscapeError, match=r"epoch 1\b.*lower.*lr"):
        cross_fit_av(songs["embeddings"], songs["songids"], songs["targets"], songs["pairs"], config)
