"""A checkpoint torch refuses, or cannot read, ends in one line that names the file and never advises weights_only=False."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from cli_runner import invoke, one_line_error


class Payload:
    """What a crafted checkpoint holds: an object whose unpickling calls a function (a harmless one here)."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.fixture()
def crafted(tmp_path) -> Path:
    path = tmp_path / "crafted.pt"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "extra": Payload()}, path)
    return path


def adopt(demo_corpus: Path, workdir: Path, backbone: Path):
    return invoke("pretrain", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir, "--backbone", backbone)


def test_a_crafted_checkpoint_is_refused_as_unsafe_without_advice_to_load_it_anyway(demo_corpus, crafted, tmp_path):
    line = one_line_error(adopt(demo_corpus, tmp_path / "run", crafted))
    assert str(crafted) in line
    assert "unsafe" in line
    assert "crafted" in line
    assert "weights_only=False" not in line


def test_a_corrupt_checkpoint_names_the_file_and_says_it_cannot_be_read(demo_corpus, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"PK\x03\x04" + bytes(200))
    line = one_line_error(adopt(demo_corpus, tmp_path / "run", corrupt))
    assert str(corrupt) in line
    assert "corrupt" in line
    assert "weights_only=False" not in line
