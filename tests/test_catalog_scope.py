"""Issue 15: a folder's catalog is every track; ``infer --audio-folder`` adds to it unless told to replace.

Before, the catalog defaulted to the test split (53 of 314 tracks of a real folder were
served), and ``infer --audio-folder`` replaced the whole catalog with the folder's files.
"""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile

from cli_runner import invoke
from moodscape.config import Settings
from moodscape.pipeline.collection import inference_tracks, load_collection


def test_a_folders_catalog_is_every_track_by_default(tmp_path):
    rate = 22050
    for index in range(12):
        time = np.arange(rate) / rate
        soundfile.write(tmp_path / f"t{index}.wav", (0.3 * np.sin(2 * np.pi * (200 + 40 * index) * time)).astype(np.float32), rate)
    settings = Settings.load(None, {"data.source": "folder", "folder.root": tmp_path})
    tracks, skipped = inference_tracks(settings, load_collection(settings))
    assert sorted(tracks["track_id"]) == sorted(f"t{index}" for index in range(12)) and skipped == []


def tables(workdir):
    return (pd.read_csv(workdir / "inference_lookup.csv", dtype={"track_id": str}, keep_default_na=False),
            pd.read_parquet(workdir / "embeddings.parquet"), pd.read_parquet(workdir / "catalog_tracks.parquet"))


@pytest.mark.slow
def test_infer_audio_folder_adds_new_ids_again_and_again_the_same_unless_replace(demo_run, demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns("mels", "ablation"))
    lookup, _, catalog = tables(workdir)
    collection_ids = list(lookup["track_id"])
    folder = tmp_path / "new music"
    folder.mkdir()
    previews = sorted((demo_corpus / "musav" / "audio").rglob("*.mp3"))[:3]
    names = [collection_ids[0], "a", "b"]  # the first file's id is taken by a collection track
    for path, name in zip(previews, names):
        shutil.copy(path, folder / f"{name}.mp3")
    common = ["infer", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir, "--scheduler", "synchronous"]

    assert invoke(*common, "--audio-folder", folder).exit_code == 0
    added = tables(workdir)
    ids = list(added[0]["track_id"])
    new_ids = [f"new music/{collection_ids[0]}", "a", "b"]
    assert ids[: len(lookup)] == collection_ids, "the collection's rows stay"
    assert sorted(ids[len(lookup):]) == sorted(new_ids), "the folder's files join under new ids"
    pd.testing.assert_frame_equal(added[0].iloc[: len(lookup)], lookup, check_dtype=False)
    assert list(added[1]["track_id"]) == ids and list(added[2]["track_id"]) == ids
    assert set(added[2].set_index("track_id").loc[new_ids, "added_from"]) == {str(folder.resolve())}

    assert invoke(*common, "--audio-folder", folder).exit_code == 0
    for before, after in zip(added, tables(workdir)):
        pd.testing.assert_frame_equal(after, before, check_dtype=False)  # idempotent

    assert invoke(*common).exit_code == 0
    rebuilt = tables(workdir)[0]
    assert sorted(rebuilt["track_id"]) == sorted(ids), "inferring the collection again keeps the added tracks"

    assert invoke(*common, "--audio-folder", folder, "--replace").exit_code == 0
    assert sorted(tables(workdir)[0]["track_id"]) == sorted(names), "--replace: the folder is the whole catalog"
