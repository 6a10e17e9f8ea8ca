"""``kill -9`` inside each long stage, then resume: the run ends exactly as an uninterrupted one.

One chained run: ``moodscape run`` is started, SIGKILLed (with its process group) while
inside a stage, started again (which resumes), killed inside the next stage, and so on
through every stage of ``moodscape run``, then left to finish. A kill lands inside a
stage when the stage before it has reported (the run's console line) and, for the
stages that leave resumable work behind, once that work has begun to appear: finished
chunks of a per-track map, the mel cache's chunks, the classifier's in-progress state.
After the kill the manifest must record the stage before and not the stage itself.

The finished run must equal a straight one byte for byte (models, lookup, clusters,
features), leave no temporary or staged file, and its manifest must agree with its
files. Both runs use the synchronous scheduler (an execution setting: the same results
as the local Dask cluster, without starting one per map, and one process to kill).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from moodscape import artifacts
from moodscape.artifacts import Workdir
from moodscape.training.classify import last_checkpoint_path
import test_resumed_run
from test_resumed_run import COMPARED, moodscape, tiny_settings, user_env

pytestmark = pytest.mark.slow

tiny_corpus = test_resumed_run.tiny_corpus  # the fixture: one tiny corpus for this module

SYNCHRONOUS = ["--set=features.scheduler=synchronous"]
ALSO_COMPARED = ["features.parquet", "embeddings.parquet", "cluster_selection.json", "label_to_idx.json",
                 "tracks_with_cluster_names.csv"]
KILL_TIMEOUT = 300.0
"""Seconds a run may take to reach the point where it is killed."""

Condition = Callable[[Workdir], bool]


def part(chunks: str, number: int) -> Condition:
    """The ``number``-th finished chunk (from 0) of the per-track map ``chunks`` is there: the map is under way."""
    return lambda workdir: (workdir.chunk_dir(chunks) / f"part-{number:06d}.parquet").exists()


def in_progress_state(workdir: Workdir) -> bool:
    """The classifier's state after an epoch is there: training is under way."""
    return last_checkpoint_path(workdir.classifier).exists()


@dataclass(frozen=True)
class Kill:
    """Where a run is killed: inside ``stage``, once the stage before it reported and ``ready`` holds."""

    stage: str
    after: str | None
    ready: Condition | None = None
    what: str = "as the stage starts"


KILLS = [
    Kill("features", None, part("features", 2), "3 of 8 feature chunks done"),
    Kill("cluster", "features"),
    Kill("label", "cluster"),
    Kill("pretrain", "label", part("mels", 1), "mel cache: 2 chunks done"),
    Kill("train", "pretrain", in_progress_state, "after epoch 1 of 2"),
    Kill("train-av", "train", part("train-av", 1), "MusAV embeddings: 2 chunks done"),
    Kill("infer", "train-av", part("infer", 1), "2 inference chunks done"),
    Kill("report", "infer"),
]


def run_until(command: list[str], workdir: Workdir, kill: Kill) -> float:
    """Start ``command`` and SIGKILL its process group once ``kill`` says so; return the seconds it ran."""
    started = time.monotonic()
    process = subprocess.Popen(command, env={**user_env(), "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    reported: list[str] = []
    reader = threading.Thread(target=_read_stages, args=(process.stdout, reported), daemon=True)
    reader.start()
    try:
        while not (kill.after is None or kill.after in reported) or not (kill.ready is None or kill.ready(workdir)):
            assert process.poll() is None, f"the run ended before the kill inside {kill.stage} (exit {process.returncode})"
            assert time.monotonic() - started < KILL_TIMEOUT, f"no kill point inside {kill.stage} after {KILL_TIMEOUT} s"
            time.sleep(0.01)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        reader.join()
    return time.monotonic() - started


def _read_stages(stream, reported: list[str]) -> None:
    """Append each stage ``moodscape run`` reports to ``reported`` as it reports it (``" features: ran in 8.1 s — …"``)."""
    for line in stream:
        match = re.match(r"\s*([a-z-]+): (ran|current)\b", line)
        if match:
            reported.append(match.group(1))


def recorded(workdir: Workdir) -> set[str]:
    return set(artifacts.read_manifest(workdir).get("stages", {}))


def assert_manifest_agrees(workdir: Workdir) -> None:
    """Every input and output a stage recorded is in the work directory with the recorded hash."""
    for stage, entry in artifacts.read_manifest(workdir)["stages"].items():
        for name, digest in {**entry["inputs"], **entry["outputs"]}.items():
            path = workdir.root / name
            if not Path(name).is_absolute():
                assert path.is_file() and artifacts.file_hash(path) == digest, f"{stage}: {name}"


def test_a_run_killed_inside_every_stage_in_turn_ends_as_an_uninterrupted_one(tiny_corpus, tmp_path):
    settings = ["--config", tiny_corpus / "moodscape.toml", *tiny_settings(tiny_corpus), *SYNCHRONOUS]
    straight, chained = tmp_path / "straight", Workdir(tmp_path / "chained")
    started = time.monotonic()
    moodscape("run", "--workdir", straight, *settings)
    straight_seconds = time.monotonic() - started
    command = [sys.executable, "-m", "moodscape", "run", "--workdir", str(chained.root), *map(str, settings)]
    landed = {}
    for kill in KILLS:
        before = recorded(chained)
        seconds = run_until(command, chained, kill)
        after = recorded(chained)
        assert kill.stage not in after, f"the kill meant for {kill.stage} landed after it"
        assert kill.after is None or kill.after in after, f"the kill meant for {kill.stage} landed before it"
        landed[kill.stage] = f"{kill.what}, {seconds:.0f} s after start ({len(after - before)} stage(s) finished first)"
    started = time.monotonic()
    moodscape("run", "--workdir", chained.root, *settings)
    print(f"\nstraight run {straight_seconds:.0f} s; kills: {landed}; last run {time.monotonic() - started:.0f} s")
    assert recorded(chained) == recorded(Workdir(straight))
    assert artifacts.read_json(chained.classifier_metrics)["resumed_after_epoch"] == 1  # not trained again from scratch
    for name in [*COMPARED, *ALSO_COMPARED]:
        assert (straight / name).read_bytes() == (chained.root / name).read_bytes(), name
    leftovers = [path for path in chained.root.rglob("*") if path.name.endswith(artifacts.TEMPORARY_SUFFIX)
                 or artifacts.STAGING in path.parts]
    assert not leftovers
    assert_manifest_agrees(chained)
