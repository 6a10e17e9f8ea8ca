"""The rehearsal corpus (``demo-data --like-jamendo``) and a small run of the scale bench.

Every test reads a tiny MTG-Jamendo metadata folder the module writes itself; the tests
on the real metadata (``shared/data/mtg-jamendo`` beside the repository, or
``MOODSCAPE_SHARED_DATA``) skip without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from cli_runner import invoke, one_line_error

from moodscape.artifacts import Workdir, read_table
from moodscape.audio import MEL_HOP, MEL_N_BANDS, MEL_SR, load_mel, log_mel_spectrogram, resample
from moodscape.config import Settings
from moodscape.datasets.demo import MOODTHEME_TAGS
from moodscape.datasets.demo_synth import render_track
from moodscape.datasets.jamendo import load_jamendo, read_tracks_tsv
from moodscape.datasets.like_jamendo import track_mel, track_params, write_like_jamendo, write_track_mp3
from moodscape.features import features_from_mel
from moodscape.pipeline.collection import load_collection
from moodscape.pipeline.network import prepare_mels

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MOODSCAPE_SHARED_DATA") or REPO.parent / "shared" / "data")
REAL_JAMENDO = SHARED_DATA / "mtg-jamendo"
CAP = 12.0
LOUD, QUIET = ("energetic", "party", "fast"), ("calm", "relaxing", "slow")
# the tiny metadata's tag sets, in turn; "mellow" is outside the 56-tag vocabulary
TAG_SETS = [LOUD, QUIET, ("sad", "film"), ("happy",), ("background", "mellow"), ("dark", "epic")]
N_TRACKS = 60
SMALL = {"max_seconds": CAP, "mp3_sample": 2, "n_musav": 6, "seed": 0, "workers": 1}


def write_metadata(folder: Path, n_tracks: int = N_TRACKS) -> Path:
    """An MTG-Jamendo metadata folder: the tracks TSV (CRLF, a TAGS column per tag), the 56 tags, split 0.

    Durations run from 4 s to several minutes (most under ``CAP``); tracks 5, 11, ... are in no split.
    """
    header = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
    rows, splits = [], {"train": [], "validation": [], "test": []}
    for i in range(n_tracks):
        number = 1000 + 37 * i
        tags = [f"mood/theme---{tag}" for tag in TAG_SETS[i % len(TAG_SETS)]]
        duration = 250.3 if i % 10 == 3 else 4.0 + (i % 7) * 1.3
        row = "\t".join([f"track_{number:07d}", f"artist_{i // 3:06d}", f"album_{i // 2:06d}",
                         f"{number % 100:02d}/{number}.mp3", f"{duration:.1f}", *tags])
        rows.append(row)
        if i % 6 != 5:
            splits[("train", "train", "train", "validation", "test")[i % 5]].append(row)
    folder.mkdir(parents=True)

    def write(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(("\r\n".join([header, *lines]) + "\r\n").encode())

    write(folder / "autotagging_moodtheme.tsv", rows)
    for name, members in splits.items():
        write(folder / "splits" / "split-0" / f"autotagging_moodtheme-{name}.tsv", members)
    (folder / "moodtheme_split.txt").write_text("".join(f"mood/theme---{tag}\n" for tag in MOODTHEME_TAGS))
    return folder


@pytest.fixture(scope="module")
def metadata(tmp_path_factory) -> Path:
    return write_metadata(tmp_path_factory.mktemp("meta") / "mtg-jamendo")


@pytest.fixture(scope="module")
def corpus(metadata, tmp_path_factory):
    return write_like_jamendo(metadata, tmp_path_factory.mktemp("like"), **SMALL)


def frames_of(seconds: float) -> int:
    return -(-int(round(seconds * MEL_SR)) // MEL_HOP) + 1


def assert_matches_metadata(corpus_root: Path, melspec_root: Path, metadata: Path, cap: float, n_tracks: int) -> pd.DataFrame:
    """The corpus's table has the metadata's ids, paths, tags and splits, durations capped, a mel per track."""
    def table(root: Path, **roots) -> pd.DataFrame:
        rows, _ = read_tracks_tsv(root / "autotagging_moodtheme.tsv")
        tracks, _ = load_jamendo(root, vocabulary="all", **roots)
        return rows.merge(tracks[["track_id", "split", "mel_path"]], on="track_id", validate="one_to_one")

    written, source = table(corpus_root, melspec_root=melspec_root), table(metadata)
    assert len(written) == n_tracks and written["track_id"].is_unique
    merged = written.merge(source, on="track_id", suffixes=("", "_source"), validate="one_to_one")
    assert len(merged) == n_tracks, "every written track is a track of the metadata"
    for column in ("artist_id", "album_id", "path"):
        assert (merged[column] == merged[f"{column}_source"]).all()
    assert (merged["split"] == merged["split_source"]).all()
    assert (merged["tags"] == merged["tags_source"]).all()
    np.testing.assert_allclose(merged["duration"], np.minimum(merged["duration_source"], cap), atol=0.051)
    for row in merged.itertuples():
        assert row.mel_path == str(melspec_root.resolve() / Path(row.path).with_suffix(".npy"))
        raw = np.load(row.mel_path, mmap_mode="r")
        assert raw.dtype == np.float32 and raw.shape == (MEL_N_BANDS, frames_of(min(row.duration_source, cap)))
    return merged


def test_the_corpus_has_the_metadata_tracks_tags_splits_and_capped_durations(corpus, metadata):
    merged = assert_matches_metadata(corpus.jamendo_root, corpus.melspec_root, metadata, CAP, N_TRACKS)
    assert set(merged["split"]) == {"train", "validation", "test", ""}
    assert (merged["duration_source"] > CAP).any() and (merged["duration_source"] < CAP).any()
    assert corpus.n_tracks == N_TRACKS and corpus.seconds == pytest.approx(merged["duration"].sum(), abs=0.1 * N_TRACKS)
    rows = (corpus.jamendo_root / "autotagging_moodtheme.tsv").read_bytes().split(b"\r\n")
    assert rows[0] == b"TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS" and rows[-1] == b""
    assert rows[1].split(b"\t")[:3] == [b"track_0001000", b"artist_000000", b"album_000000"], "the metadata's own rows, in its order"


def test_the_mels_load_as_the_product_reads_them(corpus):
    tracks = load_collection(Settings.load(corpus.root / "moodscape.toml", {})).tracks
    assert len(tracks) == N_TRACKS and (tracks["audio_path"] == "").all()
    for path in tracks["mel_path"]:
        mel = load_mel(path)  # the stage's own reader: shape, frames, finite values
        assert mel.dtype == np.float32 and mel.shape[0] == MEL_N_BANDS
        assert -201 < mel.min() and mel.max() < 120, "20·log10 power decibels, as the released files"


def test_released_mels_are_linked_into_the_training_cache_not_copied(corpus, tmp_path):
    """The training stages memory-map the float32 files where they lie; anything else is stored as float32."""
    settings = Settings.load(corpus.root / "moodscape.toml", {"features": {"scheduler": "synchronous"}})
    tracks = load_collection(settings).tracks
    odd = tmp_path / "odd.npy"  # a float64, Fortran-order mel, as another tool may write it
    np.save(odd, np.asfortranarray(np.load(tracks["mel_path"].iloc[0]).astype(np.float64)))
    tracks.loc[tracks.index[0], "mel_path"] = str(odd)
    workdir = Workdir(tmp_path / "work")
    mels, skipped = prepare_mels(settings, workdir, tracks, show_progress=False)
    assert not skipped and len(mels) == N_TRACKS
    by_id = tracks.set_index("track_id")["mel_path"]
    for track_id, path in mels.items():
        if by_id[track_id] == str(odd):
            assert not path.is_symlink() and np.load(path).dtype == np.float32
            np.testing.assert_allclose(np.load(path), np.load(odd), rtol=1e-6)
        else:
            assert path.is_symlink() and path.resolve() == Path(by_id[track_id]).resolve()
    assert sum(p.stat().st_size for p in workdir.mel_cache.iterdir() if not p.is_symlink()) < 2 * odd.stat().st_size
    again, _ = prepare_mels(settings, workdir, tracks, show_progress=False)
    assert again == mels


def test_the_content_follows_the_tags(corpus):
    """Energetic/party/fast tracks are busier and more percussive than calm/relaxing/slow ones, by the product's features."""
    tracks, _ = load_jamendo(corpus.jamendo_root, melspec_root=corpus.melspec_root)
    columns = ["onset_rate", "spectral_flux_mean"]

    def mean_features(tags: tuple[str, ...]) -> pd.Series:
        chosen = tracks[tracks["tags"].map(lambda t: set(t) == set(tags))]
        assert len(chosen) == N_TRACKS // len(TAG_SETS)
        return pd.DataFrame([features_from_mel(load_mel(p)) for p in chosen["mel_path"]])[columns].mean()

    loud, quiet = mean_features(LOUD), mean_features(QUIET)
    assert (loud > quiet).all(), (loud, quiet)
    assert loud["onset_rate"] > 1.3 * quiet["onset_rate"]


def test_tags_set_the_archetype_mode_and_tempo():
    ids = [f"track_{i:07d}" for i in range(200)]
    truth = {tags: [track_params(i, tags, 0) for i in ids] for tags in (LOUD, QUIET, ("happy",), ("sad",))}

    def share(tags, archetype: int) -> float:
        return np.mean([p.archetype == archetype for p in truth[tags]])

    assert share(LOUD, 0) > 0.4 > share(QUIET, 0), "upbeat dance"
    assert share(QUIET, 6) > 0.3 > share(LOUD, 6), "meditative"
    assert np.mean([p.major for p in truth[("happy",)]]) > 0.75 > 0.25 > np.mean([p.major for p in truth[("sad",)]])
    assert np.median([p.tempo_bpm for p in truth[LOUD]]) > np.median([p.tempo_bpm for p in truth[QUIET]])
    assert track_params("track_0000001", LOUD, 0) == track_params("track_0000001", reversed(LOUD), 0)
    assert track_params("track_0000001", LOUD, 0) != track_params("track_0000001", LOUD, 1)


def test_a_long_track_repeats_one_loop_of_whole_progressions():
    params = track_params("track_0000948", ("calm",), 0)
    mel = track_mel(params, 100.0)
    assert mel.shape == (MEL_N_BANDS, frames_of(100.0)) and mel.dtype == np.float32
    # the frames repeat with the loop's period, a whole number of four-bar progressions of at least 15 s
    period = next(p for p in range(frames_of(15.0) - 2, frames_of(40.0))
                  if np.array_equal(mel[:, -p - 200:-p], mel[:, -200:]))
    seconds = period * MEL_HOP / MEL_SR
    bars = seconds / (4 * 60 / params.tempo_bpm)
    assert bars == pytest.approx(round(bars / 4) * 4, abs=0.05) and seconds > 14.9
    whole = log_mel_spectrogram(render_track(params, 10.0, MEL_SR, 1)[:, 0])
    assert np.array_equal(track_mel(params, 10.0), whole), "a track shorter than the loop is rendered whole"


def test_a_long_mp3_repeats_the_loop_of_the_mel(tmp_path):
    params = track_params("track_0000948", ("energetic",), 0)
    write_track_mp3(params, tmp_path / "long.mp3", 45.0, 16000, 1)
    audio, rate = sf.read(tmp_path / "long.mp3", dtype="float32")
    assert len(audio) / rate == pytest.approx(45.0, abs=0.1)
    mel = log_mel_spectrogram(resample(audio, rate, MEL_SR))
    # a fresh render is the loop's frames, so the MP3's mel is the corpus mel's, within the codec's error
    assert np.median(np.abs(mel[:40, 50:-50] - track_mel(params, 45.0)[:40, 50:-50])) < 3.0


def test_the_same_seed_writes_the_same_files_and_a_limit_a_subset(corpus, metadata, tmp_path):
    subset = write_like_jamendo(metadata, tmp_path / "subset", **{**SMALL, "mp3_sample": 0, "n_musav": 3}, limit=20)
    written, _ = load_jamendo(subset.jamendo_root, melspec_root=subset.melspec_root)
    full, _ = load_jamendo(corpus.jamendo_root, melspec_root=corpus.melspec_root)
    assert len(written) == 20 and set(written["track_id"]) < set(full["track_id"])
    by_id = full.set_index("track_id")["mel_path"]
    for track_id, path in zip(written["track_id"], written["mel_path"]):
        assert Path(path).read_bytes() == Path(by_id[track_id]).read_bytes()
    again = write_like_jamendo(metadata, tmp_path / "again", **{**SMALL, "mp3_sample": 0, "n_musav": 3}, limit=20)
    for name in ("autotagging_moodtheme.tsv", "splits/split-0/autotagging_moodtheme-test.tsv"):
        assert (again.jamendo_root / name).read_bytes() == (subset.jamendo_root / name).read_bytes()


def test_a_rerun_keeps_whole_files_rewrites_damaged_ones_and_all_after_a_change(metadata, tmp_path):
    options = {**SMALL, "max_seconds": 4.0, "mp3_sample": 0, "n_musav": 3}
    first = write_like_jamendo(metadata, tmp_path, **options)
    mels = sorted(first.melspec_root.rglob("*.npy"))
    kept, damaged = mels[0], mels[1]
    good, first_kept = damaged.read_bytes(), kept.read_bytes()
    damaged.write_bytes(good[: len(good) // 2])
    os.utime(kept, (1_000_000, 1_000_000))
    write_like_jamendo(metadata, tmp_path, **options)
    assert kept.stat().st_mtime == 1_000_000, "a whole mel is not written again"
    assert damaged.read_bytes() == good
    write_like_jamendo(metadata, tmp_path, **{**options, "seed": 1})
    assert kept.stat().st_mtime != 1_000_000, "written anew with another seed"
    assert kept.read_bytes() != first_kept


def test_the_mp3_sample_and_the_musav_previews(corpus, metadata):
    sample, _ = load_jamendo(corpus.sample_root, audio_root=corpus.jamendo_audio_root, vocabulary="all")
    assert len(sample) == corpus.n_mp3 == SMALL["mp3_sample"]
    for row in sample.itertuples():
        assert sf.info(row.audio_path).duration == pytest.approx(row.duration, abs=0.1)
    assert_matches_metadata(corpus.sample_root, corpus.melspec_root, metadata, CAP, SMALL["mp3_sample"])
    songids = (corpus.musav_root / "audio.chunk_000-006.songids").read_text().split()
    assert len(songids) == SMALL["n_musav"]
    for songid in songids:
        assert sf.info(corpus.musav_audio_root / songid[:2] / f"{songid}.mp3").duration == pytest.approx(CAP, abs=0.1)
    assert (corpus.musav_root / "annotations" / "annotations.arousal.all.agreement.gt").exists()
    truth = json.loads(corpus.truth_path.read_text())["tracks"]
    assert sum(t["dataset"] == "jamendo" for t in truth.values()) == N_TRACKS


def test_a_full_length_mp3_sample_keeps_the_real_durations_and_the_mels_their_cap(metadata, tmp_path):
    limit, cap = 12, 5.0
    written = write_like_jamendo(metadata, tmp_path, **{**SMALL, "mp3_sample": 4, "n_musav": 3, "max_seconds": cap},
                                 limit=limit, full_length_mp3=True)
    sample, _ = load_jamendo(written.sample_root, audio_root=written.jamendo_audio_root, vocabulary="all")
    real = read_tracks_tsv(metadata / "autotagging_moodtheme.tsv")[0].set_index("track_id")["duration"]
    assert len(sample) == 4 and (sample["duration"].to_numpy() == real[sample["track_id"]].to_numpy()).all()
    assert (sample["duration"] > cap).sum() >= 2
    for row in sample.itertuples():
        assert sf.info(row.audio_path).duration == pytest.approx(row.duration, abs=0.1)
    assert_matches_metadata(written.jamendo_root, written.melspec_root, metadata, cap, limit)


@pytest.mark.slow
def test_features_from_the_mels_and_cluster_run_on_the_corpus(metadata, tmp_path):
    out, work = tmp_path / "corpus", tmp_path / "work"
    result = invoke("demo-data", "--like-jamendo", metadata, "--out", out, "--max-seconds", 8, "--musav-tracks", 3,
                    "--workers", 1)
    assert result.exit_code == 0, result.output
    config = out / "moodscape.toml"
    for stage in (["features", "--scheduler", "synchronous"], ["cluster", "--k", "4"]):
        result = invoke(*stage, "--config", config, "--workdir", work)
        assert result.exit_code == 0, result.output
    features = read_table(Workdir(work).features)
    assert len(features) == N_TRACKS and features["onset_rate"].notna().all()
    assert len(read_table(Workdir(work).clusters)) == N_TRACKS


def test_missing_metadata_is_a_one_line_error(tmp_path):
    result = invoke("demo-data", "--like-jamendo", tmp_path / "nowhere", "--out", tmp_path / "out")
    assert "autotagging_moodtheme.tsv" in one_line_error(result)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_JAMENDO.is_dir(), reason=f"real annotation files not found in {SHARED_DATA}")
def test_from_the_real_metadata(tmp_path):
    real = write_like_jamendo(REAL_JAMENDO, tmp_path, max_seconds=6.0, limit=60, n_musav=3, workers=1)
    merged = assert_matches_metadata(real.jamendo_root, real.melspec_root, REAL_JAMENDO, 6.0, 60)
    assert {"train", "validation", "test"} <= set(merged["split"])


# --------------------------------------------------------------------------- the scale bench


def bench(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    return subprocess.run([sys.executable, str(REPO / "bench" / "bench_scale.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_the_scale_bench_measures_each_stage(metadata, tmp_path):
    """Three stages of the bench at 40 tracks, the features again on a real ``dask scheduler`` and two ``dask worker``s."""
    done = bench("--metadata", metadata, "--sizes", 40, "--stages", "demo-data", "features", "cluster", "features-dask",
                 "--out", tmp_path, "--max-seconds", 6, "--mp3-sample", 0, "--musav-tracks", 3, "--workers", 1,
                 "--set", "features.scheduler=synchronous", "--sample-every", 0.05)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| stage | tracks | wall s | CPU s | peak RSS MB (tree) | largest process MB | disk MB | notes |" in done.stdout
    result = json.loads((tmp_path / "bench_scale.json").read_text())
    stages = result["runs"]["40"]
    assert [s["stage"] for s in stages] == ["demo-data", "features", "cluster", "features-dask"]
    for stage in stages:
        assert stage["rc"] == 0 and stage["size"] == 40 and stage["tracks"] == 40
        assert stage["wall_s"] > 0 and stage["cpu_s"] > 0
        assert stage["peak_rss_mb"] >= stage["max_process_rss_mb"] > 50, "a Python process with numpy is > 50 MB"
    assert stages[0]["disk_mb"] > 40 * MEL_N_BANDS * frames_of(4.0) * 4 / 2**20, "the corpus's mels at least"
    assert stages[1]["disk_mb"] > 0
    cluster = stages[3]
    assert cluster["extra"]["vs_local"] == {"identical": True, "rows": 40, "largest_difference": 0.0}
    assert cluster["peak_rss_mb"] > 3 * 50, "the scheduler's and the workers' memory counts"
    workers = [(tmp_path / "n40" / "logs" / f"dask-worker-{i}.log").read_text() for i in range(2)]
    assert all("Starting established connection" in log or "Registered to" in log for log in workers)
    assert result["settings"]["sizes"] == [40] and result["machine"]


def test_the_scale_bench_skips_without_metadata(tmp_path):
    done = bench("--metadata", tmp_path / "nowhere", "--out", tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("skipped: no MTG-Jamendo metadata")
    assert not (tmp_path / "bench_scale.json").exists()
