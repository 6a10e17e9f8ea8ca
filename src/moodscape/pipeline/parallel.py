"""Per-track maps through Dask, written in chunks so that a killed run resumes.

Every stage whose work is independent per track (features, mel-spectrograms, inference)
calls :func:`map_tracks`. Tracks are grouped into chunks; each finished chunk is written
to its own Parquet file at once, so after a kill the next run reads the chunks already
there and computes only the rest. A track whose function raises is listed with the
error's message, never dropped silently, and never stops the others.

A function maps one track to its row, or, with ``batched=True``, a whole chunk to one
result per track, so that a worker can decode several tracks and then run them through a
network in one batched forward pass (stage 5, inference).

The scheduler is a local process cluster by default (one single-threaded worker per
core), any ``tcp://host:port`` Dask scheduler address for a real cluster, or
``"synchronous"`` to run in this process (debugging, tests).

A track must not hang the run (a stalled network mount, a decoder that never returns), so
on Dask every chunk has a deadline: ``track_timeout_s`` seconds per track of the chunk,
counted from when the scheduler reports it running on a worker. At most one chunk per
worker thread is handed to Dask at a time, so a chunk starts as soon as it is handed out.
A chunk past its deadline is cancelled, the worker process running it is told to exit
(from its event loop, which a thread waiting for a stalled disk leaves free; its nanny
starts another, and no chunk is sent to it meanwhile), and the chunk's tracks go back in
the queue one per chunk: the tracks that finish are kept, and the one that hangs again is
listed as "took longer than N s; skipped". A chunk whose worker died (a crash in a
decoder) is split the same way. Finished chunks are written as before, so resuming is
unchanged. ``"synchronous"`` runs have no deadline: a hung track cannot be taken back
from the process that runs it.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import math
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..artifacts import atomic_path
from ..errors import ConfigError


SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
_NANNY_ENV_KEYS = ("MALLOC_TRIM_THRESHOLD_",)
_FINGERPRINT_FILE = "fingerprint.json"
_MALLOC_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
_SATURATION_KEY = "distributed.scheduler.worker-saturation"
_POLL_SECONDS = 1.0
"""Longest wait between two checks of the chunks' deadlines."""
_EXIT_DELAY_SECONDS = 0.2
"""How long a worker told to exit waits, so that it answers the call first."""
_NO_WORKER_SECONDS = 60
"""How long a map waits for a worker told to exit to go, and while it has no worker (they
restart) before it gives up the remaining tracks."""

TrackFunction = Callable[[Any], Mapping[str, Any]]
TrackResult = tuple[str, Mapping[str, Any] | None, str | None]
"""``(track_id, row, error)``: a row and no error, or no row and the error's message."""
ChunkFunction = Callable[[list[tuple[str, Any]]], Sequence[TrackResult]]


@dataclass
class MapOutcome:
    """What a per-track map produced.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per successful track: ``track_id`` then the function's keys, in the
        order of the input tracks.
    failures : list of (track_id, reason)
        Tracks whose function raised, with the error message.
    resumed : int
        How many tracks were read back from an earlier, interrupted run.
    """

    rows: pd.DataFrame
    failures: list[tuple[str, str]] = field(default_factory=list)
    resumed: int = 0


def map_tracks(
    func: TrackFunction | ChunkFunction,
    tasks: Mapping[str, Any],
    *,
    chunk_dir: Path,
    fingerprint: Mapping[str, Any],
    scheduler: str = "local",
    n_workers: int | None = None,
    chunk_size: int = 32,
    description: str = "tracks",
    show_progress: bool = True,
    batched: bool = False,
    track_timeout_s: float | None = None,
) -> MapOutcome:
    """Apply ``func`` to every track, in parallel, resuming from finished chunks.

    Parameters
    ----------
    func : callable
        A picklable top-level function ``func(argument) -> dict`` of scalar values; with
        ``batched=True``, ``func(chunk) -> list of (track_id, row or None, error or None)``
        taking a chunk ``[(track_id, argument), ...]`` and giving one result per track.
    tasks : mapping
        ``{track_id: argument}``.
    chunk_dir : Path
        Where finished chunks are kept; the caller removes it with
        :func:`clear_chunks` once the stage's artifact is written.
    fingerprint : mapping
        JSON-ready description of what the chunks depend on (settings, function);
        chunks written under another fingerprint are discarded, not reused.
    scheduler : str
        ``"local"`` (a process cluster on this machine), ``"synchronous"``, or the
        address of a running Dask scheduler.
    n_workers : int, optional
        Workers of the local cluster; default one per core.
    chunk_size : int
        Largest number of tracks per chunk (smaller when there are few tracks, so
        every worker gets work).
    description : str
        Label of the progress bar.
    show_progress : bool
        Draw a rich progress bar.
    batched : bool
        Call ``func`` once per chunk instead of once per track. A track it gives no
        result for fails; if ``func`` raises, every track of the chunk fails with the
        error's message.
    track_timeout_s : float, optional
        Seconds a track may take on Dask (a chunk of ``n`` tracks gets ``n`` times that);
        a track that takes longer is listed as skipped (module docstring). ``None``: no
        limit.

    Returns
    -------
    MapOutcome
    """
    done = _read_finished_chunks(Path(chunk_dir), fingerprint)
    finished_ids = set(done["track_id"]) if len(done) else set()
    workers = n_workers or os.cpu_count() or 1
    # the chunks of every track, then less the finished ones: a resumed map runs the same batches as an
    # uninterrupted one (a batched network's float sums depend on the batch)
    size = tracks_per_chunk(len(tasks), chunk_size, workers)
    every = list(tasks.items())
    chunks = [[task for task in every[start : start + size] if task[0] not in finished_ids] for start in range(0, len(every), size)]
    chunks = [chunk for chunk in chunks if chunk]
    resumed = len(tasks) - sum(map(len, chunks))
    process = functools.partial(_process_batch if batched else _process_chunk, func)
    failures: list[tuple[str, str]] = []
    new_parts: list[pa.Table] = []
    next_part = _next_part_number(Path(chunk_dir))
    with _progress(description, total=len(tasks), completed=resumed, enabled=show_progress) as advance:
        for results in _run_chunks(process, chunks, scheduler, workers, track_timeout_s):
            rows = [{"track_id": track_id, **row} for track_id, row, _ in results if row is not None]
            failures.extend((track_id, error) for track_id, _, error in results if error is not None)
            if rows:
                new_parts.append(_write_part(Path(chunk_dir), next_part, rows))
                next_part += 1
            advance(len(results))
    new = [pa.concat_tables(new_parts, promote_options="default").to_pandas()] if new_parts else []
    table = pd.concat([done, *new], ignore_index=True) if new or len(done) else pd.DataFrame()
    if len(table):
        order = {track_id: position for position, track_id in enumerate(tasks)}
        table = table[table["track_id"].isin(order)]
        table = table.sort_values("track_id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    return MapOutcome(rows=table, failures=failures, resumed=resumed)


def tracks_per_chunk(n_tracks: int, chunk_size: int, n_workers: int) -> int:
    """Tracks per chunk of a map over ``n_tracks``: ``chunk_size``, or fewer so that each
    of ``n_workers`` workers gets about four chunks."""
    return max(1, min(chunk_size, math.ceil(n_tracks / (4 * n_workers)) if n_tracks else 1))


def clear_chunks(chunk_dir: Path) -> None:
    """Remove a map's chunks once the stage's artifact is safely written."""
    shutil.rmtree(chunk_dir, ignore_errors=True)


def _process_chunk(func: TrackFunction, chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any, str | None]]:
    results = []
    for track_id, argument in chunk:
        try:
            results.append((track_id, dict(func(argument)), None))
        except Exception as exc:  # one bad track must never stop the map
            results.append((track_id, None, f"{type(exc).__name__}: {exc}"))
    return results


def _process_batch(func: ChunkFunction, chunk: Sequence[tuple[str, Any]]) -> list[tuple[str, Any, str | None]]:
    try:
        returned = {track_id: (row, error) for track_id, row, error in func(list(chunk))}
    except Exception as exc:  # the whole chunk fails, and says why
        message = f"{type(exc).__name__}: {exc}"
        return [(track_id, None, message) for track_id, _ in chunk]
    results = []
    for track_id, _ in chunk:
        row, error = returned.get(track_id, (None, "the batched function gave no result for this track"))
        if row is None:
            results.append((track_id, None, error or "the batched function gave no row and no error"))
        else:
            results.append((track_id, dict(row), None))
    return results


def _run_chunks(
    process: Callable[[Sequence[tuple[str, Any]]], list[tuple[str, Any, str | None]]],
    chunks: list[list[tuple[str, Any]]],
    scheduler: str,
    workers: int,
    track_timeout_s: float | None,
) -> Iterator[list[tuple[str, Any, str | None]]]:
    if not chunks:
        return
    if scheduler == "synchronous":
        for chunk in chunks:
            yield process(chunk)
        return
    from dask.distributed import Client

    with _connect(scheduler, workers, Client) as client:
        yield from _DeadlineMap(client, process, track_timeout_s).results(chunks)


class _DeadlineMap:
    """Chunks through a Dask client, each under its deadline (module docstring)."""

    def __init__(self, client: Any, process: Callable, track_timeout_s: float | None) -> None:
        self.client, self.process, self.timeout = client, process, track_timeout_s
        self.queue: deque[list[tuple[str, Any]]] = deque()
        self.running: dict[Any, list[tuple[str, Any]]] = {}  # future -> its chunk
        self.clocks: dict[Any, tuple[str, float]] = {}  # future -> (worker running it, since when)
        self.ending: dict[str, float] = {}  # workers told to exit (when), until they are gone

    def results(self, chunks: list[list[tuple[str, Any]]]) -> Iterator[list[tuple[str, Any, str | None]]]:
        """The results of every chunk as they finish; a chunk past its deadline or whose worker
        died is split into single tracks, and a single track fails instead."""
        from dask.distributed import wait

        self.queue.extend(chunks)
        poll = _POLL_SECONDS if self.timeout is None else min(_POLL_SECONDS, self.timeout / 4)
        last_worker_seen = time.monotonic()
        while self.queue or self.running:
            threads, now = self.client.nthreads(), time.monotonic()
            self.ending = {worker: told for worker, told in self.ending.items()
                           if worker in threads and now - told < _NO_WORKER_SECONDS}
            if threads:
                last_worker_seen = now
            elif now - last_worker_seen > _NO_WORKER_SECONDS:
                yield from self._give_up()
                return
            while self.queue and not self.ending and len(self.running) < sum(threads.values()):
                chunk = self.queue.popleft()
                self.running[self.client.submit(self.process, chunk, pure=False)] = chunk
            if not self.running:  # the workers are starting or restarting
                time.sleep(poll)
                continue
            try:
                wait(list(self.running), timeout=poll, return_when="FIRST_COMPLETED")
            except TimeoutError:
                pass
            yield from self._finished()
            if self.timeout is not None:
                yield from self._late()

    def _finished(self) -> Iterator[list[tuple[str, Any, str | None]]]:
        for future in [future for future in self.running if future.done()]:
            chunk = self.running.pop(future)
            if future.status == "finished":
                yield future.result()
            else:
                yield from self._split(chunk, f"its worker failed ({_failure(future)}); skipped")
        # the futures go out of scope here: a finished task's result stays on its worker while one refers to it

    def _late(self) -> Iterator[list[tuple[str, Any, str | None]]]:
        """Cancel the chunks past their deadline, end their workers and split the chunks."""
        now, holders = time.monotonic(), _holders(self.client, self.running)
        # a chunk's clock runs while one worker runs it, and starts again on another
        self.clocks = {future: self.clocks[future] if self.clocks.get(future, ("", 0.0))[0] == worker else (worker, now)
                       for future, worker in holders.items()}
        for future, (worker, since) in list(self.clocks.items()):
            if now - since > self.timeout * len(self.running[future]):
                chunk = self.running.pop(future)
                del self.clocks[future]
                future.cancel()
                _end_worker(self.client, worker)
                self.ending[worker] = now
                yield from self._split(chunk, f"took longer than {self.timeout:g} s; skipped")

    def _split(self, chunk: list[tuple[str, Any]], reason: str) -> Iterator[list[tuple[str, Any, str | None]]]:
        """Queue a chunk's tracks again one per chunk, first; a single track fails with ``reason``."""
        if len(chunk) == 1:
            yield [(chunk[0][0], None, reason)]
        else:
            self.queue.extendleft([track] for track in reversed(chunk))

    def _give_up(self) -> Iterator[list[tuple[str, Any, str | None]]]:
        for chunk in [*self.running.values(), *self.queue]:
            yield [(track_id, None, "no Dask worker left to run it; skipped") for track_id, _ in chunk]


def _holders(client: Any, running: Mapping[Any, Any]) -> dict[Any, str]:
    """``{future: worker address}`` of the futures of ``running`` that a worker is running."""
    by_key = {future.key: future for future in running}
    return {by_key[key]: address for address, keys in client.processing().items() for key in keys if key in by_key}


def _failure(future: Any) -> str:
    """Why a chunk's task failed outside the track function (its worker died, mostly)."""
    error = future.exception() if future.status == "error" else None
    if error is None:
        return future.status
    if type(error).__name__ == "KilledWorker":
        return "KilledWorker: the worker process died while running it"
    return f"{type(error).__name__}: {error}"


def _end_worker(client: Any, worker: str) -> None:
    """End a worker's process from its event loop, which the hung track (waiting for the disk
    in another thread) leaves free; the worker's nanny starts another."""
    client.run(_exit_soon, workers=[worker], wait=False, on_error="ignore")


async def _exit_soon() -> None:
    """Exit this worker process in a moment, once Dask has answered the call."""
    asyncio.get_running_loop().call_later(_EXIT_DELAY_SECONDS, os._exit, 1)


def start_local_cluster(n_workers: int) -> Any:
    """Start the Dask cluster of ``scheduler="local"``: ``n_workers`` single-threaded processes.

    Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also turns
    off glibc's adaptive mmap threshold, so every large array (a decoded track, a batch
    of crops) is mapped and zeroed afresh: feature extraction and the network ran 30-70 %
    slower. The workers here keep glibc's defaults (and the setting does not leak into
    this process's environment). The scheduler sends a worker one chunk per thread at a
    time (Dask's default sends 1.1 per thread, rounded up), so that a chunk a worker holds is
    running, as its deadline assumes (module docstring), and a worker imports this module
    (pandas, pyarrow) before it joins, not in its first chunk's time. Dask's nanny writes the workers' environment
    (``OMP_NUM_THREADS=1`` and the like) into this process's ``os.environ`` while it
    spawns them; it is put back, so that torch stages run after a Dask stage keep their
    threads and a resumed run computes what an uninterrupted one does. Workers of a
    ``tcp://`` cluster get Dask's default unless
    their Dask config sets ``distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_``
    to null.

    Returns
    -------
    dask.distributed.LocalCluster
        Close it (or use it as a context manager) when done.
    """
    import dask
    from dask.distributed import LocalCluster

    saved = {key: os.environ.get(key) for key in (*SINGLE_THREAD_ENV, *_NANNY_ENV_KEYS)}
    try:
        with dask.config.set({_MALLOC_TRIM_KEY: None, _SATURATION_KEY: 1.0}):
            return LocalCluster(
                n_workers=n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
                env=SINGLE_THREAD_ENV,
                preload=[__name__],
            )
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _connect(scheduler: str, workers: int, client_class: type) -> Iterator[Any]:
    if scheduler == "local":
        with start_local_cluster(workers) as cluster, client_class(cluster) as client:
            yield client
        return
    if "://" not in scheduler:
        raise ConfigError(f"scheduler must be 'local', 'synchronous' or a Dask address like tcp://host:8786, not {scheduler!r}")
    try:
        client = client_class(scheduler, timeout="20s")
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    with client:
        yield client


@contextmanager
def _progress(description: str, *, total: int, completed: int, enabled: bool) -> Iterator[Callable[[int], None]]:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=not enabled, transient=False) as progress:
        task = progress.add_task(description, total=total, completed=completed)
        yield lambda n: progress.advance(task, n)


def _read_finished_chunks(chunk_dir: Path, fingerprint: Mapping[str, Any]) -> pd.DataFrame:
    marker = chunk_dir / _FINGERPRINT_FILE
    wanted = json.dumps(fingerprint, sort_keys=True, default=str)
    if marker.exists() and marker.read_text(encoding="utf-8") != wanted:
        clear_chunks(chunk_dir)
    chunk_dir.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        marker.write_text(wanted, encoding="utf-8")
    parts = [pd.read_parquet(path) for path in sorted(chunk_dir.glob("part-*.parquet"))]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True).drop_duplicates("track_id", keep="last")


def _next_part_number(chunk_dir: Path) -> int:
    numbers = [int(path.stem.split("-")[1]) for path in chunk_dir.glob("part-*.parquet")]
    return max(numbers, default=-1) + 1


def _write_part(chunk_dir: Path, number: int, rows: list[dict[str, Any]]) -> pa.Table:
    """Write a finished chunk's rows as a Parquet part; return them as an Arrow table.

    The table is built from the rows directly (``pyarrow.Table.from_pandas`` costs ~0.1 ms
    per column: 50 ms for a part of stage 5's 520 columns), and without statistics or
    dictionaries, which a part that is only ever read whole does not need.
    """
    columns = dict.fromkeys(key for row in rows for key in row)
    table = pa.table({key: [row.get(key) for row in rows] for key in columns})
    with atomic_path(chunk_dir / f"part-{number:06d}.parquet") as tmp:
        pq.write_table(table, tmp, use_dictionary=False, write_statistics=False)
    return table
