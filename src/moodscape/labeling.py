"""Stage 2: name acoustic clusters after the tags that set them apart, or after their sound.

A cluster is named after the original tags its tracks carry *more often than the whole
collection does* — ranked by a smoothed log-odds z-score, filtered by lift and count — so
that tags common everywhere ("film", "happy") do not name every cluster. A cluster without
a distinctive tag (or a collection without tags) is named after the stage-1 features that
set it apart (:mod:`moodscape.acoustic_names`: "Fast / Bright / Percussive"). Names are
unique; clusters too small are dropped, and their tracks get no label.
"""

from dataclasses import dataclass
from itertools import combinations
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from moodscape.acoustic_names import TYPICAL, acoustic_profile, describing_words, profile_entries
from moodscape.errors import ConfigError, DataError

#: Tags listed per cluster in ``profiles_``.
N_PROFILE_TAGS = 10
NAME_SEPARATOR = " / "


@dataclass(frozen=True)
class TagStatistics:
    """Per-cluster tag statistics; every table is indexed by cluster id, columns are tags.

    Attributes
    ----------
    size : pd.Series
        Tracks per cluster.
    count : pd.DataFrame
        Tracks of the cluster carrying the tag.
    share : pd.DataFrame
        ``count / size``.
    global_share : pd.Series
        Share of the whole collection carrying the tag.
    lift : pd.DataFrame
        ``share / global_share`` (0 for a tag no track carries).
    score : pd.DataFrame
        Smoothed log-odds z-score of the tag in the cluster against the whole collection
        (see :class:`ClusterNamer`); 0 for a tag carried by no track or by every track.
    """

    size: pd.Series
    count: pd.DataFrame
    share: pd.DataFrame
    global_share: pd.Series
    lift: pd.DataFrame
    score: pd.DataFrame


class ClusterNamer(BaseEstimator):
    """Name clusters after their distinctive tags, or their sound; drop those too small.

    For every cluster c and tag t, with a = tracks of c carrying t, n = size of c,
    A = tracks of the whole collection carrying t, N = size of the collection, p = A / N,
    and α = ``prior``, the distinctiveness score is the z-score of the log-odds ratio of
    the tag in the cluster against the collection, both smoothed by an informative Beta
    prior of α pseudo-tracks centred on p — the per-track (binary) form of Monroe,
    Colaresi & Quinn (2008), "Fightin' Words", comparing one group with the whole corpus::

        δ  = log[(a + αp) / (n − a + α(1−p))] − log[(A + αp) / (N − A + α(1−p))]
        σ² = 1/(a + αp) + 1/(n − a + α(1−p)) + 1/(A + αp) + 1/(N − A + α(1−p))
        z  = δ / σ

    A tag carried by no track or by every track scores 0. Because the collection
    contains the cluster, σ is slightly overestimated and z is conservative.

    A tag is *distinctive* for c when its lift (share in c / share in the collection) is
    at least ``min_lift``, it is carried by at least ``min_tag_count`` tracks of c, and
    its z is at least ``min_score`` (which keeps rare tags that clear the lift bar by
    chance out of names); distinctive tags are ranked by z (ties by tag name). A
    cluster's name is its top ``max_tags_in_name`` distinctive tags, title-cased and
    joined by " / ".

    Names are unique, compared case-insensitively as sets of tags ("A / B" clashes with
    "B / A"). Manual names are reserved first; then clusters are named in decreasing
    order of their best z, so the most distinctive cluster gets its first choice. A
    cluster whose first choice is taken tries the other combinations of its distinctive
    tags (same number of tags, in rank order, then fewer tags); only when all are taken
    is " (2)", " (3)", … appended to its first choice.

    A cluster without a distinctive tag is named after its sound when ``fit`` is given the
    tracks' standardised stage-1 features and ``acoustic_names`` is on: its profile is the
    mean z of every feature (:func:`~moodscape.acoustic_names.acoustic_profile`), and its
    name joins the words (:data:`~moodscape.features.FEATURE_WORDS`) of up to
    ``max_words_in_name`` features at least ``min_feature_z`` from the collection's mean,
    farthest first, one per quality ("Fast / Bright / Percussive"), or "Typical" when none
    is that far. These names come after every tag name, the cluster farthest from the
    collection first, with the same uniqueness rules (words instead of tags).

    A cluster is dropped when it has fewer than ``min_size`` tracks, or when it has no
    distinctive tag, no manual name and no acoustic name (``acoustic_names`` off, or no
    features given). A manual name keeps a cluster without a distinctive tag, but not one
    below ``min_size``.

    Parameters
    ----------
    min_size : int, default=5
        Smallest cluster that gets a label.
    min_lift : float, default=1.2
        Smallest lift for a tag to be distinctive.
    min_tag_count : int, default=3
        Fewest tracks of the cluster carrying a tag for it to be distinctive.
    max_tags_in_name : int, default=2
        Most tags joined into one name.
    min_score : float, default=3.0
        Smallest z-score for a tag to be distinctive (about a 0.1 % one-sided chance for a
        tag unrelated to the cluster, so that few of the many cluster × tag pairs pass by
        chance); ``-inf`` disables the test.
    prior : float, default=1.0
        Strength α of the prior, in pseudo-tracks; larger values shrink the scores of
        rare tags in small clusters towards zero.
    manual_names : dict of {int: str} or None, default=None
        Names forced for some clusters; they must be unique.
    acoustic_names : bool, default=True
        Name clusters without a distinctive tag after their sound (when features are given).
    max_words_in_name : int, default=3
        Most words joined into one acoustic name.
    min_feature_z : float, default=0.5
        Smallest distance of a cluster's mean from the collection's, in standard deviations,
        for a feature to give a word.

    Attributes
    ----------
    names_ : dict of {int: str}
        Name of every kept cluster.
    dropped_ : dict of {int: str}
        Reason for every dropped cluster.
    label_to_idx_ : dict of {str: int}
        Class index of every name, in increasing cluster id, onto ``range(len(names_))``.
    profiles_ : list of dict
        JSON-ready profile of every cluster, in increasing cluster id: ``cluster_id``,
        ``size``, ``name`` (or None), ``named_by`` ("tags", "acoustic", "manual" or
        None), ``dropped`` (reason or None), ``distinctive_tags`` (ranked), ``top_tags``, up
        to ``N_PROFILE_TAGS`` of ``{"tag", "count", "share", "global_share", "lift",
        "score", "distinctive"}`` ranked by score, and ``acoustic_features``, every feature
        of the acoustic profile as ``{"feature", "z", "word", "in_name"}`` by decreasing
        ``|z|`` (empty without features; ``in_name`` only for an acoustic name).
    tag_statistics_ : TagStatistics
        Sizes and the count, share, lift and score tables (clusters × tags).
    tag_lift_ : pd.DataFrame
        Lift of every tag in every cluster (clusters × tags), for a heat map.
    tag_names_ : np.ndarray of str
        The tag vocabulary seen in ``fit``.
    acoustic_profile_ : pd.DataFrame or None
        Mean z of every feature in every cluster (clusters × features); None without features.

    Examples
    --------
    >>> namer = ClusterNamer(min_size=20).fit(cluster_ids, tag_matrix, tag_names)
    >>> namer.names_
    {0: 'Energetic / Party', 2: 'Calm / Relaxing'}
    >>> namer.transform([0, 1, 2])
    array(['Energetic / Party', None, 'Calm / Relaxing'], dtype=object)
    """

    _parameter_constraints: dict = {
        "min_size": [Interval(Integral, 1, None, closed="left")],
        "min_lift": [Interval(Real, 0, None, closed="left")],
        "min_tag_count": [Interval(Integral, 1, None, closed="left")],
        "max_tags_in_name": [Interval(Integral, 1, None, closed="left")],
        "min_score": [Interval(Real, None, None, closed="both")],
        "prior": [Interval(Real, 0, None, closed="neither")],
        "manual_names": [dict, None],
        "acoustic_names": ["boolean"],
        "max_words_in_name": [Interval(Integral, 1, None, closed="left")],
        "min_feature_z": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        min_size=5,
        min_lift=1.2,
        min_tag_count=3,
        max_tags_in_name=2,
        min_score=3.0,
        prior=1.0,
        manual_names=None,
        acoustic_names=True,
        max_words_in_name=3,
        min_feature_z=0.5,
    ):
        self.min_size = min_size
        self.min_lift = min_lift
        self.min_tag_count = min_tag_count
        self.max_tags_in_name = max_tags_in_name
        self.min_score = min_score
        self.prior = prior
        self.manual_names = manual_names
        self.acoustic_names = acoustic_names
        self.max_words_in_name = max_words_in_name
        self.min_feature_z = min_feature_z

    def fit(self, cluster_ids, tag_matrix, tag_names=None, acoustic_features=None):
        """Profile every cluster's tags (and sound) and name the clusters.

        Parameters
        ----------
        cluster_ids : array-like of int [shape=(n_tracks,)]
            Acoustic cluster of every track of the collection.
        tag_matrix : array-like of bool or pd.DataFrame [shape=(n_tracks, n_tags)]
            Multi-hot original tags of the same tracks; a DataFrame's columns are the tag
            names.
        tag_names : sequence of str, optional
            Tag of every column; required unless ``tag_matrix`` is a DataFrame.
        acoustic_features : pd.DataFrame [shape=(n_tracks, n_features)], optional
            Standardised stage-1 features of the same tracks (columns are feature names),
            as the clustering standardised them; without them no cluster is named after
            its sound.

        Returns
        -------
        self : ClusterNamer
        """
        self._validate_params()
        cluster_ids, tags, tag_names = _check_tag_table(cluster_ids, tag_matrix, tag_names)
        manual = self._manual_names_for(cluster_ids)
        self.tag_names_ = np.asarray(tag_names, dtype=object)
        self.tag_statistics_ = tag_statistics(cluster_ids, tags, tag_names, self.prior)
        self.tag_lift_ = self.tag_statistics_.lift
        self.acoustic_profile_ = None if acoustic_features is None else acoustic_profile(cluster_ids, acoustic_features)
        distinctive = self._distinctive_tags(self.tag_statistics_)
        self.dropped_ = self._drop_reasons(self.tag_statistics_.size, distinctive, manual)
        self.names_, self._named_by = self._assign_names(distinctive, manual)
        self.label_to_idx_ = {name: i for i, (_, name) in enumerate(sorted(self.names_.items()))}
        self.profiles_ = self._profiles(distinctive)
        return self

    def transform(self, cluster_ids):
        """Map cluster ids to names; tracks of dropped clusters get None.

        Parameters
        ----------
        cluster_ids : array-like of int [shape=(n_tracks,)]

        Returns
        -------
        names : np.ndarray of object [shape=(n_tracks,)]
        """
        check_is_fitted(self)
        cluster_ids = _check_cluster_ids(cluster_ids)
        unknown = sorted(set(cluster_ids.tolist()) - set(self.tag_statistics_.size.index))
        if unknown:
            raise DataError(f"cluster ids not seen in fit: {unknown}")
        names = np.empty(len(cluster_ids), dtype=object)
        names[:] = [self.names_.get(cluster_id) for cluster_id in cluster_ids.tolist()]
        return names

    def lift_table(self, n_top=3):
        """Lift of each cluster's most distinctive tags, ready for a heat map.

        Parameters
        ----------
        n_top : int, default=3
            Tags taken per cluster (by score); the columns are their union.

        Returns
        -------
        lift : pd.DataFrame [shape=(n_clusters, n_tags_shown)]
            Rows are labelled by name, or "cluster <id> (dropped)".
        """
        check_is_fitted(self)
        score = self.tag_statistics_.score
        columns = []
        for cluster_id in score.index:
            carried = self.tag_statistics_.count.loc[cluster_id] > 0
            ranked = _rank_tags(score.loc[cluster_id], carried)
            columns += [tag for tag in ranked[:n_top] if tag not in columns]
        rows = [self.names_.get(c, f"cluster {c} (dropped)") for c in score.index]
        return pd.DataFrame(self.tag_lift_[columns].to_numpy(), index=rows, columns=columns)

    def _validate_params(self):
        try:
            super()._validate_params()
        except InvalidParameterError as exc:
            raise ConfigError(str(exc)) from exc
        _check_manual_names(self.manual_names or {})

    def _manual_names_for(self, cluster_ids):
        manual = {int(c): name.strip() for c, name in (self.manual_names or {}).items()}
        unknown = sorted(set(manual) - set(cluster_ids.tolist()))
        if unknown:
            raise ConfigError(f"manual_names names clusters that do not exist: {unknown}")
        return manual

    def _distinctive_tags(self, stats):
        """Ranked distinctive tags of every cluster: ``{cluster_id: [tag, ...]}``."""
        passes = (
            (stats.lift >= self.min_lift)
            & (stats.count >= self.min_tag_count)
            & (stats.score >= self.min_score)
        )
        return {c: _rank_tags(stats.score.loc[c], passes.loc[c]) for c in stats.size.index}

    def _names_from_sound(self):
        return self.acoustic_names and self.acoustic_profile_ is not None

    def _drop_reasons(self, size, distinctive, manual):
        dropped = {}
        for cluster_id, n_tracks in size.items():
            if n_tracks < self.min_size:
                dropped[cluster_id] = f"too small: {n_tracks} tracks < min_size {self.min_size}"
            elif not distinctive[cluster_id] and cluster_id not in manual and not self._names_from_sound():
                dropped[cluster_id] = (
                    f"no distinctive tag: none has lift >= {self.min_lift}, "
                    f"count >= {self.min_tag_count} and score >= {self.min_score}"
                )
        return dropped

    def _assign_names(self, distinctive, manual):
        """Manual names, then tag names, then acoustic names: ``({cluster: name}, {cluster: named_by})``."""
        names = {c: name for c, name in manual.items() if c not in self.dropped_}
        named_by = dict.fromkeys(names, "manual")
        taken = {_name_key(name) for name in manual.values()}
        score = self.tag_statistics_.score
        by_tags = [c for c in distinctive if distinctive[c] and c not in self.dropped_ and c not in names]
        # the most distinctive cluster gets its first choice
        by_tags.sort(key=lambda c: (-score.loc[c, distinctive[c][0]], c))
        choices = [(c, distinctive[c], self.max_tags_in_name, "tags") for c in by_tags]
        if self._names_from_sound():
            words = {c: describing_words(self.acoustic_profile_.loc[c], self.min_feature_z)
                     for c in self.acoustic_profile_.index if c not in self.dropped_ and c not in names and c not in by_tags}
            # the cluster whose strongest word is farthest from the collection gets its first choice
            order = sorted(words, key=lambda c: (-abs(words[c][0]["z"]) if words[c] else 0.0, c))
            choices += [(c, [w["word"] for w in words[c]] or [TYPICAL], self.max_words_in_name, "acoustic") for c in order]
        for cluster_id, parts, max_parts, source in choices:
            names[cluster_id] = _first_free_name(parts, max_parts, taken)
            named_by[cluster_id] = source
            taken.add(_name_key(names[cluster_id]))
        return dict(sorted(names.items())), named_by

    def _profiles(self, distinctive):
        stats = self.tag_statistics_
        profiles = []
        for cluster_id, n_tracks in stats.size.items():
            name = self.names_.get(cluster_id)
            named_by = self._named_by.get(cluster_id)
            ranked = _rank_tags(stats.score.loc[cluster_id], stats.count.loc[cluster_id] > 0)
            profiles.append({
                "cluster_id": int(cluster_id),
                "size": int(n_tracks),
                "name": name,
                "named_by": named_by,
                "dropped": self.dropped_.get(cluster_id),
                "distinctive_tags": list(distinctive[cluster_id]),
                "top_tags": [
                    _tag_profile(stats, cluster_id, tag, tag in distinctive[cluster_id])
                    for tag in ranked[:N_PROFILE_TAGS]
                ],
                "acoustic_features": [] if self.acoustic_profile_ is None else profile_entries(
                    self.acoustic_profile_.loc[cluster_id], name if named_by == "acoustic" else None,
                    self.min_feature_z),
            })
        return profiles


def tag_statistics(cluster_ids, tag_matrix, tag_names, prior=1.0):
    """Count, share, lift and smoothed log-odds z-score of every tag in every cluster.

    Parameters
    ----------
    cluster_ids : np.ndarray of int [shape=(n_tracks,)]
    tag_matrix : np.ndarray of bool [shape=(n_tracks, n_tags)]
    tag_names : sequence of str [shape=(n_tags,)]
    prior : float, default=1.0
        Strength α of the Beta prior centred on the collection share (see
        :class:`ClusterNamer` for the equation).

    Returns
    -------
    TagStatistics
    """
    clusters, membership = np.unique(cluster_ids, return_inverse=True)
    one_hot = np.eye(len(clusters), dtype=np.int64)[membership]  # (n_tracks, n_clusters)
    tags = np.asarray(tag_matrix, dtype=np.int64)
    count = one_hot.T @ tags  # (n_clusters, n_tags)
    size = one_hot.sum(axis=0)
    n_total, total = len(cluster_ids), tags.sum(axis=0)
    global_share = total / n_total
    share = count / size[:, None]
    informative = (total > 0) & (total < n_total)
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(total > 0, share / global_share, 0.0)
        score = _log_odds_z(count, size[:, None], total, n_total, global_share, prior)
    score = np.where(informative, score, 0.0)
    index = pd.Index(clusters.tolist(), name="cluster_id")

    def table(values):
        return pd.DataFrame(values, index=index, columns=list(tag_names))

    return TagStatistics(
        size=pd.Series(size, index=index, name="size"),
        count=table(count),
        share=table(share),
        global_share=pd.Series(global_share, index=list(tag_names), name="global_share"),
        lift=table(lift),
        score=table(score),
    )


def _log_odds_z(a, n, total, n_total, p, prior):
    """z-score of the prior-smoothed log-odds ratio of a/n against total/n_total."""
    with_tag, without = a + prior * p, n - a + prior * (1 - p)
    with_tag_all, without_all = total + prior * p, n_total - total + prior * (1 - p)
    delta = np.log(with_tag / without) - np.log(with_tag_all / without_all)
    variance = 1 / with_tag + 1 / without + 1 / with_tag_all + 1 / without_all
    return delta / np.sqrt(variance)


def display_tag(tag):
    """Title-case a tag for a name: "dark_ambient" -> "Dark Ambient"."""
    return " ".join(word[:1].upper() + word[1:] for word in str(tag).replace("_", " ").split())


def _rank_tags(score, eligible):
    """Eligible tags by decreasing score, ties by tag name."""
    candidates = score[eligible.to_numpy()]
    order = sorted(candidates.items(), key=lambda item: (-item[1], item[0]))
    return [tag for tag, _ in order]


def _first_free_name(ranked_tags, max_tags, taken):
    n_tags = min(max_tags, len(ranked_tags))
    for size in range(n_tags, 0, -1):
        for combo in combinations(ranked_tags, size):
            name = NAME_SEPARATOR.join(display_tag(tag) for tag in combo)
            if _name_key(name) not in taken:
                return name
    first_choice = NAME_SEPARATOR.join(display_tag(tag) for tag in ranked_tags[:n_tags])
    suffix = 2
    while _name_key(f"{first_choice} ({suffix})") in taken:
        suffix += 1
    return f"{first_choice} ({suffix})"


def _name_key(name):
    """Names clash when they join the same tags, in any order and case."""
    return frozenset(part.strip().casefold() for part in name.split("/"))


def _tag_profile(stats, cluster_id, tag, distinctive):
    return {
        "tag": str(tag),
        "count": int(stats.count.loc[cluster_id, tag]),
        "share": float(stats.share.loc[cluster_id, tag]),
        "global_share": float(stats.global_share[tag]),
        "lift": float(stats.lift.loc[cluster_id, tag]),
        "score": float(stats.score.loc[cluster_id, tag]),
        "distinctive": bool(distinctive),
    }


def _check_manual_names(manual_names):
    keys = {}
    for cluster_id, name in manual_names.items():
        if not _is_int_like(cluster_id):
            raise ConfigError(
                f"manual_names keys must be cluster ids (integers), got {cluster_id!r}"
            )
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(
                f"manual_names[{cluster_id!r}] must be a non-empty string, got {name!r}"
            )
        clash = keys.setdefault(_name_key(name), cluster_id)
        if clash != cluster_id:
            raise ConfigError(
                f"manual_names must be unique: clusters {clash!r} and {cluster_id!r} "
                f"are both named {name!r}"
            )


def _is_int_like(value):
    if isinstance(value, bool):
        return False
    if isinstance(value, Integral):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _check_cluster_ids(cluster_ids):
    cluster_ids = np.asarray(cluster_ids)
    if cluster_ids.ndim != 1:
        raise DataError(f"cluster_ids must be 1-D, got shape {cluster_ids.shape}")
    if cluster_ids.size and not np.issubdtype(cluster_ids.dtype, np.integer):
        if not np.issubdtype(cluster_ids.dtype, np.floating) or not np.all(
            np.isfinite(cluster_ids) & (cluster_ids == np.round(cluster_ids))
        ):
            raise DataError(f"cluster_ids must be integers, got dtype {cluster_ids.dtype}")
    return cluster_ids.astype(np.int64)


def _check_tag_table(cluster_ids, tag_matrix, tag_names):
    """Validate the fit inputs; return ``(cluster_ids, bool tag matrix, tag names)``."""
    cluster_ids = _check_cluster_ids(cluster_ids)
    if isinstance(tag_matrix, pd.DataFrame):
        tag_names = list(tag_matrix.columns) if tag_names is None else tag_names
        tag_matrix = tag_matrix.to_numpy()
    elif hasattr(tag_matrix, "toarray"):  # scipy sparse
        tag_matrix = tag_matrix.toarray()
    tags = np.asarray(tag_matrix)
    if tags.ndim != 2 or tags.shape[0] != len(cluster_ids) or len(cluster_ids) == 0:
        raise DataError(
            f"tag_matrix must be (n_tracks, n_tags) with n_tracks = len(cluster_ids) = "
            f"{len(cluster_ids)} > 0, got shape {tags.shape}"
        )
    if tag_names is None or len(tag_names) != tags.shape[1]:
        raise DataError(f"tag_names must name the {tags.shape[1]} columns of tag_matrix")
    tag_names = [str(tag) for tag in tag_names]
    if len(set(tag_names)) != len(tag_names):
        raise DataError("tag_names must be unique")
    if not np.isin(tags, [0, 1]).all():
        raise DataError("tag_matrix must be multi-hot: only 0/1 or False/True")
    return cluster_ids, tags.astype(bool), tag_names
