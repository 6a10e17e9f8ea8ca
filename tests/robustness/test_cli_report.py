"""The report over a damaged or crafted run ends in one line naming the file and what to do."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from cli_runner import invoke


class Payload:
    """What a crafted checkpoint holds: an object whose unpickling calls a function (a harmless one here)."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.fixture()
def run_copy(demo_run, tmp_path) -> Path:
    """The demo run's artifacts, without the caches, where a test may damage them."""
    return Path(shutil.copytree(demo_run, tmp_path / "run", ignore=shutil.ignore_patterns("mels", "jobs", "cache", ".*")))


def report(demo_corpus: Path, workdir: Path):
    return invoke("report", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir)


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error:") and text.count("error:") == 1, result.output
    return text


def craft_classifier(workdir: Path) -> Path:
    checkpoint = workdir / "models" / "classifier.pt"
    torch.save({"state_dict": {"head.weight": torch.zeros(2, 2)}, "extra": Payload()}, checkpoint)
    return checkpoint


def test_a_crafted_checkpoint_stops_the_report_with_one_line(demo_corpus, run_copy):
    checkpoint = craft_classifier(run_copy)
    line = one_line_error(report(demo_corpus, run_copy))
    assert str(checkpoint) in line


def test_a_crafted_checkpoint_with_a_matching_description_stops_the_report_with_one_line(demo_corpus, run_copy):
    checkpoint = craft_classifier(run_copy)
    description = checkpoint.with_name("classifier.pt.json")
    crafted = {"sha256": hashlib.sha256(checkpoint.read_bytes()).hexdigest(), "entries": {},
               "shapes": {"state_dict/layer1.0.conv1.lora_A.weight": [8, 64, 3, 3]}}
    description.write_text(json.dumps(crafted), encoding="utf-8")
    line = one_line_error(report(demo_corpus, run_copy))
    assert str(description) in line
    assert "moodscape train" in line


def test_a_binary_metrics_file_stops_the_report_with_one_line(demo_corpus, run_copy):
    metrics = run_copy / "metrics" / "classifier.json"
    metrics.write_bytes(bytes(range(128, 256)))
    line = one_line_error(report(demo_corpus, run_copy))
    assert str(metrics) in line
    assert "moodscape train" in line
