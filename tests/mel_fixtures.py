"""Random log-mel batches in the range real dB mel-spectrograms live in."""

import torch

N_MELS = 96


def log_mels(batch: int = 4, frames: int = 64) -> torch.Tensor:
    """Random dB log-mels, shape (batch, 1, 96, frames)."""
    return torch.randn(batch, 1, N_MELS, frames) * 20 - 40  # (B, 1, F, T)
