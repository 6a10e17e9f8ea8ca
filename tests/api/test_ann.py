"""NeighborIndex: exact and faiss search agree, filters hold, the faiss index is cached."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from moodscape.api import ann
from moodscape.api.ann import NeighborIndex, recall_at_k


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def clustered() -> np.ndarray:
    """4,000 unit vectors in 32-d around 40 centres: structure an IVF index can exploit."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    members = rng.integers(0, 40, 4000)
    return unit_rows(centres[members] + rng.normal(scale=0.6, size=(4000, 32)))


@pytest.fixture(scope="module")
def queries(clustered) -> np.ndarray:
    """Perturbed catalog rows, as a mean of seeds or an uploaded track would be."""
    rng = np.random.default_rng(1)
    picked = clustered[rng.choice(len(clustered), 100, replace=False)]
    return unit_rows(picked + rng.normal(scale=0.1, size=picked.shape))


def brute_force(vectors, queries, k, allowed=None):
    similarities = queries @ vectors.T
    if allowed is not None:
        similarities[:, ~allowed] = -np.inf
    return np.argsort(-similarities, axis=1, kind="stable")[:, :k]


def test_small_catalog_is_searched_exactly(clustered, queries):
    index = NeighborIndex.build(clustered)
    similarities, indices = index.search(queries, 10)
    assert index.is_exact
    np.testing.assert_array_equal(indices, brute_force(clustered, queries, 10))
    np.testing.assert_allclose(similarities, np.take_along_axis(queries @ clustered.T, indices, axis=1), rtol=1e-5)
    assert indices.dtype == np.int64 and similarities.dtype == np.float32


def test_faiss_path_recall_at_10_is_at_least_0_9(clustered, queries):
    index = NeighborIndex.build(clustered, exact_below=1000)
    similarities, indices = index.search(queries, 10)
    assert not index.is_exact
    assert recall_at_k(indices, brute_force(clustered, queries, 10)) >= 0.9
    assert np.all(np.diff(similarities, axis=1) <= 1e-6)


def test_calibrated_nprobe_probes_only_part_of_the_cells(clustered):
    index = NeighborIndex.build(clustered, exact_below=1000)
    assert 1 <= index.faiss_index.nprobe < index.faiss_index.nlist


@pytest.mark.parametrize("exact_below", [50_000, 1000], ids=["exact", "faiss"])
@pytest.mark.parametrize("share", [0.5, 0.002], ids=["broad", "selective"])
def test_allowed_mask_limits_results_to_allowed_rows(clustered, queries, exact_below, share):
    allowed = np.random.default_rng(2).random(len(clustered)) < share
    index = NeighborIndex.build(clustered, exact_below=exact_below)
    _, indices = index.search(queries, 10, allowed=allowed)
    assert indices.shape == (len(queries), min(10, allowed.sum()))
    assert allowed[indices].all()
    assert recall_at_k(indices, brute_force(clustered, queries, indices.shape[1], allowed)) >= 0.9


def test_selective_mask_on_faiss_path_probes_more_cells_until_k_are_found(clustered, queries, monkeypatch):
    monkeypatch.setattr(ann, "EXACT_ALLOWED_ROWS", 0)  # force the IVF scan with a selector
    allowed = np.random.default_rng(3).random(len(clustered)) < 0.01
    index = NeighborIndex.build(clustered, exact_below=1000)
    _, indices = index.search(queries, 10, allowed=allowed)
    assert indices.shape == (len(queries), 10)
    assert allowed[indices].all()
    assert all(len(set(row)) == 10 for row in indices)
    assert recall_at_k(indices, brute_force(clustered, queries, 10, allowed)) >= 0.9


def test_faiss_placeholders_never_leak_when_k_exceeds_probed_rows(clustered, queries):
    index = NeighborIndex.build(clustered, exact_below=1000)
    _, indices = index.search(queries[:3], 1500)
    assert indices.shape == (3, 1500)
    assert (indices >= 0).all()
    assert all(len(set(row)) == 1500 for row in indices)


def test_nothing_allowed_gives_no_columns(clustered, queries):
    similarities, indices = NeighborIndex.build(clustered).search(queries, 5, allowed=np.zeros(len(clustered), bool))
    assert similarities.shape == indices.shape == (len(queries), 0)


def test_cached_index_is_read_back_instead_of_retrained(clustered, queries, tmp_path, monkeypatch):
    first = NeighborIndex.build(clustered, exact_below=1000, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("ann-*.faiss"))) == 1

    def no_training(*args):
        raise AssertionError("the cached index should have been read")

    monkeypatch.setattr(ann, "_train_ivf", no_training)
    second = NeighborIndex.build(clustered, exact_below=1000, cache_dir=tmp_path)
    assert second.faiss_index.nprobe == first.faiss_index.nprobe
    np.testing.assert_array_equal(second.search(queries, 10)[1], first.search(queries, 10)[1])


def test_other_vectors_replace_the_cached_index(clustered, tmp_path):
    NeighborIndex.build(clustered, exact_below=1000, cache_dir=tmp_path)
    old = set(tmp_path.glob("ann-*.faiss"))
    NeighborIndex.build(clustered[::-1].copy(), exact_below=1000, cache_dir=tmp_path)
    new = set(tmp_path.glob("ann-*.faiss"))
    assert len(new) == 1 and new != old
    assert not list(tmp_path.glob("*.tmp"))


def test_unreadable_cache_file_is_rebuilt(clustered, queries, tmp_path):
    NeighborIndex.build(clustered, exact_below=1000, cache_dir=tmp_path)
    (cached,) = tmp_path.glob("ann-*.faiss")
    cached.write_bytes(b"not an index")
    index = NeighborIndex.build(clustered, exact_below=1000, cache_dir=tmp_path)
    assert index.search(queries, 10)[1].shape == (len(queries), 10)


def test_search_restores_the_faiss_thread_setting(clustered, queries):
    before = ann.faiss.omp_get_max_threads()
    NeighborIndex.build(clustered, exact_below=1000).search(queries, 10)
    assert ann.faiss.omp_get_max_threads() == before


@pytest.mark.parametrize(
    "vectors, message",
    [(np.ones((5, 4), np.float32), "L2-normalised"), (np.empty((0, 4), np.float32), "non-empty")],
)
def test_build_rejects_bad_vectors(vectors, message):
    with pytest.raises(ValueError, match=message):
        NeighborIndex.build(vectors)


def test_search_rejects_wrong_dimension_and_mask(clustered):
    index = NeighborIndex.build(clustered)
    with pytest.raises(ValueError, match="columns"):
        index.search(np.ones((1, 3), np.float32), 5)
    with pytest.raises(ValueError, match="mask"):
        index.search(clustered[:1], 5, allowed=np.ones(3, bool))
    with pytest.raises(ValueError, match="k must be"):
        index.search(clustered[:1], 0)


@settings(max_examples=40, deadline=None)
@given(
    vectors=arrays(np.float32, st.tuples(st.integers(1, 40), st.just(6)), elements=st.floats(-1, 1, width=32)),
    k=st.integers(1, 50),
    data=st.data(),
)
def test_exact_search_returns_distinct_allowed_rows_in_descending_similarity(vectors, k, data):
    norms = np.linalg.norm(vectors, axis=1)
    vectors = unit_rows(vectors[norms > 1e-3])
    if len(vectors) == 0:
        return
    allowed = data.draw(arrays(bool, len(vectors)))
    similarities, indices = NeighborIndex.build(vectors).search(vectors[:2], k, allowed=allowed)
    assert indices.shape[1] == min(k, allowed.sum())
    assert allowed[indices].all()
    assert all(len(set(row)) == len(row) for row in indices)
    assert np.all(np.diff(similarities, axis=1) <= 1e-6)


# ---------------------------------------------------------------------------- exclusions


def mask_without(n, rows):
    allowed = np.ones(n, dtype=bool)
    allowed[rows] = False
    return allowed


@pytest.mark.parametrize("exact_below", [50_000, 1000], ids=["exact", "faiss"])
@pytest.mark.parametrize("count", [1, 7, 300])
def test_excluding_rows_equals_masking_them_out(clustered, queries, exact_below, count, monkeypatch):
    monkeypatch.setattr(ann, "EXACT_ALLOWED_ROWS", 0)  # keep the faiss path on the IVF scan
    index = NeighborIndex.build(clustered, exact_below=exact_below)
    exclude = np.random.default_rng(count).choice(len(clustered), count, replace=False)
    for k in (1, 10, 200):
        by_list = index.search(queries, k, exclude=exclude)
        by_mask = index.search(queries, k, allowed=mask_without(len(clustered), exclude))
        np.testing.assert_array_equal(by_list[1], by_mask[1])
        np.testing.assert_allclose(by_list[0], by_mask[0], rtol=1e-6)
        assert not np.isin(by_list[1], exclude).any()


def test_many_exclusions_fall_back_to_a_mask_with_the_same_answer(clustered, queries, monkeypatch):
    monkeypatch.setattr(ann, "EXACT_ALLOWED_ROWS", 0)
    index = NeighborIndex.build(clustered, exact_below=1000)
    exclude = np.arange(0, len(clustered), 5)
    assert len(exclude) <= ann.MAX_FETCHED_EXCLUSIONS
    expected = index.search(queries, 10, exclude=exclude)[1]
    monkeypatch.setattr(ann, "MAX_FETCHED_EXCLUSIONS", 0)
    np.testing.assert_array_equal(index.search(queries, 10, exclude=exclude)[1], expected)


def test_exclusions_and_mask_combine(clustered, queries):
    index = NeighborIndex.build(clustered)
    allowed = np.random.default_rng(4).random(len(clustered)) < 0.5
    exclude = np.flatnonzero(allowed)[:20]
    _, indices = index.search(queries, 10, allowed=allowed, exclude=exclude)
    both = allowed & mask_without(len(clustered), exclude)
    np.testing.assert_array_equal(indices, brute_force(clustered, queries, 10, both))


def test_excluding_every_row_but_two_gives_two_columns(clustered, queries):
    index = NeighborIndex.build(clustered)
    _, indices = index.search(queries[:3], 10, exclude=np.arange(2, len(clustered)))
    assert indices.shape == (3, 2)
    assert all(sorted(row) == [0, 1] for row in indices.tolist())


def test_exclusions_outside_the_rows_are_rejected(clustered):
    with pytest.raises(ValueError, match="exclude"):
        NeighborIndex.build(clustered).search(clustered[:1], 5, exclude=[len(clustered)])


def test_exact_ties_go_to_the_lower_row_whatever_is_excluded():
    vectors = unit_rows(np.vstack([np.ones((6, 4)), np.eye(4)]))  # rows 0-5 identical
    index = NeighborIndex.build(vectors)
    assert index.search(vectors[0], 3)[1].tolist() == [[0, 1, 2]]
    assert index.search(vectors[0], 3, exclude=[1])[1].tolist() == [[0, 2, 3]]
    assert index.search(vectors[0], 3, allowed=mask_without(len(vectors), [1]))[1].tolist() == [[0, 2, 3]]
