"""Nearest tracks by cosine similarity, exact for small catalogs, approximate for large ones.

:class:`NeighborIndex` holds L2-normalised embeddings, so the inner product of two rows is
their cosine similarity. Below ``exact_below`` rows, :meth:`NeighborIndex.search` is one
numpy matrix product and an ``argpartition``: for 50,000 × 512 floats that is a few
milliseconds, and it is always right. At or above it, :meth:`NeighborIndex.build` trains a
faiss ``IndexIVFFlat`` (inner-product metric): k-means cuts the space into ``nlist`` cells
and a query scans only the ``nprobe`` cells whose centroids are nearest to it. ``nprobe``
is calibrated at build time, the smallest power of two whose recall@10 against the exact
answer reaches :data:`TARGET_RECALL` on a seeded sample of the catalog's own rows.

Filters. ``search(queries, k, allowed=mask)`` ranks only the rows where ``mask`` is true:
the exact path masks the similarities; the faiss path hands the mask to faiss as an
``IDSelectorBitmap``, so cells are scanned for allowed rows only. When the probed cells
hold fewer than ``k`` allowed rows (a selective filter, or one that excludes the query's
own neighbourhood), those queries probe four times more cells, again, until they have
``k`` or every cell is probed, which then is an exact scan of the allowed rows. A
handful of allowed rows (:data:`EXACT_ALLOWED_ROWS`) is scanned exactly from the start.
Every query therefore gets ``min(k, allowed rows)`` results and faiss's ``-1``
placeholders never leave this module.

Exclusions. ``search(queries, k, exclude=rows)`` never returns ``rows`` (a query's own
seeds, tracks already heard) without building an n-row mask: the exact path sets their
similarities to ``-inf``, the faiss path fetches ``k + len(rows)`` results and drops the
excluded ones. At 1,000,000 rows that saves building, counting and bit-packing a mask
(~0.7 ms) on every query. It gives the same answer as the equivalent ``allowed`` mask;
many exclusions (:data:`MAX_FETCHED_EXCLUSIONS`) or a mask of its own fall back to one.

Ties. The exact path breaks equal similarities towards the lower row, so the answer
does not depend on which rows a mask or an exclusion removed.

Threads. A web server answers many small queries at once, so a query runs on one faiss
thread (``search_threads``); building uses every core and restores the setting after.

Cache. With ``cache_dir``, the trained index is written there (``faiss.write_index``,
through a temporary file and ``os.replace``, so a killed server never leaves half a file)
under a key hashed from the vectors' shape, a sample of their rows and the settings; a
restart over the same embeddings reads it back instead of retraining (a minute at
1,000,000 tracks). A new key replaces the older files of the directory.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np

EXACT_BELOW = 10_000
"""Catalogs of at least this many tracks get the faiss IVF index. On the scale rehearsal's
18,486 tracks (512-d) an exact query took 1.47 ms of one core, the calibrated IVF one
0.12 ms; the web app's seed recommendations reached 1,110 req/s and p99 56 ms at 32
connections with the exact search (bench/RESULTS.md)."""
TARGET_RECALL = 0.95
"""Recall@10 the calibrated ``nprobe`` reaches on the calibration queries."""
CACHE_VERSION = 1
EXACT_ALLOWED_ROWS = 4096
"""Up to this many allowed rows, the faiss path scans them exactly instead."""
MAX_FETCHED_EXCLUSIONS = 1024
"""Above this many excluded rows, the faiss path turns them into an ``allowed`` mask."""
_CALIBRATION_QUERIES = 200
_CALIBRATION_K = 10
_TRAINING_POINTS_PER_CELL = 40
_HASHED_ROWS = 1024
_NO_ROWS = np.empty(0, dtype=np.int64)


class NeighborIndex:
    """Top-k cosine search over unit-norm vectors, exact or through a faiss IVF index.

    Build it with :meth:`build`; the constructor only stores what ``build`` made.

    Attributes
    ----------
    vectors : np.ndarray [shape=(n, d), dtype=float32]
        The indexed rows, L2-normalised (not copied).
    faiss_index : faiss.IndexIVFFlat or None
        ``None`` on the exact path.
    search_threads : int
        faiss threads per :meth:`search` call.
    """

    def __init__(self, vectors: np.ndarray, faiss_index=None, *, search_threads: int = 1):
        self.vectors = vectors
        self.faiss_index = faiss_index
        self.search_threads = search_threads

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        *,
        exact_below: int = 50_000,
        cache_dir: str | os.PathLike | None = None,
        seed: int = 0,
        nlist: int | None = None,
        search_threads: int = 1,
    ) -> NeighborIndex:
        """Index ``vectors``: exact below ``exact_below`` rows, a faiss IVF index otherwise.

        Parameters
        ----------
        vectors : np.ndarray [shape=(n, d)]
            L2-normalised rows (float32 C-contiguous arrays are used without a copy).
        exact_below : int
            Row count from which the faiss index is built.
        cache_dir : path, optional
            Directory where the trained faiss index is kept between runs.
        seed : int
            Seeds the training sample, k-means and the calibration queries.
        nlist : int, optional
            Number of IVF cells; default :func:`default_nlist`.
        search_threads : int
            faiss threads per search.

        Returns
        -------
        NeighborIndex

        Raises
        ------
        ValueError
            If ``vectors`` is not a non-empty 2-D array of unit-norm finite rows.
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        _check_unit_rows(vectors)
        n = len(vectors)
        if n < exact_below:
            return cls(vectors, search_threads=search_threads)
        nlist = default_nlist(n) if nlist is None else int(nlist)
        if not 1 <= nlist <= n:
            raise ValueError(f"nlist must be between 1 and the {n} rows, got {nlist}")
        cache_file = None
        if cache_dir is not None:
            cache_file = Path(cache_dir) / f"ann-{_cache_key(vectors, nlist, seed)}.faiss"
            cached = _read_cached(cache_file, vectors.shape)
            if cached is not None:
                return cls(vectors, cached, search_threads=search_threads)
        with _faiss_threads(os.cpu_count() or 1):
            index = _train_ivf(vectors, nlist, seed)
            index.nprobe = _calibrate_nprobe(index, vectors, seed)
        if cache_file is not None:
            _write_cache(index, cache_file)
        return cls(vectors, index, search_threads=search_threads)

    @property
    def is_exact(self) -> bool:
        """Whether searches scan every row (no faiss index)."""
        return self.faiss_index is None

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None, exclude: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return the ``k`` rows most similar to each query, most similar first.

        Parameters
        ----------
        queries : np.ndarray [shape=(q, d) or (d,)]
            Unit-norm query vectors.
        k : int
            Rows wanted per query (at least 1).
        allowed : np.ndarray [shape=(n,), dtype=bool], optional
            Only rows where it is true are returned (filters, exclusions).
        exclude : np.ndarray [shape=(e,), dtype=int], optional
            Rows never returned; for a few rows this is much cheaper than ``allowed``.

        Returns
        -------
        similarities : np.ndarray [shape=(q, m), dtype=float32]
            Cosine similarities, descending along each row.
        indices : np.ndarray [shape=(q, m), dtype=int64]
            Rows of ``vectors``; ``m = min(k, allowed rows)``, never ``-1``.
        """
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n, d = self.vectors.shape
        if queries.ndim != 2 or queries.shape[1] != d:
            raise ValueError(f"queries must have {d} columns, got shape {queries.shape}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (n,):
                raise ValueError(f"allowed must be a boolean mask of shape ({n},), got {allowed.shape}")
        exclude = self._exclusions(exclude)
        if len(exclude) and (allowed is not None or self._masks_exclusions(len(exclude))):
            allowed = np.ones(n, dtype=bool) if allowed is None else allowed.copy()
            allowed[exclude] = False
            exclude = exclude[:0]
        n_allowed = n - len(exclude) if allowed is None else int(np.count_nonzero(allowed))
        k = min(k, n_allowed)
        if k == 0:
            return np.empty((len(queries), 0), np.float32), np.empty((len(queries), 0), np.int64)
        if self.is_exact:
            return _exact_search(self.vectors, queries, k, allowed, exclude)
        return self._approximate_search(queries, k, allowed, n_allowed, exclude)

    def _exclusions(self, exclude):
        """``exclude`` as sorted distinct int64 rows, checked to lie in ``[0, n)``."""
        if exclude is None:
            return _NO_ROWS
        exclude = np.asarray(exclude, dtype=np.int64).reshape(-1)
        if len(exclude) > 1:
            exclude = np.unique(exclude)
        if len(exclude) and (exclude[0] < 0 or exclude[-1] >= len(self.vectors)):
            raise ValueError(f"exclude must hold rows in [0, {len(self.vectors)})")
        return exclude

    def _masks_exclusions(self, count):
        """Whether ``count`` exclusions are cheaper (or only possible) as an ``allowed`` mask.

        The exact path never needs one. The faiss path does when so many rows are
        excluded that fetching ``k + count`` results costs more than a mask, or when so
        few rows are left that the allowed rows are scanned exactly anyway.
        """
        if self.is_exact:
            return False
        return count > MAX_FETCHED_EXCLUSIONS or len(self.vectors) - count <= EXACT_ALLOWED_ROWS

    def _approximate_search(self, queries, k, allowed, n_allowed, exclude=_NO_ROWS):
        """faiss search; a query whose probed cells held fewer than ``k`` allowed rows probes more.

        Excluded rows are fetched along (``k + len(exclude)`` results) and dropped after,
        so a query is short exactly when it would be with the excluded rows masked out.
        """
        if allowed is not None and n_allowed <= EXACT_ALLOWED_ROWS:
            rows = np.flatnonzero(allowed)
            similarities, columns = _exact_search(self.vectors[rows], queries, k, None)
            return similarities, rows[columns]
        # faiss reads bit i of the bitmap at byte i >> 3, bit i & 7.
        bitmap = None if allowed is None else np.packbits(allowed, bitorder="little")
        selector = None if bitmap is None else faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
        nprobe, nlist = self.faiss_index.nprobe, self.faiss_index.nlist
        fetch = k + len(exclude)
        similarities, indices = self._probe(queries, fetch, nprobe, selector)
        short = _short_queries(indices, k, exclude)
        while short.any() and nprobe < nlist:  # at nprobe = nlist every allowed row is seen
            nprobe = min(4 * nprobe, nlist)
            similarities[short], indices[short] = self._probe(queries[short], fetch, nprobe, selector)
            short = _short_queries(indices, k, exclude)
        if len(exclude):
            return _drop_excluded(similarities, indices, k, exclude)
        return similarities, indices.astype(np.int64, copy=False)

    def _probe(self, queries, k, nprobe, selector):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        if selector is not None:
            params.sel = selector
        with _faiss_threads(self.search_threads):
            return self.faiss_index.search(queries, k, params=params)


def default_nlist(n: int) -> int:
    """Number of IVF cells for ``n`` rows: about ``sqrt(n)``, at least 40 training rows each.

    ``sqrt(n)`` balances the two costs of a query, comparing it with every centroid and
    scanning the probed cells; at 1,000,000 rows it gives 1,000 cells of ~1,000 rows.
    """
    return max(1, min(int(round(math.sqrt(n))), n // _TRAINING_POINTS_PER_CELL))


def _check_unit_rows(vectors: np.ndarray) -> None:
    """Raise ValueError unless ``vectors`` is a non-empty 2-D array of unit-norm rows."""
    if vectors.ndim != 2 or len(vectors) == 0 or vectors.shape[1] == 0:
        raise ValueError(f"vectors must be a non-empty (n, d) array, got shape {vectors.shape}")
    sample = vectors[np.linspace(0, len(vectors) - 1, min(len(vectors), _HASHED_ROWS)).astype(np.int64)]
    norms = np.linalg.norm(sample, axis=1)
    if not np.all(np.abs(norms - 1.0) < 1e-3):
        raise ValueError("vectors must be L2-normalised rows (cosine = inner product)")


def _exact_search(vectors, queries, k, allowed, exclude=None):
    """Top ``k`` of ``queries @ vectors.T`` per query, disallowed and excluded rows left out."""
    similarities = queries @ vectors.T  # (q, n)
    if allowed is not None:
        similarities[:, ~allowed] = -np.inf
    if exclude is not None and len(exclude):
        similarities[:, exclude] = -np.inf
    if len(queries) == 1:  # the usual web request: no per-query loop
        top = _top_k(similarities[0], k)
        return similarities[0, top][None].astype(np.float32, copy=False), top[None]
    top = np.stack([_top_k(row, k) for row in similarities])
    return np.take_along_axis(similarities, top, axis=1).astype(np.float32, copy=False), top


def _top_k(similarities, k):
    """Positions of the ``k`` largest of a 1-D array, largest first, ties to the lower position.

    Partitioning finds the ``k``-th largest value; every position at or above it is a
    candidate, so tied values at the cut are all seen and the lowest positions win.
    """
    n = len(similarities)
    if k >= n:
        candidates = np.arange(n)
    else:
        kth = np.partition(similarities, n - k)[n - k]
        candidates = np.flatnonzero(similarities >= kth)
    order = np.argsort(-similarities[candidates], kind="stable")[:k]
    return candidates[order]


def _short_queries(indices, k, exclude):
    """Which queries got fewer than ``k`` rows that are neither ``-1`` nor excluded."""
    if len(exclude) == 0:
        return (indices < 0).any(axis=1)
    return _usable(indices, exclude).sum(axis=1) < k


def _drop_excluded(similarities, indices, k, exclude):
    """The first ``k`` usable results of each query (every query has that many)."""
    usable = _usable(indices, exclude)
    first = np.argsort(~usable, axis=1, kind="stable")[:, :k]  # stable: usable results keep their rank order
    return (np.take_along_axis(similarities, first, axis=1),
            np.take_along_axis(indices, first, axis=1).astype(np.int64, copy=False))


def _usable(indices, exclude):
    """Mask of the results that are rows (not faiss's ``-1``) and not excluded."""
    return (indices >= 0) & ~np.isin(indices, exclude)


def _train_ivf(vectors, nlist, seed):
    """An ``IndexIVFFlat`` trained on a seeded sample, holding every row."""
    n, d = vectors.shape
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = seed
    sample_size = min(n, nlist * _TRAINING_POINTS_PER_CELL)
    sample = np.sort(np.random.default_rng(seed).choice(n, size=sample_size, replace=False))
    index.train(vectors[sample])
    index.add(vectors)
    return index


def _calibrate_nprobe(index, vectors, seed):
    """Smallest power-of-two ``nprobe`` whose recall@10 reaches :data:`TARGET_RECALL`.

    The queries are a seeded sample of the indexed rows (each is its own first
    neighbour), the truth is ``faiss.knn``'s brute-force answer.
    """
    n = len(vectors)
    rng = np.random.default_rng(seed + 1)
    queries = vectors[np.sort(rng.choice(n, size=min(n, _CALIBRATION_QUERIES), replace=False))]
    k = min(_CALIBRATION_K, n)
    _, truth = faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)
    nprobe = 1
    while nprobe < index.nlist:
        index.nprobe = nprobe
        _, found = index.search(queries, k)
        if recall_at_k(found, truth) >= TARGET_RECALL:
            return nprobe
        nprobe *= 2
    return index.nlist


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Share of the true neighbours (``truth``, (q, k)) present in ``found`` (q, k')."""
    hits = sum(len(np.intersect1d(f, t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def _cache_key(vectors, nlist, seed):
    """Hash of the shape, evenly spaced rows and settings: cheap even for 1,000,000 rows."""
    rows = np.linspace(0, len(vectors) - 1, min(len(vectors), _HASHED_ROWS)).astype(np.int64)
    digest = hashlib.sha256()
    digest.update(repr((CACHE_VERSION, vectors.shape, nlist, seed, TARGET_RECALL)).encode())
    digest.update(np.ascontiguousarray(vectors[rows]).tobytes())
    return digest.hexdigest()[:20]


def _read_cached(path: Path, shape):
    """The cached index at ``path``, or ``None`` when absent, unreadable or of other rows."""
    if not path.is_file():
        return None
    try:
        index = faiss.read_index(str(path))
    except RuntimeError:
        return None
    if index.ntotal != shape[0] or index.d != shape[1]:
        return None
    return index


def _write_cache(index, path: Path) -> None:
    """Write ``index`` to ``path`` atomically, then drop older index files beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    faiss.write_index(index, str(partial))
    os.replace(partial, path)
    for stale in path.parent.glob("ann-*.faiss"):
        if stale != path:
            stale.unlink(missing_ok=True)


@contextlib.contextmanager
def _faiss_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` faiss (OpenMP) threads, restoring the setting after."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)
