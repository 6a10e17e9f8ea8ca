"""Recommendations over the catalog's arrays: by mood, by seed tracks, by label, along a path.

Everything here takes and returns row indices into the catalog's arrays, so it can be
tested without files or HTTP; the routes translate track ids to rows and back.

A :class:`Recommender` answers five kinds of question:

- :meth:`~Recommender.by_mood`: tracks near a target (valence, arousal), Spotify
  recommendations style. Below :data:`MOOD_GRID_FROM` tracks every distance is computed
  in one vectorised pass, which is cheaper than any index at that size. Above it, tracks
  are bucketed once on a 2-D grid over the valence/arousal plane (:class:`MoodGrid`,
  about four tracks per cell), so a query reads only the grid cells its search box
  covers: its cost follows the number of tracks near the target, not the catalog size.
- :meth:`~Recommender.by_seeds`: "like these, less like that". The query is
  ``normalise(mean(seeds) − mean(negative seeds))`` in embedding space, answered by the
  :class:`~moodscape.api.ann.NeighborIndex`, optionally blended with closeness in mood to
  the seeds. Without filters the seeds and exclusions are handed over as a short list
  of rows; only real filters build an ``allowed`` mask over the whole catalog, which at
  1,000,000 tracks costs more than the rest of the query.
- :meth:`~Recommender.by_label`: the most confident tracks of one label.
- :meth:`~Recommender.nearest` / :meth:`~Recommender.similar`: neighbours of an uploaded
  track's embedding / of one catalog track.
- :meth:`~Recommender.mood_path`: a playlist walking a straight line across the mood plane.

``diversity`` (λ in [0, 1]) re-ranks a pool of ``5 × limit`` candidates by maximal
marginal relevance: each next pick maximises ``(1 − λ)·score − λ·(max cosine to the
picks so far)``; λ = 0 keeps the plain ranking.

Valence and arousal are on the 0–1 scale; a track whose valence or arousal is NaN (no
regressor) never matches a query that involves them.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from moodscape.api.ann import EXACT_BELOW, NeighborIndex

_NO_ROWS = np.empty(0, dtype=np.int64)
_NO_ROWS.flags.writeable = False

DIVERSITY_POOL = 5
"""Candidates per requested result that diversity re-ranking chooses from."""
VA_DIAGONAL = math.sqrt(2.0)
"""Largest distance between two points of the unit valence/arousal square."""
MOOD_GRID_FROM = 20_000
"""Tracks with a mood from which by-mood queries read a :class:`MoodGrid`; below, a scan."""
TRACKS_PER_CELL = 4
"""Average tracks per :class:`MoodGrid` cell: a search box starts one cell wide."""


class Hit(NamedTuple):
    """One recommended track.

    Attributes
    ----------
    index : int
        Row in the catalog's arrays.
    score : float
        Higher is better; its meaning depends on the query (see each method).
    distance : float or None
        Distance in the valence/arousal plane to the query's target, when it has one.
    """

    index: int
    score: float
    distance: float | None = None


@dataclass(frozen=True)
class TrackFilter:
    """Which tracks a query may return: valence/arousal ranges, confidence, labels.

    The one filter of every filtering query: :meth:`Recommender.by_mood` and
    :meth:`Recommender.by_seeds` take it as ``where``, and ``GET /tracks`` applies it
    with :meth:`passes`. Every bound is inclusive and optional; a track with NaN
    valence/arousal fails any valence/arousal bound.

    Attributes
    ----------
    min_valence, max_valence, min_arousal, max_arousal : float or None
        Inclusive bounds on the 0–1 scale.
    min_probability : float or None
        Least probability of the track's predicted label.
    labels : collection of int or None
        Only tracks predicted as one of these label indices.
    """

    min_valence: float | None = None
    max_valence: float | None = None
    min_arousal: float | None = None
    max_arousal: float | None = None
    min_probability: float | None = None
    labels: Collection[int] | None = None

    @property
    def is_empty(self) -> bool:
        """Whether the filter lets every track through."""
        return self.labels is None and self.min_probability is None and not self.bounds_mood

    @property
    def bounds_mood(self) -> bool:
        """Whether the filter involves valence or arousal."""
        return any(b is not None for b in (self.min_valence, self.max_valence, self.min_arousal, self.max_arousal))

    def passes(self, recommender: Recommender, rows: np.ndarray | slice) -> np.ndarray:
        """Boolean mask: which of ``rows`` (an index array, or ``slice(None)`` for all) pass."""
        keep = np.ones(len(recommender) if isinstance(rows, slice) else len(rows), dtype=bool)
        for values, low, high in ((recommender.valence, self.min_valence, self.max_valence),
                                  (recommender.arousal, self.min_arousal, self.max_arousal)):
            if low is not None:
                keep &= values[rows] >= low
            if high is not None:
                keep &= values[rows] <= high
        if self.min_probability is not None:
            keep &= recommender.probability[rows] >= self.min_probability
        if self.labels is not None:
            keep &= np.isin(recommender.label_of[rows], np.fromiter(self.labels, dtype=np.int64))
        return keep


class MoodGrid:
    """The tracks with a valence and an arousal, bucketed on a square grid of the plane.

    Rows are sorted by (valence cell, arousal cell), so the tracks of one valence column
    between two arousal cells are one contiguous slice; a box query is one slice per
    valence column it covers.

    Parameters
    ----------
    valence, arousal : np.ndarray [shape=(n,)]
        NaN where unknown; those rows are left out.
    cells : int, optional
        Grid cells per axis; default :func:`grid_cells` of the tracks with a mood.
    """

    def __init__(self, valence: np.ndarray, arousal: np.ndarray, cells: int | None = None):
        known = np.flatnonzero(np.isfinite(valence) & np.isfinite(arousal))
        self.cells = grid_cells(len(known)) if cells is None else int(cells)
        # Python floats: queries do scalar arithmetic on them, much cheaper than numpy scalars.
        self.low = (float(valence[known].min()), float(arousal[known].min())) if len(known) else (0.0, 0.0)
        self.high = (float(valence[known].max()), float(arousal[known].max())) if len(known) else (1.0, 1.0)
        self.width = tuple(max(high - low, 1e-9) / self.cells for low, high in zip(self.low, self.high, strict=True))
        v_cell, a_cell = self._cells(valence[known], 0), self._cells(arousal[known], 1)
        keys = v_cell * self.cells + a_cell
        order = np.argsort(keys, kind="stable")
        self.rows = known[order]
        self.keys = keys[order]

    def _cells(self, values, axis):
        """Grid cell of each of ``values`` along ``axis`` (0 valence, 1 arousal)."""
        return np.clip(np.floor((values - self.low[axis]) / self.width[axis]), 0, self.cells - 1).astype(np.int64)

    def _cell(self, value: float, axis: int) -> int:
        """Grid cell of one value, clipped to the grid (infinities included); as :meth:`_cells`."""
        position = (value - self.low[axis]) / self.width[axis]
        if not position < self.cells:  # also +inf
            return self.cells - 1
        return int(math.floor(position)) if position >= 0 else 0

    def covers(self, valence: tuple[float, float], arousal: tuple[float, float]) -> bool:
        """Whether the box ``valence × arousal`` holds every track of the grid."""
        return valence[0] <= self.low[0] and valence[1] >= self.high[0] and arousal[0] <= self.low[1] and arousal[1] >= self.high[1]

    def in_box(self, valence: tuple[float, float], arousal: tuple[float, float]) -> np.ndarray:
        """Rows whose cell meets the box ``valence × arousal`` (a superset of the box)."""
        if valence[0] > valence[1] or arousal[0] > arousal[1] or len(self.rows) == 0:
            return np.empty(0, dtype=np.int64)
        v_low, v_high = self._cell(valence[0], 0), self._cell(valence[1], 0)
        a_low, a_high = self._cell(arousal[0], 1), self._cell(arousal[1], 1)
        if a_low == 0 and a_high == self.cells - 1:  # whole columns: one slice
            start, stop = np.searchsorted(self.keys, [v_low * self.cells, (v_high + 1) * self.cells])
            return self.rows[start:stop]
        columns = np.arange(v_low * self.cells, v_high * self.cells + 1, self.cells)
        starts = np.searchsorted(self.keys, columns + a_low, side="left")
        stops = np.searchsorted(self.keys, columns + a_high, side="right")
        slices = zip(starts.tolist(), stops.tolist(), strict=True)
        return np.concatenate([self.rows[start:stop] for start, stop in slices])


def grid_cells(n: int) -> int:
    """Cells per axis of a :class:`MoodGrid` over ``n`` tracks: about :data:`TRACKS_PER_CELL` per cell.

    A query reads the few cells around its target, so the finer the grid, the fewer
    tracks it reads, until the per-cell work (one slice per column, one doubling of the
    box per pass) outweighs the reading: a handful per cell balances the two.
    """
    return max(1, round(math.sqrt(n / TRACKS_PER_CELL)))


class Recommender:
    """Ranks catalog rows for the web app's recommendation queries.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d), dtype=float32]
        L2-normalised track embeddings.
    valence, arousal : np.ndarray [shape=(n,)]
        0–1 scale, NaN when unknown.
    probabilities : np.ndarray [shape=(n, n_labels)]
        Class probabilities.
    label_of : np.ndarray [shape=(n,), dtype=int]
        Predicted label of each track.
    exact_below : int
        Catalog size from which embedding search goes through faiss.
    cache_dir : path, optional
        Where the faiss index is cached between runs.
    """

    def __init__(self, embeddings, valence, arousal, probabilities, label_of, *, exact_below: int = EXACT_BELOW,
                 cache_dir=None):
        self.embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
        n = len(self.embeddings)
        self.valence = np.asarray(valence, dtype=np.float64)
        self.arousal = np.asarray(arousal, dtype=np.float64)
        self.probabilities = np.asarray(probabilities, dtype=np.float32)
        self.label_of = np.asarray(label_of, dtype=np.int64)
        for name, array in (("valence", self.valence), ("arousal", self.arousal), ("label_of", self.label_of)):
            if array.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {array.shape}")
        if self.probabilities.ndim != 2 or len(self.probabilities) != n:
            raise ValueError(f"probabilities must have shape ({n}, n_labels), got {self.probabilities.shape}")
        self.n_labels = self.probabilities.shape[1]
        if n and (self.label_of.min() < 0 or self.label_of.max() >= self.n_labels):
            raise ValueError(f"label_of must lie in [0, {self.n_labels})")
        self.probability = self.probabilities[np.arange(n), self.label_of]
        self.index = NeighborIndex.build(self.embeddings, exact_below=exact_below, cache_dir=cache_dir)
        known = np.flatnonzero(np.isfinite(self.valence) & np.isfinite(self.arousal))
        self.grid = MoodGrid(self.valence, self.arousal) if len(known) >= MOOD_GRID_FROM else None
        self._known = known
        self._known_mood = (self.valence[known], self.arousal[known])  # contiguous, for the scan
        self._by_probability = np.lexsort((-self.probability, self.label_of))
        self._label_starts = np.searchsorted(self.label_of[self._by_probability], np.arange(self.n_labels + 1))

    def __len__(self) -> int:
        return len(self.embeddings)

    # ------------------------------------------------------------------------ queries

    def by_mood(
        self,
        *,
        target_valence: float | None = None,
        target_arousal: float | None = None,
        tolerance: float = 0.15,
        where: TrackFilter | None = None,
        limit: int = 10,
        exclude: Collection[int] = (),
        diversity: float = 0.0,
    ) -> list[Hit]:
        """Tracks within ``tolerance`` of a target mood, nearest first.

        The distance is Euclidean in the valence/arousal plane over the target's given
        dimensions (one or both). Without a target, the tracks passing the filters are
        ranked by the probability of their label.

        Parameters
        ----------
        target_valence, target_arousal : float, optional
            The mood wanted.
        tolerance : float
            Largest distance to the target a result may have (> 0).
        where : TrackFilter, optional
            Which tracks may be returned (valence/arousal and probability bounds, labels);
            default every track.
        limit : int
            Results wanted.
        exclude : collection of int
            Rows never returned.
        diversity : float
            Maximal-marginal-relevance weight in [0, 1].

        Returns
        -------
        list of Hit
            ``score = 1 − distance / tolerance`` (in [0, 1]) and ``distance`` with a
            target; ``score`` = probability and ``distance = None`` without.

        Raises
        ------
        ValueError
            On a limit, diversity, tolerance or target out of range, a ``where`` whose
            minimum is above its maximum or that names an unknown label, or rows outside
            the catalog.
        """
        track_filter = TrackFilter() if where is None else where
        self._check_query(limit, diversity, track_filter)
        excluded = self._rows(exclude, "exclude")
        if not tolerance > 0:
            raise ValueError(f"tolerance must be positive, got {tolerance}")
        for name, target in (("target_valence", target_valence), ("target_arousal", target_arousal)):
            if target is not None and not math.isfinite(target):
                raise ValueError(f"{name} must be a finite number, got {target}")
        pool = limit * DIVERSITY_POOL if diversity > 0 else limit
        keep = self._keeper(track_filter, excluded)
        if target_valence is None and target_arousal is None:
            candidates = self._most_probable(track_filter.labels, keep, pool)
            return self._top(candidates, self.probability[candidates], limit, diversity)
        bounds = [(track_filter.min_valence, track_filter.max_valence), (track_filter.min_arousal, track_filter.max_arousal)]
        candidates, distance = self._nearest_in_mood((target_valence, target_arousal), tolerance, keep, pool, bounds)
        return self._top(candidates, 1.0 - distance / tolerance, limit, diversity, distance)

    def by_seeds(
        self,
        seeds: Sequence[int],
        *,
        negative: Sequence[int] = (),
        va_weight: float = 0.0,
        where: TrackFilter | None = None,
        limit: int = 10,
        exclude: Collection[int] = (),
        diversity: float = 0.0,
    ) -> list[Hit]:
        """Tracks that sound like the seeds and unlike the negative seeds.

        The query is ``normalise(mean(seeds) − mean(negative))`` in embedding space (a
        weight of 1 on the negative mean: "like these, less like that"). Neither seeds
        nor negative seeds are returned. With ``va_weight`` w > 0, the ``5 × limit``
        nearest tracks by cosine are re-ranked by
        ``(1 − w)·cosine + w·(1 − VA distance to the seeds' mean mood / √2)``; a track
        without valence/arousal gets 0 for the mood term.

        Parameters
        ----------
        seeds : sequence of int
            At least one row.
        negative : sequence of int
            Rows to move away from.
        va_weight : float
            Weight in [0, 1] of closeness in mood.
        where, limit, exclude, diversity
            As in :meth:`by_mood`.

        Returns
        -------
        list of Hit
            ``score`` is the (blended) similarity, ``distance`` is ``None``.
        """
        track_filter = TrackFilter() if where is None else where
        self._check_query(limit, diversity, track_filter)
        seeds = self._rows(seeds, "seeds")
        negative = self._rows(negative, "negative")
        if len(seeds) == 0:
            raise ValueError("seeds must name at least one track")
        if not 0.0 <= va_weight <= 1.0:
            raise ValueError(f"va_weight must lie in [0, 1], got {va_weight}")
        query = self.embeddings[seeds[0]] if len(seeds) == 1 else self.embeddings[seeds].mean(axis=0)
        if len(negative):
            query = query - self.embeddings[negative].mean(axis=0)
        norm = math.sqrt(float(query @ query))
        if norm < 1e-6:
            raise ValueError("the negative seeds cancel the seeds out: no direction left to search")
        mood = None
        if va_weight > 0:
            known = seeds[np.isfinite(self.valence[seeds]) & np.isfinite(self.arousal[seeds])]
            if len(known) == 0:
                raise ValueError("va_weight needs the seeds' valence/arousal, which are unknown")
            mood = np.array([self.valence[known].mean(), self.arousal[known].mean()])
        exclude = self._rows(exclude, "exclude")
        excluded = np.concatenate([exclude, seeds, negative]) if len(exclude) or len(negative) else seeds
        pool = limit * DIVERSITY_POOL if diversity > 0 or mood is not None else limit
        return self._embedding_query(query / norm, pool, limit, diversity, track_filter, excluded, va_weight, mood)

    def similar(self, index: int, *, limit: int = 10, exclude: Collection[int] = (), diversity: float = 0.0) -> list[Hit]:
        """Tracks that sound like catalog row ``index`` (``by_seeds([index])``)."""
        return self.by_seeds([index], limit=limit, exclude=exclude, diversity=diversity)

    def nearest(self, vector: np.ndarray, *, limit: int = 10, exclude: Collection[int] = ()) -> list[Hit]:
        """Catalog tracks nearest to an embedding from outside it (an uploaded track).

        Parameters
        ----------
        vector : np.ndarray [shape=(d,)]
            The embedding; it is L2-normalised here.

        Returns
        -------
        list of Hit
            ``score`` is the cosine similarity.
        """
        self._check_query(limit, 0.0, TrackFilter())
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vector.shape != (self.embeddings.shape[1],) or not np.all(np.isfinite(vector)):
            raise ValueError(f"vector must be {self.embeddings.shape[1]} finite numbers, got shape {vector.shape}")
        norm = np.linalg.norm(vector)
        if norm == 0:
            raise ValueError("vector must not be all zeros")
        return self._embedding_query(vector / norm, limit, limit, 0.0, TrackFilter(), self._rows(exclude, "exclude"))

    def by_label(self, label: int, *, limit: int = 10, exclude: Collection[int] = (), diversity: float = 0.0) -> list[Hit]:
        """Tracks predicted as ``label``, most probable first; ``score`` is the probability."""
        self._check_query(limit, diversity, TrackFilter(labels=[label]))
        keep = self._keeper(TrackFilter(), self._rows(exclude, "exclude"))
        members = self._most_probable([label], keep, limit * DIVERSITY_POOL if diversity > 0 else limit)
        return self._top(members, self.probability[members], limit, diversity)

    def mood_path(
        self,
        start: tuple[float, float],
        end: tuple[float, float],
        steps: int,
        *,
        labels: Collection[int] | None = None,
        exclude: Collection[int] = (),
    ) -> list[Hit]:
        """A playlist walking from one mood to another, one distinct track per waypoint.

        The waypoints are :func:`mood_waypoints`; each takes the unused track nearest to
        it in the valence/arousal plane (ties to the lower row).

        Parameters
        ----------
        start, end : (float, float)
            (valence, arousal) of the first and last waypoints.
        steps : int
            Waypoints (at least 2).
        labels : collection of int, optional
            Only tracks predicted as one of these labels.
        exclude : collection of int
            Rows never used.

        Returns
        -------
        list of Hit
            In waypoint order; ``distance`` is the distance to the track's waypoint and
            ``score = 1 − distance / √2``. Shorter than ``steps`` only when fewer tracks
            pass the filters.
        """
        waypoints = mood_waypoints(start, end, steps)
        track_filter = TrackFilter(labels=labels)
        self._check_query(1, 0.0, track_filter)
        usable = np.zeros(len(self), dtype=bool)
        usable[self._known] = True
        if labels is not None:
            usable &= track_filter.passes(self, slice(None))
        usable[self._rows(exclude, "exclude")] = False
        hits = []
        for waypoint in waypoints:
            rows, distance = self._nearest_in_mood(tuple(waypoint.tolist()), math.inf, lambda rows: usable[rows], 1)
            if len(rows) == 0:
                break
            best = np.lexsort((rows, distance))[0]
            usable[rows[best]] = False
            hits.append(Hit(int(rows[best]), 1.0 - float(distance[best]) / VA_DIAGONAL, float(distance[best])))
        return hits

    def sonic_path(self, start: int, end: int, steps: int) -> list[Hit]:
        """A playlist walking from one track to another in embedding space, one distinct track per waypoint.

        :meth:`mood_path` in the embedding space: the waypoints are evenly spaced on the line
        between the two tracks' embeddings (each scaled back to unit norm); the first is
        ``start``, the last ``end``, and each waypoint between takes the unused track most
        similar to it (cosine).

        Parameters
        ----------
        start, end : int
            Catalog rows of the first and last tracks (the same row gives a one-track path).
        steps : int
            Tracks wanted (at least 2).

        Returns
        -------
        list of Hit
            ``start``, the tracks between, ``end``; ``score`` is the cosine similarity to
            ``start``. Shorter than ``steps`` only when the catalog is.
        """
        start_row, end_row = (int(row) for row in self._rows([start, end], "start and end"))
        if not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"steps must be an integer of at least 2, got {steps}")
        if start_row == end_row:
            return [Hit(start_row, 1.0)]
        between = min(steps, len(self)) - 2
        fractions = np.linspace(0.0, 1.0, between + 2)[1:-1, None]
        waypoints = (1.0 - fractions) * self.embeddings[start_row] + fractions * self.embeddings[end_row]  # (between, d)
        waypoints /= np.maximum(np.linalg.norm(waypoints, axis=1, keepdims=True), 1e-12)
        used = {start_row, end_row}
        rows = [start_row]
        if between > 0:
            # each waypoint's steps nearest hold an unused track: at most steps - 1 are used before it
            _, candidates = self.index.search(waypoints, steps, exclude=np.array([start_row, end_row]))
            for nearest in candidates:
                row = next(int(row) for row in nearest if int(row) not in used)
                used.add(row)
                rows.append(row)
        rows.append(end_row)
        similarity = self.embeddings[rows] @ self.embeddings[start_row]
        similarity[0] = 1.0  # the start itself, exactly (float32 rounding gives 0.99999994)
        return [Hit(row, float(score)) for row, score in zip(rows, similarity)]

    # ------------------------------------------------------------------------ guts

    def _embedding_query(self, query, pool, limit, diversity, track_filter, excluded, va_weight=0.0, mood=None):
        """Nearest allowed rows to a unit ``query``, re-ranked by mood and diversity.

        Without filters, ``excluded`` goes to the index as a list of rows (no mask over
        the catalog); with filters, one ``allowed`` mask carries both.
        """
        if track_filter.is_empty:
            similarities, rows = self.index.search(query, pool, exclude=excluded)
        else:
            allowed = track_filter.passes(self, slice(None))
            allowed[excluded] = False
            similarities, rows = self.index.search(query, pool, allowed=allowed)
        similarities, rows = similarities[0].astype(np.float64), rows[0]
        if mood is not None:
            distance = np.hypot(self.valence[rows] - mood[0], self.arousal[rows] - mood[1])
            closeness = np.nan_to_num(1.0 - distance / VA_DIAGONAL, nan=0.0)
            similarities = (1.0 - va_weight) * similarities + va_weight * closeness
        return self._top(rows, similarities, limit, diversity)

    def _top(self, rows, scores, limit, diversity, distances=None) -> list[Hit]:
        """The ``limit`` best rows by score (ties to the lower row), MMR re-ranked if asked.

        The ``5 × limit`` pool is cut at the pool-th best score with every row tied to it
        kept, so ties go to the lower row whichever candidates the caller gathered.
        """
        pool = limit * DIVERSITY_POOL if diversity > 0 else limit
        if len(rows) > pool:
            cut = np.partition(scores, len(scores) - pool)[len(scores) - pool]
            keep = np.flatnonzero(scores >= cut)
            rows, scores = rows[keep], scores[keep]
            distances = None if distances is None else distances[keep]
        order = np.lexsort((rows, -scores))
        if diversity > 0:
            order = order[:pool]
            order = order[_maximal_marginal_relevance(self.embeddings[rows[order]], scores[order], limit, diversity)]
        order = order[:limit]
        if distances is None:
            return list(map(Hit, rows[order].tolist(), scores[order].tolist()))
        return list(map(Hit, rows[order].tolist(), scores[order].tolist(), distances[order].tolist()))

    def _keeper(self, track_filter, excluded):
        """``keep(rows) -> mask`` of the rows that pass ``track_filter`` and are not excluded.

        ``None`` when every row is kept, so that callers skip the call and the mask.
        """
        if len(excluded) == 0:
            return None if track_filter.is_empty else (lambda rows: track_filter.passes(self, rows))
        excluded_mask = np.zeros(len(self), dtype=bool)
        excluded_mask[excluded] = True
        if track_filter.is_empty:
            return lambda rows: ~excluded_mask[rows]
        return lambda rows: track_filter.passes(self, rows) & ~excluded_mask[rows]

    def _nearest_in_mood(self, target, tolerance, keep, wanted, bounds=((None, None), (None, None))):
        """Kept rows within ``tolerance`` of ``target``, enough for its ``wanted`` nearest.

        ``target`` is (valence, arousal), either ``None`` when not targeted; the distance is
        over the targeted dimensions. ``keep(rows)`` masks the rows to keep (``None``:
        all). Without a grid, every track with a mood is measured in one pass; with one,
        see :meth:`_nearest_in_grid`.

        Returns
        -------
        rows, distances : np.ndarray
            Unordered; every kept row within the final radius (at most ``tolerance``).
        """
        if self.grid is not None:
            return self._nearest_in_grid(target, tolerance, keep, wanted, bounds)
        squared = None
        for values, centre in zip(self._known_mood, target, strict=True):
            if centre is not None:
                term = (values - centre) ** 2
                squared = term if squared is None else squared + term
        distance = np.sqrt(squared)
        inside = np.flatnonzero(distance <= tolerance)
        rows, distance = self._known[inside], distance[inside]
        if keep is None:
            return rows, distance
        kept = keep(rows)
        return rows[kept], distance[kept]

    def _nearest_in_grid(self, target, tolerance, keep, wanted, bounds):
        """:meth:`_nearest_in_mood` through the grid, reading a growing box around ``target``.

        The search box starts at one grid cell around the target and grows (see
        :func:`_growth`) until it holds ``wanted`` kept rows no farther than its half width (nothing outside it is
        nearer), reaches ``tolerance`` or covers the grid; ``bounds`` (inclusive
        (low, high) per dimension, ``None`` for open) clip it.
        """
        limits = [(-math.inf if low is None else low, math.inf if high is None else high) for low, high in bounds]
        half = min(max(self.grid.width), tolerance)
        while True:
            box = [(max(low, centre - half), min(high, centre + half)) if centre is not None else (low, high)
                   for centre, (low, high) in zip(target, limits, strict=True)]
            rows = self.grid.in_box(*box)
            if keep is not None:
                rows = rows[keep(rows)]
            squared = None
            for values, centre in ((self.valence, target[0]), (self.arousal, target[1])):
                if centre is not None:
                    term = (values[rows] - centre) ** 2
                    squared = term if squared is None else squared + term
            distance = np.sqrt(squared)
            if half >= tolerance or self.grid.covers(*box):
                inside = distance <= tolerance
                return rows[inside], distance[inside]
            inside = distance <= half
            found = np.count_nonzero(inside)
            if found >= wanted:
                return rows[inside], distance[inside]
            half = min(half * _growth(found, wanted), tolerance)

    def _most_probable(self, labels, keep, wanted):
        """Kept rows of ``labels`` (all when ``None``), enough for the ``wanted`` most probable.

        ``keep(rows)`` masks the rows to keep, ``None`` keeps all.

        Each label's rows are pre-sorted by descending probability; heads of growing length
        are read from each until ``wanted`` kept rows are found and no unread row can beat
        the ``wanted``-th of them.
        """
        labels = range(self.n_labels) if labels is None else sorted(set(int(label) for label in labels))
        segments = [self._by_probability[self._label_starts[label] : self._label_starts[label + 1]] for label in labels]
        head = wanted
        while True:
            rows = np.concatenate([segment[:head] for segment in segments] + [np.empty(0, np.int64)])
            if keep is not None:
                rows = rows[keep(rows)]
            unread = [segment[head] for segment in segments if len(segment) > head]
            if not unread:
                return rows
            if len(rows) >= wanted:
                threshold = np.partition(self.probability[rows], len(rows) - wanted)[len(rows) - wanted]
                if self.probability[unread].max() < threshold:
                    return rows
            head *= 4

    def _rows(self, rows, name) -> np.ndarray:
        """``rows`` as an int64 array, checked to be catalog rows."""
        if isinstance(rows, (list, tuple)):  # the usual request: a few Python ints, checked in Python
            if not rows:
                return _NO_ROWS
            if all(type(row) is int for row in rows) and min(rows) >= 0 and max(rows) < len(self):
                return np.array(rows, dtype=np.int64)
        rows = np.asarray(rows if isinstance(rows, np.ndarray) else list(rows))
        if rows.size == 0:
            return _NO_ROWS
        if rows.dtype.kind not in "iu":
            raise ValueError(f"{name} must be integer row indices, got {rows.dtype}")
        rows = rows.astype(np.int64, copy=False).reshape(-1)
        if rows.min() < 0 or rows.max() >= len(self):
            outside = rows[(rows < 0) | (rows >= len(self))]
            raise ValueError(f"{name} has row indices outside [0, {len(self)}): {outside[:5].tolist()}")
        return rows

    def _check_query(self, limit, diversity, track_filter):
        """Raise ValueError on a limit, diversity or filter out of range."""
        if not isinstance(limit, (int, np.integer)) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit}")
        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must lie in [0, 1], got {diversity}")
        for low, high, name in ((track_filter.min_valence, track_filter.max_valence, "valence"),
                                (track_filter.min_arousal, track_filter.max_arousal, "arousal")):
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} ({low}) is above max_{name} ({high})")
        if track_filter.labels is not None:
            bad = [label for label in track_filter.labels if not 0 <= int(label) < self.n_labels]
            if bad:
                raise ValueError(f"labels outside [0, {self.n_labels}): {bad}")


def mood_waypoints(start: tuple[float, float], end: tuple[float, float], steps: int) -> np.ndarray:
    """``steps`` evenly spaced (valence, arousal) points from ``start`` to ``end``, both included.

    Returns
    -------
    np.ndarray [shape=(steps, 2)]
    """
    if not isinstance(steps, (int, np.integer)) or steps < 2:
        raise ValueError(f"steps must be an integer of at least 2, got {steps}")
    start, end = np.asarray(start, dtype=np.float64), np.asarray(end, dtype=np.float64)
    if start.shape != (2,) or end.shape != (2,) or not np.all(np.isfinite([start, end])):
        raise ValueError("start and end must be finite (valence, arousal) pairs")
    return start + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)


def _growth(found: int, wanted: int) -> float:
    """Factor by which a mood search box grows when it held ``found`` of ``wanted`` rows.

    Rows in a box grow with its area, so ``√(wanted / found)`` would just reach
    ``wanted`` at the density seen so far; 1.5 times that, at least doubled and at most
    eight-fold, saves passes when a filter rejects most rows without reading far too much.
    """
    return min(8.0, max(2.0, 1.5 * math.sqrt(wanted / max(found, 1))))


def _maximal_marginal_relevance(vectors: np.ndarray, relevance: np.ndarray, limit: int, diversity: float) -> np.ndarray:
    """Positions picked greedily by ``(1 − λ)·relevance − λ·max cosine to the picks``.

    Parameters
    ----------
    vectors : np.ndarray [shape=(m, d)]
        Unit-norm embeddings of the candidates, best first.
    relevance : np.ndarray [shape=(m,)]
    limit : int
    diversity : float
        λ.

    Returns
    -------
    np.ndarray [shape=(min(limit, m),)]
        Positions into the candidates, in pick order.
    """
    picked = []
    redundancy = np.zeros(len(vectors))  # max(0, cosine to the picks): none yet
    available = np.ones(len(vectors), dtype=bool)
    for _ in range(min(limit, len(vectors))):
        gain = (1.0 - diversity) * relevance - diversity * redundancy
        gain[~available] = -np.inf
        best = int(np.argmax(gain))
        picked.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, vectors @ vectors[best])
    return np.array(picked, dtype=np.int64)
