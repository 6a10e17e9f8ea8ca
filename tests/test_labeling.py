"""Stage 2: ClusterNamer on tag matrices with planted signature tags."""

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from moodscape.errors import ConfigError, DataError
from moodscape.labeling import ClusterNamer, display_tag, tag_statistics

FREQUENT_TAGS = ["film", "happy"]  # on 30 % of all tracks, whatever they sound like
SIGNATURE_TAGS = {0: "energetic", 1: "calm", 2: "dark", 3: "epic"}
NOISE_TAGS = ["christmas", "travel", "sport"]
TAG_NAMES = FREQUENT_TAGS + list(SIGNATURE_TAGS.values()) + NOISE_TAGS


def planted_collection(seed=0, sizes=(300, 300, 300, 300), signature_share=0.18):
    """Tracks of four clusters; each cluster's signature tag is rarer than the frequent tags."""
    rng = np.random.default_rng(seed)
    cluster_ids = np.repeat(np.arange(len(sizes)), sizes)
    tags = pd.DataFrame(False, index=range(len(cluster_ids)), columns=TAG_NAMES)
    for tag in FREQUENT_TAGS:
        tags[tag] = rng.random(len(cluster_ids)) < 0.30
    for tag in NOISE_TAGS:
        tags[tag] = rng.random(len(cluster_ids)) < 0.03
    for cluster_id, tag in SIGNATURE_TAGS.items():
        share = np.where(cluster_ids == cluster_id, signature_share, 0.02)
        tags[tag] = rng.random(len(cluster_ids)) < share
    return cluster_ids, tags


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_names_come_from_signature_tags_not_from_frequent_ones(seed):
    cluster_ids, tags = planted_collection(seed)
    namer = ClusterNamer().fit(cluster_ids, tags)
    for cluster_id, tag in SIGNATURE_TAGS.items():
        assert namer.names_[cluster_id].split(" / ")[0] == display_tag(tag)
        # the frequent tags outnumber the signature tag in every cluster ...
        counts = namer.tag_statistics_.count.loc[cluster_id]
        assert counts["film"] > counts[tag]
    # ... yet never name one
    assert not any("Film" in name or "Happy" in name for name in namer.names_.values())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lift_recovers_the_planted_shares_within_sampling_error(seed):
    """Lift = share in the cluster / share in the collection, whose planted values are known.

    Frequent tags: 0.30 / 0.30 = 1. Signature tags: 0.18 in their cluster, 0.02 in the three
    others, so 0.18 / 0.06 = 3. Each observed share is binomial over the cluster's 300
    tracks; four standard errors of the share (divided by the collection share) bound the lift.
    """
    sizes, signature_share, other_share = (300, 300, 300, 300), 0.18, 0.02
    cluster_ids, tags = planted_collection(seed, sizes, signature_share)
    lift = ClusterNamer().fit(cluster_ids, tags).tag_lift_
    assert lift.shape == (4, len(TAG_NAMES))

    def tolerance(share: float, collection_share: float) -> float:
        return 4 * np.sqrt(share * (1 - share) / sizes[0]) / collection_share

    np.testing.assert_allclose(lift[FREQUENT_TAGS].to_numpy(), 1.0, atol=tolerance(0.30, 0.30))
    collection_share = (signature_share + 3 * other_share) / 4
    for cluster_id, tag in SIGNATURE_TAGS.items():
        expected = signature_share / collection_share
        assert lift.loc[cluster_id, tag] == pytest.approx(expected, abs=tolerance(signature_share, collection_share))


def test_score_is_the_prior_smoothed_log_odds_z_score():
    cluster_ids = np.array([0] * 10 + [1] * 30)
    tags = np.zeros((40, 1), dtype=bool)
    tags[:6, 0] = True  # 6 of 10 in cluster 0
    tags[10:13, 0] = True  # 9 of 40 in the collection
    stats = tag_statistics(cluster_ids, tags, ["dark"], prior=2.0)
    a, n, total, n_total, alpha = 6, 10, 9, 40, 2.0
    p = total / n_total
    cells = [a + alpha * p, n - a + alpha * (1 - p),
             total + alpha * p, n_total - total + alpha * (1 - p)]
    delta = np.log(cells[0] / cells[1]) - np.log(cells[2] / cells[3])
    variance = sum(1 / cell for cell in cells)
    assert stats.score.loc[0, "dark"] == pytest.approx(delta / np.sqrt(variance))
    assert stats.lift.loc[0, "dark"] == pytest.approx(0.6 / p)
    assert stats.size.tolist() == [10, 30]


def test_clusters_with_the_same_top_tag_get_unique_names_without_numbers():
    rng = np.random.default_rng(3)
    cluster_ids = np.repeat([0, 1], 200)
    tags = pd.DataFrame({
        "energetic": rng.random(400) < np.where(cluster_ids == 0, 0.6, 0.5),
        "party": rng.random(400) < np.where(cluster_ids == 0, 0.4, 0.02),
        "sport": rng.random(400) < np.where(cluster_ids == 1, 0.3, 0.02),
    })
    tags["energetic"] &= np.arange(400) < 300  # no energetic tracks in the rest of the collection
    cluster_ids = np.concatenate([cluster_ids[:300], np.full(100, 2)])
    namer = ClusterNamer(max_tags_in_name=1, min_lift=1.0).fit(cluster_ids, tags)
    names = [namer.names_[c] for c in (0, 1)]
    assert len(set(names)) == 2
    assert not any("(" in name for name in names)
    assert set(names) <= {"Energetic", "Party", "Sport"}


def test_name_clash_is_order_and_case_insensitive():
    namer = ClusterNamer(manual_names={5: "party / ENERGETIC"})
    cluster_ids = np.repeat([0, 5], 50)
    tags = np.zeros((100, 3), dtype=bool)
    tags[:30, :2] = True  # cluster 0: energetic and party
    namer.fit(cluster_ids, tags, ["energetic", "party", "calm"])
    assert namer.names_ == {0: "Energetic", 5: "party / ENERGETIC"}


def test_small_cluster_is_dropped_with_reason_and_gets_no_label():
    cluster_ids, tags = planted_collection(sizes=(300, 300, 300, 4), signature_share=0.9)
    namer = ClusterNamer(min_size=5).fit(cluster_ids, tags)
    assert set(namer.dropped_) == {3}
    assert "too small" in namer.dropped_[3] and "4 tracks" in namer.dropped_[3]
    assert namer.transform([3, 0]).tolist() == [None, namer.names_[0]]
    assert 3 not in namer.names_
    assert namer.profiles_[3]["name"] is None
    assert namer.profiles_[3]["dropped"] == namer.dropped_[3]


def test_cluster_without_distinctive_tag_is_dropped():
    cluster_ids, tags = planted_collection()
    tags.loc[cluster_ids == 2, "dark"] = False  # cluster 2 now carries only common tags
    namer = ClusterNamer().fit(cluster_ids, tags)
    assert "no distinctive tag" in namer.dropped_[2]
    assert namer.label_to_idx_ == {namer.names_[c]: i for i, c in enumerate([0, 1, 3])}


def test_manual_names_override_and_keep_a_cluster_without_distinctive_tag():
    cluster_ids, tags = planted_collection()
    tags.loc[cluster_ids == 2, "dark"] = False
    manual = {"2": "Cinematic Background", 0: "Calm"}  # TOML keys arrive as strings
    namer = ClusterNamer(manual_names=manual).fit(cluster_ids, tags)
    assert namer.names_[2] == "Cinematic Background"
    assert namer.names_[0] == "Calm"
    assert namer.names_[1] != "Calm"  # "Calm" was reserved; cluster 1 takes its next choice
    assert namer.profiles_[2]["named_by"] == "manual"
    assert namer.dropped_ == {}


def test_duplicate_manual_names_are_a_config_error():
    cluster_ids, tags = planted_collection()
    namer = ClusterNamer(manual_names={0: "Calm / Dark", 1: "dark / calm"})
    with pytest.raises(ConfigError, match="manual_names must be unique"):
        namer.fit(cluster_ids, tags)


def test_manual_name_for_a_missing_cluster_is_a_config_error():
    cluster_ids, tags = planted_collection()
    with pytest.raises(ConfigError, match=r"\[9\]"):
        ClusterNamer(manual_names={9: "Ghost"}).fit(cluster_ids, tags)


@pytest.mark.parametrize(
    ("settings_", "parameter"),
    [({"min_size": 0}, "'min_size'"), ({"prior": 0.0}, "'prior'"),
     ({"max_tags_in_name": 0}, "'max_tags_in_name'"), ({"min_lift": -1}, "'min_lift'"),
     ({"manual_names": ["Calm"]}, "'manual_names'")],
)
def test_invalid_settings_are_config_errors_naming_the_parameter(settings_, parameter):
    cluster_ids, tags = planted_collection()
    with pytest.raises(ConfigError, match=parameter):
        ClusterNamer(**settings_).fit(cluster_ids, tags)


def test_label_to_idx_follows_cluster_id_order():
    cluster_ids, tags = planted_collection()
    namer = ClusterNamer().fit(cluster_ids + 10, tags)
    assert list(namer.names_) == [10, 11, 12, 13]
    assert list(namer.label_to_idx_.values()) == [0, 1, 2, 3]
    assert list(namer.label_to_idx_) == [namer.names_[c] for c in (10, 11, 12, 13)]


def test_profiles_are_json_ready_and_ranked_by_score():
    cluster_ids, tags = planted_collection()
    profiles = ClusterNamer().fit(cluster_ids, tags).profiles_
    assert json.loads(json.dumps(profiles)) == profiles
    first = profiles[0]
    assert set(first) == {"cluster_id", "size", "name", "named_by", "dropped",
                          "distinctive_tags", "top_tags", "acoustic_features"}
    assert first["acoustic_features"] == []  # fitted without features
    scores = [tag["score"] for tag in first["top_tags"]]
    assert scores == sorted(scores, reverse=True)
    assert first["top_tags"][0]["tag"] == "energetic" and first["top_tags"][0]["distinctive"]


def test_lift_table_rows_are_names_and_columns_top_tags():
    cluster_ids, tags = planted_collection(sizes=(300, 300, 300, 4), signature_share=0.9)
    namer = ClusterNamer().fit(cluster_ids, tags)
    table = namer.lift_table(n_top=1)
    assert list(table.index) == [namer.names_[0], namer.names_[1], namer.names_[2],
                                 "cluster 3 (dropped)"]
    assert list(table.columns) == list(SIGNATURE_TAGS.values())


def test_transform_rejects_unknown_cluster_ids():
    cluster_ids, tags = planted_collection()
    namer = ClusterNamer().fit(cluster_ids, tags)
    with pytest.raises(DataError, match="not seen in fit"):
        namer.transform([0, 7])


@pytest.mark.parametrize(
    ("tag_matrix", "message"),
    [(np.ones((3, 2)), "n_tracks"), (np.full((4, 2), 2), "multi-hot"),
     (np.full((4, 2), np.nan), "multi-hot")],
)
def test_malformed_tag_matrix_is_a_data_error(tag_matrix, message):
    with pytest.raises(DataError, match=message):
        ClusterNamer().fit([0, 0, 1, 1], tag_matrix, ["a", "b"])


def test_display_tag_title_cases_words():
    assert display_tag("dark_ambient") == "Dark Ambient"
    assert display_tag("upbeat") == "Upbeat"


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    n_tracks=st.integers(1, 60),
    n_tags=st.integers(1, 6),
    n_clusters=st.integers(1, 6),
    min_size=st.integers(1, 6),
    max_tags_in_name=st.integers(1, 3),
    min_lift=st.sampled_from([0.0, 1.0, 1.2]),
)
def test_names_are_unique_and_label_to_idx_is_a_bijection(
    data, n_tracks, n_tags, n_clusters, min_size, max_tags_in_name, min_lift
):
    cluster_ids = np.array(data.draw(st.lists(st.integers(0, n_clusters - 1),
                                              min_size=n_tracks, max_size=n_tracks)))
    tags = np.array(data.draw(st.lists(st.lists(st.booleans(), min_size=n_tags, max_size=n_tags),
                                       min_size=n_tracks, max_size=n_tracks)))
    namer = ClusterNamer(min_size=min_size, min_tag_count=1, min_lift=min_lift,
                         min_score=-np.inf, max_tags_in_name=max_tags_in_name)
    namer.fit(cluster_ids, tags, [f"tag{i}" for i in range(n_tags)])

    names = list(namer.names_.values())
    assert len(set(names)) == len(names)
    assert sorted(namer.label_to_idx_.values()) == list(range(len(names)))
    assert set(namer.label_to_idx_) == set(names)
    assert set(namer.names_) | set(namer.dropped_) == set(cluster_ids.tolist())
    assert not set(namer.names_) & set(namer.dropped_)
    expected = [namer.names_.get(c) for c in cluster_ids.tolist()]
    assert namer.transform(cluster_ids).tolist() == expected
