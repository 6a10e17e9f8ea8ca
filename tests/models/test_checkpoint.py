"""Checkpoint files: the description records the SHA-256 of the bytes saved, hashed once in memory."""

from __future__ import annotations

import hashlib
import json

import torch

from moodscape import artifacts
from moodscape.models.checkpoint import save_checkpoint


def test_the_recorded_hash_is_the_saved_file_s_without_reading_the_file_back(tmp_path, monkeypatch):
    path = tmp_path / "models" / "model.pt"

    def read_back(_path):
        raise AssertionError("save_checkpoint read the file back to hash it")

    monkeypatch.setattr(artifacts, "file_hash", read_back)
    save_checkpoint({"state_dict": {"head.weight": torch.arange(6.0).reshape(2, 3)}, "labels": ["a", "b"]}, path)
    monkeypatch.undo()
    description = json.loads(artifacts.checkpoint_description(path).read_text(encoding="utf-8"))
    assert description["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() == artifacts.file_hash(path)
    assert artifacts.read_checkpoint_description(path, "model")["shapes"] == {"state_dict/head.weight": [2, 3]}
