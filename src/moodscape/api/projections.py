"""2-D maps of the track embeddings (PCA, UMAP, t-SNE), computed once and kept on disk.

:func:`project` lays out at most ``max_points`` embeddings (a seeded random sample of a
larger catalogue) in two dimensions. PCA takes a fraction of a second; t-SNE and UMAP
take minutes on 20,000 tracks, so :class:`ProjectionCache` keeps each method's result in
memory and in one Parquet file, under a key the caller derives from the embeddings
(e.g. the hash of ``embeddings.parquet``), and computes each method once per key even
when requests for it arrive together.

t-SNE runs on the first 50 principal components, the usual noise-reducing step that
also makes its neighbour search cheaper. UMAP and t-SNE need a few neighbours per point,
so fewer than :data:`MIN_NEIGHBOUR_POINTS` points are laid out by PCA instead
(:func:`projection_method` says which method actually ran).
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
import pandas as pd

from moodscape.artifacts import read_table, write_table
from moodscape.errors import ArtifactError, ConfigError, StorageError

PROJECTION_METHODS = ("pca", "umap", "tsne")
MAX_POINTS = 20_000
"""Most points in a projection; larger catalogues are sampled."""

MIN_NEIGHBOUR_POINTS = 4
"""Fewest points UMAP and t-SNE lay out; below, PCA does."""

TSNE_PCA_DIMS = 50

Projection = tuple[np.ndarray, np.ndarray]
"""``(indices, xy)``: rows of the embeddings laid out, ``(m,)`` int64, and their ``(m, 2)`` float32 coordinates."""

_COLUMNS = ("key", "method", "index", "x", "y")
logger = logging.getLogger(__name__)


def project(embeddings: np.ndarray, method: str, *, seed: int = 0, max_points: int = MAX_POINTS) -> Projection:
    """Lay out embeddings in two dimensions.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    method : {"pca", "umap", "tsne"}
    seed : int
        Seeds the sample and the random state of UMAP and t-SNE.
    max_points : int
        Above this many rows, a random sample of ``max_points`` rows is laid out.

    Returns
    -------
    indices : np.ndarray [shape=(m,), dtype=int64]
        Rows of ``embeddings`` laid out, increasing.
    xy : np.ndarray [shape=(m, 2), dtype=float32]
        Their coordinates; ``xy[i]`` belongs to ``embeddings[indices[i]]``.

    Raises
    ------
    ConfigError
        Unknown ``method``, ``max_points`` below 1 or embeddings that are not a matrix.

    Examples
    --------
    >>> indices, xy = project(np.random.default_rng(0).normal(size=(100, 8)), "pca")
    >>> xy.shape
    (100, 2)
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2:
        raise ConfigError(f"embeddings must be an (n, d) matrix, got shape {embeddings.shape}")
    if max_points < 1:
        raise ConfigError(f"max_points must be at least 1, got {max_points}")
    indices = sample_indices(len(embeddings), max_points, seed)
    points = embeddings[indices]
    xy = _PROJECTORS[projection_method(method, len(points))](points, seed)
    return indices, np.ascontiguousarray(xy, dtype=np.float32)


def projection_method(method: str, n_points: int) -> str:
    """The method :func:`project` runs for ``method`` on ``n_points`` points (PCA for very few)."""
    if method not in PROJECTION_METHODS:
        raise ConfigError(f"projection method must be one of {', '.join(PROJECTION_METHODS)}, got {method!r}")
    return method if n_points >= MIN_NEIGHBOUR_POINTS else "pca"


def sample_indices(n: int, max_points: int, seed: int) -> np.ndarray:
    """All of ``range(n)``, or ``max_points`` of them drawn without replacement, increasing."""
    if n <= max_points:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False)).astype(np.int64)


def _pca(points: np.ndarray, seed: int) -> np.ndarray:
    """The first two principal components; zero columns when there are fewer."""
    from sklearn.decomposition import PCA

    xy = np.zeros((len(points), 2), dtype=np.float32)
    n_components = min(2, len(points) - 1, points.shape[1])  # n points span at most n - 1 directions
    if n_components >= 1:
        xy[:, :n_components] = PCA(n_components=n_components, random_state=seed).fit_transform(points)
    return xy


def _tsne(points: np.ndarray, seed: int) -> np.ndarray:
    """t-SNE of the first 50 principal components, perplexity ≤ 30 and below a third of the points."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    n_dims = min(TSNE_PCA_DIMS, len(points), points.shape[1])
    if points.shape[1] > n_dims:
        points = PCA(n_components=n_dims, random_state=seed).fit_transform(points)
    tsne = TSNE(n_components=2, perplexity=min(30.0, (len(points) - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(points)


def _umap(points: np.ndarray, seed: int) -> np.ndarray:
    """UMAP with up to 15 neighbours; seeded, hence single-threaded."""
    import umap  # imports numba and compiles on first use: seconds, paid only when asked for

    reducer = umap.UMAP(n_components=2, n_neighbors=min(15, len(points) - 1), random_state=seed, n_jobs=1)
    return reducer.fit_transform(points)


_PROJECTORS = {"pca": _pca, "tsne": _tsne, "umap": _umap}


class ProjectionCache:
    """Projections of one embeddings version, in memory and in a Parquet file.

    Parameters
    ----------
    path : path
        The Parquet file (columns ``key``, ``method``, ``index``, ``x``, ``y``), written
        atomically after each new projection; an unreadable file counts as empty, and
        one that cannot be written is logged, the projection still served from memory.
    seed, max_points : int
        See :func:`project`; they are part of the stored key, so changing them
        recomputes.

    Examples
    --------
    >>> cache = ProjectionCache(workdir.projections)  # doctest: +SKIP
    >>> indices, xy = cache.get_or_compute(file_hash(workdir.embeddings), "umap", embeddings)  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, seed: int = 0, max_points: int = MAX_POINTS):
        self.path = Path(path)
        self.seed = seed
        self.max_points = max_points
        self._projections: dict[tuple[str, str], Projection] | None = None  # read from the file on first use
        self._method_locks = {method: threading.Lock() for method in PROJECTION_METHODS}
        self._store_lock = threading.Lock()

    def get_or_compute(self, key: str, method: str, embeddings: np.ndarray) -> Projection:
        """The projection of ``embeddings`` by ``method``, computed only if none is stored under ``key``.

        Two calls for the same method wait for one computation; different methods
        compute side by side. A new ``key`` replaces the projections of the old one.

        Parameters
        ----------
        key : str
            Identifies the embeddings version (e.g. a hash of their file).
        method : {"pca", "umap", "tsne"}
        embeddings : np.ndarray [shape=(n, d)]

        Returns
        -------
        indices, xy : np.ndarray
            As :func:`project` returns them, read-only.
        """
        projection_method(method, 0)  # validates the name before taking a lock
        stored_key = f"{key}|seed={self.seed}|max_points={self.max_points}"
        with self._method_locks[method]:
            with self._store_lock:
                cached = self._stored().get((stored_key, method))
            if cached is not None:
                return cached
            projection = _read_only(project(embeddings, method, seed=self.seed, max_points=self.max_points))
            with self._store_lock:
                projections = {entry: value for entry, value in self._stored().items() if entry[0] == stored_key}
                projections[(stored_key, method)] = projection
                self._projections = projections
                try:
                    write_table(self.path, _projection_table(projections))
                except StorageError as error:  # a cache that cannot be written still serves from memory
                    logger.warning("cannot write the projection cache %s: %s", self.path, error)
            return projection

    def _stored(self) -> dict[tuple[str, str], Projection]:
        """Every stored projection by (key, method); reads the file the first time."""
        if self._projections is None:
            self._projections = _read_projections(self.path)
        return self._projections


def _read_projections(path: Path) -> dict[tuple[str, str], Projection]:
    if not path.exists():
        return {}
    try:
        table = read_table(path, _COLUMNS)
    except ArtifactError:  # a cache: recompute rather than fail
        return {}
    return {
        (str(key), str(method)): _read_only((rows["index"].to_numpy(np.int64), rows[["x", "y"]].to_numpy(np.float32)))
        for (key, method), rows in table.groupby(["key", "method"], sort=False)
    }


def _projection_table(projections: dict[tuple[str, str], Projection]) -> pd.DataFrame:
    tables = [
        pd.DataFrame({"key": key, "method": method, "index": indices, "x": xy[:, 0], "y": xy[:, 1]})
        for (key, method), (indices, xy) in projections.items()
    ]
    return pd.concat(tables, ignore_index=True)


def _read_only(projection: Projection) -> Projection:
    """The arrays of a projection, frozen: the cache hands the same ones to every caller."""
    indices, xy = (np.array(array) for array in projection)
    indices.flags.writeable = False
    xy.flags.writeable = False
    return indices, xy
