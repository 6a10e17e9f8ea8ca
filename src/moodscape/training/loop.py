"""What every training stage does the same way: device, processes, seeds, one epoch, saving (checkpoints: :mod:`moodscape.models.checkpoint`).

- :func:`setup_processes` picks the device and, under ``torchrun`` (``WORLD_SIZE > 1``
  in the environment), joins the process group: gloo on CPU, NCCL on GPU.
- :func:`train_epoch` is one pass over a loader: forward under autocast (float16 on
  CUDA only), loss, backward through a ``GradScaler`` (a no-op off CUDA), step; with a
  rich progress bar on rank 0. A NaN or infinite loss stops it (:func:`stop_if_diverged`).
- :func:`require_finite_state` refuses to let a non-finite model be saved or returned.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Self

import numpy as np
import torch
import torch.distributed as dist
from pydantic import ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from torch import nn
from torch.utils.data import DataLoader

from moodscape.config import CallOptions, TrainingSettings
from moodscape.errors import ConfigError
from moodscape.models.checkpoint import resolve_device


PROCESS_GROUP_TIMEOUT = timedelta(hours=2)
"""How long a rank waits at a collective: long enough for rank 0 to fill a collection's mel cache."""
CUDA_LOADER_WORKERS = 8
"""Default DataLoader workers on CUDA: one process reads ~3,000 crops/s from memory-mapped
mels (``tests/training/test_loader_rate.py``), so eight keep a GPU training ~10,000 a
second fed, with room for a cold page cache."""


class TrainingConfig(TrainingSettings, CallOptions):
    """Settings every training stage has: the ``[pretrain]`` / ``[train]`` ones and a call's own.

    The fields, their defaults and ranges are those of
    :class:`moodscape.config.TrainingSettings` (the one place they are written) and
    :class:`moodscape.config.CallOptions`:

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
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``.
    amp : bool
        Mixed precision (float16 autocast + GradScaler), used on CUDA only.
    num_workers : int or None
        DataLoader worker processes; None: none on CPU (the main process reads crops far
        faster than the CPU trains on them), up to :data:`CUDA_LOADER_WORKERS` on CUDA
        (:meth:`loader_workers`).
    seed : int
        Seeds initialisation, shuffling, crops and dropout.
    progress : bool
        Show a progress bar per epoch (rank 0 only).
    """

    def loader_workers(self, device: torch.device) -> int:
        """DataLoader worker processes on ``device``: ``num_workers``, or the default for the device."""
        if self.num_workers is not None:
            return self.num_workers
        return min(CUDA_LOADER_WORKERS, os.cpu_count() or 1) if device.type == "cuda" else 0

    @property
    def evaluation(self) -> dict[str, int]:
        """The keyword arguments of ``predict_tracks`` / ``embed_tracks``: crops and batch size."""
        return {"crop_frames": self.crop_frames, "n_eval_crops": self.n_eval_crops, "batch_size": self.batch_size}

    @classmethod
    def from_dict(cls, settings: Mapping[str, Any]) -> Self:
        """Build from a dict (a checkpoint's ``config``), naming unknown keys and bad values."""
        try:
            return cls.model_validate(dict(settings))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, error['loc']))}: {error['msg']}" for error in exc.errors())
            raise ConfigError(f"{cls.__name__}: {problems}") from None


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
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo", timeout=PROCESS_GROUP_TIMEOUT)
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
    epoch: int,
    description: str = "training",
    show_progress: bool = True,
) -> float:
    """One pass over ``loader``; returns the mean training loss over all processes' examples.

    Mixed precision (float16 autocast) is used when ``scaler`` is enabled, which callers
    do on CUDA only.

    Raises
    ------
    ConfigError
        When a step's loss is NaN or infinite in full precision (:func:`stop_if_diverged`;
        ``epoch``, counted from 1, is named in the message). Under mixed precision the
        ``GradScaler`` skips an overflowing step, as it should; the caller's validation
        check stops a real divergence.
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
            value = loss.item()
            if not scaler.is_enabled():  # under float16 the scaler skips an overflowing step; validation still checks
                stop_if_diverged(value, epoch=epoch, lr=optimizer.param_groups[0]["lr"])
            loss_sum, n_examples = loss_sum + value * len(mel), n_examples + len(mel)
            progress.update(task, advance=1, description=f"{description} loss {value:.4f}")
    totals = torch.tensor([loss_sum, n_examples], dtype=torch.float64, device=device)
    if dist.is_initialized():
        dist.all_reduce(totals)
    return float(totals[0] / totals[1])


def stop_if_diverged(values: float | np.ndarray, *, epoch: int, lr: float, what: str = "the training loss") -> None:
    """Stop a training whose loss or outputs left the finite numbers.

    Parameters
    ----------
    values : float or np.ndarray
        A loss, or a network's outputs.
    epoch : int
        The epoch, counted from 1.
    lr : float
        The learning rate, suggested lower in the message.
    what : str
        What ``values`` are, for the message.

    Raises
    ------
    ConfigError
        When ``values`` hold NaN or infinity.
    """
    if not np.isfinite(values).all():
        raise ConfigError(f"training diverged in epoch {epoch}: {what} is NaN or infinite; "
                          f"lower the learning rate (lr, now {lr:g}) and train again")


def require_finite_state(state: Mapping[str, torch.Tensor], what: str) -> Mapping[str, torch.Tensor]:
    """Return a state dict whose every tensor is finite, so that no NaN model is ever saved.

    Raises
    ------
    ConfigError
        Naming the first tensor of ``what`` that holds NaN or infinity.
    """
    bad = next((name for name, tensor in state.items() if not torch.isfinite(tensor).all()), None)
    if bad is not None:
        raise ConfigError(f"{what} not kept: its tensor {bad} holds NaN or infinite values; "
                          "lower the learning rate (lr) and train again")
    return state
