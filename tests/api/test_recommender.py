"""Recommender: planted clusters and moods come back, filters and exclusions always hold."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.api import ann, recommender as recommender_module
from moodscape.api.recommender import MoodGrid, Recommender, TrackFilter, grid_cells, mood_waypoints

N_CLUSTERS = 6
PER_CLUSTER = 80
DIM = 24


def make_catalog(seed: int = 0) -> dict:
    """Tracks in 6 well separated embedding clusters, label = cluster, uniform random moods.

    One track in ten has no valence/arousal (NaN).
    """
    rng = np.random.default_rng(seed)
    cluster = np.repeat(np.arange(N_CLUSTERS), PER_CLUSTER)
    centres = rng.normal(size=(N_CLUSTERS, DIM)) * 3
    embeddings = centres[cluster] + rng.normal(size=(len(cluster), DIM))
    embeddings = (embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)).astype(np.float32)
    valence, arousal = rng.random(len(cluster)), rng.random(len(cluster))
    unknown = rng.random(len(cluster)) < 0.1
    valence[unknown] = arousal[unknown] = np.nan
    probabilities = rng.dirichlet(np.ones(N_CLUSTERS), len(cluster)).astype(np.float32)
    probabilities[np.arange(len(cluster)), cluster] += 1.0
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return {"embeddings": embeddings, "valence": valence, "arousal": arousal,
            "probabilities": probabilities, "label_of": cluster}


@pytest.fixture(scope="module")
def catalog() -> dict:
    return make_catalog()


@pytest.fixture(scope="module")
def recommender(catalog) -> Recommender:
    return Recommender(**catalog)


@pytest.fixture(scope="module")
def faiss_recommender(catalog) -> Recommender:
    """The same catalog searched through a faiss index."""
    return Recommender(**catalog, exact_below=100)


def rows(hits) -> list[int]:
    return [hit.index for hit in hits]


def mean_pairwise_cosine(recommender, hits) -> float:
    vectors = recommender.embeddings[rows(hits)]
    similarities = vectors @ vectors.T
    return float(similarities[np.triu_indices(len(hits), 1)].mean())


# ---------------------------------------------------------------------------- by_seeds


@pytest.mark.parametrize("which", ["exact", "faiss"])
def test_seeds_from_one_cluster_return_that_cluster(recommender, faiss_recommender, which):
    engine = recommender if which == "exact" else faiss_recommender
    for cluster in range(N_CLUSTERS):
        seeds = [cluster * PER_CLUSTER, cluster * PER_CLUSTER + 1]
        hits = engine.by_seeds(seeds, limit=20)
        assert len(hits) == 20
        assert set(engine.label_of[rows(hits)]) == {cluster}
        assert not set(rows(hits)) & set(seeds)


def test_negative_seed_pulls_results_off_its_cluster(recommender):
    seeds = [0, 1, 2, PER_CLUSTER, PER_CLUSTER + 1, PER_CLUSTER + 2]  # three of cluster 0, three of cluster 1
    mixed = recommender.by_seeds(seeds, limit=30)
    assert 1 in set(recommender.label_of[rows(mixed)])
    negative = [PER_CLUSTER + 5, PER_CLUSTER + 6, PER_CLUSTER + 7]
    away = recommender.by_seeds(seeds, negative=negative, limit=30)
    assert set(recommender.label_of[rows(away)]) == {0}
    assert not set(negative) & set(rows(away))


def test_a_negative_seed_pushes_the_tracks_near_it_below_the_others():
    """A known answer: A is nearer the seed than B, but leans towards the negative seed.

    Seed s = e1, negative n = e2; A = (0.85, 0.53, 0), B = (0.8, -0.6, 0). By cosine to s
    alone A (0.85) ranks above B (0.8); the query s - n scores A (0.85 - 0.53)/√2 ≈ 0.23
    and B (0.8 + 0.6)/√2 ≈ 0.99, so the negative seed must put A below B.
    """
    seed, negative, a, b, far = range(5)
    embeddings = np.array([[1, 0, 0], [0, 1, 0], [0.85, 0.53, 0], [0.8, -0.6, 0], [0, 0, 1]], dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    engine = Recommender(embeddings=embeddings, valence=np.full(5, 0.5), arousal=np.full(5, 0.5),
                         probabilities=np.ones((5, 1), dtype=np.float32), label_of=np.zeros(5, dtype=int))
    assert rows(engine.by_seeds([seed], limit=3)) == [a, b, negative]
    pushed = engine.by_seeds([seed], negative=[negative], limit=3)
    assert rows(pushed) == [b, a, far]
    query = (embeddings[seed] - embeddings[negative]) / np.sqrt(2)
    np.testing.assert_allclose([hit.score for hit in pushed], embeddings[[b, a, far]] @ query, rtol=1e-5, atol=1e-6)


def test_seed_results_are_ranked_by_cosine_to_the_seed_mean(recommender):
    hits = recommender.by_seeds([3], limit=15)
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    np.testing.assert_allclose(scores, recommender.embeddings[rows(hits)] @ recommender.embeddings[3], rtol=1e-5)
    assert all(hit.distance is None for hit in hits)


def test_va_weight_one_ranks_by_closeness_to_the_seeds_mood(recommender):
    seed = int(np.flatnonzero(np.isfinite(recommender.valence))[0])
    hits = recommender.by_seeds([seed], va_weight=1.0, limit=10)
    distance = np.hypot(recommender.valence[rows(hits)] - recommender.valence[seed],
                        recommender.arousal[rows(hits)] - recommender.arousal[seed])
    assert np.all(np.diff(distance) >= -1e-12)
    np.testing.assert_allclose([hit.score for hit in hits], 1 - distance / np.sqrt(2))


def test_similar_is_by_seeds_of_one_track(recommender):
    assert recommender.similar(7, limit=5) == recommender.by_seeds([7], limit=5)
    assert 7 not in rows(recommender.similar(7, limit=50))


def test_nearest_to_a_catalog_embedding_starts_with_that_track(recommender):
    hits = recommender.nearest(recommender.embeddings[42] * 3.0, limit=5)
    assert hits[0].index == 42
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert 42 not in rows(recommender.nearest(recommender.embeddings[42], limit=5, exclude=[42]))


@pytest.mark.parametrize("which", ["exact", "faiss"])
@settings(max_examples=40, deadline=None)
@given(
    seeds=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), min_size=1, max_size=4),
    negative=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=2),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=30),
    labels=st.none() | st.lists(st.integers(0, N_CLUSTERS - 1), min_size=1, max_size=3),
    min_valence=st.none() | st.floats(0, 0.6),
    min_probability=st.none() | st.floats(0, 0.5),
    limit=st.integers(1, 40),
    diversity=st.sampled_from([0.0, 0.5]),
    va_weight=st.sampled_from([0.0, 0.3]),
)
def test_seed_results_respect_limit_filters_and_exclusions(
    recommender, faiss_recommender, which, seeds, negative, exclude, labels, min_valence, min_probability, limit,
    diversity, va_weight,
):
    engine = recommender if which == "exact" else faiss_recommender
    try:
        where = TrackFilter(min_valence=min_valence, min_probability=min_probability, labels=labels)
        hits = engine.by_seeds(seeds, negative=negative, exclude=exclude, where=where, limit=limit, diversity=diversity,
                               va_weight=va_weight)
    except ValueError as error:  # seeds cancelled out, or seeds without a mood for va_weight
        assert "cancel" in str(error) or "valence/arousal" in str(error)
        return
    found = rows(hits)
    assert len(found) == len(set(found)) <= limit
    assert not set(found) & (set(seeds) | set(negative) | set(exclude))
    if labels is not None:
        assert set(engine.label_of[found]) <= set(labels)
    if min_valence is not None:
        assert np.all(engine.valence[found] >= min_valence)
    if min_probability is not None:
        assert np.all(engine.probability[found] >= min_probability)


# ---------------------------------------------------------------------------- by_mood


def brute_force_mood(catalog_engine, target_valence, target_arousal, tolerance, exclude=(), labels=None, **bounds):
    """Every matching row sorted by (distance, row): the answer by_mood must give."""
    engine = catalog_engine
    distance = np.sqrt((engine.valence - target_valence) ** 2 + (engine.arousal - target_arousal) ** 2)
    keep = distance <= tolerance
    for name, values in (("valence", engine.valence), ("arousal", engine.arousal)):
        if bounds.get(f"min_{name}") is not None:
            keep &= values >= bounds[f"min_{name}"]
        if bounds.get(f"max_{name}") is not None:
            keep &= values <= bounds[f"max_{name}"]
    if labels is not None:
        keep &= np.isin(engine.label_of, labels)
    keep[list(exclude)] = False
    matches = np.flatnonzero(keep)
    return matches[np.lexsort((matches, distance[matches]))].tolist()


def test_mood_query_returns_the_nearest_tracks_within_tolerance_sorted_by_distance(recommender):
    hits = recommender.by_mood(target_valence=0.8, target_arousal=0.3, tolerance=0.2, limit=15)
    assert rows(hits) == brute_force_mood(recommender, 0.8, 0.3, 0.2)[:15]
    distances = [hit.distance for hit in hits]
    assert distances == sorted(distances) and max(distances) <= 0.2
    np.testing.assert_allclose([hit.score for hit in hits], 1 - np.array(distances) / 0.2)


def test_mood_query_on_one_dimension_ignores_the_other(recommender):
    hits = recommender.by_mood(target_arousal=0.5, tolerance=0.05, limit=500)
    arousal = recommender.arousal[rows(hits)]
    assert np.all(np.abs(arousal - 0.5) <= 0.05)
    expected = np.flatnonzero(np.abs(recommender.arousal - 0.5) <= 0.05)
    assert set(rows(hits)) == set(expected.tolist())


def test_tracks_without_valence_arousal_never_match_a_mood_query(recommender):
    unknown = set(np.flatnonzero(np.isnan(recommender.valence)).tolist())
    assert unknown
    for query in ({"target_valence": 0.5, "target_arousal": 0.5, "tolerance": 1.0},
                  {"target_valence": 0.5, "tolerance": 1.0}, {"where": TrackFilter(min_arousal=0.0)}):
        assert not set(rows(recommender.by_mood(**query, limit=1000))) & unknown


def test_mood_query_without_target_ranks_by_probability(recommender):
    hits = recommender.by_mood(where=TrackFilter(labels=[2]), limit=10)
    probability = [hit.score for hit in hits]
    assert probability == sorted(probability, reverse=True)
    assert probability[0] == pytest.approx(recommender.probability[recommender.label_of == 2].max())
    assert all(hit.distance is None for hit in hits)


def test_far_target_with_small_tolerance_returns_nothing(recommender):
    assert recommender.by_mood(target_valence=3.0, target_arousal=3.0, tolerance=0.1) == []


@settings(max_examples=60, deadline=None)
@given(
    target=st.tuples(st.floats(-0.2, 1.2), st.floats(-0.2, 1.2)),
    tolerance=st.floats(0.01, 0.6),
    min_valence=st.none() | st.floats(0, 1),
    max_arousal=st.none() | st.floats(0, 1),
    labels=st.none() | st.lists(st.integers(0, N_CLUSTERS - 1), min_size=1, max_size=3),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=50),
    limit=st.integers(1, 60),
)
def test_mood_query_matches_brute_force(recommender, target, tolerance, min_valence, max_arousal, labels, exclude, limit):
    where = TrackFilter(min_valence=min_valence, max_arousal=max_arousal, labels=labels)
    hits = recommender.by_mood(target_valence=target[0], target_arousal=target[1], tolerance=tolerance, where=where,
                               exclude=exclude, limit=limit)
    expected = brute_force_mood(recommender, *target, tolerance, exclude, labels,
                                min_valence=min_valence, max_arousal=max_arousal)
    assert rows(hits) == expected[:limit]


@settings(max_examples=60, deadline=None)
@given(
    labels=st.none() | st.lists(st.integers(0, N_CLUSTERS - 1), min_size=1, max_size=3),
    min_valence=st.none() | st.floats(0, 1),
    min_probability=st.none() | st.floats(0, 0.8),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=100),
    limit=st.integers(1, 60),
)
def test_mood_query_without_target_matches_brute_force(recommender, labels, min_valence, min_probability, exclude, limit):
    where = TrackFilter(min_valence=min_valence, min_probability=min_probability, labels=labels)
    hits = recommender.by_mood(where=where, exclude=exclude, limit=limit)
    keep = np.ones(len(recommender), dtype=bool) if labels is None else np.isin(recommender.label_of, labels)
    if min_valence is not None:
        keep &= recommender.valence >= min_valence
    if min_probability is not None:
        keep &= recommender.probability >= min_probability
    keep[exclude] = False
    matches = np.flatnonzero(keep)
    expected = matches[np.lexsort((matches, -recommender.probability[matches]))][:limit]
    assert rows(hits) == expected.tolist()


@settings(max_examples=30, deadline=None)
@given(
    target=st.tuples(st.floats(0, 1), st.floats(0, 1)),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=50),
    limit=st.integers(1, 30),
    diversity=st.floats(0.0, 1.0),
)
def test_diverse_mood_results_stay_valid(recommender, target, exclude, limit, diversity):
    hits = recommender.by_mood(target_valence=target[0], target_arousal=target[1], tolerance=0.3,
                               exclude=exclude, limit=limit, diversity=diversity)
    found = rows(hits)
    assert len(found) == len(set(found)) <= limit
    assert not set(found) & set(exclude)
    assert all(hit.distance <= 0.3 for hit in hits)


# ---------------------------------------------------------------------------- diversity, by_label


def test_diversity_lowers_the_mean_pairwise_similarity(recommender):
    plain = recommender.by_mood(target_valence=0.5, target_arousal=0.5, tolerance=0.5, limit=12)
    diverse = recommender.by_mood(target_valence=0.5, target_arousal=0.5, tolerance=0.5, limit=12, diversity=0.7)
    assert len(diverse) == 12
    assert mean_pairwise_cosine(recommender, diverse) < mean_pairwise_cosine(recommender, plain)


def test_zero_diversity_is_the_plain_ranking(recommender):
    assert recommender.by_seeds([1], limit=10, diversity=0.0) == recommender.by_seeds([1], limit=10)


def test_label_query_returns_that_label_by_descending_probability(recommender):
    hits = recommender.by_label(3, limit=25, exclude=[3 * PER_CLUSTER])
    assert len(hits) == 25
    assert set(recommender.label_of[rows(hits)]) == {3}
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)
    top = np.argsort(-np.where(recommender.label_of == 3, recommender.probability, -1), kind="stable")
    top = [row for row in top.tolist() if row != 3 * PER_CLUSTER][:25]
    assert rows(hits) == top
    assert rows(recommender.by_label(3, limit=500)) == np.flatnonzero(recommender.label_of == 3)[
        np.argsort(-recommender.probability[recommender.label_of == 3], kind="stable")].tolist()


def test_label_query_with_diversity_keeps_to_the_label(recommender):
    hits = recommender.by_label(1, limit=10, diversity=0.5)
    assert len(set(rows(hits))) == 10 and set(recommender.label_of[rows(hits)]) == {1}


# ---------------------------------------------------------------------------- mood_path


def test_waypoints_run_evenly_from_start_to_end():
    waypoints = mood_waypoints((0.1, 0.9), (0.7, 0.3), 4)
    np.testing.assert_allclose(waypoints, [[0.1, 0.9], [0.3, 0.7], [0.5, 0.5], [0.7, 0.3]])


def test_mood_path_picks_the_nearest_unused_track_for_each_waypoint(recommender):
    start, end, steps = (0.1, 0.1), (0.9, 0.8), 12
    hits = recommender.mood_path(start, end, steps)
    assert len(hits) == steps
    assert len(set(rows(hits))) == steps
    used: set[int] = set()
    known = np.flatnonzero(np.isfinite(recommender.valence))
    for hit, waypoint in zip(hits, mood_waypoints(start, end, steps), strict=True):
        distance = np.hypot(recommender.valence[known] - waypoint[0], recommender.arousal[known] - waypoint[1])
        free = np.array([row not in used for row in known])
        assert hit.distance == pytest.approx(distance[free].min())
        assert hit.distance == pytest.approx(np.hypot(recommender.valence[hit.index] - waypoint[0],
                                                      recommender.arousal[hit.index] - waypoint[1]))
        used.add(hit.index)
    valence = recommender.valence[rows(hits)]
    assert valence[0] < 0.3 and valence[-1] > 0.7


def test_mood_path_is_shorter_only_when_the_filtered_catalog_is(recommender):
    label_rows = np.flatnonzero((recommender.label_of == 4) & np.isfinite(recommender.valence))
    exclude = label_rows[3:].tolist()
    hits = recommender.mood_path((0, 0), (1, 1), 10, labels=[4], exclude=exclude)
    assert sorted(rows(hits)) == sorted(label_rows[:3].tolist())


@settings(max_examples=30, deadline=None)
@given(
    start=st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
    end=st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
    steps=st.integers(2, 40),
    labels=st.none() | st.lists(st.integers(0, N_CLUSTERS - 1), min_size=1, max_size=2),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=40),
)
def test_mood_path_never_repeats_or_uses_excluded_tracks(recommender, start, end, steps, labels, exclude):
    hits = recommender.mood_path(start, end, steps, labels=labels, exclude=exclude)
    found = rows(hits)
    assert len(found) == len(set(found)) == steps
    assert not set(found) & set(exclude)
    assert np.all(np.isfinite(recommender.valence[found]))
    if labels is not None:
        assert set(recommender.label_of[found]) <= set(labels)


# ---------------------------------------------------------------------------- fast paths = general paths


@pytest.fixture(scope="module")
def grid_recommender(catalog) -> Recommender:
    """The same catalog with by-mood queries forced through the MoodGrid (a small one)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recommender_module, "MOOD_GRID_FROM", 0)
        engine = Recommender(**catalog)
    assert engine.grid is not None and engine.grid.cells == grid_cells(len(engine.grid.rows))
    return engine


def test_small_catalogs_scan_instead_of_reading_a_grid(recommender, grid_recommender):
    assert recommender.grid is None and grid_recommender.grid is not None


@settings(max_examples=80, deadline=None)
@given(
    target=st.tuples(st.none() | st.floats(-0.2, 1.2), st.none() | st.floats(-0.2, 1.2)),
    tolerance=st.floats(0.01, 0.8),
    min_valence=st.none() | st.floats(0, 1),
    max_arousal=st.none() | st.floats(0, 1),
    labels=st.none() | st.lists(st.integers(0, N_CLUSTERS - 1), min_size=1, max_size=3),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=50),
    limit=st.integers(1, 60),
    diversity=st.sampled_from([0.0, 0.4]),
)
def test_mood_scan_and_grid_give_identical_results(
    recommender, grid_recommender, target, tolerance, min_valence, max_arousal, labels, exclude, limit, diversity,
):
    query = {"target_valence": target[0], "target_arousal": target[1], "tolerance": tolerance,
             "where": TrackFilter(min_valence=min_valence, max_arousal=max_arousal, labels=labels), "exclude": exclude,
             "limit": limit, "diversity": diversity}
    assert recommender.by_mood(**query) == grid_recommender.by_mood(**query)


@settings(max_examples=20, deadline=None)
@given(
    start=st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
    end=st.tuples(st.floats(-0.5, 1.5), st.floats(-0.5, 1.5)),
    steps=st.integers(2, 30),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=40),
)
def test_mood_path_scan_and_grid_give_identical_results(recommender, grid_recommender, start, end, steps, exclude):
    assert recommender.mood_path(start, end, steps, exclude=exclude) == grid_recommender.mood_path(
        start, end, steps, exclude=exclude)


def test_mood_ties_go_to_the_lower_row_on_both_paths(catalog):
    """Many tracks at the same mood: the scan and the grid keep the same lowest rows."""
    tied = {**catalog, "valence": np.where(np.arange(len(catalog["valence"])) % 3 == 0, 0.5, catalog["valence"]),
            "arousal": np.where(np.arange(len(catalog["arousal"])) % 3 == 0, 0.5, catalog["arousal"])}
    scan = Recommender(**tied)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recommender_module, "MOOD_GRID_FROM", 0)
        grid = Recommender(**tied)
    for diversity in (0.0, 0.5):
        hits = scan.by_mood(target_valence=0.5, target_arousal=0.5, limit=7, diversity=diversity)
        assert hits == grid.by_mood(target_valence=0.5, target_arousal=0.5, limit=7, diversity=diversity)
    assert rows(scan.by_mood(target_valence=0.5, target_arousal=0.5, limit=7)) == [0, 3, 6, 9, 12, 15, 18]


def test_grid_box_reads_cover_the_box():
    rng = np.random.default_rng(5)
    valence, arousal = rng.random(2000), rng.random(2000)
    grid = MoodGrid(valence, arousal)
    for box in [((0.2, 0.3), (0.6, 0.7)), ((-np.inf, np.inf), (0.1, 0.2)), ((0.4, 0.45), (-np.inf, np.inf)),
                ((-np.inf, np.inf), (-np.inf, np.inf)), ((1.5, 2.0), (0.0, 1.0))]:
        inside = np.flatnonzero((valence >= box[0][0]) & (valence <= box[0][1])
                                & (arousal >= box[1][0]) & (arousal <= box[1][1]))
        assert set(inside.tolist()) <= set(grid.in_box(*box).tolist())


def masked_seed_search(engine, seeds, limit, exclude=()):
    """by_seeds' first stage done the general way: an ``allowed`` mask over every row."""
    query = engine.embeddings[seeds].mean(axis=0)
    allowed = np.ones(len(engine), dtype=bool)
    allowed[list(seeds) + list(exclude)] = False
    similarities, found = engine.index.search(query / np.linalg.norm(query), limit, allowed=allowed)
    return found[0].tolist(), similarities[0]


@pytest.mark.parametrize("which", ["exact", "faiss"])
@settings(max_examples=40, deadline=None)
@given(
    seeds=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), min_size=1, max_size=3, unique=True),
    exclude=st.lists(st.integers(0, N_CLUSTERS * PER_CLUSTER - 1), max_size=30),
    limit=st.integers(1, 40),
)
def test_unfiltered_seed_query_equals_the_masked_search(recommender, faiss_recommender, which, seeds, exclude, limit):
    engine = recommender if which == "exact" else faiss_recommender
    hits = engine.by_seeds(seeds, exclude=exclude, limit=limit)
    expected, similarities = masked_seed_search(engine, seeds, limit, exclude)
    assert rows(hits) == expected
    np.testing.assert_allclose([hit.score for hit in hits], similarities, rtol=1e-6)


def test_faiss_seed_query_fetches_past_exclusions_like_a_mask(catalog, monkeypatch):
    """With the exact scan of few allowed rows turned off, the IVF path drops exclusions itself."""
    monkeypatch.setattr(ann, "EXACT_ALLOWED_ROWS", 0)
    engine = Recommender(**catalog, exact_below=100)
    for seed in range(0, N_CLUSTERS * PER_CLUSTER, 37):
        exclude = list(range(seed + 1, seed + 25))
        for limit in (1, 10, 60):
            assert rows(engine.by_seeds([seed], exclude=exclude, limit=limit)) == masked_seed_search(
                engine, [seed], limit, exclude)[0]
            assert rows(engine.similar(seed, exclude=exclude, limit=limit)) == rows(
                engine.by_seeds([seed], exclude=exclude, limit=limit))


def test_nearest_without_filters_equals_the_masked_search(recommender):
    vector = recommender.embeddings[10] + recommender.embeddings[400]
    allowed = np.ones(len(recommender), dtype=bool)
    allowed[[10, 11, 12]] = False
    _, expected = recommender.index.search(vector / np.linalg.norm(vector), 15, allowed=allowed)
    assert rows(recommender.nearest(vector, limit=15, exclude=[10, 11, 12])) == expected[0].tolist()


def test_seed_query_on_duplicate_tracks_prefers_the_lower_rows(catalog):
    """Identical embeddings tie exactly: excluding by list or by mask keeps the same rows."""
    embeddings = catalog["embeddings"].copy()
    embeddings[100:140] = embeddings[99]
    engine = Recommender(**{**catalog, "embeddings": embeddings})
    assert rows(engine.by_seeds([99], limit=5)) == [100, 101, 102, 103, 104]
    assert rows(engine.by_seeds([99], limit=5, exclude=[101])) == [100, 102, 103, 104, 105]
    assert rows(engine.by_seeds([99], limit=5, exclude=[101], where=TrackFilter(labels=[1]))) == [100, 102, 103, 104, 105]


# ---------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda r: r.by_seeds([]), "at least one"),
        (lambda r: r.by_seeds([10_000]), "outside"),
        (lambda r: r.by_seeds([-1]), "outside"),
        (lambda r: r.by_seeds([0], exclude=[10_000]), "outside"),
        (lambda r: r.by_seeds([0], negative=[0]), "cancel"),
        (lambda r: r.by_seeds([0], va_weight=1.5), "va_weight"),
        (lambda r: r.by_mood(target_valence=0.5, tolerance=0), "tolerance"),
        (lambda r: r.by_mood(target_valence=float("nan")), "finite"),
        (lambda r: r.by_mood(where=TrackFilter(min_valence=0.8, max_valence=0.2)), "min_valence"),
        (lambda r: r.by_mood(where=TrackFilter(labels=[99])), "labels"),
        (lambda r: r.by_seeds([0], where=TrackFilter(min_arousal=0.9, max_arousal=0.1)), "min_arousal"),
        (lambda r: r.by_seeds([0], where=TrackFilter(labels=[N_CLUSTERS])), "labels"),
        (lambda r: r.by_mood(limit=0), "limit"),
        (lambda r: r.by_mood(diversity=2.0), "diversity"),
        (lambda r: r.by_label(N_CLUSTERS), "labels"),
        (lambda r: r.nearest(np.ones(3)), "finite numbers"),
        (lambda r: r.nearest(np.zeros(DIM)), "zeros"),
        (lambda r: r.mood_path((0, 0), (1, 1), 1), "steps"),
        (lambda r: r.mood_path((0, 0), (1, float("inf")), 5), "finite"),
    ],
)
def test_bad_arguments_raise_value_error_naming_the_problem(recommender, call, message):
    with pytest.raises(ValueError, match=message):
        call(recommender)


def test_arrays_of_other_lengths_are_rejected(catalog):
    with pytest.raises(ValueError, match="valence"):
        Recommender(**{**catalog, "valence": catalog["valence"][:-1]})


def test_va_weight_needs_seeds_with_a_mood(catalog):
    engine = Recommender(**{**catalog, "valence": np.full(len(catalog["valence"]), np.nan)})
    with pytest.raises(ValueError, match="valence/arousal"):
        engine.by_seeds([0], va_weight=0.5)
    assert engine.by_mood(target_valence=0.5) == []
    assert engine.mood_path((0, 0), (1, 1), 3) == []
