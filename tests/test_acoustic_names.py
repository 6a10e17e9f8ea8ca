"""Stage 2 without tags: clusters named after the stage-1 features that set them apart."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.acoustic_names import TYPICAL, acoustic_profile, describing_words, name_parts
from moodscape.clustering import AcousticClusterer, fit_standardiser
from moodscape.errors import DataError
from moodscape.features import FEATURE_NAMES, FEATURE_WORDS
from moodscape.labeling import ClusterNamer

FEATURES = ["bpm", "spectral_centroid_mean", "spectral_rolloff_mean", "onset_rate", "mode_major", "mfcc_mean_3"]


def standardised(values: np.ndarray, columns=FEATURES) -> pd.DataFrame:
    imputer, scaler = fit_standardiser(values)
    return pd.DataFrame(scaler.transform(imputer.transform(values)), columns=columns)


def planted_sound(offsets: dict[int, dict[str, float]], size=60, seed=0):
    """Clusters of ``size`` tracks, each off by ``offsets[c][feature]`` (raw units of a unit-noise feature)."""
    rng = np.random.default_rng(seed)
    cluster_ids = np.repeat(np.arange(len(offsets)), size)
    values = rng.normal(size=(len(cluster_ids), len(FEATURES)))
    for cluster_id, shifts in offsets.items():
        for feature, shift in shifts.items():
            values[cluster_ids == cluster_id, FEATURES.index(feature)] += shift
    return cluster_ids, standardised(values)


def no_tags(n_tracks: int) -> tuple[np.ndarray, list[str]]:
    return np.zeros((n_tracks, 0), dtype=bool), []


def test_every_worded_feature_is_a_feature_and_every_word_means_one_quality():
    assert set(FEATURE_WORDS) <= set(FEATURE_NAMES)
    quality_of = {}
    for quality, low, high in FEATURE_WORDS.values():
        assert low != high
        for word in (low, high):
            assert quality_of.setdefault(word, quality) == quality, word


def test_profile_is_the_k_means_centroid_in_the_clustering_space():
    """The z of a cluster's mean, standardised as the clustering does, is its K-Means centroid."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(200, 5)) + np.repeat(rng.normal(scale=4, size=(4, 5)), 50, axis=0)
    values[::7, 2] = np.nan  # imputed with the training median, as the clustering does
    clusterer = AcousticClusterer(k=4, n_init=5).fit(values)
    profile = acoustic_profile(clusterer.labels_, standardised(values, [f"x{i}" for i in range(5)]))
    np.testing.assert_allclose(profile.to_numpy(), clusterer.kmeans_.cluster_centers_, atol=1e-6)
    assert list(profile.index) == [0, 1, 2, 3]


def test_words_come_from_the_farthest_worded_features_one_per_quality():
    z = pd.Series({"mfcc_mean_3": 2.0, "bpm": 1.2, "spectral_rolloff_mean": 1.0, "spectral_centroid_mean": 0.9,
                   "onset_rate": 0.7, "mode_major": -0.4})
    words = describing_words(z, min_z=0.5)
    # mfcc_mean_3 has no word, the centroid repeats the rolloff's quality, the mode is too close to the mean
    assert [(w["feature"], w["word"]) for w in words] == [("bpm", "Fast"), ("spectral_rolloff_mean", "Bright"),
                                                          ("onset_rate", "Percussive")]
    assert [w["word"] for w in describing_words(-z, min_z=0.3)] == ["Slow", "Dark", "Smooth", "Major"]


def test_a_collection_without_tags_gets_every_cluster_named_from_its_sound():
    cluster_ids, features = planted_sound({0: {"bpm": 3, "spectral_centroid_mean": 2},
                                           1: {"bpm": -3, "mode_major": -3},
                                           2: {"onset_rate": 3, "spectral_rolloff_mean": -2}})
    namer = ClusterNamer().fit(cluster_ids, *no_tags(len(cluster_ids)), acoustic_features=features)
    assert namer.dropped_ == {}
    assert [set(name_parts(name)[:2]) for name in namer.names_.values()] == [{"Fast", "Bright"}, {"Slow", "Minor"},
                                                                              {"Percussive", "Dark"}]
    profiles = {p["cluster_id"]: p for p in namer.profiles_}
    assert {p["named_by"] for p in profiles.values()} == {"acoustic"}
    naming = {(f["feature"], f["word"]) for f in profiles[1]["acoustic_features"] if f["in_name"]}
    assert {("bpm", "Slow"), ("mode_major", "Minor")} <= naming
    assert all(abs(f["z"]) >= 0.5 for f in profiles[1]["acoustic_features"] if f["in_name"])


def test_tag_names_come_first_and_an_acoustic_name_avoids_a_tag_name():
    """Cluster 0 has a distinctive tag, "dark"; cluster 1 none, and sounds darkest: its first choice
    "Dark" is the tag name's, so it takes its next words."""
    cluster_ids, features = planted_sound({0: {"bpm": 1}, 1: {"spectral_centroid_mean": -3, "bpm": -2}, 2: {"bpm": 2}})
    tags = pd.DataFrame({"dark": cluster_ids == 0})
    namer = ClusterNamer(max_words_in_name=1).fit(cluster_ids, tags, acoustic_features=features)
    assert namer.names_[0] == "Dark"
    assert namer.profiles_[0]["named_by"] == "tags"
    assert namer.names_[1] == "Slow"
    assert [f["feature"] for f in namer.profiles_[1]["acoustic_features"] if f["in_name"]] == ["bpm"]
    assert namer.profiles_[0]["acoustic_features"] and not any(f["in_name"] for f in namer.profiles_[0]["acoustic_features"])


def test_clusters_that_sound_alike_get_unique_names_without_numbers():
    cluster_ids, features = planted_sound({0: {"bpm": 4, "spectral_centroid_mean": 3, "onset_rate": 2},
                                           1: {"bpm": 4, "spectral_centroid_mean": 3, "onset_rate": 2},
                                           2: {"bpm": -4}})
    namer = ClusterNamer(max_words_in_name=2).fit(cluster_ids, *no_tags(len(cluster_ids)), acoustic_features=features)
    first, second = namer.names_[0], namer.names_[1]
    assert first != second and "(" not in first + second
    assert {frozenset(name_parts(first)), frozenset(name_parts(second))} <= {
        frozenset(pair) for pair in (("Fast", "Bright"), ("Fast", "Percussive"), ("Bright", "Percussive"))}


def test_a_cluster_at_the_centre_of_the_collection_is_typical():
    cluster_ids, features = planted_sound({0: {"bpm": 4}, 1: {}, 2: {"bpm": -4}}, size=200)
    namer = ClusterNamer(min_feature_z=0.5).fit(cluster_ids, *no_tags(len(cluster_ids)), acoustic_features=features)
    assert namer.names_ == {0: "Fast", 1: TYPICAL, 2: "Slow"}
    assert not any(f["in_name"] for f in namer.profiles_[1]["acoustic_features"])


def test_acoustic_names_off_drops_clusters_without_a_distinctive_tag():
    cluster_ids, features = planted_sound({0: {"bpm": 4}, 1: {"bpm": -4}})
    namer = ClusterNamer(acoustic_names=False).fit(cluster_ids, *no_tags(len(cluster_ids)), acoustic_features=features)
    assert namer.names_ == {}
    assert set(namer.dropped_) == {0, 1} and "no distinctive tag" in namer.dropped_[0]
    assert namer.profiles_[0]["acoustic_features"]  # the profile is still there to read


def test_small_clusters_stay_dropped_and_manual_names_stay_first():
    cluster_ids, features = planted_sound({0: {"bpm": 4}, 1: {"bpm": -4}, 2: {"onset_rate": 4}})
    keep = (cluster_ids != 2) | (np.arange(len(cluster_ids)) % 60 < 3)  # cluster 2: 3 tracks
    namer = ClusterNamer(manual_names={1: "Night drive"}).fit(cluster_ids[keep], *no_tags(int(keep.sum())),
                                                              acoustic_features=features[keep].reset_index(drop=True))
    assert namer.names_[1] == "Night drive" and namer.profiles_[1]["named_by"] == "manual"
    assert name_parts(namer.names_[0])[0] == "Fast" and namer.profiles_[0]["named_by"] == "acoustic"
    assert "too small" in namer.dropped_[2] and 2 not in namer.names_


@pytest.mark.parametrize("features", [pd.DataFrame({"bpm": [0.0, np.nan]}), np.zeros((2, 1)),
                                      pd.DataFrame({"bpm": [0.0, 1.0, 2.0]})])
def test_acoustic_features_must_be_one_finite_row_per_track(features):
    with pytest.raises(DataError, match="acoustic features"):
        ClusterNamer(min_size=1).fit([0, 1], *no_tags(2), acoustic_features=features)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 8), st.integers(1, 3), st.integers(0, 2**16))
def test_acoustic_names_are_unique_and_label_to_idx_is_a_bijection(n_clusters, max_words, seed):
    rng = np.random.default_rng(seed)
    cluster_ids = np.repeat(np.arange(n_clusters), 10)
    features = standardised(rng.normal(size=(len(cluster_ids), len(FEATURES)))
                            + np.repeat(rng.choice([-2.0, 0.0, 2.0], size=(n_clusters, len(FEATURES))), 10, axis=0))
    namer = ClusterNamer(max_words_in_name=max_words).fit(cluster_ids, *no_tags(len(cluster_ids)),
                                                          acoustic_features=features)
    assert set(namer.names_) == set(range(n_clusters))
    keys = {frozenset(part.casefold() for part in name.split(" / ")) for name in namer.names_.values()}
    assert len(keys) == n_clusters
    assert sorted(namer.label_to_idx_.values()) == list(range(n_clusters))
