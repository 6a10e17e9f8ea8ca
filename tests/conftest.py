"""Shared fixtures: one small demo corpus per test session, generated once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_runner import invoke

SMALL_DEMO = {"tracks": 150, "musav_tracks": 600, "seconds": 12.0, "seed": 0}


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


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """A small demo corpus written by ``moodscape demo-data``; returns its directory."""
    out = tmp_path_factory.mktemp("demo")
    options = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL_DEMO.items()]
    result = invoke("demo-data", "--out", out, *options)
    assert result.exit_code == 0, result.output
    return out


def planted_k(demo_corpus: Path) -> int:
    """The number of acoustic archetypes planted in the demo's MTG-Jamendo part."""
    truth = json.loads((demo_corpus / "truth.json").read_text())["tracks"]
    return len({t["archetype"] for t in truth.values() if t["dataset"] == "jamendo"})


def run_args(demo_corpus: Path, workdir: Path, *extra) -> list:
    """``moodscape run`` on the demo corpus at the planted K (the demo config's CPU budget)."""
    return ["run", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
            f"--set=cluster.k={planted_k(demo_corpus)}", *extra]


@pytest.fixture(scope="session")
def demo_run(demo_corpus, tmp_path_factory) -> Path:
    """Every stage, features to infer, run once by ``moodscape run``; returns the work directory."""
    workdir = tmp_path_factory.mktemp("run")
    result = invoke(*run_args(demo_corpus, workdir))
    assert result.exit_code == 0, result.output
    return workdir
