"""The artifacts contract: atomic writes, schema checks and the manifest."""

import json

import pandas as pd
import pytest

from moodscape import artifacts
from moodscape.artifacts import Workdir
from moodscape.errors import ArtifactError


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "table.csv"
    artifacts.write_table(target, pd.DataFrame({"track_id": ["a"], "x": [1]}))
    with pytest.raises(RuntimeError):
        with artifacts.atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("killed")
    assert pd.read_csv(target)["track_id"].tolist() == ["a"]
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]


def test_read_table_names_missing_files_and_columns(tmp_path):
    with pytest.raises(ArtifactError, match="missing artifact"):
        artifacts.read_table(tmp_path / "clusters.csv")
    artifacts.write_table(tmp_path / "clusters.csv", pd.DataFrame({"track_id": ["1"]}))
    with pytest.raises(ArtifactError, match="cluster_id"):
        artifacts.read_table(tmp_path / "clusters.csv", ["track_id", "cluster_id"])


def test_track_ids_stay_strings(tmp_path):
    artifacts.write_table(tmp_path / "t.csv", pd.DataFrame({"track_id": ["007", "10"], "cluster_id": [1, 2]}))
    assert artifacts.read_table(tmp_path / "t.csv")["track_id"].tolist() == ["007", "10"]


def test_manifest_records_settings_inputs_outputs_and_versions(tmp_path):
    workdir = Workdir(tmp_path)
    source = tmp_path / "input.tsv"
    source.write_text("x")
    artifacts.write_json(workdir.cluster_selection, {"k": 3})
    entry = artifacts.record_stage(workdir, "cluster", [workdir.cluster_selection], {"k": 3}, [source])
    manifest = json.loads(workdir.manifest.read_text())
    assert manifest["stages"]["cluster"] == entry
    assert entry["inputs"]["input.tsv"] == artifacts.file_hash(source)  # relative: the run can be moved
    assert "cluster_selection.json" in entry["outputs"]
    assert entry["settings_hash"] == artifacts.settings_hash({"k": 3})
    assert "numpy" in entry["versions"]


def test_json_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        artifacts.write_json(tmp_path / "x.json", {"a": float("nan")})
    assert not (tmp_path / "x.json").exists()


def recorded_stage(tmp_path):
    workdir = Workdir(tmp_path)
    source = tmp_path / "input.tsv"
    source.write_text("x")
    artifacts.write_json(workdir.cluster_selection, {"k": 3})
    settings = {"cluster": {"k": 3, "n_init": 10}}
    artifacts.record_stage(workdir, "cluster", [workdir.cluster_selection], settings, [source])
    return workdir, source, settings


def test_a_recorded_stage_is_current_until_something_it_depends_on_changes(tmp_path):
    workdir, source, settings = recorded_stage(tmp_path)
    assert artifacts.stale_reason(workdir, "cluster", settings, [source]) is None
    assert artifacts.stale_reason(workdir, "label", settings, [source]) == "not run yet"
    changed = {"cluster": {"k": 4, "n_init": 10}}
    assert artifacts.stale_reason(workdir, "cluster", changed, [source]) == "setting cluster.k changed (3 → 4)"
    other = tmp_path / "other.tsv"
    other.write_text("y")
    assert "input files changed" in artifacts.stale_reason(workdir, "cluster", settings, [source, other])
    source.write_text("x, edited")
    assert artifacts.stale_reason(workdir, "cluster", settings, [source]) == "input input.tsv changed"


def test_a_missing_or_edited_output_makes_its_stage_stale(tmp_path):
    workdir, source, settings = recorded_stage(tmp_path)
    artifacts.write_json(workdir.cluster_selection, {"k": 5})
    assert "cluster_selection.json changed" in artifacts.stale_reason(workdir, "cluster", settings, [source])
    workdir.cluster_selection.unlink()
    assert "cluster_selection.json is missing" in artifacts.stale_reason(workdir, "cluster", settings, [source])
