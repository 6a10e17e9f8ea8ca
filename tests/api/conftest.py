"""Fixtures of the web-app tests: a copy of the demo run's serving bundle and a client over it."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_bundle import copy_bundle


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory) -> Path:
    """A private copy of the demo run's serving bundle, one per test module."""
    return copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def client(bundle):
    """A TestClient over the app on :func:`bundle`."""
    from fastapi.testclient import TestClient

    from moodscape.api import create_app

    with TestClient(create_app(bundle)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def subsonic_source(tmp_path_factory, worker_id) -> Path:
    """The Subsonic tests' synthetic bundle with tagged audio files, written once per session."""
    from conftest import built_once

    from api.subsonic_server import write_subsonic_bundle

    return built_once(tmp_path_factory, worker_id, "subsonic-bundle", write_subsonic_bundle)
