"""Stage 3a without labels: two crops of one track are positives against the batch.

A collection without usable tags still gets a backbone learned from its own audio, the
way SimCLR (Chen et al. 2020) learns from images and COLA (Saeed et al. 2021) from audio:

- :class:`CropPairs` cuts two crops of each track at independent random positions (a time
  shift of up to the track's length) and gives each its own :func:`augment`: a level and a
  slow fade (gain), a tilt of the spectrum (a mild EQ) and a shift along the mel bands (a
  small pitch shift). Two crops of one track share the music and differ in the nuisances.
- A projection head (512 → 512 → ``projection_dim``) maps the backbone's embedding to the
  space where :func:`nt_xent_loss` compares every crop of a batch with every other: each
  crop must pick out its partner among the ``2B - 1`` others. The head is discarded after
  training; the backbone's 512-d embedding is what later stages use.
- The validation tracks get fixed crop pairs; the epoch with the lowest validation NT-Xent
  is kept (early stopping after ``patience`` epochs without a lower one), and the top-1
  retrieval accuracy of the partner (:func:`retrieval_accuracy`) is recorded beside it.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from moodscape.config import ContrastiveSettings
from moodscape.errors import DataError
from moodscape.models.backbone import EMBEDDING_DIM, AudioResNet
from moodscape.models.checkpoint import resolve_device
from moodscape.training.data import Mel, MelCrops, crop, finite_crops, load_mel
from moodscape.training.loop import TrainingConfig, require_finite_state, seed_everything, stop_if_diverged, train_epoch

GAIN_DB = 6.0
"""Largest level change of a view, in dB (uniform in ±GAIN_DB)."""
FADE_DB = 3.0
"""Largest level change from a view's first frame to its last, in dB (a slow fade in or out)."""
TILT_DB = 6.0
"""Largest EQ tilt, in dB from the lowest mel band to the highest (uniform in ±TILT_DB)."""
PITCH_BANDS = 2.0
"""Largest shift along the mel bands (uniform in ±PITCH_BANDS, fractional, linearly interpolated)."""


class ContrastiveConfig(TrainingConfig, ContrastiveSettings):
    """Settings of :func:`pretrain_contrastive`: those of every training stage, ``temperature`` and ``projection_dim``.

    ``patience`` counts epochs without a lower validation NT-Xent.
    """


def augment(mel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random view of a log-mel crop: gain and fade, EQ tilt, pitch shift.

    Parameters
    ----------
    mel : np.ndarray [shape=(n_mels, T)]
        A log-mel crop in dB.
    rng : np.random.Generator
        Draws the four parameters.

    Returns
    -------
    np.ndarray [shape=(n_mels, T), dtype=float32]
        Finite where ``mel`` is.
    """
    n_mels, n_frames = mel.shape
    gain, fade, tilt, shift = rng.uniform(-1.0, 1.0, size=4) * (GAIN_DB, FADE_DB, TILT_DB, PITCH_BANDS)
    bands = np.arange(n_mels, dtype=np.float64)
    # a pitch shift moves the partials along the bands; edge bands are repeated into the gap
    source = np.clip(bands - shift, 0, n_mels - 1)  # (F,)
    low = np.floor(source).astype(int)
    high = np.minimum(low + 1, n_mels - 1)
    weight = (source - low)[:, None]  # (F, 1)
    shifted = (1.0 - weight) * mel[low] + weight * mel[high]  # (F, T)
    level = gain + fade * (np.linspace(-0.5, 0.5, n_frames) if n_frames > 1 else np.zeros(1))  # (T,)
    eq = tilt * (bands / max(n_mels - 1, 1) - 0.5)  # (F,)
    return (shifted + eq[:, None] + level[None, :]).astype(np.float32)


class CropPairs(MelCrops):
    """Two augmented crops of each track, from independent random positions.

    Parameters
    ----------
    mels, track_ids, crop_frames
        As for :class:`~moodscape.training.data.MelCrops` (which has targets; here none).
    seed : int
        With the epoch (:meth:`set_epoch`) and the item index, fixes both crops and their
        augmentations, so an epoch's pairs are the same in any process or worker; the
        validation set keeps epoch 0, so its pairs never change.

    Items are ``(views, index)``: a ``(2, 1, n_mels, crop_frames)`` float32 tensor and the
    item index (an int64 scalar tensor); :func:`pair_batch` makes a batch of them.
    """

    def __init__(self, mels: Mapping[str, Mel], track_ids: Sequence[str], *, crop_frames: int = 256,
                 seed: int = 0) -> None:
        super().__init__(mels, track_ids, np.arange(len(track_ids)), crop_frames=crop_frames, seed=seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        track = self.track_ids[index]
        mel = load_mel(self.mels[track])  # (F, T)
        rng = np.random.default_rng([self.seed, self.epoch, index])
        starts = rng.integers(0, max(mel.shape[1] - self.crop_frames, 0) + 1, size=2)
        crops = finite_crops(np.stack([crop(mel, int(start), self.crop_frames) for start in starts]), track, self.mels)
        views = np.stack([augment(view, rng) for view in crops])  # (2, F, crop_frames)
        return torch.from_numpy(views)[:, None], self.targets[index]  # (2, 1, F, crop_frames), ()


def pair_batch(items: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Collate ``B`` pairs into ``2B`` crops, first views then second views, and each crop's partner.

    Returns
    -------
    mel : torch.Tensor [shape=(2B, 1, n_mels, T)]
    partner : torch.Tensor [shape=(2B,), dtype=int64]
        ``partner[i]`` is the row of the other crop of row ``i``'s track: ``(i + B) mod 2B``.
    """
    views = torch.stack([item[0] for item in items])  # (B, 2, 1, F, T)
    return torch.cat([views[:, 0], views[:, 1]]), partners(len(items))


def partners(n_pairs: int) -> torch.Tensor:
    """``(i + n_pairs) mod 2 n_pairs`` for every row ``i`` of ``2 n_pairs`` crops laid out as :func:`pair_batch` does."""
    return (torch.arange(2 * n_pairs) + n_pairs) % (2 * n_pairs)


def _similarities(z: torch.Tensor, temperature: float) -> torch.Tensor:
    """Cosine similarities over ``temperature``, each row's own column at -inf: ``(N, N)`` float32."""
    z = F.normalize(z.float(), dim=1)  # (N, D)
    logits = z @ z.T / temperature  # (N, N)
    return logits.masked_fill(torch.eye(len(z), dtype=torch.bool, device=z.device), float("-inf"))


def nt_xent_loss(z: torch.Tensor, partner: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent: the cross-entropy of picking each row's partner among all other rows by cosine similarity.

    .. math:: \\ell_i = -\\log \\frac{\\exp(s_{i, p(i)} / \\tau)}{\\sum_{k \\ne i} \\exp(s_{ik} / \\tau)},
              \\qquad s_{ik} = \\frac{z_i \\cdot z_k}{\\lVert z_i \\rVert \\lVert z_k \\rVert}

    Parameters
    ----------
    z : torch.Tensor [shape=(N, D)]
        Projections of ``N`` crops (computed in float32 whatever their dtype).
    partner : torch.Tensor [shape=(N,), dtype=int64]
        Row of each crop's positive (:func:`partners`).
    temperature : float
        τ.

    Returns
    -------
    torch.Tensor [shape=()]
        The mean of :math:`\\ell_i` over the ``N`` rows.
    """
    return F.cross_entropy(_similarities(z, temperature), partner.to(z.device))


def retrieval_accuracy(z: torch.Tensor, partner: torch.Tensor) -> float:
    """Share of rows whose most similar other row (cosine) is their partner."""
    return int((_similarities(z, 1.0).argmax(dim=1) == partner.to(z.device)).sum()) / len(z)


class ProjectedBackbone(nn.Module):
    """The backbone's embedding through a projection head (512 → 512 → ``projection_dim``): what NT-Xent trains."""

    def __init__(self, backbone: AudioResNet, projection_dim: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.projection = nn.Sequential(
            nn.Linear(EMBEDDING_DIM, EMBEDDING_DIM), nn.BatchNorm1d(EMBEDDING_DIM), nn.ReLU(),
            nn.Linear(EMBEDDING_DIM, projection_dim),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """``(B, 1, n_mels, T)`` log-mels → ``(B, projection_dim)`` projections."""
        return self.projection(self.backbone.embed(mel))


@torch.no_grad()
def pair_scores(model: nn.Module, pairs: CropPairs, *, batch_size: int, temperature: float) -> dict[str, float]:
    """NT-Xent and partner retrieval of a fixed set of crop pairs, as the training sees them.

    Parameters
    ----------
    model : nn.Module
        ``(B, 1, n_mels, T)`` → ``(B, D)``: a :class:`ProjectedBackbone`, or an
        :class:`~moodscape.models.backbone.AudioResNet` without a head (its embedding);
        run in eval mode on the device of its parameters, its mode restored after.
    pairs : CropPairs
        Its pairs of epoch ``pairs.epoch``.
    batch_size : int
        Pairs per forward pass, and per NT-Xent term: the loss is the mean over
        near-equal groups of at most ``batch_size`` tracks, each group scored against
        itself as a training batch is, so its scale is that of the training loss.
    temperature : float

    Returns
    -------
    dict
        ``nt_xent`` (grouped as above) and ``retrieval_top1``: the share of the ``2n``
        crops whose nearest other crop among all ``2n`` is their partner.
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    first, second = [], []
    for start in range(0, len(pairs), batch_size):
        mel, _ = pair_batch([pairs[i] for i in range(start, min(start + batch_size, len(pairs)))])
        z = model(mel.to(device, memory_format=torch.channels_last)).float()  # (2b, D)
        first.append(z[: len(z) // 2])
        second.append(z[len(z) // 2 :])
    model.train(was_training)
    first, second = torch.cat(first), torch.cat(second)  # (n, D) each
    groups = np.array_split(np.arange(len(pairs)), max(1, -(-len(pairs) // batch_size)))
    loss = sum(len(g) * nt_xent_loss(torch.cat([first[g], second[g]]), partners(len(g)), temperature).item()
               for g in groups) / len(pairs)
    return {"nt_xent": float(loss), "retrieval_top1": retrieval_accuracy(torch.cat([first, second]), partners(len(pairs)))}


def pretrain_contrastive(
    mels_train: Mapping[str, Mel],
    mels_val: Mapping[str, Mel],
    config: ContrastiveConfig | None = None,
) -> tuple[AudioResNet, dict]:
    """Train a backbone without labels: two crops of a track against the batch (NT-Xent).

    Parameters
    ----------
    mels_train, mels_val : mapping of str to Mel
        Log-mels ``(96, T)`` (arrays or ``.npy`` paths) of the training and validation
        tracks; at least two of each.
    config : ContrastiveConfig, optional

    Returns
    -------
    model : AudioResNet
        The best epoch's backbone without a head (the projection is discarded), on CPU,
        in eval mode.
    history : dict
        ``best_epoch``, ``best_val_nt_xent``, ``best_val_retrieval_top1``, ``epochs_run``,
        ``train_seconds_per_epoch``, ``config`` and ``epochs``: per epoch ``train_loss``,
        ``train_seconds``, ``val_loss`` (NT-Xent) and ``val_retrieval_top1``.

    Raises
    ------
    ConfigError
        When the training diverges (see :func:`~moodscape.training.loop.stop_if_diverged`).
    DataError
        When a split has fewer than two tracks, or a mel crop holds NaN or infinite values.
    """
    config = config or ContrastiveConfig()
    device = resolve_device(config.device)

    # -- data: random pairs for training, fixed pairs for validation
    if min(len(mels_train), len(mels_val)) < 2:
        raise DataError(f"contrastive pretraining needs two tracks or more in the train and validation splits, "
                        f"got {len(mels_train)} and {len(mels_val)}")
    train_set = CropPairs(mels_train, list(mels_train), crop_frames=config.crop_frames, seed=config.seed)
    val_set = CropPairs(mels_val, list(mels_val), crop_frames=config.crop_frames, seed=config.seed)
    loader = DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(train_set) > config.batch_size,  # a last batch of one pair has no negatives
        collate_fn=pair_batch,
        generator=torch.Generator().manual_seed(config.seed),
        num_workers=config.loader_workers(device),
        pin_memory=device.type == "cuda",
    )

    # -- model: backbone and projection head
    seed_everything(config.seed)
    model = ProjectedBackbone(AudioResNet(n_outputs=None), config.projection_dim).to(device, memory_format=torch.channels_last)

    # -- optimiser and loss
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp and device.type == "cuda")

    def loss_fn(z: torch.Tensor, partner: torch.Tensor) -> torch.Tensor:
        return nt_xent_loss(z, partner, config.temperature)

    # -- loop: train, score the validation pairs, keep the epoch with the lowest NT-Xent
    epochs, best_epoch, best_loss, best_state = [], 0, float("inf"), copy.deepcopy(model.backbone.state_dict())
    for epoch in range(config.epochs):
        train_set.set_epoch(epoch)
        started = time.perf_counter()
        train_loss = train_epoch(model, loader, loss_fn, optimizer, scaler, device=device, epoch=epoch + 1,
                                 description=f"pretrain (contrastive) {epoch + 1}/{config.epochs}",
                                 show_progress=config.progress)
        train_seconds = time.perf_counter() - started
        val = pair_scores(model, val_set, batch_size=config.batch_size, temperature=config.temperature)
        stop_if_diverged(val["nt_xent"], epoch=epoch + 1, lr=config.lr, what="the validation NT-Xent")
        epochs.append({"epoch": epoch + 1, "train_loss": train_loss, "train_seconds": train_seconds,
                       "val_loss": val["nt_xent"], "val_retrieval_top1": val["retrieval_top1"]})
        if val["nt_xent"] < best_loss:
            best_epoch, best_loss = epoch + 1, val["nt_xent"]
            best_state = copy.deepcopy(model.backbone.state_dict())
        elif epoch + 1 - best_epoch >= config.patience:
            break

    # -- the best epoch's backbone, without the projection head
    backbone = model.backbone
    backbone.load_state_dict(require_finite_state(best_state, "pretrained backbone"))
    history = {
        "best_epoch": best_epoch,
        "best_val_nt_xent": best_loss,
        "best_val_retrieval_top1": epochs[best_epoch - 1]["val_retrieval_top1"],
        "epochs_run": len(epochs),
        "train_seconds_per_epoch": float(np.mean([epoch["train_seconds"] for epoch in epochs])),
        "config": config.model_dump(),
        "epochs": epochs,
    }
    return backbone.cpu().eval(), history
