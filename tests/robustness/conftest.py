"""Fixtures shared by the robustness tests of the web app."""

from __future__ import annotations

from pathlib import Path

import pytest

import moodscape.api.routes.analyze as analyze_route
from moodscape.errors import AudioError


@pytest.fixture
def analyses(monkeypatch) -> list[Path]:
    """Paths ``/analyze`` passed to :func:`analyze_file`; the call itself is a stand-in that fails as undecodable audio."""
    calls = []

    def stand_in(bundle, path, **options):
        calls.append(Path(path))
        raise AudioError(f"{path}: stand-in analysis")

    monkeypatch.setattr(analyze_route, "analyze_file", stand_in)
    return calls
