"""Log-mel crops for training and crop-averaged predictions for evaluation.

Mels come as a mapping ``track_id -> mel``, each mel a ``(96, T)`` float32 array in dB
or the path of a ``.npy`` file holding one (opened with ``mmap_mode="r"``, so only the
crop is read). A track shorter than the crop is padded by repeating it.

- Training: :class:`MelCrops` gives one random ``crop_frames``-long crop per track and
  epoch. The crop start is drawn from ``(seed, epoch, index)`` alone, so an epoch's
  crops are the same in any process, worker or resumed run.
- Evaluation: :func:`predict_tracks` and :func:`embed_tracks` take ``n_eval_crops``
  evenly spaced crops of each track and average their logits (or embeddings).

A crop that holds NaN or infinite values (a corrupt mel file) raises DataError naming
its track, before it reaches a network.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from moodscape.audio import crop, eval_crop_starts
from moodscape.errors import DataError

__all__ = ["Mel", "MelCrops", "crop", "embed_tracks", "eval_crop_starts", "load_mel", "predict_tracks"]

Mel = np.ndarray | str | os.PathLike
"""A ``(n_mels, T)`` log-mel array, or the path of a ``.npy`` file holding one."""


def load_mel(mel: Mel) -> np.ndarray:
    """Return the ``(n_mels, T)`` array of a mel, memory-mapping it when given a path."""
    if isinstance(mel, (str, os.PathLike)):
        mel = np.load(mel, mmap_mode="r")
    if mel.ndim != 2:
        raise DataError(f"expected a log-mel of shape (n_mels, T), got {mel.shape}")
    return mel


def finite_crops(crops: np.ndarray, track_id: str, mels: Mapping[str, Mel]) -> np.ndarray:
    """Return a track's crop(s) if every value is finite.

    Raises
    ------
    DataError
        Naming the track and, when its mel is a file, that file.
    """
    if np.isfinite(crops).all():
        return crops
    source = mels[track_id]
    if isinstance(source, (str, os.PathLike)):
        raise DataError(f"track {track_id}: its mel file {source} holds NaN or infinite values; "
                        "delete the file so that it is computed again from the audio, or leave the track out")
    raise DataError(f"track {track_id}: its mel holds NaN or infinite values")


class MelCrops(Dataset):
    """One random fixed-length crop per track, with its target.

    Parameters
    ----------
    mels : mapping of str to Mel
        Log-mels by track id.
    track_ids : sequence of str
        The tracks, in item order.
    targets : np.ndarray [shape=(n,) int or (n, n_tags) bool]
        Class index (single-label) or tag row (multi-label) of each track.
    crop_frames : int
        Crop length in frames (256 frames ≈ 5.5 s at 12 kHz, hop 256).
    seed : int
        With the epoch (:meth:`set_epoch`) and the item index, fixes the crop start.

    Items are ``(mel, target)``: a ``(1, n_mels, crop_frames)`` float32 tensor and an
    int64 scalar or a float32 ``(n_tags,)`` vector.
    """

    def __init__(
        self,
        mels: Mapping[str, Mel],
        track_ids: Sequence[str],
        targets: np.ndarray,
        *,
        crop_frames: int = 256,
        seed: int = 0,
    ) -> None:
        missing = [track for track in track_ids if track not in mels]
        if missing:
            raise DataError(f"no mel for {len(missing)} tracks, e.g. {', '.join(missing[:5])}")
        if len(targets) != len(track_ids):
            raise DataError(f"{len(targets)} targets for {len(track_ids)} tracks")
        self.mels = mels
        self.track_ids = list(track_ids)
        multi_label = np.ndim(targets) == 2
        dtype = torch.float32 if multi_label else torch.int64
        self.targets = torch.as_tensor(np.asarray(targets), dtype=dtype)  # (n,) or (n, n_tags)
        self.crop_frames = crop_frames
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Draw the crops of ``epoch`` from now on."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.track_ids)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        mel = load_mel(self.mels[self.track_ids[index]])  # (F, T)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        start = int(rng.integers(0, max(mel.shape[1] - self.crop_frames, 0) + 1))
        x = finite_crops(crop(mel, start, self.crop_frames), self.track_ids[index], self.mels)
        return torch.from_numpy(x)[None], self.targets[index]  # (1, F, crop_frames)


@torch.no_grad()
def predict_tracks(
    model: nn.Module,
    mels: Mapping[str, Mel],
    track_ids: Sequence[str] | None = None,
    *,
    crop_frames: int = 256,
    n_eval_crops: int = 4,
    batch_size: int = 32,
) -> np.ndarray:
    """Logits of each track, averaged over ``n_eval_crops`` evenly spaced crops.

    Parameters
    ----------
    model : nn.Module
        Maps ``(B, 1, n_mels, crop_frames)`` mels to ``(B, K)`` logits; run in eval mode,
        on the device of its parameters, without gradients, its mode restored after.
    mels : mapping of str to Mel
    track_ids : sequence of str, optional
        Tracks to score, in output order; default every track of ``mels``.
    crop_frames, n_eval_crops : int
    batch_size : int
        Crops per forward pass.

    Returns
    -------
    np.ndarray [shape=(n_tracks, K), dtype=float32]
    """
    return _average_over_crops(model, model, mels, track_ids, crop_frames, n_eval_crops, batch_size)


@torch.no_grad()
def embed_tracks(
    model: nn.Module,
    mels: Mapping[str, Mel],
    track_ids: Sequence[str] | None = None,
    *,
    crop_frames: int = 256,
    n_eval_crops: int = 4,
    batch_size: int = 32,
) -> np.ndarray:
    """512-d embeddings (``model.embed``) of each track, averaged over evenly spaced crops.

    Same parameters as :func:`predict_tracks`; ``model`` is an ``AudioResNet`` or a
    LoRA-adapted one.

    Returns
    -------
    np.ndarray [shape=(n_tracks, 512), dtype=float32]
    """
    return _average_over_crops(model, model.embed, mels, track_ids, crop_frames, n_eval_crops, batch_size)


def _average_over_crops(
    model: nn.Module,
    forward: Callable[[torch.Tensor], torch.Tensor],
    mels: Mapping[str, Mel],
    track_ids: Sequence[str] | None,
    crop_frames: int,
    n_eval_crops: int,
    batch_size: int,
) -> np.ndarray:
    track_ids = list(mels) if track_ids is None else list(track_ids)
    device = next(model.parameters()).device
    tracks_per_batch = max(1, batch_size // n_eval_crops)
    was_training = model.training
    model.eval()
    outputs = []
    for first in range(0, len(track_ids), tracks_per_batch):
        crops = []
        for track in track_ids[first : first + tracks_per_batch]:
            mel = load_mel(mels[track])
            starts = eval_crop_starts(mel.shape[1], crop_frames, n_eval_crops)
            crops += list(finite_crops(np.stack([crop(mel, start, crop_frames) for start in starts]), track, mels))
        x = torch.from_numpy(np.stack(crops))[:, None].to(device, memory_format=torch.channels_last)  # (n * n_eval_crops, 1, F, crop_frames)
        out = forward(x).float()  # (n * n_eval_crops, D)
        outputs.append(out.reshape(-1, n_eval_crops, out.shape[-1]).mean(dim=1).cpu())  # (n, D)
    model.train(was_training)
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    return torch.cat(outputs).numpy()
