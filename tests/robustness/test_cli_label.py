"""A label stage that names fewer than two clusters stops there, saying why and what to change."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cli_runner import invoke
from moodscape.config import Settings
from moodscape.pipeline.collection import load_collection


@pytest.fixture()
def clustered(demo_corpus, tmp_path) -> Path:
    """A work directory whose clusters.csv puts the demo tracks in three clusters, in turn."""
    tracks = load_collection(Settings.load(demo_corpus / "moodscape.toml")).tracks
    workdir = tmp_path / "run"
    workdir.mkdir()
    clusters = pd.DataFrame({"track_id": tracks["track_id"], "cluster_id": [index % 3 for index in range(len(tracks))]})
    clusters.to_csv(workdir / "clusters.csv", index=False)
    return workdir


def label(demo_corpus: Path, workdir: Path, *settings: str):
    return invoke("label", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                  *[f"--set={setting}" for setting in settings])


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_no_distinctive_tag_stops_the_label_stage_with_the_settings_to_change(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_score=1000"))
    assert "no cluster" in line
    for setting in ("label.min_score", "label.manual_names"):
        assert setting in line
    assert not (clustered / "tracks_with_cluster_names.csv").exists()


def test_clusters_all_too_small_name_label_min_size(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_size=100000"))
    assert "label.min_size" in line


def test_one_named_cluster_is_not_enough_for_a_classifier(demo_corpus, clustered):
    line = one_line_error(label(demo_corpus, clustered, "label.min_score=1000", 'label.manual_names={"0": "Only"}'))
    assert "two" in line
    assert "label.manual_names" in line
