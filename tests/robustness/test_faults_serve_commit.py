"""``moodscape serve`` completes the commit of a stage killed mid-way before it reads the bundle."""

from __future__ import annotations

import fcntl
import shutil

import pytest
import uvicorn
from serving_bundle import copy_bundle

from cli_runner import invoke
from moodscape import artifacts
from moodscape.artifacts import Workdir


@pytest.fixture()
def half_committed(demo_run, tmp_path) -> Workdir:
    """A copy of the demo's serving bundle whose ``infer`` commit was killed after its first move, before the lookup's."""
    workdir = Workdir(copy_bundle(demo_run, tmp_path / "bundle"))
    staging = workdir.root / artifacts.STAGING / "infer"
    staging.mkdir(parents=True)
    shutil.move(workdir.inference_lookup, staging / artifacts.INFERENCE_LOOKUP)
    artifacts.write_json(workdir.root / artifacts.STAGING / "infer.json",
                         {"moves": [artifacts.CATALOG, artifacts.INFERENCE_LOOKUP], "removals": []})
    return workdir


def test_serve_completes_a_killed_commit_and_starts(half_committed, monkeypatch):
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: served.append(args))
    result = invoke("serve", "--bundle", half_committed.root, "--port", "0")
    assert result.exit_code == 0, result.output
    assert served
    assert half_committed.inference_lookup.is_file()
    assert not (half_committed.root / artifacts.STAGING).exists()


def test_a_work_directory_another_command_holds_is_left_alone(half_committed):
    """A running stage may be writing its staging folder: ``serve`` started beside it must not touch it."""
    with open(half_committed.lock, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # what a running command holds
        assert not artifacts.tidy_if_free(half_committed)
    assert (half_committed.root / artifacts.STAGING / "infer.json").exists()
