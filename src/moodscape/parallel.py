"""Per-track maps through Dask, written in chunks so that a killed run resumes.

Every stage whose work is independent per track (features, mel-spectrograms, inference)
calls :func:`map_tracks`. Tracks are grouped into chunks; each finished chunk is written
to its own Parquet file at once, so after a kill the next run reads the chunks already
there and computes only the rest. A track whose function raises is listed with the
error's message, never dropped silently, and never stops the others.

The scheduler is a local process cluster by default (one single-threaded worker per
core), any ``tcp://host:port`` Dask scheduler address for a real cluster, or
``"synchronous"`` to run in this process (debugging, tests).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .artifacts import atomic_path
from .errors import ConfigError

SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
_FINGERPRINT_FILE = "fingerprint.json"

TrackFunction = Callable[[Any], Mapping[str, Any]]


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
    func: TrackFunction,
    tasks: Mapping[str, Any],
    *,
    chunk_dir: Path,
    fingerprint: Mapping[str, Any],
    scheduler: str = "local",
    n_workers: int | None = None,
    chunk_size: int = 32,
    description: str = "tracks",
    show_progress: bool = True,
) -> MapOutcome:
    """Apply ``func`` to every track, in parallel, resuming from finished chunks.

    Parameters
    ----------
    func : callable
        A picklable top-level function ``func(argument) -> dict`` of scalar values.
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

    Returns
    -------
    MapOutcome
    """
    done = _read_finished_chunks(Path(chunk_dir), fingerprint)
    finished_ids = set(done["track_id"]) if len(done) else set()
    pending = [(track_id, argument) for track_id, argument in tasks.items() if track_id not in finished_ids]
    resumed = len(tasks) - len(pending)
    workers = n_workers or os.cpu_count() or 1
    size = max(1, min(chunk_size, math.ceil(len(pending) / (4 * workers)) if pending else 1))
    chunks = [pending[start : start + size] for start in range(0, len(pending), size)]
    failures: list[tuple[str, str]] = []
    new_parts: list[pd.DataFrame] = []
    next_part = _next_part_number(Path(chunk_dir))
    with _progress(description, total=len(tasks), completed=resumed, enabled=show_progress) as advance:
        for results in _run_chunks(func, chunks, scheduler, workers):
            rows = [{"track_id": track_id, **row} for track_id, row, _ in results if row is not None]
            failures.extend((track_id, error) for track_id, _, error in results if error is not None)
            if rows:
                part = pd.DataFrame(rows)
                _write_part(Path(chunk_dir), next_part, part)
                next_part += 1
                new_parts.append(part)
            advance(len(results))
    table = pd.concat([done, *new_parts], ignore_index=True) if new_parts or len(done) else pd.DataFrame()
    if len(table):
        order = {track_id: position for position, track_id in enumerate(tasks)}
        table = table[table["track_id"].isin(order)]
        table = table.sort_values("track_id", key=lambda ids: ids.map(order)).reset_index(drop=True)
    return MapOutcome(rows=table, failures=failures, resumed=resumed)


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


def _run_chunks(
    func: TrackFunction, chunks: list[list[tuple[str, Any]]], scheduler: str, workers: int
) -> Iterator[list[tuple[str, Any, str | None]]]:
    if not chunks:
        return
    if scheduler == "synchronous":
        for chunk in chunks:
            yield _process_chunk(func, chunk)
        return
    from dask.distributed import Client, LocalCluster, as_completed

    with _connect(scheduler, workers, LocalCluster, Client) as client:
        futures = [client.submit(_process_chunk, func, chunk, pure=False) for chunk in chunks]
        for future in as_completed(futures):
            yield future.result()


@contextmanager
def _connect(scheduler: str, workers: int, local_cluster: type, client_class: type) -> Iterator[Any]:
    if scheduler == "local":
        cluster = local_cluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env=SINGLE_THREAD_ENV,
        )
        with cluster, client_class(cluster) as client:
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


def _write_part(chunk_dir: Path, number: int, part: pd.DataFrame) -> None:
    with atomic_path(chunk_dir / f"part-{number:06d}.parquet") as tmp:
        part.to_parquet(tmp, index=False)
