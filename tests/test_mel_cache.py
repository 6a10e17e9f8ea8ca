"""The mel cache of the training stages describes the audio that is there now."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from moodscape.pipeline import run as workflow
from moodscape.artifacts import Workdir
from moodscape.audio import mel_from_audio
from moodscape.config import Settings
from moodscape.pipeline.collection import load_collection
from moodscape.pipeline.network import prepare_mels

SR = 22050


def write_tone(path, hz: float, seconds: float = 3.0) -> None:
    t = np.arange(int(seconds * SR)) / SR
    sf.write(path, 0.3 * np.sin(2 * np.pi * hz * t).astype(np.float32), SR)


def folder_settings(root) -> Settings:
    return Settings(data={"source": "folder"}, folder={"root": root}, features={"scheduler": "synchronous"})


@pytest.fixture
def music(tmp_path):
    root = tmp_path / "music"
    root.mkdir()
    for name, hz in (("low", 220.0), ("mid", 440.0), ("high", 880.0)):
        write_tone(root / f"{name}.wav", hz)
    return root


def cache(settings, workdir):
    mels, skipped = prepare_mels(settings, workdir, load_collection(settings).tracks, show_progress=False)
    assert not skipped
    return mels


def test_cached_mels_are_float32_and_equal_to_the_decoded_audio(music, tmp_path):
    settings = folder_settings(music)
    mels = cache(settings, Workdir(tmp_path / "run"))
    tracks = load_collection(settings).tracks.set_index("track_id")
    for track_id, path in mels.items():
        cached = np.load(path)
        assert cached.dtype == np.float32
        np.testing.assert_array_equal(cached, mel_from_audio(tracks.loc[track_id, "audio_path"]).astype(np.float32))


def test_a_changed_file_is_decoded_again_and_the_others_are_reused(music, tmp_path):
    settings, workdir = folder_settings(music), Workdir(tmp_path / "run")
    before = cache(settings, workdir)
    written = {track_id: os.stat(path).st_mtime_ns for track_id, path in before.items()}
    changed = next(track_id for track_id in before if "mid" in track_id)
    source = music / "mid.wav"
    write_tone(source, 1760.0)
    stat = os.stat(source)
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    after = cache(settings, workdir)
    assert after[changed] != before[changed] and not before[changed].exists()
    np.testing.assert_array_equal(np.load(after[changed]), mel_from_audio(source).astype(np.float32))
    for track_id in set(before) - {changed}:
        assert after[track_id] == before[track_id] and os.stat(after[track_id]).st_mtime_ns == written[track_id]


def test_another_audio_root_is_decoded_again(music, tmp_path):
    workdir = Workdir(tmp_path / "run")
    before = cache(folder_settings(music), workdir)
    moved = shutil.copytree(music, tmp_path / "elsewhere")
    after = cache(folder_settings(moved), workdir)
    assert set(after) == set(before) and all(after[t] != before[t] for t in before)
    assert sorted(workdir.mel_cache.glob("*.npy")) == sorted(after.values())


def test_an_unreadable_file_is_listed_not_fatal(music, tmp_path):
    settings = folder_settings(music)
    tracks = load_collection(settings).tracks
    (music / "low.wav").unlink()
    mels, skipped = prepare_mels(settings, Workdir(tmp_path / "run"), tracks, show_progress=False)
    assert len(mels) == 2 and len(skipped) == 1 and "low.wav" in skipped[0][1]


def test_a_forced_run_computes_every_mel_afresh(music, tmp_path, monkeypatch):
    settings, workdir = folder_settings(music), Workdir(tmp_path / "run")
    cache(settings, workdir)
    monkeypatch.setattr(workflow, "STAGES", ())
    workflow.run_pipeline(settings, workdir, force=True, show_progress=False)
    assert not list(workdir.mel_cache.glob("*.npy"))
