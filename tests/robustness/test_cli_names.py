"""A corrupt names database in the bundle stops ``moodscape serve`` with one line naming it and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn
from serving_bundle import copy_bundle

from cli_runner import invoke


@pytest.fixture()
def bundle(demo_run, tmp_path) -> Path:
    """A copy of the demo run's serving bundle whose names.sqlite is not a database."""
    copy = copy_bundle(demo_run, tmp_path / "bundle")
    (copy / "names.sqlite").write_bytes(b"this was a label names database once" * 100)
    return copy


@pytest.fixture()
def no_server(monkeypatch) -> list:
    """``uvicorn.run`` recorded instead of serving; the list of its calls."""
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


@pytest.mark.parametrize("workers", [1, 2])
def test_a_corrupt_names_database_stops_serve_with_one_line(bundle, no_server, workers):
    result = invoke("serve", "--bundle", bundle, "--port", "0", "--workers", workers)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(bundle / "names.sqlite") in " ".join(result.output.split())
    assert "move it away" in lines[0]
    assert not no_server
