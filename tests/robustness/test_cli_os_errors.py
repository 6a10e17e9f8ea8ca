"""An operating-system error that names no file still ends in one line, and ``MOODSCAPE_DEBUG=1`` shows where it came from."""

from __future__ import annotations

import errno

import pytest

import moodscape.cli
from cli_runner import invoke


@pytest.fixture()
def config(tmp_path):
    path = tmp_path / "moodscape.toml"
    path.write_text('[jamendo]\nroot = "corpus"\n', encoding="utf-8")
    (tmp_path / "corpus").mkdir()  # a configured folder must exist (Settings.check_paths)
    return path


@pytest.fixture()
def failing_stage(monkeypatch):
    def run_stage(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(moodscape.cli, "_run_stage", run_stage)


def test_an_os_error_without_a_file_is_one_line_with_its_kind_and_the_debug_switch(failing_stage, config, tmp_path, monkeypatch):
    monkeypatch.delenv("MOODSCAPE_DEBUG", raising=False)
    result = invoke("cluster", "--config", config, "--workdir", tmp_path / "run")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error: Input/output error")
    assert "OSError" in lines[0] and "MOODSCAPE_DEBUG=1" in lines[0]


def test_moodscape_debug_lets_the_error_through_with_its_traceback(failing_stage, config, tmp_path, monkeypatch):
    monkeypatch.setenv("MOODSCAPE_DEBUG", "1")
    with pytest.raises(OSError, match="Input/output error"):
        invoke("cluster", "--config", config, "--workdir", tmp_path / "run")
