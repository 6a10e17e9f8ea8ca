"""A disk that cannot take an artifact ends in one line naming the file and what to do, and leaves no temporary file."""

from __future__ import annotations

import builtins
import errno
import io
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli_runner import invoke
from moodscape.models.backbone import build_backbone


class FullDisk:
    """A file opened for writing on a full disk: every write fails with ENOSPC."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._stream.close()


@pytest.fixture()
def full_disk(monkeypatch):
    """Every temporary artifact file (``.name.XXXX.tmp``) opened for writing is on a full disk."""
    real_open = io.open

    def open_on_full_disk(file, mode="r", *args, **kwargs):
        stream = real_open(file, mode, *args, **kwargs)
        name = Path(os.fsdecode(file)).name if isinstance(file, (str, bytes, os.PathLike)) else ""
        if "w" in mode and name.startswith(".") and name.endswith(".tmp"):
            return FullDisk(stream)
        return stream

    monkeypatch.setattr(builtins, "open", open_on_full_disk)
    monkeypatch.setattr(io, "open", open_on_full_disk)


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    """A backbone state_dict that ``pretrain --backbone`` adopts (and saves as models/backbone.pt)."""
    path = tmp_path_factory.mktemp("backbone") / "backbone.pt"
    torch.save(build_backbone(None).state_dict(), path)
    return path


def adopt_args(demo_corpus: Path, workdir: Path, backbone: Path) -> list:
    return ["pretrain", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir, "--backbone", backbone]


def temporary_files(workdir: Path) -> list[Path]:
    return [path for path in workdir.rglob(".*.tmp")]


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_naming_the_file(demo_corpus, backbone, tmp_path, full_disk):
    workdir = tmp_path / "run"
    result = invoke(*adopt_args(demo_corpus, workdir, backbone))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(workdir / "models" / "backbone.pt") in lines[0]
    assert "No space left on device" in lines[0]
    assert "free" in lines[0]
    assert not temporary_files(workdir)


def test_a_file_size_limit_while_torch_writes_a_checkpoint_is_one_line_not_unexpected_pos(demo_corpus, backbone, tmp_path):
    """A real failing write (the file size limit of the process): torch used to report it as 'unexpected pos'."""

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, resource.RLIM_INFINITY))

    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "moodscape", *map(str, adopt_args(demo_corpus, workdir, backbone))]
    result = subprocess.run(command, capture_output=True, text=True, preexec_fn=limit_file_size, timeout=300,
                            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "1000"})
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "unexpected pos" not in result.stderr
    assert str(workdir / "models" / "backbone.pt") in result.stderr
    assert "File too large" in result.stderr
    assert not temporary_files(workdir)
