"""Shared fixtures: one small demo corpus and one run of it per test session, built once.

``make test`` runs the suite on several pytest-xdist workers; the corpus and the run are
built by whichever worker asks first and shared by the others (a file lock in the
session's common temporary folder), so a session builds each once whatever the number
of workers.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_runner import invoke
from filelock import FileLock

# numba (UMAP) segfaults on some CPUs (AVX-512 Zen 5) unless it compiles for a generic one
os.environ.setdefault("NUMBA_CPU_NAME", "generic")

SMALL_DEMO = {"tracks": 150, "musav_tracks": 600, "seconds": 12.0, "seed": 0}

LONGEST_MODULES = [
    "test_evidence.py", "test_pipeline_network.py", "test_workflow.py", "robustness/test_faults_kill.py",
    "robustness/test_stage_metadata.py", "test_resumed_run.py", "training/test_av.py", "test_folder_collection_e2e.py",
    "training/test_classify.py", "training/test_contrastive.py", "api/test_projections.py",
]
"""The modules that took longest in ``--durations`` (longest first): started first, so no worker
runs one of them alone at the end of the session (``make test`` passes ``--no-loadscope-reorder``,
which keeps this order instead of ordering modules by their number of tests)."""


def pytest_collection_modifyitems(session, config, items):
    """Run :data:`LONGEST_MODULES` first, in that order; the other modules keep theirs."""
    def rank(item) -> int:
        module = item.nodeid.split("::")[0].removeprefix("tests/")
        return LONGEST_MODULES.index(module) if module in LONGEST_MODULES else len(LONGEST_MODULES)

    items.sort(key=rank)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread(request):
    """Every module's networks run on one thread, whatever ran before.

    Tiny networks run faster on one thread than with threads fighting for shared cores,
    and a float sum depends on how it is split over threads: with the count set here a
    test's models do not depend on which modules ran first.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def built_once(tmp_path_factory, worker_id: str, name: str, build: Callable[[Path], None]) -> Path:
    """The folder ``name`` filled by ``build(folder)`` once per session, shared by every xdist worker."""
    if worker_id == "master":  # not distributed
        folder = tmp_path_factory.mktemp(name)
        build(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / name  # the session's folder, common to its workers
    with FileLock(f"{folder}.lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def write_demo(out: Path) -> None:
    options = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL_DEMO.items()]
    result = invoke("demo-data", "--out", out, *options)
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory, worker_id) -> Path:
    """A small demo corpus written by ``moodscape demo-data``; returns its directory."""
    return built_once(tmp_path_factory, worker_id, "demo", write_demo)


def planted_k(demo_corpus: Path) -> int:
    """The number of acoustic archetypes planted in the demo's MTG-Jamendo part."""
    truth = json.loads((demo_corpus / "truth.json").read_text())["tracks"]
    return len({t["archetype"] for t in truth.values() if t["dataset"] == "jamendo"})


def run_args(demo_corpus: Path, workdir: Path, *extra) -> list:
    """``moodscape run`` on the demo corpus at the planted K (the demo config's CPU budget)."""
    return ["run", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
            f"--set=cluster.k={planted_k(demo_corpus)}", *extra]


@pytest.fixture(scope="session")
def demo_run(demo_corpus, tmp_path_factory, worker_id) -> Path:
    """Every stage, features to infer, run once by ``moodscape run``; returns the work directory."""
    def run(workdir: Path) -> None:
        result = invoke(*run_args(demo_corpus, workdir))
        assert result.exit_code == 0, result.output

    return built_once(tmp_path_factory, worker_id, "run", run)
