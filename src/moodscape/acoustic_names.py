"""Stage 2 without tags: plain words for how a cluster sounds, against the whole collection.

A cluster's *acoustic profile* is the mean of its tracks' standardised stage-1 features:
for each feature, how many of the collection's standard deviations the cluster's mean lies
from the collection's mean — the cluster's K-Means centroid, in the space the clustering
standardised. The features that set the cluster apart most, by at least ``min_z`` and
with a word in :data:`moodscape.features.FEATURE_WORDS`, become the words of its name:
tempo high → "Fast", spectral centroid high → "Bright", onset rate high → "Percussive",
mode low → "Minor". :class:`moodscape.labeling.ClusterNamer` joins them and keeps names
unique.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from moodscape.errors import DataError
from moodscape.features import FEATURE_WORDS

TYPICAL = "Typical"
"""The word of a cluster that no worded feature sets ``min_z`` apart: it sounds like the collection."""


def acoustic_profile(cluster_ids: np.ndarray, standardised: pd.DataFrame) -> pd.DataFrame:
    """Mean standardised feature of every cluster: its z-score against the collection.

    Parameters
    ----------
    cluster_ids : np.ndarray of int [shape=(n_tracks,)]
    standardised : pd.DataFrame [shape=(n_tracks, n_features)]
        Stage-1 features of the same tracks with zero mean and unit variance over them
        (:func:`moodscape.clustering.fit_standardiser`); columns are feature names.

    Returns
    -------
    profile : pd.DataFrame [shape=(n_clusters, n_features)]
        Indexed by cluster id (increasing), columns as ``standardised``.

    Raises
    ------
    DataError
        When ``standardised`` is no DataFrame of one finite row per track.
    """
    if not isinstance(standardised, pd.DataFrame) or len(standardised) != len(cluster_ids):
        raise DataError(f"acoustic features must be a table of one row per track ({len(cluster_ids)} rows)")
    values = standardised.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise DataError("acoustic features must be finite (impute and standardise them first)")
    table = pd.DataFrame(values, columns=[str(column) for column in standardised.columns])
    profile = table.groupby(np.asarray(cluster_ids)).mean().sort_index()
    profile.index.name = "cluster_id"
    return profile


def describing_words(z: pd.Series, min_z: float) -> list[dict]:
    """The words a cluster's profile earns, strongest first: one per quality, ``|z| >= min_z``.

    Parameters
    ----------
    z : pd.Series
        One cluster's row of :func:`acoustic_profile` (feature name → z).
    min_z : float
        Smallest distance from the collection, in standard deviations, that earns a word.

    Returns
    -------
    list of dict
        ``{"feature", "z", "quality", "word"}`` by decreasing ``|z|`` (ties by feature name);
        a quality appears once, with its farthest feature.
    """
    words, qualities = [], set()
    for feature, value in _by_distance(z):
        if feature not in FEATURE_WORDS or abs(value) < min_z:
            continue
        quality, low, high = FEATURE_WORDS[feature]
        if quality not in qualities:
            qualities.add(quality)
            words.append({"feature": feature, "z": value, "quality": quality, "word": high if value > 0 else low})
    return words


def profile_entries(z: pd.Series, name: str | None, min_z: float) -> list[dict]:
    """Every feature of one cluster's profile, farthest first, marking those whose word is in ``name``.

    Returns
    -------
    list of dict
        ``{"feature", "z", "word", "in_name"}``; ``word`` is the feature's word for the sign
        of its z (None for a feature without words), ``in_name`` whether it gave a word of
        ``name`` (the farthest feature of the word's quality, at least ``min_z`` away).
    """
    parts = set(name_parts(name)) if name else set()
    naming = {entry["feature"] for entry in describing_words(z, min_z) if entry["word"] in parts}
    entries = []
    for feature, value in _by_distance(z):
        word = None
        if feature in FEATURE_WORDS:
            _, low, high = FEATURE_WORDS[feature]
            word = high if value > 0 else low
        entries.append({"feature": feature, "z": value, "word": word, "in_name": feature in naming})
    return entries


def name_parts(name: str) -> list[str]:
    """The words or tags a name joins, without a " (2)" suffix: "Fast / Bright (2)" -> ["Fast", "Bright"]."""
    return [part.strip() for part in re.sub(r" \(\d+\)$", "", name).split("/")]


def _by_distance(z: pd.Series) -> list[tuple[str, float]]:
    return sorted(((str(feature), float(value)) for feature, value in z.items()), key=lambda item: (-abs(item[1]), item[0]))
