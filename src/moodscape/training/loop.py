"""What every training stage does the same way: device, processes, seeds, one epoch, saving (checkpoints: :mod:`moodscape.models.checkpoint`).

- :func:`setup_processes` picks the device and, under ``torchrun`` (``WORLD_SIZE > 1``
  in the environment), joins the process group: gloo on CPU, NCCL on GPU.
- :func:`train_epoch` is one pass over a loader: forward under autocast (float16 on
  CUDA only), loss, backward through a ``GradScaler`` (a no-op off CUDA), step; with a
  rich progress bar on rank 0.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Self

import numpy as np
import torch
import torch.distributed as dist
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.utils.data import DataLoader

from moodscape.errors import ConfigError
from moodscape.models.checkpoint import resolve_device


@dataclass
class TrainingConfig:
    """Settings every training stage has.

    Attributes
    ----------
    epochs : int
        Most epochs to train.
    batch_size : int
        Training crops per step and process; also crops per evaluation forward pass.
    lr, weight_decay : float
        AdamW learning rate (constant) and decoupled weight decay.
    patience : int
        Stop after this many epochs without a better validation score.
    crop_frames : int
        Crop length in mel frames (256 ≈ 5.5 s at 12 kHz, hop 256).
    n_eval_crops : int
        Evenly spaced crops whose outputs are averaged per evaluated track.
    seed : int
        Seeds initialisation, shuffling, crops and dropout.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    amp : bool
        Mixed precision (float16 autocast + GradScaler), used on CUDA only.
    num_workers : int
        DataLoader worker processes.
    progress : bool
        Show a progress bar per epoch (rank 0 only).
    """

    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    crop_frames: int = 256
    n_eval_crops: int = 4
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    num_workers: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "crop_frames", "n_eval_crops"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.weight_decay < 0 or self.num_workers < 0:
            raise ConfigError("lr must be positive; weight_decay and num_workers not negative")

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> Self:
        """Build from a dict (a JSON config, a checkpoint's ``config``), naming unknown keys."""
        unknown = set(settings) - {field.name for field in fields(cls)}
        if unknown:
            raise ConfigError(f"unknown {cls.__name__} settings: {', '.join(sorted(unknown))}")
        return cls(**settings)


@dataclass(frozen=True)
class Processes:
    """This process's place in a (possibly one-process) training run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    joined_group: bool = False
    """Whether :func:`setup_processes` initialised the process group (and must destroy it)."""

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that evaluates, prints and saves."""
        return self.rank == 0


def setup_processes(device: str = "auto") -> Processes:
    """Choose the device and join the process group when started by ``torchrun``.

    Parameters
    ----------
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        Under ``torchrun`` on CUDA each process takes the GPU ``LOCAL_RANK``.
    """
    device = str(resolve_device(device))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return Processes(device=torch.device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    joined = not dist.is_initialized()
    if joined:
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Processes(torch.device(device), dist.get_rank(), dist.get_world_size(), joined)


def teardown_processes(processes: Processes) -> None:
    """Leave the process group if :func:`setup_processes` joined it."""
    if processes.joined_group:
        dist.destroy_process_group()


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    """torch's CPU and CUDA generator states, to save with an in-progress checkpoint."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []
    return {"torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(state: dict) -> None:
    """Restore the generators saved by :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def train_epoch(
    model: nn.Module,
    loader: DataLoader,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    *,
    device: torch.device,
    description: str = "training",
    show_progress: bool = True,
) -> float:
    """One pass over ``loader``; returns the mean training loss over all processes' examples.

    Mixed precision (float16 autocast) is used when ``scaler`` is enabled, which callers
    do on CUDA only.
    """
    model.train()
    loss_sum, n_examples = 0.0, 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not show_progress) as progress:
        task = progress.add_task(description, total=len(loader))
        for mel, target in loader:
            mel = mel.to(device, non_blocking=True, memory_format=torch.channels_last)  # (B, 1, F, T)
            target = target.to(device, non_blocking=True)  # (B,) or (B, n_tags)
            with torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled()):
                loss = loss_fn(model(mel), target)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            loss_sum, n_examples = loss_sum + loss.item() * len(mel), n_examples + len(mel)
            progress.update(task, advance=1, description=f"{description} loss {loss.item():.4f}")
    totals = torch.tensor([loss_sum, n_examples], dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(totals)
    return float(totals[0] / totals[1])
