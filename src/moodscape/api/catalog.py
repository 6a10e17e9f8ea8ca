"""The serving bundle: load the artifacts of a run once, check they agree, keep them in memory.

The web app serves a work directory after ``moodscape infer``. :func:`load_catalog` reads
the lookup, the embeddings, the track catalog, the label and cluster files, the metrics
and the stage-5 network, and checks the *label encoding alignment*: the classifier
checkpoint, ``label_to_idx.json``, the inference bundle, the AV regressor, the lookup's
probability columns and the named clusters of ``cluster_profiles.json`` must all name the
same labels in the same order. Any missing file or disagreement raises
:class:`BundleError` with one line naming the file and the difference, and the server
refuses to start. :func:`check_bundle` runs the cheap part of these checks alone (no
table is read beyond its header), for a parent process that validates a bundle before
it spawns the server workers.

The catalog is read-only after loading; every request reads its arrays, so several
server processes can serve one bundle. Only the label display names (SQLite) change.

Loading is built for catalogs of a million tracks: the tables are read with pyarrow
(no pandas frame of 513 columns), tags stay comma-joined strings until a row's tags are
asked for, and the L2-normalised embeddings are cached as
``cache/embeddings-<version>.npy`` and memory-mapped, so a restart skips the Parquet
decoding and every server process on the machine shares one copy of the pages.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from moodscape import artifacts
from moodscape.artifacts import Workdir
from moodscape.errors import ArtifactError, StorageError
from moodscape.pipeline.stages import serving_bundle
from moodscape.artifacts import AV_COLUMNS, EMBEDDING_COLUMNS, LABEL_COLUMN_PREFIX

LOOKUP_COLUMNS = ("track_id", "new_acoustic_label", "probability", *AV_COLUMNS, "tags", "duration")
TEXT_COLUMNS = ("track_id", "new_acoustic_label", "tags")
DISPLAY_COLUMNS = ("title", "artist", "album")
"""Catalog table columns shown beside a track id (a folder's embedded tags), ``""`` when a bundle has none."""
READ_VALUES = 1 << 23  # embedding values decoded per Parquet read: 32 MB of float32


class BundleError(ArtifactError):
    """The serving bundle is incomplete or its files disagree (one line, naming the file)."""


def split_tags(text: Any) -> list[str]:
    """The tags of one comma-joined ``tags`` cell (``[]`` for an empty or missing cell)."""
    return [tag for tag in text.split(",") if tag] if isinstance(text, str) else []


class TagLists(Sequence):
    """The tags of every track as a read-only sequence of lists, split on demand.

    A million tracks' tags as Python lists cost seconds and hundreds of MB at start-up,
    while a request needs the tags of a few rows; so the catalog keeps the comma-joined
    text and this sequence splits a row when it is indexed. It behaves like the
    ``list[list[str]]`` it replaces: ``tags[row]``, ``len(tags)``, iteration, slices.

    Parameters
    ----------
    text : np.ndarray [shape=(n,), dtype=object]
        The comma-joined tags of each track.
    """

    __slots__ = ("text",)

    def __init__(self, text: np.ndarray) -> None:
        self.text = text

    def __len__(self) -> int:
        return len(self.text)

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [split_tags(text) for text in self.text[row]]
        return split_tags(self.text[row])

    def __iter__(self) -> Iterator[list[str]]:
        return map(split_tags, self.text)

    def __repr__(self) -> str:
        return f"TagLists({len(self)} tracks)"


@dataclass
class Catalog:
    """Every catalog track's predictions, embedding and audio file, as arrays in lookup order.

    Attributes
    ----------
    root : Path
        The bundle (work) directory.
    track_ids : np.ndarray [shape=(n,), dtype=object]
    index : dict of str to int
        Row of each track id.
    labels : list of str
        Canonical label names in index order (``label_to_idx.json``).
    label_of : np.ndarray [shape=(n,), dtype=int]
        Index of each track's predicted label.
    probabilities : np.ndarray [shape=(n, K), dtype=float32]
        Softmax probability of each label (rows sum to 1).
    valence, arousal : np.ndarray [shape=(n,), dtype=float32]
        Predicted mood on the 0–1 scale of Spotify's valence/energy; NaN without an AV model.
    embeddings : np.ndarray [shape=(n, 512), dtype=float32]
        L2-normalised, so a dot product is the cosine similarity. Read-only: a
        memory map of the bundle's embedding cache when it could be written.
    tag_text : np.ndarray [shape=(n,), dtype=object]
        Original tags of each track, comma-joined as in the lookup (``""``: none).
        :attr:`tags` and :meth:`tags_of` split them.
    duration : np.ndarray [shape=(n,), dtype=float64]
    audio_path : np.ndarray [shape=(n,), dtype=object]
        Absolute audio file of each track, ``""`` when it has none.
    title, artist, album : np.ndarray [shape=(n,), dtype=object]
        From the files' embedded tags (:data:`DISPLAY_COLUMNS`), ``""`` when unknown.
    profiles, selection, classifier_metrics, av_metrics : dict or None
        ``cluster_profiles.json``, ``cluster_selection.json``, ``metrics/classifier.json``
        and ``metrics/av.json`` (``None`` when the run has no such file).
    cluster_of_label : dict of str to int
        Cluster id behind each label (from the profiles).
    version : str
        Hash of the lookup and embeddings files: keys caches of derived data.
    """

    root: Path
    track_ids: np.ndarray
    index: dict[str, int]
    labels: list[str]
    label_of: np.ndarray
    probabilities: np.ndarray
    valence: np.ndarray
    arousal: np.ndarray
    embeddings: np.ndarray
    tag_text: np.ndarray
    duration: np.ndarray
    audio_path: np.ndarray
    title: np.ndarray
    artist: np.ndarray
    album: np.ndarray
    profiles: dict[str, Any]
    selection: dict[str, Any] | None = None
    classifier_metrics: dict[str, Any] | None = None
    av_metrics: dict[str, Any] | None = None
    cluster_of_label: dict[str, int] = field(default_factory=dict)
    version: str = ""

    def __len__(self) -> int:
        return len(self.track_ids)

    @functools.cached_property
    def has_mood(self) -> bool:
        """Whether any track has a valence/arousal prediction (the run had an AV model)."""
        return bool(np.isfinite(self.valence).any())

    @property
    def tags(self) -> TagLists:
        """Original tags of each track, as a lazy sequence of lists (``catalog.tags[row]``)."""
        return TagLists(self.tag_text)

    def tags_of(self, row: int) -> list[str]:
        """Original tags of the track in ``row``."""
        return split_tags(self.tag_text[row])

    @property
    def tag_vocabulary(self) -> list[str]:
        """Every original tag some catalog track has, sorted."""
        return sorted({tag for text in set(self.tag_text) for tag in split_tags(text)})


@dataclass(frozen=True)
class _Checked:
    """What the cheap checks read: the labels, the cluster profiles and each label's cluster."""

    labels: list[str]
    profiles: dict[str, Any]
    cluster_of_label: dict[str, int]


def check_bundle(root: str | Path) -> list[str]:
    """Run the cheap start-up checks of a serving bundle, without reading its tables.

    Checks that every file is there, ``label_to_idx.json``, the labels of the
    checkpoints, the lookup's header (its columns and the order of the probability
    columns) and the cluster profiles. :func:`load_catalog` runs them first; a parent
    process can run them alone before it spawns the server workers.

    Parameters
    ----------
    root : path
        A work directory after ``moodscape infer``.

    Returns
    -------
    list of str
        The canonical labels in index order.

    Raises
    ------
    BundleError
        As :func:`load_catalog`, for the problems these checks can see.
    """
    return _check(Workdir(Path(root))).labels


def load_catalog(root: str | Path) -> Catalog:
    """Load a serving bundle and check its label encoding alignment.

    Parameters
    ----------
    root : path
        A work directory after ``moodscape infer``.

    Returns
    -------
    Catalog

    Raises
    ------
    BundleError
        When a file is missing or unreadable, or two files disagree on the labels or the
        tracks; the message is one line naming the file and the difference.
    """
    workdir = Workdir(Path(root))
    checked = _check(workdir)
    labels = checked.labels
    lookup = _read_lookup(workdir.inference_lookup, labels)
    track_ids = lookup.column("track_id").to_numpy()
    index = _index(workdir.inference_lookup, track_ids)
    label_of = _label_of(workdir.inference_lookup, lookup.column("new_acoustic_label"), labels)
    version = _version(workdir)
    catalog_columns = _catalog_columns(workdir.catalog, lookup.column("track_id"), track_ids)
    return Catalog(
        root=workdir.root,
        track_ids=track_ids,
        index=index,
        labels=labels,
        label_of=label_of,
        probabilities=_probabilities(lookup, labels),
        valence=lookup.column("valence").to_numpy().astype(np.float32),
        arousal=lookup.column("arousal").to_numpy().astype(np.float32),
        embeddings=_embeddings(workdir, lookup.column("track_id"), version),
        tag_text=lookup.column("tags").to_numpy(),
        duration=lookup.column("duration").to_numpy().astype(np.float64),
        **catalog_columns,
        profiles=checked.profiles,
        selection=_optional_json(workdir.cluster_selection),
        classifier_metrics=_optional_json(workdir.classifier_metrics),
        av_metrics=_optional_json(workdir.av_metrics),
        cluster_of_label=checked.cluster_of_label,
        version=version,
    )


def _check(workdir: Workdir) -> _Checked:
    """The checks of :func:`check_bundle`; returns what they read, for :func:`load_catalog`."""
    for path in serving_bundle(workdir):
        if not path.is_file():
            raise BundleError(f"{path}: missing; run `moodscape run` (or `moodscape infer`) on this work directory first")
    labels = _labels(workdir)
    _check_checkpoints(workdir, labels)
    _check_lookup_header(workdir.inference_lookup, labels)
    profiles = _guard(workdir.cluster_profiles, lambda: artifacts.read_json(workdir.cluster_profiles))
    cluster_of_label = _check_profiles(workdir.cluster_profiles, profiles, labels)
    return _Checked(labels, profiles, cluster_of_label)


def _guard(path: Path, read):
    """Run ``read`` and turn any artifact error into a one-line :class:`BundleError` naming ``path``."""
    try:
        return read()
    except BundleError:
        raise
    except ArtifactError as error:
        raise BundleError(str(error).splitlines()[0]) from None
    except (ValueError, KeyError, TypeError) as error:
        raise BundleError(f"{path}: unreadable ({error})") from None


def _labels(workdir: Workdir) -> list[str]:
    label_to_idx = _guard(workdir.label_to_idx, lambda: artifacts.read_json(workdir.label_to_idx))
    if not isinstance(label_to_idx, dict) or not label_to_idx:
        raise BundleError(f"{workdir.label_to_idx}: expected a non-empty {{label: index}} object")
    if sorted(label_to_idx.values()) != list(range(len(label_to_idx))):
        raise BundleError(f"{workdir.label_to_idx}: indices {sorted(label_to_idx.values())} are not 0..{len(label_to_idx) - 1}")
    return sorted(label_to_idx, key=label_to_idx.get)


def _check_checkpoints(workdir: Workdir, labels: list[str]) -> None:
    """The networks were trained and exported with the labels of ``label_to_idx.json``."""
    served = _guard(workdir.serving_model, lambda: artifacts.read_checkpoint_description(workdir.serving_model, "inference bundle", ("label_names",)))
    _same_labels(workdir.serving_model, list(served["label_names"]), labels, "label_names")
    if not workdir.classifier.is_file():
        return
    classifier = _guard(workdir.classifier, lambda: artifacts.read_checkpoint_description(workdir.classifier, "classifier checkpoint", ("label_to_idx",)))
    trained = dict(classifier["label_to_idx"])
    _same_labels(workdir.classifier, sorted(trained, key=trained.get), labels, "label_to_idx")
    if workdir.av_regressor.is_file():
        av = _guard(workdir.av_regressor, lambda: artifacts.read_checkpoint_description(workdir.av_regressor, "AV regressor checkpoint"))
        if "label_names" in av:
            _same_labels(workdir.av_regressor, list(av["label_names"]), labels, "label_names")
        expected = av.get("classifier_sha256")
        if expected and expected != classifier["sha256"]:
            raise BundleError(f"{workdir.av_regressor}: trained on the embeddings of another {workdir.classifier.name}; run `moodscape train-av`")


def _same_labels(path: Path, found: list[str], labels: list[str], what: str) -> None:
    if found != labels:
        raise BundleError(f"{path}: {what} {found} differ from label_to_idx.json {labels}")


def _check_lookup_header(path: Path, labels: list[str]) -> None:
    """The lookup has the columns the catalog reads, and one probability column per label, in order."""
    try:
        columns = list(pd.read_csv(path, nrows=0).columns)
    except Exception as error:  # the CSV parser raises many unrelated types
        raise BundleError(f"cannot read {path}: {str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    missing = [column for column in LOOKUP_COLUMNS if column not in columns]
    if missing:
        raise BundleError(f"{path} lacks column(s) {', '.join(missing)}")
    found = [column[len(LABEL_COLUMN_PREFIX):] for column in columns if column.startswith(LABEL_COLUMN_PREFIX)]
    _same_labels(path, found, labels, "probability columns p_<label>")


def _read_lookup(path: Path, labels: list[str]) -> pa.Table:
    """The lookup's columns the catalog needs, parsed by pyarrow: text as text (``""`` stays ``""``), the rest float64."""
    names = [*LOOKUP_COLUMNS, *(LABEL_COLUMN_PREFIX + label for label in labels)]
    options = pa_csv.ConvertOptions(
        column_types={name: pa.string() if name in TEXT_COLUMNS else pa.float64() for name in names},
        include_columns=names, null_values=[""], strings_can_be_null=False)
    try:
        return pa_csv.read_csv(path, convert_options=options)
    except (pa.ArrowException, OSError) as error:
        message = str(error).splitlines()[0]
        if "conversion error" in message:
            raise BundleError(f"{path}: a numeric column holds text ({message})") from None
        raise BundleError(f"cannot read {path}: {message}") from None


def _index(path: Path, track_ids: np.ndarray) -> dict[str, int]:
    """Row of each track id; the ids must be unique."""
    index = dict(zip(track_ids, range(len(track_ids))))
    if len(index) < len(track_ids):
        duplicated = pd.Series(track_ids)[pd.Series(track_ids).duplicated()]
        raise BundleError(f"{path}: track {duplicated.iloc[0]} appears more than once")
    return index


def _label_of(path: Path, names: pa.ChunkedArray, labels: list[str]) -> np.ndarray:
    """Index in ``labels`` of each track's ``new_acoustic_label``; every name must be a label."""
    positions = pc.index_in(names, value_set=pa.array(labels, pa.string()))
    if positions.null_count:
        unknown = sorted(pc.unique(pc.filter(names, pc.is_null(positions))).to_pylist())
        raise BundleError(f"{path}: new_acoustic_label has {unknown}, not in label_to_idx.json {labels}")
    return positions.to_numpy().astype(np.int64)


def _probabilities(lookup: pa.Table, labels: list[str]) -> np.ndarray:
    """The ``p_<label>`` columns as one float32 matrix, labels in index order."""
    probabilities = np.empty((lookup.num_rows, len(labels)), dtype=np.float32)
    for k, label in enumerate(labels):
        probabilities[:, k] = lookup.column(LABEL_COLUMN_PREFIX + label).to_numpy()
    return probabilities


def _check_profiles(path: Path, profiles: Any, labels: list[str]) -> dict[str, int]:
    clusters = profiles.get("clusters") if isinstance(profiles, dict) else None
    if not isinstance(clusters, list):
        raise BundleError(f"{path}: expected an object with a 'clusters' list")
    named = {cluster["name"]: int(cluster["cluster_id"]) for cluster in clusters if not cluster.get("dropped")}
    if set(named) != set(labels):
        raise BundleError(f"{path}: named clusters {sorted(named)} differ from label_to_idx.json {sorted(labels)}")
    return named


def _read_parquet_columns(path: Path, columns: Sequence[str], optional: Sequence[str] = ()) -> pa.Table:
    """Some columns of a Parquet artifact (and those of ``optional`` it has), with the one-line
    errors of :func:`moodscape.artifacts.read_table`."""
    try:
        names = pq.read_schema(path).names
        missing = [column for column in columns if column not in names]
        if missing:
            raise BundleError(f"{path} lacks column(s) {', '.join(missing)}")
        return pq.read_table(path, columns=[*columns, *(column for column in optional if column in names)])
    except (pa.ArrowException, OSError) as error:
        raise BundleError(f"cannot read {path}: {str(error).splitlines()[0]}") from None


def _same_ids(found: pa.ChunkedArray, expected: pa.ChunkedArray) -> bool:
    """Whether two track-id columns hold the same ids in the same order (compared in Arrow, whatever the chunks)."""
    if len(found) != len(expected):
        return False
    try:
        return found.cast(pa.large_string()).equals(expected.cast(pa.large_string()))
    except pa.ArrowException:
        return False


def _embeddings(workdir: Workdir, track_ids: pa.ChunkedArray, version: str) -> np.ndarray:
    """The L2-normalised embeddings in lookup order: from the cache when current, else from Parquet.

    Either way the Parquet file's ``track_id`` column (a small read) must be the lookup's,
    in order. A fresh matrix is written to the cache and served memory-mapped; when the
    cache cannot be written (read-only bundle, full disk) it is served from memory.
    """
    path = workdir.embeddings
    ids = _read_parquet_columns(path, ["track_id"]).column("track_id")
    if not _same_ids(ids, track_ids):
        raise BundleError(f"{path}: its {len(ids)} track ids are not the {len(track_ids)} of inference_lookup.csv, in order")
    cache = workdir.embedding_cache(version)
    shape = (len(track_ids), len(EMBEDDING_COLUMNS))
    cached = _load_cached(cache, shape)
    if cached is not None:
        return cached
    vectors = _read_embeddings(path, shape)
    try:
        artifacts.write_array(cache, vectors)
    except StorageError:  # a cache that cannot be written: serve from memory
        return vectors
    for stale in workdir.stale_embedding_caches(version):  # a process still mapping one keeps its pages
        stale.unlink(missing_ok=True)
    cached = _load_cached(cache, shape)
    return vectors if cached is None else cached


def _load_cached(cache: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached matrix, memory-mapped read-only; ``None`` when absent, unreadable or of another shape."""
    if not cache.is_file():
        return None
    try:
        vectors = np.load(cache, mmap_mode="r")
    except (OSError, ValueError):
        return None
    return vectors if vectors.shape == shape and vectors.dtype == np.float32 else None


def _read_embeddings(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Decode the embedding columns into one float32 matrix, a few columns of a row group at a time.

    Filling a preallocated matrix keeps the peak memory at the matrix plus one read of
    about 32 MB (a row group of a million rows is read 8 columns at a time), where a
    pandas frame of 513 columns costs several copies of it. Each row group is
    normalised as soon as it is filled.
    """
    vectors = np.empty(shape, dtype=np.float32)
    try:
        file = pq.ParquetFile(path)
        missing = [column for column in EMBEDDING_COLUMNS if column not in file.schema_arrow.names]
        if missing:
            raise BundleError(f"{path} lacks column(s) {', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}")
        first = 0
        for group in range(file.num_row_groups):
            rows = file.metadata.row_group(group).num_rows
            block = vectors[first : first + rows]
            step = int(np.clip(READ_VALUES // max(rows, 1), 8, len(EMBEDDING_COLUMNS)))
            for start in range(0, len(EMBEDDING_COLUMNS), step):
                table = file.read_row_group(group, columns=EMBEDDING_COLUMNS[start : start + step])
                for offset, column in enumerate(table.columns):
                    block[:, start + offset] = column.to_numpy()
            _normalise(path, block)
            first += rows
    except (pa.ArrowException, OSError) as error:
        raise BundleError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    return vectors


def _normalise(path: Path, block: np.ndarray) -> None:
    """Scale each row of ``block`` to unit L2 norm, in place; refuse non-finite values."""
    norms = np.sqrt(np.einsum("ij,ij->i", block, block))
    if not np.isfinite(norms).all():
        if not np.isfinite(block).all():
            raise BundleError(f"{path}: holds non-finite values")
        norms = np.linalg.norm(block.astype(np.float64), axis=1)  # float32 squares overflowed
    block /= np.maximum(norms, 1e-12)[:, None].astype(np.float32)


def _catalog_columns(path: Path, track_ids: pa.ChunkedArray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """``audio_path`` and the :data:`DISPLAY_COLUMNS` of each lookup track (``""``: none), from
    the catalog table in any order; a bundle written before these columns gets ``""``."""
    table = _read_parquet_columns(path, ["track_id", "audio_path"], optional=DISPLAY_COLUMNS)
    names = ["audio_path", *DISPLAY_COLUMNS]
    text = {name: pc.fill_null(table.column(name).cast(pa.large_string()), "").to_numpy() if name in table.column_names
            else np.full(table.num_rows, "", dtype=object) for name in names}
    if _same_ids(table.column("track_id"), track_ids):
        return text
    catalog_ids = pd.Index(table.column("track_id").cast(pa.large_string()).to_numpy())
    keep = ~catalog_ids.duplicated(keep="last")  # as a dict built from the rows: the last row of an id wins
    rows = catalog_ids[keep].get_indexer(ids)
    if (rows < 0).any():
        missing = ids[rows < 0]
        raise BundleError(f"{path}: lacks {len(missing)} tracks of inference_lookup.csv, e.g. {missing[0]}")
    return {name: column[keep][rows] for name, column in text.items()}


def _optional_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    return _guard(path, lambda: artifacts.read_json(path))


def _version(workdir: Workdir) -> str:
    """A short hash of the lookup's and embeddings' sizes and times: keys the embedding, projection and index caches.

    File stats, not contents: hashing 2 GB of embeddings would cost seconds of start-up
    for a million-track bundle, and every stage writes a new file (a new time).
    """
    digest = hashlib.sha256()
    for path in (workdir.inference_lookup, workdir.embeddings):
        digest.update(f"{artifacts.file_stamp(path)};".encode())
    return digest.hexdigest()[:16]
