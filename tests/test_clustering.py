"""Stage 1b: AcousticClusterer on synthetic features with a known number of clusters."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from moodscape.clustering import KNEE_MIN_GAP, AcousticClusterer, kneedle_elbow, pick_k
from moodscape.errors import ConfigError, DataError

PLANTED_K = 6


@pytest.fixture(autouse=True)
def one_thread():
    """K-Means on a few hundred tracks is fastest single-threaded, above all on a busy machine."""
    with threadpool_limits(limits=1):
        yield


def planted_features(seed, spread, n_tracks=450, n_features=12):
    """Six acoustic archetypes in a 12-d feature space, with per-track noise."""
    return make_blobs(
        n_samples=n_tracks,
        n_features=n_features,
        centers=PLANTED_K,
        cluster_std=spread,
        center_box=(-10, 10),
        random_state=seed,
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_picks_planted_k_on_well_separated_clusters(seed):
    features, truth = planted_features(seed, spread=1.0)
    clusterer = AcousticClusterer(k_range=(4, 10), n_init=3).fit(features)
    assert clusterer.n_clusters_ == PLANTED_K
    assert clusterer.selection_["structure"] == "found"
    assert adjusted_rand_score(truth, clusterer.labels_) > 0.99


@pytest.mark.parametrize("seed", [3, 5, 7])
def test_scan_picks_planted_k_with_realistic_overlap(seed):
    features, truth = planted_features(seed, spread=2.0)
    clusterer = AcousticClusterer(k_range=(4, 10), n_init=3, target_k=8).fit(features)
    assert clusterer.selection_["k"] == PLANTED_K
    assert clusterer.selection_["structure"] == "found", clusterer.selection_["reason"]
    assert adjusted_rand_score(truth, clusterer.labels_) > 0.9


def test_selection_records_every_k_of_the_scan_and_is_json_ready():
    features, _ = planted_features(0, spread=1.0, n_tracks=300)
    selection = AcousticClusterer(k_range=(4, 8), n_init=3).fit(features).selection_
    assert json.loads(json.dumps(selection)) == selection
    assert [row["k"] for row in selection["scan"]] == [4, 5, 6, 7, 8]
    assert set(selection["scan"][0]) == {
        "k", "inertia", "silhouette", "davies_bouldin", "calinski_harabasz"
    }
    assert selection["rule"] == "elbow_with_silhouette_guard"
    assert selection["elbow_k"] == selection["k"] == PLANTED_K
    assert "K=6" in selection["reason"]


def test_silhouette_is_computed_on_a_sample_of_at_most_silhouette_sample_tracks():
    features, _ = planted_features(0, spread=1.0, n_tracks=400)
    clusterer = AcousticClusterer(k_range=(5, 7), n_init=2, silhouette_sample=100).fit(features)
    assert clusterer.selection_["silhouette_sample"] == 100
    assert all(row["silhouette"] is not None for row in clusterer.selection_["scan"])


def test_restarts_on_the_sample_are_refined_on_every_track():
    features, planted = planted_features(0, spread=1.0, n_tracks=600)
    sampled = AcousticClusterer(k=PLANTED_K, n_init=20, silhouette_sample=150, random_state=0).fit(features)
    full = AcousticClusterer(k=PLANTED_K, n_init=20, silhouette_sample=600, random_state=0).fit(features)
    assert len(sampled.labels_) == 600
    assert adjusted_rand_score(planted, sampled.labels_) == adjusted_rand_score(planted, full.labels_) == 1.0
    assert sampled.kmeans_.inertia_ == pytest.approx(full.kmeans_.inertia_, rel=1e-6)


def test_fixed_k_is_used_and_recorded_as_forced():
    features, _ = planted_features(0, spread=1.0, n_tracks=300)
    clusterer = AcousticClusterer(k=4, n_init=3).fit(features)
    assert clusterer.n_clusters_ == 4
    assert set(clusterer.labels_) == {0, 1, 2, 3}
    assert clusterer.selection_["rule"] == "fixed"
    assert clusterer.selection_["structure"] is None  # one K: nothing to compare
    assert [row["k"] for row in clusterer.selection_["scan"]] == [4]


def test_scaler_learns_the_training_split_only_and_predict_reuses_it():
    train, _ = planted_features(0, spread=1.0, n_tracks=300)
    test = train[:100] + 5.0  # a shifted split must not move the training statistics
    clusterer = AcousticClusterer(k=PLANTED_K, n_init=3).fit(train)

    np.testing.assert_allclose(clusterer.scaler_.mean_, train.mean(axis=0))
    assert not np.allclose(clusterer.scaler_.mean_, np.vstack([train, test]).mean(axis=0))
    standardised = (test - train.mean(axis=0)) / train.std(axis=0)
    expected = clusterer.kmeans_.predict(standardised)
    np.testing.assert_array_equal(clusterer.predict(test), expected)


def test_predict_of_training_tracks_reproduces_labels():
    features, _ = planted_features(1, spread=1.0, n_tracks=300)
    clusterer = AcousticClusterer(k=PLANTED_K, n_init=3).fit(features)
    np.testing.assert_array_equal(clusterer.predict(features), clusterer.labels_)


def feature_table(features):
    table = pd.DataFrame(features, columns=[f"mfcc_{i}" for i in range(features.shape[1])])
    table.insert(2, "chroma_0", np.nan)  # e.g. no chroma when working from mel files
    return table


def test_all_missing_training_column_is_dropped_and_recorded():
    features, _ = planted_features(0, spread=1.0, n_tracks=300)
    clusterer = AcousticClusterer(k=PLANTED_K, n_init=3).fit(feature_table(features))
    assert list(clusterer.feature_names_in_).count("chroma_0") == 1
    assert "chroma_0" not in clusterer.features_used_
    assert clusterer.features_dropped_ == ["chroma_0"]
    assert clusterer.selection_["features_dropped"] == ["chroma_0"]
    assert clusterer.scaler_.n_features_in_ == features.shape[1]


def test_missing_values_are_imputed_with_the_training_median():
    features, _ = planted_features(0, spread=1.0, n_tracks=300)
    table = feature_table(features)
    table.loc[:9, "mfcc_0"] = np.nan
    clusterer = AcousticClusterer(k=PLANTED_K, n_init=3).fit(table)
    assert clusterer.imputer_.statistics_[0] == pytest.approx(np.nanmedian(table["mfcc_0"]))

    new_tracks = feature_table(features[:3])
    new_tracks.loc[0, :] = np.nan  # a track whose features all failed
    assert clusterer.predict(new_tracks).shape == (3,)


def test_predict_selects_dataframe_columns_by_name():
    features, _ = planted_features(2, spread=1.0, n_tracks=300)
    table = feature_table(features)
    clusterer = AcousticClusterer(k=PLANTED_K, n_init=3).fit(table)
    shuffled = table[table.columns[::-1]]
    np.testing.assert_array_equal(clusterer.predict(shuffled), clusterer.labels_)
    with pytest.raises(DataError, match="mfcc_3"):
        clusterer.predict(table.drop(columns="mfcc_3"))


def test_minibatch_algorithm_clusters_too():
    features, truth = planted_features(0, spread=1.0)
    clusterer = AcousticClusterer(k=PLANTED_K, algorithm="minibatch", n_init=3).fit(features)
    assert adjusted_rand_score(truth, clusterer.predict(features)) > 0.95


def test_fewer_training_tracks_than_k_is_a_config_error():
    features, _ = planted_features(0, spread=1.0, n_tracks=5)
    with pytest.raises(ConfigError, match="k=6 needs at least 6 training tracks, got 5"):
        AcousticClusterer(k=6).fit(features)
    with pytest.raises(ConfigError, match="k_range"):
        AcousticClusterer(k_range=(2, 5)).fit(features)


@pytest.mark.parametrize(
    ("settings", "parameter"),
    [
        ({"k": 1}, "'k'"),
        ({"k": "many"}, "'k'"),
        ({"k_range": (5, 3)}, "'k_range'"),
        ({"k_range": (1, 3)}, "'k_range'"),
        ({"algorithm": "dbscan"}, "'algorithm'"),
        ({"n_init": 0}, "'n_init'"),
        ({"silhouette_sample": 1}, "'silhouette_sample'"),
    ],
)
def test_invalid_settings_are_config_errors_naming_the_parameter(settings, parameter):
    features, _ = planted_features(0, spread=1.0, n_tracks=50)
    with pytest.raises(ConfigError, match=parameter):
        AcousticClusterer(**settings).fit(features)


def test_init_only_stores_settings():
    clusterer = AcousticClusterer(k="nonsense")  # validated in fit, not here
    assert clusterer.get_params()["k"] == "nonsense"


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        AcousticClusterer().predict(np.zeros((2, 3)))


def test_infinite_features_are_a_data_error():
    features, _ = planted_features(0, spread=1.0, n_tracks=50)
    features[0, 0] = np.inf
    with pytest.raises(DataError, match="infinite"):
        AcousticClusterer(k=3).fit(features)


def test_kneedle_finds_the_elbow_of_a_bent_curve():
    ks = np.arange(2, 11)
    inertia = np.where(ks <= 5, 100.0 - 25 * (ks - 2), 25.0 - 2 * (ks - 5))
    assert kneedle_elbow(ks, inertia) == 5
    assert kneedle_elbow(ks, 100.0 - ks) is None  # a straight line has no elbow
    assert kneedle_elbow(ks[:2], inertia[:2]) is None


def test_pick_k_rejects_an_elbow_with_poor_silhouette():
    scan = [
        {"k": k, "inertia": inertia, "silhouette": silhouette}
        for k, inertia, silhouette in [(4, 100, 0.50), (5, 40, 0.30), (6, 30, 0.29), (7, 25, 0.28)]
    ]
    decision = pick_k(scan)
    assert decision["elbow_k"] == 5
    assert decision["k"] == decision["best_silhouette_k"] == 4
    assert "below" in decision["reason"]


#: Kaufman & Rousseeuw (1990): a best average silhouette below 0.25 means "no substantial
#: structure has been found"; above 0.5, "a reasonable structure".
NO_STRUCTURE_SILHOUETTE, REASONABLE_SILHOUETTE = 0.25, 0.5


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_scan_from_two_finds_four_separated_blobs_in_ten_dimensions(seed):
    """The true K lies inside the scan, not at its edge: the rule must pick it, not a neighbour."""
    features, truth = make_blobs(n_samples=400, n_features=10, centers=4, cluster_std=1.0,
                                 center_box=(-10, 10), random_state=seed)
    clusterer = AcousticClusterer(k_range=(2, 10), n_init=3, random_state=seed).fit(features)
    assert clusterer.n_clusters_ == 4, clusterer.selection_["reason"]
    assert adjusted_rand_score(truth, clusterer.labels_) == pytest.approx(1.0)
    chosen = next(row for row in clusterer.selection_["scan"] if row["k"] == 4)
    assert chosen["silhouette"] > REASONABLE_SILHOUETTE


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n_tracks", "n_features", "k_range"), [(400, 10, (2, 10)), (100, 39, (5, 10))])
def test_scan_of_structureless_features_says_so_and_takes_the_target_k(seed, n_tracks, n_features, k_range):
    """Gaussian noise has no clusters: the scan must say so, and K is the target label count, not the scan's edge."""
    noise = np.random.default_rng(seed).normal(size=(n_tracks, n_features))
    selection = AcousticClusterer(k_range=k_range, target_k=8, n_init=3, random_state=seed).fit(noise).selection_
    silhouettes = [row["silhouette"] for row in selection["scan"]]
    assert max(silhouettes) < NO_STRUCTURE_SILHOUETTE, silhouettes
    assert selection["structure"] == "none", selection["reason"]
    assert selection["k"] == selection["target_k"] == 8
    assert selection["rule"] == "target_k_without_structure"
    assert selection["reason"].startswith("no cluster structure in the scan")
    assert selection["knee_gap"] < KNEE_MIN_GAP


def test_planted_clusters_at_the_edge_of_the_scan_are_structure_not_noise():
    """Five clear clusters scanned from K = 5: no knee inside the scan and a falling silhouette, but
    a reasonable one (above 0.5), so K stays the best silhouette's, the true 5."""
    features, truth = make_blobs(n_samples=450, n_features=12, centers=5, cluster_std=1.5,
                                 center_box=(-10, 10), random_state=0)
    clusterer = AcousticClusterer(k_range=(5, 10), target_k=8, n_init=3).fit(features)
    assert clusterer.selection_["structure"] == "found"
    assert clusterer.n_clusters_ == 5
    assert adjusted_rand_score(truth, clusterer.labels_) > 0.99


def scan_of(silhouettes, inertia=None):
    ks = range(5, 5 + len(silhouettes))
    inertia = inertia or [100.0 - 10 * i for i in range(len(silhouettes))]  # a straight line: no knee
    return [{"k": k, "inertia": w, "silhouette": s} for k, w, s in zip(ks, inertia, silhouettes)]


def test_pick_k_takes_the_target_only_when_neither_curve_shows_structure():
    flat = scan_of([0.20, 0.205, 0.19, 0.18, 0.17, 0.17])
    assert pick_k(flat, target_k=8)["k"] == 8
    assert pick_k(flat, target_k=8)["structure"] == "none"
    rising = scan_of([0.19, 0.20, 0.21, 0.21, 0.21, 0.22])  # the make-demo corpus' silhouettes
    assert pick_k(rising, target_k=8)["structure"] == "found"
    knee = scan_of([0.20, 0.19, 0.18, 0.17, 0.16, 0.15], inertia=[100, 20, 18, 16, 14, 12])
    assert (pick_k(knee, target_k=8)["k"], pick_k(knee, target_k=8)["structure"]) == (6, "found")
    reasonable = scan_of([0.60, 0.55, 0.5, 0.45, 0.4, 0.35])
    assert pick_k(reasonable, target_k=8)["k"] == 5
    # without a target the verdict is recorded but the elbow / silhouette rule still decides
    assert pick_k(flat)["structure"] == "none" and pick_k(flat)["k"] == 6


def test_a_target_k_outside_the_scan_is_clipped_to_it_and_the_reason_says_so():
    decision = pick_k(scan_of([0.05, 0.04, 0.04, 0.03]), target_k=12)
    assert decision["k"] == 8
    assert "clipped" in decision["reason"]
