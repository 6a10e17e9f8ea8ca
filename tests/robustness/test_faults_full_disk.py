"""A stage run into a full work directory: one line, no partial artifacts, the old ones intact.

The real case mounts a small tmpfs as the work directory in a private mount namespace
(``unshare -rm``; skipped where the platform does not allow it), holds the ``cluster``
stage's artifacts of an earlier run, and fills it so that 0, 1, 2, … pages are left
free; ``moodscape cluster`` with another K then runs into the full disk at every point
of its writes in turn, until it has room to finish. The simulated case does the same
everywhere with a disk that is full after the first ``n`` files.
"""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cli_runner import invoke
from fresh_python import SRC
from moodscape import artifacts
from moodscape.artifacts import Workdir

ARTIFACTS = [artifacts.CLUSTERS, artifacts.CLUSTER_SELECTION, artifacts.MANIFEST]
PAGE = 4096
TMPFS_SIZE = "1m"
MOST_FREE_PAGES = 24


def state(workdir: Path) -> dict:
    """The stage's artifacts (their hashes), the manifest's record of them, and any temporary or staged leftover."""
    present = {name: artifacts.file_hash(workdir / name) if (workdir / name).exists() else None for name in ARTIFACTS}
    recorded = artifacts.read_manifest(Workdir(workdir))["stages"].get("cluster", {}).get("outputs", {})
    leftovers = [str(path) for path in workdir.rglob("*")
                 if path.name.endswith(artifacts.TEMPORARY_SUFFIX) or artifacts.STAGING in path.parts]
    return {"artifacts": present, "recorded": recorded, "leftovers": leftovers}


def cluster_args(demo_corpus: Path, workdir: Path, k: int) -> list:
    return ["cluster", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir, f"--set=cluster.k={k}"]


def assert_all_or_nothing(tries: list[dict], old: dict) -> None:
    """Each failed try: one line naming a file of the work directory, the old artifacts as they were; the last try: done."""
    *failed, done = tries
    assert done["exit"] == 0, done["output"]
    for attempt in failed:
        lines = attempt["output"].strip().splitlines()
        assert attempt["exit"] == 2 and len(lines) == 1, attempt
        assert lines[0].startswith("error: cannot write ") and "No space left on device" in lines[0], lines[0]
        assert attempt["state"] == old, attempt
    new = done["state"]
    assert not new["leftovers"]
    assert all(digest is not None and digest != old["artifacts"][name] for name, digest in new["artifacts"].items())
    assert new["recorded"] == {name: new["artifacts"][name] for name in ARTIFACTS[:2]}


# --------------------------------------------------------------------------- a real full disk (tmpfs)


IN_NAMESPACE = """
import json, os, shutil, subprocess, sys
from pathlib import Path

from cli_runner import invoke
from test_faults_full_disk import PAGE, TMPFS_SIZE, MOST_FREE_PAGES, cluster_args, state

corpus, features, workdir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(workdir)], check=True)
shutil.copy(features, workdir / features.name)
earlier = invoke(*cluster_args(corpus, workdir, 3))
assert earlier.exit_code == 0, earlier.output
old, tries = state(workdir), []
filler = workdir / "filler"
for free in range(MOST_FREE_PAGES):
    filler.unlink(missing_ok=True)
    space = os.statvfs(workdir)
    filler.write_bytes(bytes((space.f_bavail - free) * space.f_frsize))
    result = invoke(*cluster_args(corpus, workdir, 4))
    tries.append({"free": free, "exit": result.exit_code, "output": result.output, "state": state(workdir)})
    if result.exit_code == 0:
        break
print(json.dumps({"old": old, "tries": tries}))
"""


def namespace_refusal(mountpoint: Path) -> str | None:
    """Why a tmpfs cannot be mounted in a private mount namespace here, or None when it can."""
    if shutil.which("unshare") is None:
        return "no unshare command"
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mountpoint)],
                           capture_output=True, text=True, timeout=30)
    return None if probe.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {probe.stderr.strip()}"


def test_a_stage_run_into_a_full_tmpfs_leaves_its_old_artifacts_until_it_can_write_them_all(demo_corpus, demo_run, tmp_path):
    workdir = tmp_path / "tmpfs"
    workdir.mkdir()
    refusal = namespace_refusal(workdir)
    if refusal:
        pytest.skip(refusal + " (the simulated full disk below runs instead)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(Path(__file__).parent), str(Path(__file__).parents[1])]),
           "COLUMNS": "1000"}
    result = subprocess.run(["unshare", "-rm", sys.executable, "-c", IN_NAMESPACE, demo_corpus, demo_run / artifacts.FEATURES,
                             workdir], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    tries = report["tries"]
    assert len(tries) > 2, tries  # the disk was full at several points of the stage's writes
    assert_all_or_nothing(tries, report["old"])
    print(f"\n{len(tries) - 1} full-disk failures (0 to {len(tries) - 2} pages free), done with {tries[-1]['free']} pages free")


# --------------------------------------------------------------------------- a simulated full disk, everywhere


class FullAfter:
    """A disk that takes the first ``room`` new files (``.name.XXXX.tmp``), then fails every write with ENOSPC."""

    def __init__(self, room: int):
        self.room = room

    def open(self, real_open):
        def open_on_filling_disk(file, mode="r", *args, **kwargs):
            stream = real_open(file, mode, *args, **kwargs)
            name = Path(os.fsdecode(file)).name if isinstance(file, (str, bytes, os.PathLike)) else ""
            if "w" in mode and name.startswith(".") and name.endswith(artifacts.TEMPORARY_SUFFIX):
                self.room -= 1
                if self.room < 0:
                    stream.close()
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.fsdecode(file))
            return stream

        return open_on_filling_disk


def test_a_stage_that_runs_out_of_disk_after_any_of_its_files_leaves_its_old_artifacts(demo_corpus, demo_run, tmp_path,
                                                                                        monkeypatch):
    workdir = tmp_path / "run"
    workdir.mkdir()
    shutil.copy(demo_run / artifacts.FEATURES, workdir / artifacts.FEATURES)
    assert invoke(*cluster_args(demo_corpus, workdir, 3)).exit_code == 0
    old, tries = state(workdir), []
    real_open = io.open
    for room in range(8):
        disk = FullAfter(room).open(real_open)
        monkeypatch.setattr(builtins, "open", disk)
        monkeypatch.setattr(io, "open", disk)
        result = invoke(*cluster_args(demo_corpus, workdir, 4))
        monkeypatch.undo()
        tries.append({"free": room, "exit": result.exit_code, "output": result.output, "state": state(workdir)})
        if result.exit_code == 0:
            break
    assert len(tries) > 2, tries
    assert_all_or_nothing(tries, old)
