"""One command at a time on a work directory: a second one says who holds it; a dead one's lock and temporary files go."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_runner import invoke

LOCK = ".moodscape.lock"


def report_args(demo_corpus: Path, workdir: Path) -> list:
    """The quickest command that writes to a work directory: the report, from whatever the directory holds."""
    return ["report", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir]


@pytest.fixture()
def running(demo_corpus, tmp_path):
    """A ``moodscape run`` in another process, started on ``tmp_path / "run"`` and stopped after the test."""
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "moodscape", "run", "--config", str(demo_corpus / "moodscape.toml"),
               "--workdir", str(workdir), "--set", "features.scheduler=synchronous"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not workdir.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert workdir.exists(), "the first run did not start"
        yield process, workdir
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_second_command_on_a_busy_work_directory_says_who_holds_it(demo_corpus, running):
    process, workdir = running
    result = invoke(*report_args(demo_corpus, workdir))
    assert result.exit_code == 2, result.output
    line = " ".join(result.output.split())
    assert str(workdir) in line
    assert f"pid {process.pid}" in line
    assert socket.gethostname() in line
    assert "since" in line
    assert not (workdir / "report").exists()


def test_the_stale_lock_of_a_dead_process_is_taken_over_and_released(demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    holder = {"pid": dead_pid(), "host": socket.gethostname(), "since": "2024-01-01T00:00:00+00:00", "command": "moodscape run"}
    (workdir / LOCK).write_text(json.dumps(holder), encoding="utf-8")
    result = invoke(*report_args(demo_corpus, workdir))
    assert result.exit_code == 0, result.output
    assert (workdir / "report" / "report.html").is_file()
    assert not (workdir / LOCK).exists()


def test_temporary_files_of_killed_writes_are_removed_by_the_next_command(demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    leftovers = [workdir / ".features.parquet.k1ll3d.tmp", workdir / "models" / ".backbone.pt.x7y8z9.tmp"]
    fresh = workdir / "cache" / ".projections.parquet.n0wn0w.tmp"
    an_hour_ago = time.time() - 3600
    for path in [*leftovers, fresh]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half of an artifact")
    for path in leftovers:
        os.utime(path, (an_hour_ago, an_hour_ago))
    result = invoke(*report_args(demo_corpus, workdir))
    assert result.exit_code == 0, result.output
    assert not [path for path in leftovers if path.exists()]
    assert fresh.exists(), "a temporary file written a moment ago may be a server's write in progress"
