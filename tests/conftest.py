"""Shared fixtures: one small demo corpus per test session, generated once."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_runner import invoke

SMALL_DEMO = {"tracks": 150, "musav_tracks": 12, "seconds": 8.0, "seed": 0}


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> Path:
    """A small demo corpus written by ``moodscape demo-data``; returns its directory."""
    out = tmp_path_factory.mktemp("demo")
    options = [f"--{key.replace('_', '-')}={value}" for key, value in SMALL_DEMO.items()]
    result = invoke("demo-data", "--out", out, *options)
    assert result.exit_code == 0, result.output
    return out
