"""The artifacts contract: file names, schemas, atomic writes and the run manifest.

Only this module and ``cli.py`` know where things are stored. Every write goes to a
temporary file in the destination directory and is moved into place with
:func:`os.replace`, so a killed run leaves either the old artifact or the new one, never
half of one. A stage writes all its artifacts, its manifest entry included, into a
staging folder and moves them into place together (:func:`staged`), so a killed stage
leaves either all its old artifacts or all its new ones, never a mix. ``manifest.json``
records, per artifact, the stage, its settings, the hashes of its inputs and the package
versions that produced it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time as _time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import pandas as pd

from .errors import ArtifactError, DamagedArtifactError, MissingArtifactError, StorageError, WorkdirBusyError

FEATURES = "features.parquet"
CLUSTERS = "clusters.csv"
CLUSTER_SELECTION = "cluster_selection.json"
CLUSTER_PROFILES = "cluster_profiles.json"
TRACK_LABELS = "tracks_with_cluster_names.csv"
LABEL_TO_IDX = "label_to_idx.json"
MANIFEST = "manifest.json"
BACKBONE = "models/backbone.pt"
CLASSIFIER = "models/classifier.pt"
PRETRAIN_METRICS = "metrics/pretrain.json"
CLASSIFIER_METRICS = "metrics/classifier.json"
ABLATION_METRICS = "metrics/ablation.json"
BASELINES = "metrics/baselines.json"
MUSAV_FEATURES = "musav_features.parquet"
AV_REGRESSOR = "models/av_regressor.pth"
AV_METRICS = "metrics/av.json"
MUSAV_EMBEDDINGS = "musav_embeddings.parquet"
MUSAV_PREDICTIONS = "musav_predictions.jsonl"
INFERENCE_LOOKUP = "inference_lookup.csv"
EMBEDDINGS = "embeddings.parquet"
CATALOG = "catalog_tracks.parquet"
SERVING_MODEL = "models/inference_bundle.pt"
NAMES_DB = "names.sqlite"
PROJECTIONS = "cache/projections.parquet"
REPORT_MARKDOWN = "report/report.md"
REPORT_HTML = "report/report.html"
REPORT_FIGURES = "report/figures"
TEMPORARY_SUFFIX = ".tmp"
LOCK = ".moodscape.lock"
STAGING = ".staging"
UNLOCKED_CACHE = "cache"
"""The folder ``serve`` writes in without the lock (its caches); every other write holds it."""
LEFTOVER_AGE_SECONDS = 600.0
"""A temporary file of the unlocked cache this old is a killed write's leftover, not one in progress."""

# Columns of the stage-5 tables (the lookup's p_<label> and mood columns, the embeddings).
LABEL_COLUMN_PREFIX = "p_"
AV_COLUMNS = ("valence", "arousal")
EMBEDDING_COLUMNS = [f"emb_{index:03d}" for index in range(512)]  # models.backbone.EMBEDDING_DIM


_UMASK = os.umask(0)
os.umask(_UMASK)
_VERSIONED_PACKAGES = ("moodscape", "numpy", "librosa", "soundfile", "scikit-learn", "pandas", "dask")


@dataclass(frozen=True)
class Workdir:
    """The directory holding every artifact of one run.

    Parameters
    ----------
    root : Path
        The run directory (``data/`` by default on the command line).
    """

    root: Path

    @property
    def committed(self) -> Workdir:
        """The work directory the artifacts end in (itself; a :class:`StagedWorkdir`'s target)."""
        return self

    def path(self, name: str) -> Path:
        """Absolute path of the artifact called ``name``."""
        return self.root / name

    @property
    def features(self) -> Path:
        return self.path(FEATURES)

    @property
    def clusters(self) -> Path:
        return self.path(CLUSTERS)

    @property
    def cluster_selection(self) -> Path:
        return self.path(CLUSTER_SELECTION)

    @property
    def cluster_profiles(self) -> Path:
        return self.path(CLUSTER_PROFILES)

    @property
    def track_labels(self) -> Path:
        return self.path(TRACK_LABELS)

    @property
    def label_to_idx(self) -> Path:
        return self.path(LABEL_TO_IDX)

    @property
    def manifest(self) -> Path:
        return self.path(MANIFEST)

    @property
    def backbone(self) -> Path:
        return self.path(BACKBONE)

    @property
    def classifier(self) -> Path:
        return self.path(CLASSIFIER)

    @property
    def pretrain_metrics(self) -> Path:
        return self.path(PRETRAIN_METRICS)

    @property
    def classifier_metrics(self) -> Path:
        return self.path(CLASSIFIER_METRICS)

    @property
    def ablation_metrics(self) -> Path:
        return self.path(ABLATION_METRICS)

    @property
    def baselines(self) -> Path:
        """The baselines of every metric, one section per stage that owns the metric."""
        return self.path(BASELINES)

    @property
    def musav_features(self) -> Path:
        """Stage-1 features of the MusAV previews (``track_id`` = song id), for the baselines."""
        return self.path(MUSAV_FEATURES)

    @property
    def av_regressor(self) -> Path:
        return self.path(AV_REGRESSOR)

    @property
    def av_metrics(self) -> Path:
        return self.path(AV_METRICS)

    @property
    def musav_embeddings(self) -> Path:
        """512-d embeddings of the MusAV songs (``track_id`` = song id)."""
        return self.path(MUSAV_EMBEDDINGS)

    @property
    def musav_predictions(self) -> Path:
        """Held-out valence/arousal of every MusAV song, in the dataset's predictions format."""
        return self.path(MUSAV_PREDICTIONS)

    @property
    def inference_lookup(self) -> Path:
        return self.path(INFERENCE_LOOKUP)

    @property
    def embeddings(self) -> Path:
        return self.path(EMBEDDINGS)

    @property
    def catalog(self) -> Path:
        """Where the inferred tracks' audio lives, with their split and ids (the serving catalog)."""
        return self.path(CATALOG)

    @property
    def serving_model(self) -> Path:
        """The inference bundle of stage 5 (merged classifier + AV regressor) that ``serve`` analyses uploads with."""
        return self.path(SERVING_MODEL)

    @property
    def lock(self) -> Path:
        """The lock file a command holds while it writes here (:func:`workdir_lock`); it names the holder."""
        return self.path(LOCK)

    @property
    def names_db(self) -> Path:
        """SQLite file of the display names a user gave the labels in the web app, and of the Subsonic playlists."""
        return self.path(NAMES_DB)

    @property
    def projections(self) -> Path:
        """Cache of the 2-D projections of the embeddings (PCA, UMAP, t-SNE) the web app shows."""
        return self.path(PROJECTIONS)

    @property
    def report_markdown(self) -> Path:
        """The run report in Markdown (figures beside it in ``report/figures/``)."""
        return self.path(REPORT_MARKDOWN)

    @property
    def report_html(self) -> Path:
        """The run report as one self-contained HTML file (figures embedded, equations as MathML)."""
        return self.path(REPORT_HTML)

    @property
    def report_figures(self) -> Path:
        """Directory of the report's figures, which ``report.md`` links to."""
        return self.path(REPORT_FIGURES)

    def report_figure(self, name: str) -> Path:
        """One figure of the report, a PNG file."""
        return self.report_figures / f"{name}.png"

    def inference_bundle(self, stage: str) -> Path:
        """The merged network (+ AV regressor) that a stage's Dask workers load."""
        return self.root / "jobs" / f"{stage}-bundle.pt"

    def ablation_checkpoint(self, variant: str) -> Path:
        """Checkpoint of one ablation variant (kept apart from the run's own models)."""
        return self.root / "ablation" / f"{variant}.pt"

    def settings_snapshot(self, stage: str) -> Path:
        """The settings (JSON, a valid ``--config``) a stage hands to the processes it starts under ``torchrun``."""
        return self.root / "jobs" / f"{stage}-settings.json"

    def embedding_cache(self, version: str) -> Path:
        """The server's float32 matrix of the embeddings of one version of the lookup."""
        return self.root / "cache" / f"embeddings-{version}.npy"

    def stale_embedding_caches(self, version: str) -> list[Path]:
        """The server's embedding caches of every other version."""
        current = self.embedding_cache(version)
        return [path for path in current.parent.glob("embeddings-*.npy") if path != current]

    @property
    def mel_cache(self) -> Path:
        """Directory of cached log-mel spectrograms, one ``.npy`` per track and source."""
        return self.root / "mels"

    def mel_path(self, track_id: str, source_key: str) -> Path:
        """Cache file of one track's log-mel spectrogram computed from the source ``source_key`` names.

        Track ids may contain ``/``; the key (hex digits, no dot) comes last, so a changed
        source gets a new file instead of the old one.
        """
        return self.mel_cache / f"{quote(track_id, safe='')}.{source_key}.npy"

    def cached_mels(self) -> dict[str, list[Path]]:
        """``{track_id: [cache files]}`` of every mel in the cache, whatever its source."""
        found: dict[str, list[Path]] = {}
        for path in self.mel_cache.glob("*.npy"):
            quoted, _, _ = path.name[: -len(".npy")].rpartition(".")
            found.setdefault(unquote(quoted), []).append(path)
        return found

    def chunk_dir(self, stage: str) -> Path:
        """Where a per-track map keeps its finished chunks until the stage completes."""
        return self.root / ".chunks" / stage

    @property
    def dataset_problems(self) -> Path:
        """Text file listing the rows and files the dataset loader skipped, one per line."""
        return self.root / "reports" / "dataset_problems.txt"

    @property
    def duplicates_report(self) -> Path:
        """Text file listing the groups of identical tracks of which one was kept, one per line."""
        return self.root / "reports" / "duplicates.txt"

    def skipped_report(self, stage: str) -> Path:
        """CSV listing the tracks a stage skipped, and why."""
        return self.root / "reports" / f"skipped_{stage}.csv"


@dataclass(frozen=True)
class StagedWorkdir(Workdir):
    """Where a running stage writes its artifacts: the names of ``target``, in a staging folder.

    :func:`staged` moves every file written here into ``target`` at once when the stage
    succeeds, and discards them when it fails. Write through it; read through ``target``
    (what is here is only what the stage wrote so far).

    Parameters
    ----------
    root : Path
        The staging folder, ``<target>/.staging/<stage>``.
    target : Workdir
        The work directory the files move to.
    """

    target: Workdir
    removals: list[Path] = field(default_factory=list, compare=False, hash=False)

    @property
    def committed(self) -> Workdir:
        return self.target

    def remove(self, path: Path) -> None:
        """Delete ``path`` (a file or folder of ``target``) as part of the commit."""
        self.removals.append(Path(path))


@contextlib.contextmanager
def staged(workdir: Workdir, stage: str) -> Iterator[StagedWorkdir]:
    """Collect a stage's artifacts in a staging folder, then move them into ``workdir`` together.

    On leaving the block without an error, the commit writes a journal (the list of
    files to move, atomically), moves each file into place, then deletes the journal. A
    run killed during the moves is completed by :func:`finish_commits` at the next start;
    one killed before the journal was written leaves a staging folder without one, which
    is discarded. So the stage's old artifacts are replaced by all of its new ones, or by
    none: write the manifest entry (:func:`record_stage`) into the block too.

    Raises
    ------
    StorageError
        When the staging folder or the journal cannot be written (nothing was replaced),
        or a move fails (the next start completes it).

    Examples
    --------
    >>> with staged(workdir, "cluster") as out:  # doctest: +SKIP
    ...     write_table(out.clusters, clusters)
    ...     record_stage(out, "cluster", [out.clusters], settings, inputs)
    """
    _finish_commit(workdir, stage)
    out = StagedWorkdir(workdir.root / STAGING / stage, target=workdir)
    try:
        shutil.rmtree(out.root, ignore_errors=True)
        out.root.mkdir(parents=True)
    except OSError as error:
        raise StorageError(write_failure(out.root, error)) from None
    try:
        yield out
        write_json(_journal(workdir, stage), _commit_plan(out))
    except BaseException:
        _discard(out.root)
        raise
    _finish_commit(workdir, stage)


def finish_commits(workdir: Workdir) -> list[str]:
    """Complete the commits a killed run began (:func:`staged`) and discard the staging folders it left.

    Returns
    -------
    list of str
        The stages whose commit was completed.
    """
    staging = workdir.root / STAGING
    if not staging.is_dir():
        return []
    finished = [journal.name.removesuffix(".json") for journal in sorted(staging.glob("*.json"))]
    for stage in finished:
        _finish_commit(workdir, stage)
    for folder in [path for path in staging.glob("*") if path.is_dir()]:
        _discard(folder)
    return finished


def _unstaged(path: Path) -> Path:
    """The path a file of a staging folder (``<workdir>/.staging/<stage>/name``) is written for: ``<workdir>/name``."""
    parts = path.parts
    if STAGING not in parts[:-1]:
        return path
    at = parts.index(STAGING)
    return Path(*parts[:at], *parts[at + 2:]) if len(parts) > at + 2 else Path(*parts[:at])


def _journal(workdir: Workdir, stage: str) -> Path:
    return workdir.root / STAGING / f"{stage}.json"


def _commit_plan(out: StagedWorkdir) -> dict[str, list[str]]:
    """The journal of a commit: the staged files to move (the manifest last) and the paths to delete."""
    moves = sorted(str(path.relative_to(out.root)) for path in out.root.rglob("*")
                   if path.is_file() and not path.name.endswith(TEMPORARY_SUFFIX))
    moves.sort(key=lambda name: name == MANIFEST)  # a reader never sees a manifest ahead of its files
    return {"moves": moves, "removals": [_relative(out.target, path) for path in out.removals]}


def _finish_commit(workdir: Workdir, stage: str) -> None:
    """Carry out the journal of ``stage``, if there is one (moves already done are skipped), then delete it."""
    journal = _journal(workdir, stage)
    if not journal.exists():
        return
    plan = read_json(journal)
    staging = workdir.root / STAGING / stage
    target = workdir.root
    try:
        for name in plan["moves"]:
            target = workdir.root / name
            if (staging / name).exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                _move(staging / name, target)
        for name in plan["removals"]:
            target = workdir.root / name
            if target.is_dir():
                shutil.rmtree(target)
            else:
                target.unlink(missing_ok=True)
        journal.unlink()
    except OSError as error:
        raise StorageError(write_failure(target, error)) from None
    _discard(staging)


def _discard(folder: Path) -> None:
    """Remove a stage's staging folder, and the folder of staging folders once empty."""
    shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        folder.parent.rmdir()


def _move(source: Path, target: Path) -> None:
    os.replace(source, target)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only on success.

    Raises
    ------
    StorageError
        When the file cannot be written (a full disk, a read-only or foreign folder);
        the message names ``path`` and what to do. The temporary file is removed.

    Examples
    --------
    >>> with atomic_path(Path("out.csv")) as tmp:  # doctest: +SKIP
    ...     table.to_csv(tmp, index=False)
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMPORARY_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; artifacts are ordinary files
        os.replace(tmp, path)
    except OSError as error:
        raise StorageError(write_failure(path, error)) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def workdir_lock(workdir: Workdir) -> Iterator[None]:
    """Hold the work directory against other moodscape commands, then clean up after killed ones.

    Taking it completes the commits of killed stages (:func:`finish_commits`) and removes
    the temporary files of killed writes (:func:`remove_leftovers`).

    The lock is an exclusive ``flock`` on :attr:`Workdir.lock`, which also names its holder
    (pid, host, since when, command line). The kernel lets go of it when its holder
    dies, so the lock file a killed command left is taken over. On a file system without
    ``flock`` the command runs unlocked.

    Raises
    ------
    WorkdirBusyError
        When another process holds the lock; the message says which.
    """
    workdir.root.mkdir(parents=True, exist_ok=True)
    stream = _take_lock(workdir)
    try:
        _name_holder(stream, workdir)
        finish_commits(workdir)
        remove_leftovers(workdir)
        yield
    finally:
        workdir.lock.unlink(missing_ok=True)
        stream.close()


def tidy_if_free(workdir: Workdir) -> bool:
    """Clean up after killed commands (see :func:`workdir_lock`) unless another command holds the work directory.

    For a command that only reads the work directory and so does not hold its lock while
    it runs (``serve``): it starts on the artifacts of a killed stage's commit completed.

    Returns
    -------
    bool
        Whether it was done: not when the directory does not exist, is in use, or cannot be written.
    """
    if not workdir.root.is_dir():
        return False
    try:
        with workdir_lock(workdir):
            return True
    except (WorkdirBusyError, StorageError, OSError):
        return False


def _take_lock(workdir: Workdir) -> Any:
    """The open lock file, locked by this process (a file unlinked by its last holder meanwhile is opened again)."""
    import fcntl

    while True:
        stream = open(workdir.lock, "a+", encoding="utf-8")
        try:
            fcntl.flock(stream, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            stream.close()
            raise WorkdirBusyError(_busy_message(workdir)) from None
        except OSError as error:
            if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS):
                raise
            return stream
        if _is_current(stream, workdir.lock):
            return stream
        stream.close()


def _is_current(stream: Any, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(stream.fileno()).st_ino
    except FileNotFoundError:
        return False


def _name_holder(stream: Any, workdir: Workdir) -> None:
    holder = {"pid": os.getpid(), "host": platform.node(), "since": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              "command": " ".join(["moodscape", *sys.argv[1:]])}
    try:  # unbuffered, so that a write the disk refused is not tried again when the stream closes
        os.ftruncate(stream.fileno(), 0)
        os.pwrite(stream.fileno(), (json.dumps(holder) + "\n").encode(), 0)
    except OSError as error:  # a full disk: say so, and where
        raise StorageError(write_failure(workdir.lock, error)) from None


def _busy_message(workdir: Workdir) -> str:
    try:
        holder = json.loads(workdir.lock.read_text(encoding="utf-8"))
        who = f"pid {holder['pid']} on {holder['host']}, since {holder['since']}: {holder['command']}"
    except (OSError, ValueError, KeyError, TypeError):
        who = "a process that has not written its name yet"
    return (f"work directory {workdir.root} is in use by another moodscape command ({who}); "
            "wait for it to finish or stop it, then run again")


def remove_leftovers(workdir: Workdir, min_age: float = LEFTOVER_AGE_SECONDS) -> list[Path]:
    """Remove the temporary files of writes killed mid-way (:func:`atomic_path`).

    Call it holding the work directory's lock: every temporary file is then a leftover,
    but in the cache ``serve`` writes unlocked, where only those older than ``min_age``
    seconds are.

    Returns
    -------
    list of Path
        The files removed.
    """
    cutoff = _time.time() - min_age
    unlocked = workdir.root / UNLOCKED_CACHE
    removed = []
    for path in workdir.root.rglob(f".*{TEMPORARY_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and (unlocked not in path.parents or path.stat().st_mtime < cutoff):
                path.unlink()
                removed.append(path)
    return removed


def write_failure(path: Path, error: OSError) -> str:
    """One line saying that ``path`` could not be written, why, and what to do (a staged file is named by
    the path it was written for)."""
    path = _unstaged(Path(path))
    advice = {
        errno.ENOSPC: f"free some space on the disk of {path.parent} (or choose another --workdir) and run again",
        errno.EDQUOT: f"free some of your disk quota on {path.parent} (or choose another --workdir) and run again",
        errno.EFBIG: "the file is over this process's file size limit (ulimit -f) or the file system's; raise it or choose another --workdir",
        errno.EROFS: "the file system is read-only; choose another --workdir",
        errno.EACCES: f"make {path.parent} writable for this user or choose another --workdir",
        errno.EPERM: f"make {path.parent} writable for this user or choose another --workdir",
        errno.ENOTDIR: f"a file stands where a folder of {path} should be; move it away or choose another --workdir",
    }.get(error.errno, "check the disk and the folder, then run again")
    return f"cannot write {path}: {error.strerror or error}; {advice}"


def file_stamp(path: str | os.PathLike) -> str:
    """``path:size:mtime_ns`` of a file: what tells that it changed without reading it.

    Raises
    ------
    OSError
        When the file cannot be read.
    """
    stat = os.stat(path)
    return f"{os.path.abspath(path)}:{stat.st_size}:{stat.st_mtime_ns}"


def write_array(path: Path, array: Any) -> None:
    """Save a numpy array as ``.npy``, atomically."""
    import numpy as np

    with atomic_path(path) as tmp, open(tmp, "wb") as stream:
        np.save(stream, array)


def link_file(path: Path, target: str | os.PathLike) -> bool:
    """Make ``path`` a symbolic link to the file ``target`` (absolute), atomically.

    Returns False, leaving ``path`` as it was, where the file system has no symbolic
    links (the caller then writes a copy).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}{TEMPORARY_SUFFIX}")
    try:
        os.symlink(os.path.abspath(target), tmp)
    except (NotImplementedError, PermissionError):
        return False
    except OSError as error:
        raise StorageError(write_failure(path, error)) from None
    try:
        os.replace(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise StorageError(write_failure(path, error)) from None
    return True


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented UTF-8 JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")


def update_baselines(workdir: Workdir, section: str, baselines: Mapping[str, Any]) -> None:
    """Replace one stage's section of ``metrics/baselines.json`` (atomically), keeping the others.

    Parameters
    ----------
    workdir : Workdir
        Where to write; a :class:`StagedWorkdir` starts from the file of its target.
    section : str
        The owning stage's section, e.g. ``"av"``, ``"tags"`` or ``"labels"``.
    baselines : mapping
        JSON-ready baseline results of that stage, scored on the model's own held-out items.
    """
    current = next((path for path in (workdir.baselines, workdir.committed.baselines) if path.exists()), None)
    document = read_json(current) if current is not None else {}
    if not isinstance(document, dict):
        document = {}
    document[section] = dict(baselines)
    write_json(workdir.baselines, document)


def read_json(path: Path) -> Any:
    """Read a JSON artifact, with an :class:`ArtifactError` that names a missing or bad file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MissingArtifactError(path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DamagedArtifactError(path, f"{path} is not valid JSON: {exc}") from None


def write_table(path: Path, table: pd.DataFrame) -> None:
    """Write a table atomically as Parquet or CSV, chosen by the file suffix."""
    with atomic_path(path) as tmp:
        if Path(path).suffix == ".parquet":
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)


def read_table(path: Path, required_columns: Sequence[str] = ("track_id",)) -> pd.DataFrame:
    """Read a Parquet or CSV artifact and check it has ``required_columns``.

    Raises
    ------
    ArtifactError
        When the file is missing, unreadable or lacks a required column.
    """
    path = Path(path)
    if not path.exists():
        raise MissingArtifactError(path)
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            table = pd.read_csv(path, dtype={"track_id": str}, keep_default_na=False, na_values=[""])
    except Exception as exc:  # pyarrow and the CSV parser raise many unrelated types
        raise ArtifactError(f"cannot read {path}: {exc}") from None
    missing = [column for column in required_columns if column not in table.columns]
    if missing:
        raise ArtifactError(f"{path} lacks column(s) {', '.join(missing)}")
    if "track_id" in table.columns:
        table["track_id"] = table["track_id"].astype(str)
    return table


def write_skipped(path: Path, skipped: Sequence[tuple[str, str]]) -> None:
    """Write the ``track_id,reason`` list of skipped tracks (an empty file when none)."""
    write_table(path, pd.DataFrame(list(skipped), columns=["track_id", "reason"]))


def write_bytes(path: Path, data: bytes) -> None:
    """Write raw bytes, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_lines(path: Path, lines: Sequence[str]) -> None:
    """Write one message per line, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")


def checkpoint_description(checkpoint: Path) -> Path:
    """The JSON description written beside a checkpoint (``model.pt`` → ``model.pt.json``)."""
    return checkpoint.with_name(f"{checkpoint.name}.json")


def read_checkpoint_description(path: Path, what: str, required: Sequence[str] = ()) -> dict[str, Any]:
    """The plain entries of the checkpoint at ``path``, from its JSON description, without torch or unpickling.

    The description (:func:`checkpoint_description`) is written with the checkpoint by
    :func:`moodscape.models.checkpoint.save_checkpoint`; the tensors' shapes are under
    the key ``"shapes"`` of the result and the checkpoint's SHA-256 (checked here) under
    ``"sha256"`` (``required`` names other entries).

    Raises
    ------
    ArtifactError
        When the checkpoint or its description is missing or unreadable, the description
        is of other bytes than the checkpoint's (one was replaced without the other), or
        it lacks a ``required`` entry.
    """
    path = Path(path)
    described = checkpoint_description(path)
    if not path.is_file():
        raise ArtifactError(f"{what} {path} does not exist")
    try:
        description = json.loads(described.read_text(encoding="utf-8"))
        entries, sha256 = description["entries"], description["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedArtifactError(described, f"{what} {path}: its description {described} is missing or unreadable "
                                              f"({type(error).__name__}: {error})") from None
    if sha256 != file_hash(path):
        raise DamagedArtifactError(path, f"{what} {path}: {described.name} describes another version of the file")
    if not isinstance(entries, dict):
        raise DamagedArtifactError(described, f"{what} {path}: {described} holds no entries object")
    missing = [key for key in required if key not in entries]
    if missing:
        raise ArtifactError(f"{what} {path} lacks {', '.join(missing)}")
    return {**entries, "shapes": description.get("shapes", {}), "sha256": sha256}


def file_hash(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def settings_hash(settings: Mapping[str, Any]) -> str:
    """A stable hash of JSON-ready settings (key order does not matter)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def package_versions(packages: Sequence[str] = _VERSIONED_PACKAGES) -> dict[str, str]:
    """Versions of Python and of ``packages`` (by default those whose behaviour shapes the artifacts)."""
    versions = {"python": platform.python_version()}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def record_stage(
    workdir: Workdir,
    stage: str,
    outputs: Sequence[Path],
    settings: Mapping[str, Any],
    inputs: Sequence[Path] = (),
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Record in ``manifest.json`` what produced each output of ``stage``.

    Parameters
    ----------
    workdir : Workdir
        Where the outputs were written: the stage's :class:`StagedWorkdir` (the entry then
        moves into the work directory's manifest with them), or the work directory.
    stage : str
        The stage name, e.g. ``"cluster"``.
    outputs : sequence of Path
        The artifacts just written (each must exist).
    settings : mapping
        The JSON-ready settings the stage used.
    inputs : sequence of Path
        The files the stage read (in the work directory, not staged); their hashes decide
        later whether the stage is stale.
    details : mapping, optional
        What the stage resolved while running (e.g. ``features.source = "auto"`` became
        ``"audio"``): kept for provenance, not part of the staleness check.

    Returns
    -------
    dict
        The manifest entry of the stage.
    """
    entry = {
        "stage": stage,
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings),
        "settings_hash": settings_hash(settings),
        "inputs": {_relative(workdir, path): file_hash(path) for path in inputs if Path(path).is_file()},
        "outputs": {_relative(workdir, path): file_hash(path) for path in outputs},
        "versions": package_versions(),
        **({"details": dict(details)} if details else {}),
    }
    manifest = read_manifest(workdir.committed)
    manifest.setdefault("stages", {})[stage] = entry
    write_json(workdir.manifest, manifest)
    return entry


def read_manifest(workdir: Workdir) -> dict[str, Any]:
    """The run's manifest, or an empty one for a new work directory."""
    if not workdir.manifest.exists():
        return {"stages": {}}
    return read_json(workdir.manifest)


def _relative(workdir: Workdir, path: Path) -> str:
    """``path`` relative to the work directory (or to the staging folder it is in) when inside it, so that a run
    can be moved; else absolute."""
    for root in (workdir.root, workdir.committed.root):
        with contextlib.suppress(ValueError):
            return str(Path(path).resolve().relative_to(root.resolve()))
    return str(Path(path).resolve())


def stale_reason(workdir: Workdir, stage: str, settings: Mapping[str, Any], inputs: Sequence[Path]) -> str | None:
    """Why ``stage`` must run again, or ``None`` when its recorded outputs are current.

    A stage is current when the manifest has an entry for it whose settings hash equals
    that of ``settings``, whose inputs are the same files with the same hashes as
    ``inputs`` now, and whose outputs all exist unchanged.

    Parameters
    ----------
    workdir : Workdir
    stage : str
    settings : mapping
        The JSON-ready settings the stage would run with now.
    inputs : sequence of Path
        The files it would read now (files that do not exist are ignored, as in
        :func:`record_stage`).

    Returns
    -------
    str or None
        A one-line reason, e.g. ``"setting cluster.k changed (auto → 6)"``.
    """
    entry = read_manifest(workdir).get("stages", {}).get(stage)
    if entry is None:
        return "not run yet"
    if entry.get("settings_hash") != settings_hash(settings):
        return "setting " + _settings_change(entry.get("settings", {}), json.loads(json.dumps(settings, default=str)))
    now = {_relative(workdir, path) for path in inputs if Path(path).is_file()}
    recorded = entry.get("inputs", {})
    if now != set(recorded):
        changed = sorted(now ^ set(recorded))
        return f"its input files changed ({changed[0]}{', ...' if len(changed) > 1 else ''})"
    for name, digest in recorded.items():
        if file_hash(workdir.root / name) != digest:
            return f"input {name} changed"
    for name, digest in entry.get("outputs", {}).items():
        path = workdir.root / name
        if not path.is_file():
            return f"output {name} is missing"
        if file_hash(path) != digest:
            return f"output {name} changed since it was written"
    return None


def _settings_change(before: Any, after: Any, prefix: str = "") -> str:
    """The first dotted setting that differs between two settings dicts, with both values."""
    if isinstance(before, dict) and isinstance(after, dict):
        for key in sorted(set(before) | set(after), key=str):
            if before.get(key) != after.get(key):
                return _settings_change(before.get(key), after.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.') or 'settings'} changed ({before!r} → {after!r})"
