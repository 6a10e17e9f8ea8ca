"""The label stage names every cluster big enough, from tags or from its sound, and stops only when it cannot.

The work directories here hold synthetic features of the demo tracks, Gaussian noise with
or without planted groups, which the demo's tags know nothing about: what gets a name gets
it from the features. On plain noise the cluster stage must say it found no structure.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli_runner import invoke, one_line_error
from moodscape.config import Settings
from moodscape.features import FEATURE_NAMES, FEATURE_WORDS
from moodscape.pipeline.collection import load_collection


PLANTED = {"bpm": 6.0, "spectral_centroid_mean": 6.0, "onset_rate": -6.0}
"""Group g of the planted features sits this many standard deviations off in its feature: Fast, Bright, Smooth."""


def noise_features(demo_corpus: Path, workdir: Path, planted: dict[str, float] | None = None) -> None:
    """``features.parquet`` of Gaussian noise, one row per demo track.

    With ``planted``, track i is in group g = i % len(planted): off by the group's offset in
    its feature, and by 4 in four chroma bins of its own (which have no word), so that the
    groups stand out of the noise of the other columns as clusters.
    """
    tracks = load_collection(Settings.load(demo_corpus / "moodscape.toml")).tracks
    values = np.random.default_rng(0).normal(size=(len(tracks), len(FEATURE_NAMES)))
    for group, (feature, offset) in enumerate((planted or {}).items()):
        members = slice(group, None, len(planted))
        values[members, FEATURE_NAMES.index(feature)] += offset
        chroma = FEATURE_NAMES.index(f"chroma_degree_{4 * group}")
        values[members, chroma:chroma + 4] += 4.0
    workdir.mkdir()
    pd.concat([tracks[["track_id"]].reset_index(drop=True), pd.DataFrame(values, columns=FEATURE_NAMES)],
              axis=1).to_parquet(workdir / "features.parquet", index=False)


def run(command: str, demo_corpus: Path, workdir: Path, *settings: str):
    return invoke(command, "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                  *[f"--set={setting}" for setting in settings])


@pytest.fixture()
def clustered(demo_corpus, tmp_path) -> Path:
    """A work directory whose demo tracks fall in three clusters, one per planted feature."""
    workdir = tmp_path / "run"
    noise_features(demo_corpus, workdir, PLANTED)
    result = run("cluster", demo_corpus, workdir, "cluster.k=3")
    assert result.exit_code == 0, result.output
    return workdir


def label(demo_corpus: Path, workdir: Path, *settings: str):
    return run("label", demo_corpus, workdir, *settings)


def test_clusters_without_a_distinctive_tag_are_named_after_their_sound(demo_corpus, clustered):
    result = label(demo_corpus, clustered, "label.min_score=1000")
    assert result.exit_code == 0, result.output
    profiles = json.loads((clustered / "cluster_profiles.json").read_text())["clusters"]
    assert [cluster["named_by"] for cluster in profiles] == ["acoustic"] * 3
    names = json.loads((clustered / "label_to_idx.json").read_text())
    assert sorted(names) == sorted(cluster["name"] for cluster in profiles)
    first_words = set()
    for cluster in profiles:
        naming = [feature for feature in cluster["acoustic_features"] if feature["in_name"]]
        assert [feature["word"] for feature in naming] == cluster["name"].split(" / ")
        first_words.add((naming[0]["feature"], cluster["name"].split(" / ")[0]))
        assert abs(naming[0]["z"]) > 1.0
    planted_words = {feature: FEATURE_WORDS[feature][2 if offset > 0 else 1] for feature, offset in PLANTED.items()}
    assert first_words == set(planted_words.items()) == {("bpm", "Fast"), ("spectral_centroid_mean", "Bright"),
                                                        ("onset_rate", "Smooth")}
    labels = pd.read_csv(clustered / "tracks_with_cluster_names.csv")
    assert len(labels) == len(pd.read_csv(clustered / "clusters.csv"))


def test_without_acoustic_names_no_distinctive_tag_stops_the_stage_with_the_settings_to_change(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_score=1000", "label.acoustic_names=false"))
    assert "no cluster" in line
    for setting in ("label.acoustic_names", "label.min_score", "label.manual_names"):
        assert setting in line
    assert not (clustered / "tracks_with_cluster_names.csv").exists()


def test_clusters_all_too_small_name_label_min_size_and_nothing_about_tags(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_size=100000"))
    assert "label.min_size" in line
    assert "tag" not in line and "label.manual_names" not in line


def test_one_named_cluster_is_not_enough_for_a_classifier(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_score=1000", "label.acoustic_names=false",
                                'label.manual_names={"0": "Only"}'))
    assert "two" in line
    assert "label.manual_names" in line


def test_label_without_features_names_the_command_to_run(demo_corpus, clustered):
    (clustered / "features.parquet").unlink()
    line = one_line_error(label(demo_corpus, clustered))
    assert "features.parquet" in line and "moodscape features" in line


def test_a_scan_of_structureless_features_says_so_on_the_console(demo_corpus, tmp_path):
    workdir = tmp_path / "scan"
    noise_features(demo_corpus, workdir)
    result = run("cluster", demo_corpus, workdir, "cluster.k=auto", "cluster.target_k=7")
    assert result.exit_code == 0, result.output
    printed = " ".join(result.output.split())
    assert "no cluster structure in the scan" in printed and "cluster.target_k" in printed
    selection = json.loads((workdir / "cluster_selection.json").read_text())
    assert (selection["structure"], selection["k"]) == ("none", 7)
