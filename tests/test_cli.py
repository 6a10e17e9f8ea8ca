"""The command line: bad input is skipped and listed, bad settings end in one clear line."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from cli_runner import invoke


@pytest.fixture()
def corpus(demo_corpus, tmp_path) -> Path:
    """A private copy of the session's demo corpus that a test may damage."""
    copy = tmp_path / "corpus"
    shutil.copytree(demo_corpus, copy)
    return copy


def audio_files(corpus: Path) -> list[Path]:
    return sorted((corpus / "mtg-jamendo" / "audio").rglob("*.mp3"))


def test_help_lists_every_stage():
    result = invoke("--help")
    for stage in ("demo-data", "features", "cluster", "label"):
        assert stage in result.output


def test_a_missing_artifact_names_the_command_that_writes_it(demo_corpus, tmp_path):
    result = invoke("cluster", "--config", demo_corpus / "moodscape.toml", "--workdir", tmp_path / "empty")
    assert result.exit_code == 2
    assert "features.parquet: run `moodscape features` first" in " ".join(result.output.split())


def test_bad_tracks_are_skipped_and_listed_not_fatal(corpus, tmp_path):
    corrupt, missing, silent, short, empty = audio_files(corpus)[:5]
    corrupt.write_bytes(b"ID3" + os.urandom(2000))
    missing.unlink()
    sf.write(silent, np.zeros(22050 * 4, dtype=np.float32), 22050, format="MP3")
    sf.write(short, np.random.default_rng(0).normal(size=2000).astype(np.float32) * 0.1, 22050, format="MP3")
    empty.write_bytes(b"")
    workdir = tmp_path / "run"
    result = invoke("features", "--config", corpus / "moodscape.toml", "--workdir", workdir, "--scheduler", "synchronous")
    assert result.exit_code == 0, result.output
    skipped = pd.read_csv(workdir / "reports" / "skipped_features.csv", dtype=str)
    assert len(skipped) == 5
    reasons = dict(zip(skipped["track_id"], skipped["reason"]))
    assert all(reason.strip() for reason in reasons.values())
    features = pd.read_parquet(workdir / "features.parquet")
    assert len(features) == len(audio_files(corpus)) + 1 - 5
    assert not set(features["track_id"]) & set(skipped["track_id"])


def test_a_tsv_with_wrong_columns_is_one_clear_error(corpus, tmp_path):
    tsv = corpus / "mtg-jamendo" / "autotagging_moodtheme.tsv"
    lines = tsv.read_text().splitlines()
    tsv.write_text("\n".join(["TRACK\tPATH\tTAGS", *lines[1:]]) + "\n")
    result = invoke("features", "--config", corpus / "moodscape.toml", "--workdir", tmp_path / "run")
    assert result.exit_code == 2
    assert "autotagging_moodtheme.tsv" in result.output
    assert "Traceback" not in result.output


def test_bad_setting_is_one_clear_error(corpus, tmp_path):
    result = invoke("cluster", "--config", corpus / "moodscape.toml", "--workdir", tmp_path, "--k", "1")
    assert result.exit_code == 2
    assert "cluster.k" in result.output


def test_missing_artifact_names_the_stage_to_run(corpus, tmp_path):
    result = invoke("cluster", "--config", corpus / "moodscape.toml", "--workdir", tmp_path / "empty")
    assert result.exit_code == 2
    assert "features.parquet" in result.output
    assert "moodscape features" in result.output


def test_features_resume_after_a_kill(corpus, tmp_path):
    workdir = tmp_path / "run"
    command = [sys.executable, "-m", "moodscape", "features", "--config", str(corpus / "moodscape.toml"),
               "--workdir", str(workdir), "--scheduler", "synchronous", "--set", "features.chunk_size=4"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunk_dir = workdir / ".chunks" / "features"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(chunk_dir.glob("part-*.parquet"))) < 2:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = len(list(chunk_dir.glob("part-*.parquet")))
    assert finished >= 2, "the run should have finished some chunks before the kill"
    assert not (workdir / "features.parquet").exists()
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    resumed = int(re.search(r"resumed\D+(\d+)", result.stdout).group(1))
    assert resumed >= 4 * finished
    assert len(pd.read_parquet(workdir / "features.parquet")) == len(audio_files(corpus))
