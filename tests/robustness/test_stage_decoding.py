"""Issue 14, item 3: a FIFO (or any non-regular file) at an audio path is a listed skip, never a hang.

Opening a FIFO for reading blocks until a writer comes, so each check runs in a child
process with a timeout: a regression fails here instead of hanging the test run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile
from fresh_python import run_python

RATE = 22050


def write_tone(path: Path, frequency: float) -> Path:
    time = np.arange(int(3.0 * RATE)) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32), RATE)
    return path


@pytest.fixture
def fifo(tmp_path) -> Path:
    path = tmp_path / "pipe.mp3"
    os.mkfifo(path)
    return path


def test_every_decoding_path_refuses_a_fifo_without_blocking(fifo):
    result = run_python("""
        import json, sys
        from moodscape import audio, features, inference
        from moodscape.pipeline.features import track_features
        calls = {
            "load_audio": lambda p: audio.load_audio(p),
            "mel_from_audio": lambda p: audio.mel_from_audio(p),
            "mel_crops_from_audio": lambda p: audio.mel_crops_from_audio(p, 32, 2),
            "load_mel": lambda p: audio.load_mel(p),
            "extract_features": lambda p: features.extract_features(p),
            "track_crops": lambda p: inference.track_crops(("audio", p), 32, 2),
            "track_features": lambda p: track_features(("audio", p)),
        }
        messages = {}
        for name, call in calls.items():
            try:
                call(sys.argv[1])
            except audio.AudioError as error:
                messages[name] = str(error)
            print(name, "returned", flush=True)
        print(json.dumps(messages))
    """, fifo)
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout.splitlines()[-1])
    assert len(messages) == 7
    for name, message in messages.items():
        assert message.startswith(f"{fifo}: ") and "not a regular file" in message and "FIFO" in message, name


def test_the_infer_map_lists_a_fifo_track_and_infers_the_others(fifo, tmp_path):
    tone = write_tone(tmp_path / "tone.wav", 440.0)
    result = run_python("""
        import functools, json, sys
        from pathlib import Path
        from moodscape.inference import export_bundle, infer_chunk
        from moodscape.models.backbone import AudioResNet
        from moodscape.models.checkpoint import save_checkpoint
        from moodscape.pipeline.parallel import map_tracks
        folder, fifo, tone = map(Path, sys.argv[1:])
        bundle = export_bundle(AudioResNet(n_outputs=2).eval(), ["a", "b"], crop_frames=32, n_eval_crops=2,
                               batch_size=4, device="cpu")
        save_checkpoint(bundle, folder / "bundle.pt")
        outcome = map_tracks(functools.partial(infer_chunk, str(folder / "bundle.pt")),
                             {"pipe": ("audio", str(fifo)), "tone": ("audio", str(tone))},
                             chunk_dir=folder / "chunks", fingerprint={}, scheduler="synchronous",
                             show_progress=False, batched=True)
        print(json.dumps({"rows": outcome.rows["track_id"].tolist(), "failures": dict(outcome.failures)}))
    """, tmp_path, fifo, tone)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["rows"] == ["tone"]
    assert list(outcome["failures"]) == ["pipe"] and "not a regular file" in outcome["failures"]["pipe"]


def write_jamendo(root: Path, audio: dict[str, str]) -> None:
    """A minimal MTG-Jamendo layout: tracks TSV, vocabulary and split files, for ``{track_id: audio path}``."""
    header = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
    rows = [f"{track_id}\tartist_{i}\talbum_{i}\t{path}\t3.0\tmood/theme---{'calm' if i % 2 else 'happy'}"
            for i, (track_id, path) in enumerate(audio.items())]
    (root / "autotagging_moodtheme.tsv").write_text("\r\n".join([header, *rows]) + "\r\n")
    (root / "moodtheme_split.txt").write_text("mood/theme---calm\nmood/theme---happy\n")
    splits = root / "splits" / "split-0"
    splits.mkdir(parents=True)
    for name, part in (("train", rows[:-2]), ("validation", rows[-2:-1]), ("test", rows[-1:])):
        (splits / f"autotagging_moodtheme-{name}.tsv").write_text("\r\n".join([header, *part]) + "\r\n")


def test_the_features_stage_lists_a_fifo_track_without_blocking(tmp_path):
    jamendo, audio_root = tmp_path / "jamendo", tmp_path / "audio"
    jamendo.mkdir()
    audio_root.mkdir()
    paths = {f"track_{i}": f"{i}.wav" for i in range(5)}
    for i, path in enumerate(paths.values()):
        if i == 2:
            os.mkfifo(audio_root / path)
        else:
            write_tone(audio_root / path, 220.0 * (i + 1))
    write_jamendo(jamendo, paths)
    config = tmp_path / "jamendo.toml"
    config.write_text(f'[jamendo]\nroot = "{jamendo}"\naudio_root = "{audio_root}"\n[features]\nscheduler = "synchronous"\n')
    workdir = tmp_path / "run"
    result = run_python("from moodscape.cli import app; app()", "features", "--config", config, "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    assert sorted(pd.read_parquet(workdir / "features.parquet")["track_id"]) == ["track_0", "track_1", "track_3", "track_4"]
    skipped = pd.read_csv(workdir / "reports" / "skipped_features.csv", dtype=str).set_index("track_id")["reason"]
    assert list(skipped.index) == ["track_2"]
    assert str(audio_root / "2.wav") in skipped["track_2"] and "not a regular file" in skipped["track_2"]
