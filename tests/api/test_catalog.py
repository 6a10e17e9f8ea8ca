"""Loading the serving bundle: the arrays, the embedding cache, the lazy tags and the cheap checks.

The bundles are small synthetic ones written by ``bench/synthetic_bundle.py`` (no demo
run needed); each test that changes files works on its own copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_bundle import synthetic_bundle_module

from moodscape import artifacts
from moodscape.api import catalog as catalog_module
from moodscape.api.catalog import BundleError, TagLists, check_bundle, load_catalog
from moodscape.errors import StorageError
from moodscape.inference import EMBEDDING_COLUMNS

N_TRACKS = 300


@pytest.fixture(scope="module")
def pristine(tmp_path_factory) -> Path:
    """A 300-track synthetic bundle, written once per module; tests copy it before changing it."""
    return synthetic_bundle_module().write_synthetic_bundle(tmp_path_factory.mktemp("synthetic") / "bundle", N_TRACKS)


@pytest.fixture
def bundle(pristine, tmp_path) -> Path:
    """A private copy of the synthetic bundle."""
    return Path(shutil.copytree(pristine, tmp_path / "bundle"))


def _expected(root: Path) -> dict:
    """The catalog's arrays read the straightforward way, with pandas."""
    lookup = pd.read_csv(root / "inference_lookup.csv", dtype={"track_id": str}, keep_default_na=False, na_values=[""])
    vectors = pd.read_parquet(root / "embeddings.parquet")[EMBEDDING_COLUMNS].to_numpy(dtype=np.float32)
    labels = sorted(json.loads((root / "label_to_idx.json").read_text()).items(), key=lambda item: item[1])
    return {
        "lookup": lookup,
        "labels": [name for name, _ in labels],
        "embeddings": vectors / np.linalg.norm(vectors, axis=1, keepdims=True),
        "tags": lookup["tags"].fillna("").tolist(),
    }


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message and message
    return message


def test_arrays_equal_a_pandas_read(bundle):
    catalog = load_catalog(bundle)
    expected = _expected(bundle)
    lookup = expected["lookup"]
    assert len(catalog) == N_TRACKS
    assert catalog.labels == expected["labels"]
    assert list(catalog.track_ids) == lookup["track_id"].tolist()
    assert catalog.index == {track_id: row for row, track_id in enumerate(lookup["track_id"])}
    assert [catalog.labels[k] for k in catalog.label_of] == lookup["new_acoustic_label"].tolist()
    probabilities = lookup[[f"p_{name}" for name in expected["labels"]]].to_numpy(dtype=np.float32)
    np.testing.assert_array_equal(catalog.probabilities, probabilities)
    assert catalog.probabilities.dtype == np.float32
    np.testing.assert_array_equal(catalog.valence, lookup["valence"].to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(catalog.arousal, lookup["arousal"].to_numpy(dtype=np.float32))
    np.testing.assert_array_equal(catalog.duration, lookup["duration"].to_numpy(dtype=np.float64))
    assert catalog.embeddings.dtype == np.float32 and catalog.embeddings.shape == (N_TRACKS, 512)
    np.testing.assert_allclose(catalog.embeddings, expected["embeddings"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(catalog.embeddings, axis=1), 1.0, rtol=1e-5)
    assert list(catalog.tag_text) == expected["tags"]
    assert list(catalog.audio_path) == [""] * N_TRACKS


def test_audio_paths_follow_the_track_ids_whatever_the_catalog_order(bundle):
    table = pd.read_parquet(bundle / "catalog_tracks.parquet")
    table["audio_path"] = "/audio/" + table["track_id"] + ".mp3"
    table.iloc[::-1].to_parquet(bundle / "catalog_tracks.parquet", index=False)
    catalog = load_catalog(bundle)
    assert list(catalog.audio_path) == [f"/audio/{track_id}.mp3" for track_id in catalog.track_ids]


def test_a_catalog_lacking_a_track_is_refused(bundle):
    table = pd.read_parquet(bundle / "catalog_tracks.parquet")
    table.iloc[1:].to_parquet(bundle / "catalog_tracks.parquet", index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert "lacks 1 tracks" in _one_line(error)


def test_the_second_load_maps_the_embedding_cache(bundle):
    first = load_catalog(bundle)
    cache = bundle / "cache" / f"embeddings-{first.version}.npy"
    assert cache.is_file()
    second = load_catalog(bundle)
    assert isinstance(second.embeddings, np.memmap)
    assert Path(second.embeddings.filename) == cache
    assert not second.embeddings.flags.writeable
    np.testing.assert_array_equal(second.embeddings, first.embeddings)
    np.testing.assert_allclose(second.embeddings, _expected(bundle)["embeddings"], rtol=1e-5, atol=1e-7)


def test_new_embeddings_are_not_served_from_a_stale_cache(bundle):
    old = load_catalog(bundle)
    table = pd.read_parquet(bundle / "embeddings.parquet")
    table[EMBEDDING_COLUMNS] = table[EMBEDDING_COLUMNS[::-1]].to_numpy()  # other vectors, same tracks
    table.to_parquet(bundle / "embeddings.parquet", index=False)
    new = load_catalog(bundle)
    assert new.version != old.version
    np.testing.assert_allclose(new.embeddings, _expected(bundle)["embeddings"], rtol=1e-5, atol=1e-7)
    assert not np.allclose(new.embeddings, old.embeddings)
    assert sorted(path.name for path in (bundle / "cache").glob("embeddings-*.npy")) == [f"embeddings-{new.version}.npy"]


def test_a_corrupt_cache_is_rebuilt(bundle):
    version = load_catalog(bundle).version
    cache = bundle / "cache" / f"embeddings-{version}.npy"
    cache.write_bytes(cache.read_bytes()[:1000])
    catalog = load_catalog(bundle)
    np.testing.assert_allclose(catalog.embeddings, _expected(bundle)["embeddings"], rtol=1e-5, atol=1e-7)
    assert cache.stat().st_size > 1000


def test_an_unwritable_cache_falls_back_to_memory(bundle, monkeypatch):
    def refuse(path, array):  # as artifacts.write_array reports a refused write
        raise StorageError(f"cannot write {path}: Permission denied")

    monkeypatch.setattr(artifacts, "write_array", refuse)
    catalog = load_catalog(bundle)
    assert not isinstance(catalog.embeddings, np.memmap)
    np.testing.assert_allclose(catalog.embeddings, _expected(bundle)["embeddings"], rtol=1e-5, atol=1e-7)
    assert not list(bundle.glob("cache/embeddings-*.npy"))


def test_embeddings_of_other_tracks_are_refused(bundle):
    table = pd.read_parquet(bundle / "embeddings.parquet")
    table.iloc[::-1].to_parquet(bundle / "embeddings.parquet", index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert "embeddings.parquet" in _one_line(error) and "in order" in str(error.value)


def test_non_finite_embeddings_are_refused(bundle):
    table = pd.read_parquet(bundle / "embeddings.parquet")
    table.loc[7, "emb_003"] = np.nan
    table.to_parquet(bundle / "embeddings.parquet", index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert "non-finite" in _one_line(error)


def test_tags_behave_like_lists(pristine):
    catalog = load_catalog(pristine)
    expected = [[tag for tag in text.split(",") if tag] for text in _expected(pristine)["tags"]]
    assert any(not tags for tags in expected)  # the synthetic bundle has tracks without tags
    assert isinstance(catalog.tags, TagLists)
    assert len(catalog.tags) == N_TRACKS
    assert list(catalog.tags) == expected
    assert catalog.tags[3] == expected[3] and catalog.tags[-1] == expected[-1]
    assert catalog.tags[np.int64(5)] == expected[5]
    assert catalog.tags[10:13] == expected[10:13]
    assert catalog.tags_of(4) == expected[4]
    assert expected[0] in catalog.tags
    assert catalog.tag_vocabulary == sorted({tag for tags in expected for tag in tags})
    assert catalog.tags[0] is not catalog.tags[0]  # a fresh list: callers cannot change the catalog


def test_tag_lists_split_like_the_lookup():
    tags = TagLists(np.array(["a,b", "", "c,,d", None], dtype=object))
    assert list(tags) == [["a", "b"], [], ["c", "d"], []]


def test_check_bundle_returns_the_labels(pristine):
    assert check_bundle(pristine) == _expected(pristine)["labels"]


def test_check_bundle_names_a_missing_file(bundle):
    (bundle / "catalog_tracks.parquet").unlink()
    with pytest.raises(BundleError) as error:
        check_bundle(bundle)
    assert "catalog_tracks.parquet: missing" in _one_line(error)


def test_check_bundle_catches_a_misaligned_label_to_idx(bundle):
    path = bundle / "label_to_idx.json"
    label_to_idx = json.loads(path.read_text())
    first, second = list(label_to_idx)[:2]
    label_to_idx[first], label_to_idx[second] = label_to_idx[second], label_to_idx[first]
    path.write_text(json.dumps(label_to_idx))
    with pytest.raises(BundleError) as error:
        check_bundle(bundle)
    assert "differ from label_to_idx.json" in _one_line(error)
    with pytest.raises(BundleError):
        load_catalog(bundle)


def test_check_bundle_reads_the_lookup_header(bundle):
    path = bundle / "inference_lookup.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0].replace("duration", "length") + "".join(lines[1:]))
    with pytest.raises(BundleError) as error:
        check_bundle(bundle)
    assert "inference_lookup.csv lacks column(s) duration" in _one_line(error)


def test_check_bundle_does_not_read_the_tables(bundle, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("check_bundle read a table")

    monkeypatch.setattr(catalog_module, "_read_lookup", fail)
    monkeypatch.setattr(catalog_module.pq, "read_table", fail)
    assert check_bundle(bundle)


def test_load_catalog_refuses_an_unknown_label_and_text_in_numbers(bundle):
    path = bundle / "inference_lookup.csv"
    lookup = pd.read_csv(path, dtype={"track_id": str}, keep_default_na=False, na_values=[""])
    lookup.loc[2, "new_acoustic_label"] = "Polka"
    lookup.to_csv(path, index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert "new_acoustic_label has ['Polka']" in _one_line(error)
    lookup.loc[2, "new_acoustic_label"] = lookup.loc[3, "new_acoustic_label"]
    lookup["valence"] = lookup["valence"].astype(object)
    lookup.loc[4, "valence"] = "high"
    lookup.to_csv(path, index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert "a numeric column holds text" in _one_line(error)


def test_load_catalog_refuses_a_duplicated_track(bundle):
    path = bundle / "inference_lookup.csv"
    lookup = pd.read_csv(path, dtype={"track_id": str}, keep_default_na=False, na_values=[""])
    lookup.loc[9, "track_id"] = lookup.loc[8, "track_id"]
    lookup.to_csv(path, index=False)
    with pytest.raises(BundleError) as error:
        load_catalog(bundle)
    assert f"track {lookup.loc[8, 'track_id']} appears more than once" in _one_line(error)


def test_checkpoint_entries_come_from_the_description_beside_it(tmp_path):
    import torch

    from moodscape.artifacts import checkpoint_description, read_checkpoint_description
    from moodscape.errors import ArtifactError
    from moodscape.models.checkpoint import save_checkpoint

    path = tmp_path / "model.pt"
    save_checkpoint({"label_names": ["a", "b"], "state_dict": {"w": torch.ones(3, 2)}}, path)
    entries = read_checkpoint_description(path, "test checkpoint", ("label_names",))
    assert entries["label_names"] == ["a", "b"] and "state_dict" not in entries
    assert entries["shapes"] == {"state_dict/w": [3, 2]}
    with pytest.raises(ArtifactError, match="lacks label_to_idx"):
        read_checkpoint_description(path, "test checkpoint", ("label_to_idx",))
    torch.save({"label_names": ["b", "a"]}, path)  # replaced without its description
    with pytest.raises(ArtifactError, match="another version"):
        read_checkpoint_description(path, "test checkpoint")
    checkpoint_description(path).unlink()
    with pytest.raises(ArtifactError, match="missing or unreadable"):
        read_checkpoint_description(path, "test checkpoint")


def test_the_app_starts_without_torch_and_without_unpickling(bundle):
    """The start-up check reads the checkpoints' JSON descriptions: no torch import (seconds), no pickle."""
    script = (
        "import pickle, sys\n"
        "def refuse(*args, **kwargs): raise AssertionError('unpickled at start-up')\n"
        "pickle.Unpickler = pickle.load = pickle.loads = refuse\n"
        "from fastapi.testclient import TestClient\n"
        "from moodscape.api import create_app\n"
        f"with TestClient(create_app({str(bundle)!r})) as client:\n"
        "    assert client.get('/api/v1/labels').status_code == 200\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
