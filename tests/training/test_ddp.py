"""Data-parallel training: two CPU processes end with identical replicas.

The two ranks are forked from the test process with the environment ``torchrun`` gives
its workers (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``),
so they run the job as ``torchrun --nproc_per_node 2 -m moodscape.training.classify JOB`` would
(gloo process group from the environment, DistributedSampler, DDP) without paying
twice for importing torch, peft and scikit-learn in fresh interpreters.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import numpy as np
import torch

from moodscape.models.backbone import backbone_checkpoint
from moodscape.training.classify import run_job, trained_state


def run_rank(rank: int, job: Path, port: int, out: Path) -> None:
    """One worker, as torchrun would start it: run the job, then dump what this rank trained."""
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    result = run_job(job)
    torch.save(trained_state(result.model, result.checkpoint["mode"]), out / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_job(folder: Path, task: dict) -> Path:
    """A job file for ``task`` (labels written by name), 2 epochs of LoRA with dropout."""
    names = ["low", "mid", "high"]
    np.savez(folder / "mels.npz", **task["mels"])
    torch.save(backbone_checkpoint(task["backbone"]), folder / "backbone.pt")
    (folder / "labels.json").write_text(json.dumps({t: names[c] for t, c in task["labels"].items()}))
    (folder / "label_to_idx.json").write_text(json.dumps({name: i for i, name in enumerate(names)}))
    (folder / "splits.json").write_text(json.dumps(task["splits"]))
    config = {"epochs": 2, "batch_size": 4, "crop_frames": 64, "n_eval_crops": 2, "dropout": 0.1}
    job = {
        "mels": "mels.npz",
        "labels": "labels.json",
        "label_to_idx": "label_to_idx.json",
        "splits": "splits.json",
        "backbone": "backbone.pt",
        "checkpoint": "models/classifier.pt",
        "metrics": "metrics/classifier.json",
        "config": {**config, "progress": False, "device": "cpu"},
    }
    (folder / "job.json").write_text(json.dumps(job))
    return folder / "job.json"


def test_two_cpu_processes_end_with_identical_adapter_weights(tmp_path, make_band_task):
    job = write_job(tmp_path, make_band_task(16, 6, 6))
    torch.multiprocessing.start_processes(
        run_rank, args=(job, free_port(), tmp_path), nprocs=2, join=True, start_method="fork"
    )

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0.keys() == rank1.keys() and any("lora_B" in key for key in rank0)
    assert all(torch.equal(rank0[key], rank1[key]) for key in rank0)
    assert any(rank0[key].abs().sum() > 0 for key in rank0 if "lora_B" in key)  # it did train

    metrics = json.loads((tmp_path / "metrics" / "classifier.json").read_text())
    assert metrics["world_size"] == 2 and metrics["epochs_run"] == 2
    checkpoint = torch.load(tmp_path / "models" / "classifier.pt", weights_only=True)
    assert checkpoint["label_to_idx"] == {"low": 0, "mid": 1, "high": 2}
