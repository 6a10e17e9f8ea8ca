"""Issue 14, item 4: every file a folder scan sees is a track or a line in the work directory's reports.

Symbolic link loops, dangling links, FIFOs, folders named like audio files and audio files
of formats that are not read used to be left out silently. The scans run in a child
process with a timeout, since a FIFO opened for reading would block.
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

from moodscape.datasets.folder import load_folder

RATE = 22050

ODD_ENTRIES = {
    "song.opus": "cannot decode audio",
    "tune.m4a": "cannot decode audio",
    "voice.wma": "not read",
    "module.mod": "not read",
    "chip.xm": "not read",
    "x.mp3": "folder",
    "pipe.mp3": "FIFO",
    "gone.mp3": "broken symbolic link",
    "loop.mp3": "symbolic link loop",
    "sub/up": "symbolic link to a folder",
    "link.wav": "identical to",  # a link to a track is a copy of it
}
"""What the scan must report, by path below the folder, and a word of the reason it must give."""
TRACKS = ["a", "rock/b", "spaced ", "trail", "x.mp3/inner"]


def write_tone(path: Path, frequency: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(int(3.0 * RATE)) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32), RATE, format="WAV")


def write_tags(path: Path, tags: dict[str, str]) -> Path:
    pd.DataFrame({"track_id": list(tags), "tags": list(tags.values())}).to_csv(path, index=False)
    return path


@pytest.fixture
def odd_folder(tmp_path) -> Path:
    """Six tracks (one name ending in a space, one a link, one inside a folder named ``x.mp3``)
    beside every kind of entry that is no track, and a ``notes.txt``, which is no audio and
    not reported."""
    music = (tmp_path / "music").resolve()
    for index, name in enumerate(["a.wav", "rock/b.flac", "spaced .wav", "trail.wav ", "x.mp3/inner.wav"]):
        write_tone(music / name, 220.0 * (index + 1))
    (music / "link.wav").symlink_to("a.wav")
    for name in ("song.opus", "tune.m4a", "voice.wma", "module.mod", "chip.xm"):
        (music / name).write_bytes(b"\0" * 64)
    os.mkfifo(music / "pipe.mp3")
    (music / "gone.mp3").symlink_to("missing.mp3")
    (music / "loop.mp3").symlink_to("loop.mp3")
    (music / "sub").mkdir()
    (music / "sub" / "up").symlink_to("..")
    (music / "notes.txt").write_text("not audio")
    return music


def problem_lines(lines: list[str], music: Path) -> dict[str, str]:
    """``{path below music: reason}`` of the problem lines ``"<path>: skipped: <reason>"``."""
    found = {}
    for line in lines:
        path, _, reason = line.partition(": skipped: ")
        if path.startswith(f"{music}/"):
            found[path[len(str(music)) + 1 :]] = reason
    return found


def test_the_features_stage_reports_every_file_that_is_no_track(odd_folder, tmp_path):
    config = tmp_path / "folder.toml"
    config.write_text(f'[data]\nsource = "folder"\n[folder]\nroot = "{odd_folder}"\n[features]\nscheduler = "synchronous"\n')
    workdir = tmp_path / "run"
    result = run_python("from moodscape.cli import app; app()", "features", "--config", config, "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    assert sorted(pd.read_parquet(workdir / "features.parquet")["track_id"]) == TRACKS
    duplicates = (workdir / "reports" / "duplicates.txt").read_text(encoding="utf-8")
    assert duplicates == "kept a; dropped link (identical audio files)\n"
    lines = (workdir / "reports" / "dataset_problems.txt").read_text(encoding="utf-8").splitlines()
    reported = problem_lines(lines, odd_folder)
    assert sorted(reported) == sorted(ODD_ENTRIES)
    for name, word in ODD_ENTRIES.items():
        assert word in reported[name], (name, reported[name])


def test_an_infer_folder_lists_every_file_that_is_no_track_as_skipped(odd_folder, tmp_path):
    result = run_python("""
        import json, sys
        from moodscape.config import Settings
        from moodscape.pipeline.collection import inference_tracks, load_collection
        music = sys.argv[1]
        settings = Settings.load(None, {"data.source": "folder", "folder.root": music, "infer.folder": music})
        tracks, skipped = inference_tracks(settings, load_collection(settings))
        print(json.dumps({"tracks": sorted(tracks["track_id"]), "skipped": dict(skipped)}))
    """, odd_folder)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["tracks"] == TRACKS
    expected = {name.rsplit(".", 1)[0] if "/" not in name else name: word for name, word in ODD_ENTRIES.items()}
    assert sorted(outcome["skipped"]) == sorted(expected)
    for track_id, word in expected.items():
        assert word in outcome["skipped"][track_id], (track_id, outcome["skipped"][track_id])


def test_names_ending_in_a_space_keep_the_tags_a_csv_gives_them(tmp_path):
    music = tmp_path / "music"
    for index, name in enumerate(["plain.wav", "spaced .wav", "trail.wav "]):
        write_tone(music / name, 220.0 * (index + 1))
    tags_csv = write_tags(tmp_path / "tags.csv", {"plain": "calm", "spaced ": "happy", "trail": "sad"})
    tracks, problems = load_folder(music, tags_csv=tags_csv)
    assert problems == []
    assert dict(zip(tracks["track_id"], tracks["tags"])) == {"plain": ["calm"], "spaced ": ["happy"], "trail": ["sad"]}
