"""The training data loader keeps up with training: a GPU would not wait on it.

A GPU trains the backbone tens of times faster than two CPU cores do, so the loader, which
reads random crops of memory-mapped mel files as the training stages do, must deliver
crops well faster than the CPU can train on them. Both rates are measured in this test, in
turn, on the same files, each the best of several passes (so a busy machine slows both,
and the ratio holds); only their ratio is asserted.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from moodscape.config import TrainingSettings
from moodscape.models.backbone import AudioResNet
from moodscape.training.data import MelCrops

N_TRACKS, SECONDS = 64, 30  # 30-s mels, as the capped rehearsal corpus writes them
FRAMES = SECONDS * 12000 // 256 + 1
PASSES = 2
LEAST_RATIO = 5.0


def examples_per_second(run_pass, n_examples: int) -> float:
    """The best rate of ``PASSES`` passes of ``run_pass()`` over ``n_examples`` examples."""
    best = float("inf")
    for _ in range(PASSES):
        start = time.perf_counter()
        run_pass()
        best = min(best, time.perf_counter() - start)
    return n_examples / best


def test_the_loader_delivers_crops_at_least_five_times_faster_than_the_cpu_trains(tmp_path):
    settings = TrainingSettings()
    rng = np.random.default_rng(0)
    mels = {}
    for index in range(N_TRACKS):
        path = tmp_path / f"{index:03d}.npy"
        np.save(path, rng.normal(-40.0, 10.0, size=(96, FRAMES)).astype(np.float32))
        mels[f"track_{index:03d}"] = path
    crops = MelCrops(mels, list(mels), np.arange(N_TRACKS) % 4, crop_frames=settings.crop_frames, seed=0)
    loader = DataLoader(crops, batch_size=settings.batch_size, shuffle=True, num_workers=0)

    def load_pass() -> None:
        crops.set_epoch(crops.epoch + 1)
        for mel, target in loader:
            assert mel.shape[1:] == (1, 96, settings.crop_frames)

    torch.manual_seed(0)
    model = AudioResNet(n_outputs=4).to(memory_format=torch.channels_last).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr)
    batches = [(mel.to(memory_format=torch.channels_last), target) for mel, target in loader]

    def train_pass() -> None:  # the whole backbone trains, as in pretraining: the costliest step per crop
        for mel, target in batches:
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(mel), target).backward()
            optimizer.step()

    load_rate = examples_per_second(load_pass, N_TRACKS)
    train_rate = examples_per_second(train_pass, N_TRACKS)
    load_rate = max(load_rate, examples_per_second(load_pass, N_TRACKS))  # again, after training warmed the caches
    print(f"loader {load_rate:.0f} crops/s, training {train_rate:.0f} crops/s: {load_rate / train_rate:.1f}×")
    assert load_rate >= LEAST_RATIO * train_rate, (
        f"the loader gives {load_rate:.0f} crops/s, training takes {train_rate:.0f}/s: "
        f"only {load_rate / train_rate:.1f}× (at least {LEAST_RATIO:g}× wanted)")


def test_loader_workers_default_to_none_on_cpu_and_several_on_cuda():
    from moodscape.training.loop import CUDA_LOADER_WORKERS, TrainingConfig

    assert TrainingConfig().loader_workers(torch.device("cpu")) == 0
    assert 1 <= TrainingConfig().loader_workers(torch.device("cuda")) <= CUDA_LOADER_WORKERS
    assert TrainingConfig(num_workers=3).loader_workers(torch.device("cuda")) == 3
    assert TrainingConfig(num_workers=2).loader_workers(torch.device("cpu")) == 2
