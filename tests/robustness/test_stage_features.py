"""Issue 14, item 1: finite but huge samples must give a listed skip, never non-finite features or mels.

A float WAV may hold any float32 value; one whose samples peak at 1e20 decodes fine but
overflows the power spectrum. Every stage that derives numbers from audio must skip such
a track and name its file in ``reports/skipped_<stage>.csv``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import soundfile
from cli_runner import invoke

from moodscape import audio
from moodscape.errors import AudioError
from moodscape.features import extract_features
from moodscape.pipeline.features import track_features

RATE = 22050
SECONDS = 3.0
HUGE_PEAK = 1e20


def write_tone(path, frequency: float, *, noise: float = 0.0, seed: int = 0) -> None:
    """A 3 s tone of ``frequency`` Hz with some white noise, as a 16-bit WAV."""
    rng = np.random.default_rng(seed)
    time = np.arange(int(SECONDS * RATE)) / RATE
    signal = 0.3 * np.sin(2 * np.pi * frequency * time) + noise * rng.standard_normal(time.size)
    soundfile.write(path, (0.5 * signal / np.abs(signal).max()).astype(np.float32), RATE)


def write_huge(path) -> None:
    """A float WAV of noise whose samples peak at 1e20: finite, decodable, absurd."""
    rng = np.random.default_rng(1)
    signal = rng.standard_normal(int(SECONDS * RATE)).astype(np.float32)
    soundfile.write(path, signal * np.float32(HUGE_PEAK / np.abs(signal).max()), RATE, subtype="FLOAT")


@pytest.fixture(scope="module")
def huge_collection(tmp_path_factory):
    """A folder of ten tones (tagged, split) and one huge-sample track, and its config file."""
    root = tmp_path_factory.mktemp("huge")
    music = root / "music"
    music.mkdir()
    rows = []
    splits = ["train"] * 6 + ["validation"] * 2 + ["test"] * 2
    for index, split in enumerate(splits):
        low = index % 2 == 0
        write_tone(music / f"tone{index}.wav", 220.0 if low else 1760.0, noise=0.02 if low else 0.3, seed=index)
        rows.append({"track_id": f"tone{index}", "tags": "calm" if low else "bright", "split": split})
    write_huge(music / "huge.wav")
    rows.append({"track_id": "huge", "tags": "calm|bright", "split": "train"})
    pd.DataFrame(rows).to_csv(root / "tags.csv", index=False)
    config = root / "folder.toml"
    config.write_text(
        f'[data]\nsource = "folder"\n[folder]\nroot = "{music}"\ntags_csv = "{root / "tags.csv"}"\n'
        '[features]\nscheduler = "synchronous"\n'
        '[pretrain]\nepochs = 1\nbatch_size = 4\ncrop_frames = 32\nn_eval_crops = 1\ndevice = "cpu"\n'
    )
    return {"music": music, "config": config}


def save(path, mel):
    np.save(path, mel)
    return path


def skipped(workdir, stage: str) -> dict[str, str]:
    table = pd.read_csv(workdir / "reports" / f"skipped_{stage}.csv", dtype=str, keep_default_na=False)
    return dict(zip(table["track_id"], table["reason"]))


def test_huge_samples_give_an_audio_error_from_every_mel_and_feature_path(huge_collection):
    path = huge_collection["music"] / "huge.wav"
    for compute in (extract_features, audio.mel_from_audio, lambda p: audio.mel_crops_from_audio(p, 32, 2)):
        with pytest.raises(AudioError, match=r"huge\.wav.*(NaN|infinite)"):
            compute(path)


def test_a_mel_file_whose_features_overflow_is_refused_naming_it(tmp_path):
    mel = np.random.default_rng(0).normal(-40.0, 6.0, size=(96, 200)).astype(np.float32)
    assert track_features(("mel", str(save(tmp_path / "quiet.npy", mel))))["bpm"] > 0
    path = save(tmp_path / "loud.npy", mel + np.float32(1e6))
    with pytest.raises(AudioError, match=r"loud\.npy: feature row \(.*\) has NaN or infinite values"):
        track_features(("mel", str(path)))


def test_features_skip_and_list_a_track_with_huge_samples_and_cluster_runs(huge_collection, tmp_path):
    config, workdir = huge_collection["config"], tmp_path / "run"
    result = invoke("features", "--config", config, "--workdir", workdir)
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(workdir / "features.parquet")
    assert "huge" not in set(table["track_id"]) and len(table) == 10
    assert np.isfinite(table.drop(columns="track_id").to_numpy(float)).all()
    reason = skipped(workdir, "features")["huge"]
    assert str(huge_collection["music"] / "huge.wav") in reason and "infinite" in reason
    result = invoke("cluster", "--config", config, "--workdir", workdir, "--k", "2")
    assert result.exit_code == 0, result.output


def test_pretrain_skips_and_lists_a_track_with_huge_samples_and_caches_no_bad_mel(huge_collection, tmp_path):
    workdir = tmp_path / "run"
    result = invoke("pretrain", "--config", huge_collection["config"], "--workdir", workdir)
    assert result.exit_code == 0, result.output
    reason = skipped(workdir, "pretrain")["huge"]
    assert str(huge_collection["music"] / "huge.wav") in reason and "infinite" in reason
    cached = sorted((workdir / "mels").glob("*.npy"))
    assert len(cached) == 10 and all(np.isfinite(np.load(path)).all() for path in cached)
