"""Stage 1b: group tracks by how they sound.

The acoustic features of the *training* split are imputed (training median), standardised
(``StandardScaler``) and clustered with K-Means; every other track is assigned with
:meth:`AcousticClusterer.predict`, which reuses the training imputer, scaler and centroids.
K is either forced or chosen from a scan by the rule in :data:`K_RULE`.
"""

from numbers import Integral

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.impute import SimpleImputer
from sklearn.metrics import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from sklearn.preprocessing import StandardScaler
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions
from sklearn.utils.validation import check_is_fitted

from moodscape.errors import ConfigError, DataError

#: The elbow must keep at least this fraction of the best silhouette in the scan.
SILHOUETTE_TOLERANCE = 0.9
#: A knee is structure when the normalised inertia curve dips at least this far below its
#: chord. Measured: Gaussian noise at most 0.19 (K = 2..10, 89 to 2,000 tracks), a
#: low-dimensional continuum 0.29 (K = 3..16); six planted clusters 0.54 or more.
KNEE_MIN_GAP = 0.4
#: The silhouette "rises" with K when some K beats the smallest K of the scan by more than
#: this; on structureless data it wanders by less (at most 0.009 measured, 89 to 2,000 tracks).
SILHOUETTE_RISE_TOLERANCE = 0.01
#: Kaufman & Rousseeuw (1990): an average silhouette of 0.5 or more is a reasonable structure.
REASONABLE_SILHOUETTE = 0.5

K_RULE = (
    "K is the elbow of the inertia curve (Kneedle on the min-max normalised curve: the K "
    "farthest below the chord from the first to the last K of the scan), provided its "
    f"silhouette is at least {SILHOUETTE_TOLERANCE:.0%} of the best silhouette in the scan; "
    "otherwise, or when the curve has no elbow, K is the one with the best silhouette. "
    f"When the scan shows no structure (no knee dipping {KNEE_MIN_GAP} below the chord, a "
    f"silhouette that does not rise by more than {SILHOUETTE_RISE_TOLERANCE} above the smallest "
    f"K's as K grows, and none reaching {REASONABLE_SILHOUETTE}), K is the target label count "
    "instead (clipped to the scan)."
)


class AcousticClusterer(ClusterMixin, BaseEstimator):
    """Standardise acoustic features and cluster them with K-Means, choosing K by a scan.

    K rule (``k="auto"``): K is the elbow of the inertia curve — Kneedle on the min-max
    normalised curve, i.e. the K whose normalised inertia lies farthest below the chord
    from the first to the last K of ``k_range`` — provided the elbow's silhouette is at
    least ``SILHOUETTE_TOLERANCE`` (90 %) of the best silhouette in the scan. Otherwise, or
    when the curve has no elbow (fewer than three K, or no convexity), K is the one with
    the best silhouette. The elbow finds where more clusters stop paying off; the
    silhouette guard rejects an elbow whose clusters are poorly separated. Every K of the
    scan records inertia, silhouette (on a random sample), Davies–Bouldin and
    Calinski–Harabasz in :attr:`selection_`.

    The scan can also say that it found no structure: the curve has no knee (its Kneedle
    gap is below ``KNEE_MIN_GAP``), the silhouette does not rise as K grows (no K beats the
    smallest by more than ``SILHOUETTE_RISE_TOLERANCE``) and no silhouette reaches
    ``REASONABLE_SILHOUETTE``. Every K of the scan is then as arbitrary as the next, and
    the rule above would take the scan's smallest K only because the silhouette of
    structureless data falls slowly with K; K is ``target_k`` instead, the number of
    labels wanted, clipped to ``k_range``.

    Parameters
    ----------
    k : "auto" or int, default="auto"
        Number of clusters; ``"auto"`` scans ``k_range``.
    k_range : tuple of (int, int), default=(5, 10)
        Inclusive range of K scanned when ``k="auto"``.
    target_k : int, default=8
        K taken when the scan finds no structure (clipped to ``k_range``).
    algorithm : {"kmeans", "minibatch"}, default="kmeans"
        ``KMeans``, or ``MiniBatchKMeans`` for very large collections.
    n_init : int, default=50
        K-Means restarts per K; the run with the lowest inertia is kept. With 10 the
        kept solution still depended on the random state (on a 150-track demo, ARI
        against the planted archetypes 0.79-0.89 over three states; 0.86-0.89 with 30
        or more), and a restart costs milliseconds even at 18k tracks.
    silhouette_sample : int, default=5000
        The silhouette is computed on a random sample of at most this many tracks
        (the same sample for every K). On a larger collection the K-Means restarts run
        on that sample too, and the best is refined on every track (50 restarts at
        18,486 tracks x 43 features: 42 s per K on every track, 11 s this way).
    random_state : int, RandomState instance or None, default=0
        Seeds K-Means and the silhouette sample.

    Attributes
    ----------
    imputer_ : SimpleImputer
        Training medians that replace missing feature values.
    scaler_ : StandardScaler
        Training mean and standard deviation of every used feature.
    kmeans_ : KMeans or MiniBatchKMeans
        The clustering at the chosen K, in standardised feature space.
    n_clusters_ : int
        The chosen K.
    labels_ : np.ndarray [shape=(n_tracks,)]
        Cluster id of every training track.
    selection_ : dict
        JSON-ready record of the choice: ``rule``, ``rule_text``, ``k``, ``elbow_k``,
        ``best_silhouette_k``, ``reason``, ``structure`` ("found", "none", or None when K
        was fixed), ``knee_gap``, ``silhouette_rise``, ``target_k``, ``k_range``, ``algorithm``, ``n_tracks``,
        ``silhouette_sample``, ``features_used``, ``features_dropped`` and ``scan``, a list
        of ``{"k", "inertia", "silhouette", "davies_bouldin", "calinski_harabasz"}``.
    n_features_in_ : int
        Number of feature columns seen in ``fit``.
    feature_names_in_ : np.ndarray of str
        Column names seen in ``fit`` (only when ``X`` was a DataFrame).
    features_used_ : np.ndarray of str
        Names of the columns clustered on: all but those entirely missing in training.
        Unnamed columns are called ``x0, x1, ...``.
    features_dropped_ : list of str
        Names of the columns dropped because they are missing in every training track.

    Examples
    --------
    >>> clusterer = AcousticClusterer(k_range=(4, 8)).fit(train_features)
    >>> clusterer.selection_["k"], clusterer.predict(test_features)[:3]
    (6, array([2, 0, 5], dtype=int32))
    """

    _parameter_constraints: dict = {
        "k": [StrOptions({"auto"}), Interval(Integral, 2, None, closed="left")],
        "k_range": [tuple, list],
        "target_k": [Interval(Integral, 2, None, closed="left")],
        "algorithm": [StrOptions({"kmeans", "minibatch"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "silhouette_sample": [Interval(Integral, 2, None, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        k="auto",
        k_range=(5, 10),
        target_k=8,
        algorithm="kmeans",
        n_init=50,
        silhouette_sample=5000,
        random_state=0,
    ):
        self.k = k
        self.k_range = k_range
        self.target_k = target_k
        self.algorithm = algorithm
        self.n_init = n_init
        self.silhouette_sample = silhouette_sample
        self.random_state = random_state

    def fit(self, X, y=None):
        """Learn imputer, scaler and clusters from the training tracks.

        Parameters
        ----------
        X : np.ndarray or pd.DataFrame [shape=(n_tracks, n_features)]
            Numeric acoustic features of the training split only.
        y : None
            Ignored.

        Returns
        -------
        self : AcousticClusterer
        """
        self._validate_params()
        features = self._learn_feature_columns(X)
        self._check_enough_tracks(len(features))
        self.imputer_, self.scaler_ = fit_standardiser(features)
        self.kmeans_, self.selection_ = self._choose_k(self._standardise(features))
        self.n_clusters_ = int(self.kmeans_.n_clusters)
        self.labels_ = self.kmeans_.labels_
        return self

    def predict(self, X):
        """Assign tracks to the nearest training centroid.

        Missing values are replaced by the training medians.

        Parameters
        ----------
        X : np.ndarray or pd.DataFrame [shape=(n_tracks, n_features)]
            Features with the columns seen in ``fit`` (by name for a DataFrame fitted on
            a DataFrame, otherwise by position).

        Returns
        -------
        cluster_ids : np.ndarray [shape=(n_tracks,)]
        """
        check_is_fitted(self)
        return self.kmeans_.predict(self._standardise(self._select_feature_columns(X)))

    def _validate_params(self):
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            raise ConfigError(str(exc)) from exc
        if self.k == "auto":
            _check_k_range(self.k_range)

    def _learn_feature_columns(self, X):
        """Record the input columns and drop those that are missing in every track."""
        values, names = _feature_table(X)
        self.n_features_in_ = values.shape[1]
        if names is not None:
            self.feature_names_in_ = np.asarray(names, dtype=object)
        else:
            names = [f"x{i}" for i in range(values.shape[1])]
        self._used_columns = ~np.all(np.isnan(values), axis=0)
        if not self._used_columns.any():
            raise DataError("every feature column is missing (NaN) in all training tracks")
        self.features_used_ = np.asarray(names, dtype=object)[self._used_columns]
        self.features_dropped_ = [str(n) for n, used in zip(names, self._used_columns) if not used]
        return values[:, self._used_columns]

    def _select_feature_columns(self, X):
        values, names = _feature_table(X)
        if names is not None and hasattr(self, "feature_names_in_"):
            missing = [n for n in self.feature_names_in_ if n not in set(names)]
            if missing:
                raise DataError(f"feature columns missing from the tracks to assign: {missing}")
            values = values[:, [names.index(name) for name in self.feature_names_in_]]
        elif values.shape[1] != self.n_features_in_:
            raise DataError(
                f"expected {self.n_features_in_} feature columns as in fit, got {values.shape[1]}"
            )
        return values[:, self._used_columns]

    def _check_enough_tracks(self, n_tracks):
        if self.k == "auto":  # the silhouette needs at least one more track than clusters
            needed, setting = self.k_range[1] + 1, f"k_range={tuple(self.k_range)}"
        else:
            needed, setting = self.k, f"k={self.k}"
        if n_tracks < needed:
            raise ConfigError(
                f"{setting} needs at least {needed} training tracks, got {n_tracks}; "
                "lower k or k_range, or add tracks"
            )

    def _standardise(self, features):
        return self.scaler_.transform(self.imputer_.transform(features))

    def _choose_k(self, standardised):
        if self.k == "auto":
            candidates = list(range(self.k_range[0], self.k_range[1] + 1))
        else:
            candidates = [self.k]
        rng = check_random_state(self.random_state)
        sample = _sample_index(len(standardised), self.silhouette_sample, rng)
        fits = {k: self._fit_kmeans(standardised, k, rng, sample) for k in candidates}
        scan = [_cluster_quality(standardised, fits[k], sample) for k in candidates]
        decision = pick_k(scan, self.target_k) if self.k == "auto" else _forced_k(int(self.k))
        selection = {
            **decision,
            "k_range": [candidates[0], candidates[-1]],
            "algorithm": self.algorithm,
            "n_tracks": len(standardised),
            "silhouette_sample": len(sample),
            "features_used": [str(name) for name in self.features_used_],
            "features_dropped": self.features_dropped_,
            "scan": scan,
        }
        return fits[decision["k"]], selection

    def _fit_kmeans(self, standardised, k, rng, sample):
        seed = int(rng.randint(np.iinfo(np.int32).max))
        if self.algorithm == "minibatch":
            return MiniBatchKMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit(standardised)
        best = KMeans(n_clusters=k, n_init=self.n_init, random_state=seed).fit(standardised[sample])
        if len(sample) == len(standardised):
            return best
        return KMeans(n_clusters=k, init=best.cluster_centers_, n_init=1, random_state=seed).fit(standardised)


def fit_standardiser(features):
    """The standardisation of the clustering: training medians fill missing values, then z-scores.

    Parameters
    ----------
    features : np.ndarray or pd.DataFrame [shape=(n_tracks, n_features)]
        Training tracks; no column may be missing in every track.

    Returns
    -------
    imputer : SimpleImputer
    scaler : StandardScaler
        Fitted on the imputed ``features``; ``scaler.transform(imputer.transform(X))``
        standardises any tracks.
    """
    imputer = SimpleImputer(strategy="median").fit(features)
    return imputer, StandardScaler().fit(imputer.transform(features))


def pick_k(scan, target_k=None):
    """Choose K from a scan by the rule in :data:`K_RULE`.

    Parameters
    ----------
    scan : list of dict
        One ``{"k", "inertia", "silhouette", ...}`` per K, in increasing K.
    target_k : int or None, default=None
        K to take when the scan shows no structure (clipped to the scan); None keeps the
        elbow and silhouette rule then, and only records the verdict.

    Returns
    -------
    decision : dict
        ``rule``, ``rule_text``, ``k``, ``elbow_k``, ``best_silhouette_k``, ``reason``,
        ``structure`` ("found" or "none"), ``knee_gap``, ``silhouette_rise`` and ``target_k``.
    """
    ks = np.array([row["k"] for row in scan])
    silhouette = np.array([row["silhouette"] for row in scan], dtype=float)  # None -> nan
    inertia = np.array([row["inertia"] for row in scan], dtype=float)
    elbow_k = kneedle_elbow(ks, inertia)
    best_k, best = _best_silhouette(ks, silhouette)
    verdict = structure_verdict(ks, inertia, silhouette)
    if verdict["structure"] == "none" and target_k is not None:
        k = int(np.clip(target_k, ks[0], ks[-1]))
        rule = "target_k_without_structure"
        clipped = "" if k == target_k else f" (target_k={target_k} clipped to the scan)"
        reason = (f"no cluster structure in the scan: the inertia curve has no knee (Kneedle gap "
                  f"{verdict['knee_gap']:.2f} < {KNEE_MIN_GAP}) and the silhouette does not rise with K "
                  f"({silhouette[0]:.3f} at K={ks[0]}, never more than {SILHOUETTE_RISE_TOLERANCE} above it); "
                  f"took the target label count, K={k}{clipped}")
    else:
        rule = "elbow_with_silhouette_guard"
        k, reason = _elbow_or_best_silhouette(ks, silhouette, elbow_k, best_k, best)
    return {"rule": rule, "rule_text": K_RULE, "k": int(k),
            "elbow_k": None if elbow_k is None else int(elbow_k),
            "best_silhouette_k": int(best_k), "reason": reason, **verdict,
            "target_k": None if target_k is None else int(target_k)}


def _elbow_or_best_silhouette(ks, silhouette, elbow_k, best_k, best):
    """The elbow, unless its silhouette is poor or there is none: ``(k, reason)``."""
    elbow_silhouette = silhouette[ks == elbow_k][0] if elbow_k is not None else np.nan
    if elbow_k is not None and elbow_k == best_k:
        return elbow_k, f"elbow of the inertia curve and best silhouette ({best:.3f}) both at K={elbow_k}"
    if elbow_k is not None and elbow_silhouette >= SILHOUETTE_TOLERANCE * best:
        return elbow_k, (f"elbow of the inertia curve at K={elbow_k}; its silhouette {elbow_silhouette:.3f} "
                         f"is within {SILHOUETTE_TOLERANCE:.0%} of the best, {best:.3f} at K={best_k}")
    if elbow_k is not None:
        return best_k, (f"the elbow K={elbow_k} has silhouette {elbow_silhouette:.3f}, below "
                        f"{SILHOUETTE_TOLERANCE:.0%} of the best; took the best silhouette, "
                        f"{best:.3f} at K={best_k}")
    return best_k, f"the inertia curve has no elbow; took the best silhouette, {best:.3f} at K={best_k}"


def structure_verdict(ks, inertia, silhouette):
    """Whether a K scan shows cluster structure at all.

    There is none when the inertia curve has no knee (its largest Kneedle gap is below
    ``KNEE_MIN_GAP``), the silhouette does not rise with K (no K beats the smallest K of
    the scan by more than ``SILHOUETTE_RISE_TOLERANCE``) and no silhouette reaches
    ``REASONABLE_SILHOUETTE``. A scan of fewer than three K, or without silhouettes,
    cannot tell, and counts as structure.

    Parameters
    ----------
    ks : np.ndarray [shape=(n,)]
        Increasing numbers of clusters.
    inertia : np.ndarray [shape=(n,)]
    silhouette : np.ndarray [shape=(n,)]
        NaN where it could not be computed.

    Returns
    -------
    verdict : dict
        ``structure`` ("found" or "none"), ``knee_gap`` and ``silhouette_rise`` (None
        when they cannot be computed).
    """
    gap = kneedle_gap(ks, inertia)
    if gap is None or np.isnan(silhouette).any():
        return {"structure": "found", "knee_gap": gap, "silhouette_rise": None}
    rise = float(np.max(silhouette[1:]) - silhouette[0])
    none = gap < KNEE_MIN_GAP and rise <= SILHOUETTE_RISE_TOLERANCE and np.max(silhouette) < REASONABLE_SILHOUETTE
    return {"structure": "none" if none else "found", "knee_gap": gap, "silhouette_rise": rise}


def _forced_k(k):
    return {"rule": "fixed", "rule_text": "K was forced by the caller.", "k": k,
            "elbow_k": None, "best_silhouette_k": None,
            "reason": f"k={k} was forced by the caller",
            "structure": None, "knee_gap": None, "silhouette_rise": None, "target_k": None}


def kneedle_elbow(ks, inertia):
    """Elbow of a decreasing inertia curve by Kneedle (Satopää et al., 2011).

    Both axes are min-max normalised to [0, 1]; the elbow is the K where the normalised
    curve lies farthest below the chord ``y = 1 - x`` from the first to the last point.

    Parameters
    ----------
    ks : np.ndarray [shape=(n,)]
        Increasing numbers of clusters.
    inertia : np.ndarray [shape=(n,)]
        Within-cluster sum of squares at each K.

    Returns
    -------
    elbow_k : int or None
        None when there are fewer than three points or the curve is not convex anywhere.
    """
    gaps = _chord_gaps(ks, inertia)
    if gaps is None:
        return None
    best = int(np.argmax(gaps))
    return int(ks[best]) if gaps[best] > 0 else None


def kneedle_gap(ks, inertia):
    """How far the elbow of :func:`kneedle_elbow` lies below the chord (0: no convexity).

    Returns
    -------
    gap : float or None
        In normalised units (1 would be a right angle); None for fewer than three points
        or a flat curve.
    """
    gaps = _chord_gaps(ks, inertia)
    return None if gaps is None else max(float(np.max(gaps)), 0.0)


def _chord_gaps(ks, inertia):
    if len(ks) < 3 or np.ptp(inertia) == 0:
        return None
    x = (ks - ks[0]) / (ks[-1] - ks[0])
    y = (inertia - inertia.min()) / np.ptp(inertia)
    return (1.0 - x) - y


def _best_silhouette(ks, silhouette):
    if np.all(np.isnan(silhouette)):
        return int(ks[0]), float("nan")
    best = int(np.nanargmax(silhouette))
    return int(ks[best]), float(silhouette[best])


def _cluster_quality(standardised, model, sample):
    labels = model.labels_
    n_found = len(np.unique(labels))
    sample_labels = labels[sample]
    silhouette = None
    if 2 <= len(np.unique(sample_labels)) < len(sample):
        silhouette = float(silhouette_score(standardised[sample], sample_labels))
    davies_bouldin = calinski_harabasz = None
    if n_found >= 2:
        davies_bouldin = float(davies_bouldin_score(standardised, labels))
        calinski_harabasz = float(calinski_harabasz_score(standardised, labels))
    return {
        "k": int(model.n_clusters),
        "inertia": float(model.inertia_),
        "silhouette": silhouette,
        "davies_bouldin": davies_bouldin,
        "calinski_harabasz": calinski_harabasz,
    }


def _sample_index(n_tracks, max_size, rng):
    if n_tracks <= max_size:
        return np.arange(n_tracks)
    return np.sort(rng.choice(n_tracks, size=max_size, replace=False))


def _check_k_range(k_range):
    if (
        len(k_range) != 2
        or not all(isinstance(k, Integral) and not isinstance(k, bool) for k in k_range)
        or not 2 <= k_range[0] <= k_range[1]
    ):
        raise ConfigError(
            f"The 'k_range' parameter of AcousticClusterer must be two integers (low, high) "
            f"with 2 <= low <= high. Got {k_range!r} instead."
        )


def _feature_table(X):
    """Return ``(values, column_names or None)`` with values as a 2-D float array."""
    names = None
    if isinstance(X, pd.DataFrame):
        names = [str(column) for column in X.columns]
        non_numeric = [
            str(column) for column, dtype in X.dtypes.items()
            if not pd.api.types.is_numeric_dtype(dtype)
        ]
        if non_numeric:
            raise DataError(f"feature columns must be numeric; not numeric: {non_numeric}")
        X = X.to_numpy(dtype=float, na_value=np.nan)
    try:
        values = np.asarray(X, dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError(f"features must be numeric: {exc}") from exc
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise DataError(f"features must be a non-empty 2-D table, got shape {values.shape}")
    if np.isinf(values).any():
        raise DataError("features contain infinite values")
    return values, names
