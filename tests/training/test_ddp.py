"""Data-parallel training: two CPU processes end with identical replicas.

The two ranks are forked from the test process with the environment ``torchrun`` gives
its workers (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``),
so :func:`train_classifier` runs as it does under ``torchrun --nproc_per_node 2 -m moodscape
train`` (gloo process group from the environment, DistributedSampler, DDP) without paying
twice for importing torch, peft and scikit-learn in fresh interpreters. The whole command
through ``torchrun`` is tested in ``tests/test_pipeline_network.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from moodscape.training.classify import ClassifierConfig, train_classifier, trained_state
from loopback import free_port

NAMES = ["low", "mid", "high"]
CONFIG = ClassifierConfig(epochs=2, batch_size=4, crop_frames=64, n_eval_crops=2, dropout=0.1, progress=False, device="cpu")


def run_rank(rank: int, task: dict, port: int, out: Path) -> None:
    """One worker, as torchrun would start it: train, then dump what this rank trained."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    result = train_classifier(task["backbone"], task["mels"], task["labels"], task["splits"], CONFIG,
                              label_to_idx={name: i for i, name in enumerate(NAMES)},
                              checkpoint_path=out / "models" / "classifier.pt")
    torch.save(trained_state(result.model, result.checkpoint["mode"]), out / f"rank{rank}.pt")
    if result.metrics is not None:
        (out / "metrics.json").write_text(json.dumps(result.metrics))



def test_two_cpu_processes_end_with_identical_adapter_weights(tmp_path, make_band_task):
    task = make_band_task(16, 6, 6)
    torch.multiprocessing.start_processes(
        run_rank, args=(task, free_port(), tmp_path), nprocs=2, join=True, start_method="fork"
    )

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and any("lora_B" in key for key in rank0)
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)
    assert any(rank0[key].abs().sum() > 0 for key in rank0 if "lora_B" in key)  # it did train

    metrics = json.loads((tmp_path / "metrics.json").read_text())  # rank 0 only
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 2
    checkpoint = torch.load(tmp_path / "models" / "classifier.pt", weights_only=True)
    assert checkpoint["label_to_idx"] == {"low": 0, "mid": 1, "high": 2}
