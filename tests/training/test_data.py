"""Random training crops and crop-averaged evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from moodscape.errors import DataError
from moodscape.training.data import MelCrops, embed_tracks, eval_crop_starts, predict_tracks

CROP = 64


def ramp_mel(n_frames: int, offset: float = 0.0) -> np.ndarray:
    """A (96, n_frames) mel whose value is its frame index (+ offset): a crop tells its start."""
    return np.tile(np.arange(n_frames, dtype=np.float32) + offset, (96, 1))


class MeanOfCrop(nn.Module):
    """Logits = (mean, max) of each crop; ``embed`` = its mean only. A parameter fixes the device."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:  # (B, 1, F, T) -> (B, 2)
        return torch.stack([mel.mean(dim=(1, 2, 3)), mel.amax(dim=(1, 2, 3))], dim=1) + self.anchor

    def embed(self, mel: torch.Tensor) -> torch.Tensor:  # (B, 1, F, T) -> (B, 1)
        return mel.mean(dim=(1, 2, 3))[:, None]


def test_training_crop_is_a_contiguous_slice_fixed_by_seed_epoch_and_index():
    mels = {"a": ramp_mel(200), "b": ramp_mel(300)}
    dataset = MelCrops(mels, ["a", "b"], np.array([0, 1]), crop_frames=CROP, seed=3)
    x, target = dataset[1]
    assert x.shape == (1, 96, CROP) and x.dtype == torch.float32
    assert target.dtype == torch.int64 and int(target) == 1
    start = int(x[0, 0, 0])
    assert torch.equal(x[0, 0], torch.arange(start, start + CROP, dtype=torch.float32))
    assert torch.equal(dataset[1][0], x)  # same epoch: same crop
    starts = set()
    for epoch in range(8):
        dataset.set_epoch(epoch)
        starts.add(int(dataset[1][0][0, 0, 0]))
    assert len(starts) > 1  # epochs draw new crops
    assert torch.equal(MelCrops(mels, ["a", "b"], np.array([0, 1]), crop_frames=CROP, seed=3)[1][0], x)


def test_a_short_track_is_repeated_to_fill_the_crop():
    dataset = MelCrops({"short": ramp_mel(40)}, ["short"], np.array([0]), crop_frames=CROP)
    row = dataset[0][0][0, 0]
    assert torch.equal(row, torch.cat([torch.arange(40.0), torch.arange(24.0)]))


def test_multi_label_targets_are_float_vectors_and_npy_paths_are_read(tmp_path):
    np.save(tmp_path / "a.npy", ramp_mel(100))
    np.save(tmp_path / "b.npy", ramp_mel(100, offset=1000))
    mels = {path.stem: path for path in tmp_path.glob("*.npy")}
    dataset = MelCrops(mels, ["b"], np.array([[True, False, True]]), crop_frames=CROP)
    x, target = dataset[0]
    assert target.dtype == torch.float32 and target.tolist() == [1.0, 0.0, 1.0]
    assert x.min() >= 1000


def test_missing_mels_and_unequal_targets_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="no mel for 1 tracks, e.g. ghost"):
        MelCrops({"a": ramp_mel(100)}, ["a", "ghost"], np.array([0, 1]))
    with pytest.raises(DataError, match="2 targets for 1 tracks"):
        MelCrops({"a": ramp_mel(100)}, ["a"], np.array([0, 1]))


def test_eval_crops_are_evenly_spaced_from_first_to_last_frame():
    assert eval_crop_starts(128, CROP, 3).tolist() == [0, 32, 64]
    assert eval_crop_starts(40, CROP, 2).tolist() == [0, 0]  # shorter than a crop: padded, one start


def test_predictions_average_the_eval_crops_in_track_order_and_restore_the_mode():
    mels = {f"t{i}": ramp_mel(128, offset=100 * i) for i in range(5)}
    model = MeanOfCrop().train()
    logits = predict_tracks(model, mels, ["t4", "t0", "t2", "t1", "t3"], crop_frames=CROP, n_eval_crops=3, batch_size=7)
    # crops start at 0, 32, 64: their means are offset + 31.5, 63.5, 95.5, maxima offset + 63, 95, 127.
    offsets = np.array([400, 0, 200, 100, 300], dtype=np.float32)
    assert logits.shape == (5, 2) and logits.dtype == np.float32
    assert np.allclose(logits[:, 0], offsets + 63.5) and np.allclose(logits[:, 1], offsets + 95.0)
    assert model.training

    embeddings = embed_tracks(model.eval(), mels, crop_frames=CROP, n_eval_crops=3, batch_size=2)
    assert embeddings.shape == (5, 1)
    assert np.allclose(embeddings[:, 0], np.arange(5) * 100 + 63.5)
    assert not model.training
