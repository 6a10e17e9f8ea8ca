"""``moodscape run``: every stage once, then only the stages whose inputs or settings changed."""

from __future__ import annotations

import json
import shutil

import pytest

from cli_runner import invoke
from conftest import planted_k, run_args

pytestmark = pytest.mark.slow

ALL_STAGES = ["features", "cluster", "label", "pretrain", "train", "train-av", "infer", "report"]


def manifest(workdir):
    return json.loads((workdir / "manifest.json").read_text())["stages"]


def statuses(output: str) -> dict[str, str]:
    """Stage → status from the lines ``run`` prints as it goes (``<stage>: <status> ...``)."""
    found = {}
    for line in output.splitlines():
        stage, sep, rest = line.strip().partition(": ")
        if sep and stage in ALL_STAGES and stage not in found:
            found[stage] = rest.split(" —")[0].split(" in ")[0].strip()
    return found


def test_the_first_run_writes_every_stage(demo_run):
    stages = manifest(demo_run)
    assert set(ALL_STAGES) <= set(stages)
    for name in ("inference_lookup.csv", "embeddings.parquet", "catalog_tracks.parquet", "models/inference_bundle.pt",
                 "models/av_regressor.pth", "metrics/av.json"):
        assert (demo_run / name).is_file(), name


def test_a_second_run_with_nothing_changed_reruns_nothing(demo_run, demo_corpus):
    before = manifest(demo_run)
    result = invoke(*run_args(demo_corpus, demo_run))
    assert result.exit_code == 0, result.output
    assert statuses(result.output) == {stage: "current" for stage in ALL_STAGES}
    assert manifest(demo_run) == before


def test_changing_k_reruns_the_cluster_stage_and_everything_after_it(demo_run, demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir)
    k = planted_k(demo_corpus) + 1
    # fewer epochs for the stages that rerun anyway (pretrain's settings are untouched)
    result = invoke(*run_args(demo_corpus, workdir)[:-1], f"--set=cluster.k={k}", "--set=train.epochs=1", "--set=av.epochs=2")
    assert result.exit_code == 0, result.output
    found = statuses(result.output)
    # pretraining reads only the original tags, not the clusters, so it stays current
    assert found == {"features": "current", "cluster": "ran", "label": "ran", "pretrain": "current",
                     "train": "ran", "train-av": "ran", "infer": "ran", "report": "ran"}
    assert "cluster.k changed" in result.output
    assert json.loads((workdir / "cluster_selection.json").read_text())["k"] == k


def test_a_deleted_output_makes_its_stage_run_again(demo_run, demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir)
    (workdir / "inference_lookup.csv").unlink()
    result = invoke(*run_args(demo_corpus, workdir))
    assert result.exit_code == 0, result.output
    found = statuses(result.output)
    assert found["infer"] == "ran" and found["train"] == "current"
    assert "inference_lookup.csv is missing" in result.output
