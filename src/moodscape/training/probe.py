"""Linear probes on frozen embeddings: how much a network's 512-d space already knows.

The ablation compares networks by fitting the same probe on each one's embeddings:
logistic regression on standardised embeddings of the training split, scored on the
test split. Tags use one binary probe per tag (one-vs-rest), the protocol of linear
evaluation on MTG-Jamendo. The same probes on standardised stage-1 features are the
baselines of the backbone (tags) and of the classifier (new labels).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from moodscape.evaluation import classification_metrics, tagging_metrics


def _probe(C: float):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))


def tag_probe_metrics(
    train_embeddings: np.ndarray,
    train_tags: np.ndarray,
    test_embeddings: np.ndarray,
    test_tags: np.ndarray,
    tag_names: Sequence[str],
    *,
    C: float = 0.1,
) -> dict:
    """ROC-AUC / PR-AUC macro of a one-vs-rest logistic probe for the original tags.

    Parameters
    ----------
    train_embeddings, test_embeddings : np.ndarray [shape=(n, 512)]
    train_tags, test_tags : np.ndarray [shape=(n, n_tags), dtype=bool]
    tag_names : sequence of str
    C : float
        Inverse L2 strength of each logistic regression.

    Returns
    -------
    dict
        :func:`moodscape.evaluation.tagging_metrics` of the test split; tags without a
        positive training track get a constant score (and count in the macro only if the
        test split has both classes).
    """
    present = train_tags.any(axis=0) & ~train_tags.all(axis=0)
    scores = np.zeros(test_tags.shape, dtype=np.float64)
    if present.any():
        probe = OneVsRestClassifier(_probe(C)).fit(train_embeddings, train_tags[:, present].astype(int))
        scores[:, present] = probe.predict_proba(test_embeddings)
    scores[:, ~present] = train_tags[:, ~present].mean(axis=0)
    return tagging_metrics(test_tags, scores, list(tag_names))


def label_probe_metrics(
    train_embeddings: np.ndarray,
    train_labels: np.ndarray,
    test_embeddings: np.ndarray,
    test_labels: np.ndarray,
    label_names: Sequence[str],
    *,
    C: float = 1.0,
) -> dict:
    """Accuracy / macro-F1 of a multinomial logistic probe for the new labels."""
    probe = _probe(C).fit(train_embeddings, train_labels)
    return classification_metrics(test_labels, probe.predict(test_embeddings), list(label_names))


# --------------------------------------------------------------------------- stage-1 features as the probe's input


def feature_matrices(
    features: pd.DataFrame, fit_ids: Sequence[str], *other_ids: Sequence[str]
) -> tuple[np.ndarray, ...]:
    """Stage-1 feature rows of ``fit_ids`` and of each ``other_ids``, ready for a probe.

    Parameters
    ----------
    features : pandas.DataFrame
        ``track_id`` and one float column per feature (``features.parquet``; Essentia
        imports may leave whole columns NaN).
    fit_ids, *other_ids : sequence of str
        Track ids, each present in ``features``.

    Returns
    -------
    tuple of np.ndarray [shape=(n, n_features), dtype=float64]
        One matrix per id list, in that order. Columns without a finite value in the
        ``fit_ids`` rows are dropped; other missing values are filled with the
        ``fit_ids`` rows' column mean (the standardisation of the probes is fitted on
        those rows too).
    """
    table = features.drop_duplicates("track_id").set_index("track_id")
    table = table.select_dtypes("number").astype(np.float64)
    fit = table.loc[list(fit_ids)].to_numpy()
    keep = np.isfinite(fit).any(axis=0) if len(fit) else np.ones(fit.shape[1], dtype=bool)
    means = np.nanmean(np.where(np.isfinite(fit[:, keep]), fit[:, keep], np.nan), axis=0) if len(fit) else 0.0

    def matrix(ids: Sequence[str]) -> np.ndarray:
        values = table.loc[list(ids)].to_numpy()[:, keep]
        return np.where(np.isfinite(values), values, means)

    return (matrix(fit_ids), *(matrix(ids) for ids in other_ids))


def _featured(features: pd.DataFrame, train_ids, train_targets, test_ids, test_targets):
    """Standardised stage-1 features and targets of the train and test tracks that have features.

    Returns ``(X_train, y_train, n_train), (X_test, y_test, n_test), n_without_features``.
    """
    have = set(features["track_id"])
    train_keep = np.array([t in have for t in train_ids], dtype=bool)
    test_keep = np.array([t in have for t in test_ids], dtype=bool)
    kept_train = [t for t, k in zip(train_ids, train_keep) if k]
    kept_test = [t for t, k in zip(test_ids, test_keep) if k]
    X_train, X_test = feature_matrices(features, kept_train, kept_test)
    n_missing = int((~train_keep).sum() + (~test_keep).sum())
    return ((X_train, np.asarray(train_targets)[train_keep], len(kept_train)),
            (X_test, np.asarray(test_targets)[test_keep], len(kept_test)), n_missing)


def stage1_tag_baseline(
    features: pd.DataFrame,
    train_ids: Sequence[str],
    train_tags: np.ndarray,
    test_ids: Sequence[str],
    test_tags: np.ndarray,
    tag_names: Sequence[str],
) -> dict:
    """The tag probe of :func:`tag_probe_metrics` on standardised stage-1 features.

    Tracks without a features row are left out of both splits (counted in
    ``n_tracks_without_features``), so the test tracks are those of the network's
    test metrics when every track has features.

    Returns
    -------
    dict
        ``roc_auc_macro``, ``pr_auc_macro``, ``n_tags_scored``, ``n_tracks``
        (``train``/``test``), ``n_tracks_without_features`` and ``model``.
    """
    (X_train, y_train, n_train), (X_test, y_test, n_test), n_missing = _featured(features, train_ids, train_tags, test_ids, test_tags)
    metrics = tag_probe_metrics(X_train, y_train, X_test, y_test, tag_names)
    return {"model": "one-vs-rest logistic regression on standardised stage-1 features",
            "roc_auc_macro": metrics["roc_auc_macro"], "pr_auc_macro": metrics["pr_auc_macro"],
            "n_tags_scored": metrics.get("n_tags_scored"), "n_tracks": {"train": n_train, "test": n_test},
            "n_tracks_without_features": n_missing}


def stage1_label_baseline(
    features: pd.DataFrame,
    train_ids: Sequence[str],
    train_labels: np.ndarray,
    test_ids: Sequence[str],
    test_labels: np.ndarray,
    label_names: Sequence[str],
) -> dict:
    """The label probe of :func:`label_probe_metrics` on standardised stage-1 features.

    The new labels are K-Means clusters of these very features, so this baseline shows
    how far new-label accuracy is a property of the labels rather than of a network.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n_tracks`` (``train``/``test``),
        ``n_tracks_without_features`` and ``model``.
    """
    (X_train, y_train, n_train), (X_test, y_test, n_test), n_missing = _featured(features, train_ids, train_labels, test_ids, test_labels)
    metrics = label_probe_metrics(X_train, y_train, X_test, y_test, label_names)
    return {"model": "multinomial logistic regression on standardised stage-1 features",
            "accuracy": metrics["accuracy"], "macro_f1": metrics["macro_f1"],
            "n_tracks": {"train": n_train, "test": n_test},
            "n_tracks_without_features": n_missing}
