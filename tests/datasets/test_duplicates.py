"""Issue 15: identical recordings in a folder are one track, so no copy lands in another split.

Before, every copy of a file was a track of its own, with a split drawn from its own id:
in a real collection 14 of 31 byte-identical pairs straddled splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import soundfile
from fresh_python import run_python

from moodscape.config import Settings
from moodscape.datasets.duplicates import identical_files
from moodscape.datasets.folder import hash_split
from moodscape.pipeline.collection import load_collection

RATE = 22050
KEPT = "album/01 theme"
COPIES = ["compilation/best of/07 - Theme", "misc/theme copy"]


def write_tone(path, frequency: float, seconds: float = 1.5) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = np.arange(int(seconds * RATE)) / RATE
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * frequency * time)).astype(np.float32), RATE, format="WAV")


def folder_with_copies(root):
    """Eight different tones, one of them copied byte for byte under two other names and folders."""
    for index in range(8):
        write_tone(root / f"tones/t{index}.wav", 200.0 + 50 * index)
    write_tone(root / f"{KEPT}.wav", 880.0)
    original = (root / f"{KEPT}.wav").read_bytes()
    for copy in COPIES:
        (root / f"{copy}.wav").parent.mkdir(parents=True, exist_ok=True)
        (root / f"{copy}.wav").write_bytes(original)
    tags = {KEPT: "calm", COPIES[0]: "film|calm", "tones/t0": "sad"}
    pd.DataFrame({"track_id": list(tags), "tags": list(tags.values())}).to_csv(root / "tags.csv", index=False)
    return root


def test_the_copies_would_straddle_splits_by_their_ids():
    """What makes the test below matter: left in, the copies' hash splits differ from the kept one's."""
    assert {hash_split(track_id) for track_id in COPIES} - {hash_split(KEPT)}


def test_byte_identical_copies_are_one_track_and_listed_in_the_report(tmp_path):
    music = folder_with_copies(tmp_path / "music")
    config = tmp_path / "folder.toml"
    config.write_text(f'[data]\nsource = "folder"\n[folder]\nroot = "{music}"\ntags_csv = "{music / "tags.csv"}"\n'
                      '[features]\nscheduler = "synchronous"\n')
    settings = Settings.load(config)
    tracks = load_collection(settings).tracks.set_index("track_id")
    assert KEPT in tracks.index and not set(COPIES) & set(tracks.index), "no copy is in the collection, in any split"
    assert len(tracks) == 9
    assert sorted(tracks.loc[KEPT, "tags"]) == ["calm", "film"], "the copies' tags go to the kept track"

    workdir = tmp_path / "run"
    result = run_python("from moodscape.cli import app; app()", "features", "--config", config, "--workdir", workdir)
    assert result.returncode == 0, result.stderr
    assert set(pd.read_parquet(workdir / "features.parquet")["track_id"]) == set(tracks.index)
    report = (workdir / "reports" / "duplicates.txt").read_text(encoding="utf-8").splitlines()
    assert report == [f"kept {KEPT}; dropped {', '.join(COPIES)} (identical audio files)"]
    problems = (workdir / "reports" / "dataset_problems.txt").read_text(encoding="utf-8")
    for copy in COPIES:  # every folder entry is a track or a line
        assert f"{music / copy}.wav: skipped: identical to {music / KEPT}.wav, which is kept" in problems


def test_only_files_with_the_same_bytes_are_grouped(tmp_path):
    """Same size and same audio length do not make a copy; a file that cannot be read is in no group."""
    for name, frequency in (("a", 440.0), ("b", 441.0), ("c", 440.0)):
        write_tone(tmp_path / f"{name}.wav", frequency)
    paths = [tmp_path / f"{name}.wav" for name in "abc"] + [tmp_path / "missing.wav"]
    assert paths[0].stat().st_size == paths[1].stat().st_size
    assert identical_files(paths) == [[0, 2]]
