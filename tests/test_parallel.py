"""Per-track maps: every track done once, failures listed, killed runs resume."""

import os

import pandas as pd
import pytest

from moodscape.errors import AudioError
from moodscape.pipeline.parallel import clear_chunks, map_tracks


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


def square_chunk(chunk):
    """A batched function: one result per track, a bad track failing alone."""
    results = []
    for track_id, value in chunk:
        if value < 0:
            results.append((track_id, None, f"AudioError: track with value {value} is corrupt"))
        else:
            results.append((track_id, {"square": value * value}, None))
    return results


def run_batched(func, tasks, chunk_dir, **options):
    """Batched map, chunks of ``tracks_per_chunk(n, 3, 1)`` tracks: 2 for 5-8 tracks, 3 for 9-12."""
    options.setdefault("scheduler", "synchronous")
    options.setdefault("n_workers", 1)
    return map_tracks(func, tasks, chunk_dir=chunk_dir, fingerprint={"v": 1}, chunk_size=3, show_progress=False, batched=True, **options)


def test_batched_function_gets_whole_chunks_and_failures_stay_per_track(tmp_path):
    seen = []

    def recording(chunk):
        seen.append([track_id for track_id, _ in chunk])
        return square_chunk(chunk)

    tasks = {f"t{i}": i for i in (5, -1, 3, 2, 7, -4, 1)}
    outcome = run_batched(recording, tasks, tmp_path / "chunks")
    assert seen == [["t5", "t-1"], ["t3", "t2"], ["t7", "t-4"], ["t1"]]
    assert outcome.rows["track_id"].tolist() == ["t5", "t3", "t2", "t7", "t1"]
    assert outcome.rows["square"].tolist() == [25, 9, 4, 49, 1]
    assert outcome.failures == [("t-1", "AudioError: track with value -1 is corrupt"), ("t-4", "AudioError: track with value -4 is corrupt")]


def test_a_raising_batched_function_fails_every_track_of_its_chunk_only(tmp_path):
    def fragile(chunk):
        if any(value < 0 for _, value in chunk):
            raise RuntimeError("out of memory")
        return square_chunk(chunk)

    outcome = run_batched(fragile, {f"t{i}": i for i in (1, 2, -3, 4, 5, 6)}, tmp_path / "chunks")
    assert outcome.rows["track_id"].tolist() == ["t1", "t2", "t5", "t6"]
    assert outcome.failures == [(track, "RuntimeError: out of memory") for track in ("t-3", "t4")]


def test_a_track_the_batched_function_leaves_out_fails(tmp_path):
    outcome = run_batched(lambda chunk: square_chunk([task for task in chunk if task[0] != "a"]), {"a": 1, "b": 2}, tmp_path / "chunks")
    assert outcome.rows["track_id"].tolist() == ["b"]
    assert [track for track, _ in outcome.failures] == ["a"]
    assert "no result" in outcome.failures[0][1]


def test_a_killed_batched_run_resumes_without_recomputing_finished_chunks(tmp_path):
    tasks = {f"t{i}": i for i in range(10)}
    chunk_dir = tmp_path / "chunks"
    calls = []

    def killed_after_two_chunks(chunk):
        calls.append(len(chunk))
        if len(calls) > 2:
            raise KeyboardInterrupt
        return square_chunk(chunk)

    with pytest.raises(KeyboardInterrupt):
        run_batched(killed_after_two_chunks, tasks, chunk_dir)
    calls.clear()
    outcome = run_batched(lambda chunk: calls.append(len(chunk)) or square_chunk(chunk), tasks, chunk_dir)
    assert outcome.resumed == 6 and calls == [3, 1]  # the chunks of an uninterrupted run: t6-t8, t9
    assert outcome.rows["square"].tolist() == [i * i for i in range(10)]


def malloc_trim_setting(chunk):
    return [(track_id, {"trim": os.environ.get("MALLOC_TRIM_THRESHOLD_", "glibc default")}, None) for track_id, _ in chunk]


def test_batched_dask_local_cluster_gives_the_same_rows(tmp_path):
    tasks = {f"t{i}": i for i in range(-2, 12)}
    local = run_batched(square_chunk, tasks, tmp_path / "a", scheduler="local", n_workers=2)
    sync = run_batched(square_chunk, tasks, tmp_path / "b")
    pd.testing.assert_frame_equal(local.rows, sync.rows)
    assert sorted(local.failures) == sorted(sync.failures)


def test_local_workers_keep_glibc_malloc_defaults(tmp_path):
    """Dask's MALLOC_TRIM_THRESHOLD_=65536 made every large array a fresh mmap (30-70 % slower)."""
    outcome = run_batched(malloc_trim_setting, {"a": 1, "b": 2}, tmp_path / "chunks", scheduler="local", n_workers=2)
    assert outcome.rows["trim"].tolist() == ["glibc default"] * 2
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


def worker_omp_threads(value):
    return {"omp": os.environ.get("OMP_NUM_THREADS", "unset")}


def test_single_thread_settings_stay_in_the_workers(tmp_path, monkeypatch):
    """The nanny wrote OMP_NUM_THREADS=1 into this process: later torch stages ran on one thread."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("MKL_NUM_THREADS", "7")
    tasks = {"a": 1, "b": 2}
    outcome = map_tracks(worker_omp_threads, tasks, chunk_dir=tmp_path, fingerprint={"v": 1}, chunk_size=1, show_progress=False, scheduler="local", n_workers=2)
    assert outcome.rows["omp"].tolist() == ["1", "1"]
    assert "OMP_NUM_THREADS" not in os.environ
    assert os.environ["MKL_NUM_THREADS"] == "7"
