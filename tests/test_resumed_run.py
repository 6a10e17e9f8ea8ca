"""A ``moodscape run`` killed after stage 1a and run again computes what an uninterrupted one does.

Each run is a fresh ``moodscape`` process with its default thread settings, as a user
starts it: the local Dask cluster of the per-track maps once left ``OMP_NUM_THREADS=1``
in the main process, so that the stages after it trained on one thread, and a resumed
run (whose first Dask map came later) gave other models than an uninterrupted one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import planted_k

pytestmark = pytest.mark.slow

TINY_RUN = ["--set=pretrain.epochs=1", "--set=train.epochs=2", "--set=av.epochs=30", "--set=features.n_workers=2",
            "--set=label.min_size=3", "--set=label.min_tag_count=2", "--set=label.min_score=1.0"]
COMPARED = ["models/backbone.pt", "models/classifier.pt", "models/av_regressor.pth", "models/inference_bundle.pt",
            "inference_lookup.csv", "clusters.csv"]


def user_env() -> dict[str, str]:
    """The environment of a user's shell: no thread limits inherited from the test process."""
    return {key: value for key, value in os.environ.items()
            if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


def moodscape(*args) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "moodscape", *map(str, args)]
    result = subprocess.run(command, env=user_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result


def tiny_settings(corpus: Path) -> list[str]:
    """:data:`TINY_RUN` at the corpus's planted K."""
    return [*TINY_RUN, f"--set=cluster.k={planted_k(corpus)}"]


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory) -> Path:
    corpus = tmp_path_factory.mktemp("tiny")
    moodscape("demo-data", "--out", corpus, "--tracks", 72, "--musav-tracks", 45, "--seconds", 6, "--seed", 4)
    return corpus


def test_a_run_resumed_after_features_gives_byte_identical_models_and_lookup(tiny_corpus, tmp_path):
    config = tiny_corpus / "moodscape.toml"
    settings = tiny_settings(tiny_corpus)
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    moodscape("run", "--config", config, "--workdir", straight, *settings)
    moodscape("features", "--config", config, "--workdir", resumed, *settings)  # where the first run was killed
    moodscape("run", "--config", config, "--workdir", resumed, *settings)
    for name in COMPARED:
        assert (straight / name).read_bytes() == (resumed / name).read_bytes(), name
