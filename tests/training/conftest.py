"""Tiny synthetic mel data and a calibrated random backbone shared by the training tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from moodscape.models.backbone import AudioResNet

N_MELS, N_FRAMES, CROP = 96, 128, 64
N_CLASSES = 3


def band_mels(n_tracks: int, seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Mels whose class c is loud in the c-th third of the mel bands, plus noise.

    Returns ``{track_id: (96, 128) float32}`` and the class of each track, in key order.
    """
    rng = np.random.default_rng(seed)
    classes = np.arange(n_tracks) % N_CLASSES
    mels = {}
    band = N_MELS // N_CLASSES
    for index, label in enumerate(classes):
        mel = rng.normal(-40.0, 6.0, size=(N_MELS, N_FRAMES))  # (F, T)
        mel[label * band : (label + 1) * band] += 25.0
        mels[f"track_{index:03d}"] = mel.astype(np.float32)
    return mels, classes


def calibrated_backbone(mels: dict[str, np.ndarray], seed: int = 0) -> AudioResNet:
    """A random backbone whose BatchNorm statistics are those of ``mels``, as after pretraining."""
    torch.manual_seed(seed)
    model = AudioResNet(n_outputs=None)
    batchnorms = [module for module in model.modules() if isinstance(module, nn.BatchNorm2d)]
    for module in batchnorms:
        module.momentum = None  # cumulative average: one pass gives the statistics
    crops = torch.from_numpy(np.stack([mel[:, :CROP] for mel in mels.values()]))[:, None]  # (B, 1, F, T)
    with torch.no_grad():
        model.train()(crops)
    for module in batchnorms:
        module.momentum = 0.1
    return model.eval()


def band_task(n_train: int, n_validation: int, n_test: int) -> dict:
    """A 3-class band task: mels, labels, splits (in that order) and a calibrated backbone."""
    mels, classes = band_mels(n_train + n_validation + n_test)
    track_ids = list(mels)
    labels = {track: int(label) for track, label in zip(track_ids, classes)}
    split_names = ["train"] * n_train + ["validation"] * n_validation + ["test"] * n_test
    splits = dict(zip(track_ids, split_names))
    return {"mels": mels, "labels": labels, "splits": splits, "backbone": calibrated_backbone(mels)}


@pytest.fixture(scope="session")
def make_band_task():
    """The factory :func:`band_task`: ``make_band_task(n_train, n_validation, n_test)``."""
    return band_task


@pytest.fixture(scope="session")
def make_calibrated_backbone():
    """The factory :func:`calibrated_backbone`: ``make_calibrated_backbone(mels, seed)``."""
    return calibrated_backbone
