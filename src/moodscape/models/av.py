"""Valence/arousal from track embeddings: a small MLP, its fitted members, their ensemble.

Stage 4 maps a track's 512-d embedding (the backbone's pooled features, averaged over
crops) to ``(valence, arousal)``. One fitted :class:`AVMember` is a fixed pipeline

    x ──standardise──▶ (x - mean) / scale ──AVRegressor──▶ s ──calibrate──▶ slope · s + intercept

whose ``mean``/``scale`` are a StandardScaler fitted on that member's training songs and
whose per-output affine calibration is the identity unless the member was trained on
pairwise judgments only (see :mod:`moodscape.training.av`). :class:`AVEnsemble` averages
the calibrated outputs of the cross-fitted members.

A checkpoint is a dict in the nanoGPT way, ``{"state_dict", "model_args", **extra}``
(:func:`av_checkpoint`), from which :func:`load_av_regressor` rebuilds the ensemble.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from moodscape.artifacts import AV_COLUMNS
from moodscape.errors import ArtifactError, ConfigError, DataError
from moodscape.models.backbone import EMBEDDING_DIM, check_same_tensors
from moodscape.models.checkpoint import read_checkpoint

AV_OUTPUTS = AV_COLUMNS


class AVRegressor(nn.Module):
    """Linear → ReLU → Dropout → Linear: embedding to ``(valence, arousal)`` scores.

    Parameters
    ----------
    in_features : int
        Embedding size.
    hidden : int
        Width of the hidden layer.
    dropout : float
        Dropout probability on the hidden layer.

    Examples
    --------
    >>> AVRegressor()(torch.randn(4, 512)).shape  # columns: valence, arousal
    torch.Size([4, 2])
    """

    def __init__(self, in_features: int = EMBEDDING_DIM, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, len(AV_OUTPUTS))
        )
        self.model_args = {"in_features": in_features, "hidden": hidden, "dropout": dropout}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return scores ``(B, 2)``, columns (valence, arousal), of standardised embeddings ``(B, in_features)``."""
        return self.net(x)


class AVMember(nn.Module):
    """One fitted model: standardisation, :class:`AVRegressor`, per-output affine calibration.

    Parameters
    ----------
    in_features, hidden, dropout
        Those of the :class:`AVRegressor`.

    Attributes
    ----------
    mean, scale : torch.Tensor [shape=(in_features,)]
        Buffers: the training songs' embedding mean and standard deviation (1 where it is 0).
    slope, intercept : torch.Tensor [shape=(2,)]
        Buffers: calibrated output ``= slope · score + intercept``, per column; identity by default.
    regressor : AVRegressor
    """

    def __init__(self, in_features: int = EMBEDDING_DIM, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.regressor = AVRegressor(in_features, hidden, dropout)
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("scale", torch.ones(in_features))
        self.register_buffer("slope", torch.ones(len(AV_OUTPUTS)))
        self.register_buffer("intercept", torch.zeros(len(AV_OUTPUTS)))

    @property
    def model_args(self) -> dict:
        """The arguments that rebuild this member."""
        return dict(self.regressor.model_args)

    def scores(self, x: torch.Tensor) -> torch.Tensor:
        """Uncalibrated regressor scores ``(B, 2)`` of raw embeddings ``(B, in_features)``."""
        return self.regressor((x - self.mean) / self.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Calibrated ``(B, 2)`` (valence, arousal) of raw embeddings ``(B, in_features)``."""
        return self.scores(x) * self.slope + self.intercept

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, 2)`` float64 (valence, arousal) of ``(n, in_features)`` embeddings, in eval mode."""
        return _predict(self, embeddings)


class AVEnsemble(nn.Module):
    """The mean of several :class:`AVMember` outputs (one per cross-fitting fold).

    Parameters
    ----------
    members : sequence of AVMember
        Fitted members of one architecture (same ``model_args``).

    Examples
    --------
    >>> ensemble = build_av_ensemble(n_members=5)
    >>> ensemble.predict(np.zeros((3, 512))).shape  # columns: valence, arousal
    (3, 2)
    """

    def __init__(self, members: Sequence[AVMember]) -> None:
        super().__init__()
        if not members:
            raise ConfigError("an AV ensemble needs at least one member")
        if any(member.model_args != members[0].model_args for member in members):
            raise ConfigError(f"AV ensemble members differ in architecture: {[m.model_args for m in members]}")
        self.members = nn.ModuleList(members)

    @property
    def model_args(self) -> dict:
        """The arguments that rebuild this ensemble with :func:`build_av_ensemble`."""
        return {"n_members": len(self.members), **self.members[0].model_args}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean calibrated ``(B, 2)`` (valence, arousal) over members, of raw embeddings ``(B, in_features)``."""
        return torch.stack([member(x) for member in self.members]).mean(dim=0)  # (B, 2)

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """``(n, 2)`` float64 (valence, arousal) of ``(n, in_features)`` embeddings, in eval mode."""
        return _predict(self, embeddings)


def build_av_ensemble(
    n_members: int, in_features: int = EMBEDDING_DIM, hidden: int = 128, dropout: float = 0.1
) -> AVEnsemble:
    """An ensemble of ``n_members`` unfitted members (``model_args`` of a checkpoint)."""
    return AVEnsemble([AVMember(in_features, hidden, dropout) for _ in range(n_members)])


def av_checkpoint(ensemble: AVEnsemble, **extra) -> dict:
    """Return the checkpoint dict of ``ensemble``: ``state_dict``, ``model_args``, ``extra``.

    ``extra`` (config, cross-fitted scores, ...) must be tensors and plain Python values
    so that the file loads with ``weights_only=True``.
    """
    state = {key: value.detach().cpu().clone() for key, value in ensemble.state_dict().items()}
    return {"state_dict": state, "model_args": ensemble.model_args, **extra}


def load_av_regressor(path: str | os.PathLike) -> AVEnsemble:
    """Rebuild the :class:`AVEnsemble` saved at ``path`` (a torch file of :func:`av_checkpoint`).

    Returns
    -------
    AVEnsemble
        On CPU, in eval mode.

    Raises
    ------
    ArtifactError
        If the file is missing, cannot be read with ``weights_only=True``, or its
        ``model_args``/``state_dict`` do not make an ensemble (the message names the file
        and the offending keys).
    """
    source = f"AV regressor checkpoint {path}"
    checkpoint = read_checkpoint(path, "AV regressor checkpoint", ("state_dict", "model_args"))
    try:
        ensemble = build_av_ensemble(**checkpoint["model_args"])
    except (TypeError, ValueError, RuntimeError, ConfigError) as error:
        raise ArtifactError(f"{source} has unusable model_args {checkpoint['model_args']!r}: {error}") from None
    check_same_tensors(ensemble.state_dict(), checkpoint["state_dict"], source)
    ensemble.load_state_dict(checkpoint["state_dict"])
    return ensemble.eval()


def _predict(model: nn.Module, embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.array(embeddings, dtype=np.float32)  # a writable copy for torch
    in_features = model.model_args["in_features"]
    if embeddings.ndim != 2 or embeddings.shape[1] != in_features:
        raise DataError(f"expected embeddings of shape (n, {in_features}), got {embeddings.shape}")
    parameter = next(model.parameters())
    model.eval()
    with torch.no_grad():
        outputs = model(torch.from_numpy(embeddings).to(parameter.device, parameter.dtype))  # (n, 2)
    return outputs.cpu().double().numpy()
