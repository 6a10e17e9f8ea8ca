"""Per-track maps: every track done once, failures listed, killed runs resume."""

import pandas as pd
import pytest

from moodscape.errors import AudioError
from moodscape.parallel import clear_chunks, map_tracks


def square(value):
    if value < 0:
        raise AudioError(f"track with value {value} is corrupt")
    return {"square": value * value}



def make_killer(limit):
    calls = {"n": 0}

    def func(value):
        calls["n"] += 1
        if calls["n"] > limit:
            raise KeyboardInterrupt
        return {"square": value * value}

    return func, calls


def run(tasks, chunk_dir, **options):
    options.setdefault("scheduler", "synchronous")
    return map_tracks(square, tasks, chunk_dir=chunk_dir, fingerprint={"v": 1}, chunk_size=3, show_progress=False, **options)


def test_every_track_once_in_input_order_and_failures_listed(tmp_path):
    tasks = {f"t{i}": i for i in (5, -1, 3, 2, 7, -4, 1)}
    outcome = run(tasks, tmp_path / "chunks")
    assert outcome.rows["track_id"].tolist() == ["t5", "t3", "t2", "t7", "t1"]
    assert outcome.rows["square"].tolist() == [25, 9, 4, 49, 1]
    assert [track for track, _ in outcome.failures] == ["t-1", "t-4"]
    assert "corrupt" in outcome.failures[0][1]


def test_a_killed_run_resumes_without_recomputing_finished_chunks(tmp_path):
    tasks = {f"t{i}": i for i in range(10)}
    chunk_dir = tmp_path / "chunks"
    killer, _ = make_killer(limit=7)
    with pytest.raises(KeyboardInterrupt):
        map_tracks(killer, tasks, chunk_dir=chunk_dir, fingerprint={"v": 1}, scheduler="synchronous", chunk_size=3, show_progress=False)
    counting, calls = make_killer(limit=10**6)
    outcome = map_tracks(counting, tasks, chunk_dir=chunk_dir, fingerprint={"v": 1}, scheduler="synchronous", chunk_size=3, show_progress=False)
    assert outcome.resumed == 6  # two chunks of three were finished before the kill
    assert calls["n"] == 4
    assert outcome.rows["square"].tolist() == [i * i for i in range(10)]


def test_chunks_of_other_settings_are_not_reused(tmp_path):
    chunk_dir = tmp_path / "chunks"
    run({"a": 2}, chunk_dir)
    outcome = map_tracks(lambda v: {"square": -1}, {"a": 2}, chunk_dir=chunk_dir, fingerprint={"v": 2}, scheduler="synchronous", show_progress=False)
    assert outcome.resumed == 0 and outcome.rows["square"].tolist() == [-1]
    clear_chunks(chunk_dir)
    assert not chunk_dir.exists()


def test_dask_local_cluster_gives_the_same_rows(tmp_path):
    tasks = {f"t{i}": i for i in range(-2, 12)}
    local = run(tasks, tmp_path / "a", scheduler="local", n_workers=2)
    sync = run(tasks, tmp_path / "b")
    pd.testing.assert_frame_equal(local.rows, sync.rows)
    assert sorted(local.failures) == sorted(sync.failures)
