"""A stage's artifacts replace the old ones all together or not at all (``artifacts.staged``).

The cases write a small "cluster" stage (two artifacts and its manifest entry) over an
older one, and stop it at every point of the commit: with an error, and with a real
``kill -9`` of the process between two moves. After the next start (the work
directory's lock), the files are either all old or all new, and the manifest agrees.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pandas as pd
import pytest

from fresh_python import run_python
from moodscape import artifacts
from moodscape.artifacts import Workdir
from moodscape.errors import StorageError

SETTINGS = {"cluster": {"k": 3}}


def write_cluster_stage(workdir: Workdir, version: str, *, fail: bool = False) -> None:
    """The "cluster" stage's artifacts in ``version``, written and recorded through a commit."""
    with artifacts.staged(workdir, "cluster") as out:
        artifacts.write_table(out.clusters, pd.DataFrame({"track_id": ["a", "b"], "cluster_id": [0, 1], "version": version}))
        if fail:
            raise RuntimeError("the stage failed after its first artifact")
        artifacts.write_json(out.cluster_selection, {"version": version})
        artifacts.write_lines(out.skipped_report("cluster"), [version])
        artifacts.record_stage(out, "cluster", [out.clusters, out.cluster_selection], SETTINGS, [workdir.features])


def old_stage(tmp_path: Path) -> Workdir:
    workdir = Workdir(tmp_path / "run")
    artifacts.write_table(workdir.features, pd.DataFrame({"track_id": ["a", "b"], "x": [0.0, 1.0]}))
    write_cluster_stage(workdir, "old")
    return workdir


def versions(workdir: Workdir) -> set[str]:
    """The versions of the stage's files now in the work directory: one of them when consistent."""
    return {*pd.read_csv(workdir.clusters)["version"], artifacts.read_json(workdir.cluster_selection)["version"],
            workdir.skipped_report("cluster").read_text().strip()}


def assert_consistent(workdir: Workdir) -> str:
    """One version throughout, recorded by the manifest; no staging folder, journal or temporary file left."""
    (version,) = versions(workdir)
    assert artifacts.stale_reason(workdir, "cluster", SETTINGS, [workdir.features]) is None
    assert not (workdir.root / artifacts.STAGING).exists()
    assert not list(workdir.root.rglob(f"*{artifacts.TEMPORARY_SUFFIX}"))
    return version


def next_start(workdir: Workdir) -> None:
    with artifacts.workdir_lock(workdir):
        pass


def test_a_commit_moves_every_artifact_and_the_manifest_entry_into_place(tmp_path):
    workdir = old_stage(tmp_path)
    write_cluster_stage(workdir, "new")
    assert assert_consistent(workdir) == "new"
    entry = artifacts.read_manifest(workdir)["stages"]["cluster"]
    assert set(entry["outputs"]) == {"clusters.csv", "cluster_selection.json"}  # named as in the work directory
    assert entry["inputs"] == {"features.parquet": artifacts.file_hash(workdir.features)}


def test_a_stage_that_fails_before_its_commit_leaves_its_old_artifacts(tmp_path):
    workdir = old_stage(tmp_path)
    with pytest.raises(RuntimeError):
        write_cluster_stage(workdir, "new", fail=True)
    assert assert_consistent(workdir) == "old"


def test_a_commit_that_fails_between_two_moves_is_completed_at_the_next_start(tmp_path, monkeypatch):
    workdir = old_stage(tmp_path)
    moved = []

    def move_once(source, target):
        if moved:
            raise OSError(5, "Input/output error")
        os.replace(source, target)
        moved.append(target)

    monkeypatch.setattr(artifacts, "_move", move_once)
    with pytest.raises(StorageError, match="cannot write .*run again"):
        write_cluster_stage(workdir, "new")
    assert versions(workdir) == {"old", "new"}  # what a reader would see now: the journal tells how to finish
    monkeypatch.undo()
    next_start(workdir)
    assert assert_consistent(workdir) == "new"


def test_removals_are_part_of_the_commit(tmp_path):
    workdir = old_stage(tmp_path)
    chunks = workdir.chunk_dir("cluster")
    (chunks / "part-000000.parquet").parent.mkdir(parents=True)
    (chunks / "part-000000.parquet").write_bytes(b"done")
    with pytest.raises(RuntimeError):
        with artifacts.staged(workdir, "cluster") as out:
            out.remove(chunks)
            raise RuntimeError("failed")
    assert chunks.is_dir()
    with artifacts.staged(workdir, "cluster") as out:
        out.remove(chunks)
        out.remove(workdir.cluster_selection)
    assert not chunks.exists() and not workdir.cluster_selection.exists()


KILLED_COMMIT = """
import os, signal, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from moodscape import artifacts
from moodscape.artifacts import Workdir
from test_artifacts_commit import write_cluster_stage

moves_before_kill = int(sys.argv[2])
moved = []

def move_then_die(source, target):
    if len(moved) == moves_before_kill:
        os.kill(os.getpid(), signal.SIGKILL)
    os.replace(source, target)
    moved.append(target)

if moves_before_kill < 0:  # killed while the stage writes, before its commit
    artifacts.write_lines = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
artifacts._move = move_then_die
write_cluster_stage(Workdir(Path(sys.argv[1])), "new")
"""


@pytest.mark.parametrize("moves_before_kill", [-1, 0, 1, 2, 3])
def test_a_stage_killed_during_its_commit_is_all_old_or_all_new_after_the_next_start(tmp_path, moves_before_kill):
    """``kill -9`` of a real process before the journal (-1), and after 0 to 3 of its 4 moves (the manifest is the 4th)."""
    workdir = old_stage(tmp_path)
    result = run_python(KILLED_COMMIT, workdir.root, moves_before_kill, Path(__file__).parent)
    assert result.returncode == -signal.SIGKILL, result.stderr
    left = versions(workdir)  # where the kill landed: nothing moved yet, a mix, or all but the manifest
    assert left == {-1: {"old"}, 0: {"old"}, 1: {"old", "new"}, 2: {"old", "new"}, 3: {"new"}}[moves_before_kill], left
    if moves_before_kill == 3:
        assert "changed since it was written" in artifacts.stale_reason(workdir, "cluster", SETTINGS, [workdir.features])
    next_start(workdir)
    assert assert_consistent(workdir) == ("old" if moves_before_kill < 0 else "new")


def test_a_killed_stage_s_staging_folder_without_journal_is_discarded_at_the_next_start(tmp_path):
    workdir = old_stage(tmp_path)
    staging = workdir.root / artifacts.STAGING / "cluster"
    artifacts.write_json(staging / artifacts.CLUSTER_SELECTION, {"version": "new"})
    next_start(workdir)
    assert assert_consistent(workdir) == "old"


def test_temporary_files_of_killed_writes_go_at_the_next_start_but_the_unlocked_cache_s_in_progress_ones_stay(tmp_path):
    workdir = old_stage(tmp_path)
    killed = workdir.root / "mels" / ".a.npy.x1y2.tmp"
    writing = workdir.projections.parent / ".projections.parquet.x1y2.tmp"  # `serve` writes it without the lock
    for path in (killed, writing):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    next_start(workdir)
    assert not killed.exists()
    assert writing.exists()


def test_an_error_naming_a_staged_file_names_the_artifact_it_was_written_for(tmp_path):
    staged = tmp_path / "run" / artifacts.STAGING / "train" / "models" / "classifier.pt"
    message = artifacts.write_failure(staged, OSError(28, "No space left on device"))
    assert message.startswith(f"cannot write {tmp_path / 'run' / 'models' / 'classifier.pt'}: No space left on device")
    assert artifacts.STAGING not in message


def test_the_journal_lists_the_manifest_last(tmp_path, monkeypatch):
    workdir = old_stage(tmp_path)
    plans = []
    real_write_json = artifacts.write_json

    def spy(path, obj):
        if Path(path).parent.name == artifacts.STAGING:
            plans.append(obj)
        real_write_json(path, obj)

    monkeypatch.setattr(artifacts, "write_json", spy)
    write_cluster_stage(workdir, "new")
    (plan,) = plans
    assert plan["moves"][-1] == artifacts.MANIFEST
    assert json.loads(json.dumps(plan)) == plan
