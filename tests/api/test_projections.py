"""2-D projections: shapes, sampling, tiny inputs, and a cache that computes each method once."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from moodscape.api import projections
from moodscape.api.projections import ProjectionCache, project, projection_method
from moodscape.errors import ConfigError


def clustered(n: int = 60, d: int = 24, seed: int = 0) -> np.ndarray:
    """Three well-separated blobs, L2-normalised like the catalogue's embeddings."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 5, (3, d))
    points = centres[np.arange(n) % 3] + rng.normal(0, 0.3, (n, d))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def separated(xy: np.ndarray, groups: np.ndarray) -> bool:
    """Each point's nearest other point belongs to its own group."""
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2) + np.eye(len(xy)) * 1e9
    return bool((groups[distances.argmin(axis=1)] == groups).all())


def test_pca_lays_out_every_row_deterministically():
    embeddings = clustered()
    indices, xy = project(embeddings, "pca")
    assert indices.tolist() == list(range(60)) and xy.shape == (60, 2) and xy.dtype == np.float32
    np.testing.assert_array_equal(project(embeddings, "pca")[1], xy)
    assert separated(xy, np.arange(60) % 3)


def test_tsne_keeps_the_blobs_apart():
    indices, xy = project(clustered(), "tsne", seed=1)
    assert xy.shape == (60, 2) and np.isfinite(xy).all()
    assert separated(xy, indices % 3)


@pytest.mark.slow  # numba compiles UMAP on first use: about 20 s
def test_umap_keeps_the_blobs_apart():
    indices, xy = project(clustered(), "umap", seed=1)
    assert xy.shape == (60, 2) and xy.dtype == np.float32 and np.isfinite(xy).all()
    assert separated(xy, indices % 3)


def test_large_catalogues_are_sampled_with_the_seed():
    embeddings = clustered(500)
    indices, xy = project(embeddings, "pca", seed=3, max_points=100)
    assert len(indices) == 100 == len(np.unique(indices)) and (np.diff(indices) > 0).all()
    np.testing.assert_array_equal(project(embeddings, "pca", seed=3, max_points=100)[0], indices)
    assert not np.array_equal(project(embeddings, "pca", seed=4, max_points=100)[0], indices)


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("method", ["pca", "umap", "tsne"])
def test_a_handful_of_points_falls_back_to_pca(n, method):
    indices, xy = project(clustered(n), method)
    assert projection_method(method, n) == "pca"
    assert indices.tolist() == list(range(n)) and xy.shape == (n, 2) and np.isfinite(xy).all()


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="method"):
        project(clustered(), "mds")
    with pytest.raises(ConfigError, match="max_points"):
        project(clustered(), "pca", max_points=0)
    with pytest.raises(ConfigError, match="matrix"):
        project(np.zeros(5), "pca")


@pytest.fixture
def counted(monkeypatch):
    """Counts the projections actually computed (slowly, to let concurrent callers meet)."""
    calls = []
    real = projections.project

    def slow_project(embeddings, method, **options):
        calls.append(method)
        time.sleep(0.2)
        return real(embeddings, method, **options)

    monkeypatch.setattr(projections, "project", slow_project)
    return calls


def test_cache_computes_each_method_once_and_survives_a_restart(tmp_path, counted):
    path = tmp_path / "cache" / "projections.parquet"
    embeddings = clustered()
    cache = ProjectionCache(path)
    first = cache.get_or_compute("v1", "pca", embeddings)
    again = cache.get_or_compute("v1", "pca", embeddings)
    tsne = cache.get_or_compute("v1", "tsne", embeddings)
    assert counted == ["pca", "tsne"] and again is first
    assert not first[1].flags.writeable
    table = pd.read_parquet(path)
    assert list(table.columns) == ["key", "method", "index", "x", "y"] and len(table) == 120

    reopened = ProjectionCache(path).get_or_compute("v1", "tsne", embeddings)
    assert counted == ["pca", "tsne"]
    np.testing.assert_array_equal(reopened[0], tsne[0])
    np.testing.assert_array_equal(reopened[1], tsne[1])


def test_new_embeddings_key_recomputes_and_drops_the_old_rows(tmp_path, counted):
    path = tmp_path / "projections.parquet"
    cache = ProjectionCache(path)
    cache.get_or_compute("v1", "pca", clustered())
    cache.get_or_compute("v2", "pca", clustered(30))
    assert counted == ["pca", "pca"]
    table = pd.read_parquet(path)
    assert len(table) == 30 and table["key"].str.startswith("v2").all()


def test_concurrent_requests_compute_once(tmp_path, counted):
    cache = ProjectionCache(tmp_path / "projections.parquet")
    embeddings = clustered()
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_compute("v1", "pca", embeddings))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counted == ["pca"] and len(results) == 4
    assert all(result is results[0] for result in results)


def test_unreadable_cache_file_is_recomputed(tmp_path, counted):
    path = tmp_path / "projections.parquet"
    path.write_bytes(b"not parquet")
    indices, xy = ProjectionCache(path).get_or_compute("v1", "pca", clustered())
    assert counted == ["pca"] and xy.shape == (60, 2)
    assert len(pd.read_parquet(path)) == 60


def test_a_cache_that_cannot_be_written_still_serves_from_memory(tmp_path, counted):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder should be")
    cache = ProjectionCache(blocked / "projections.parquet")
    first = cache.get_or_compute("v1", "pca", clustered())
    assert cache.get_or_compute("v1", "pca", clustered()) is first and counted == ["pca"]
