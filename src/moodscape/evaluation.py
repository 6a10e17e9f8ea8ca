"""Metrics shared by the training stages and the report: the one place they are computed.

Two families, each a function from arrays to a JSON-ready dict:

- :func:`classification_metrics` scores single-label predictions of the new acoustic
  labels: accuracy, macro-F1, per-class precision/recall/F1/support and the confusion
  matrix, all from scikit-learn.
- :func:`tagging_metrics` scores multi-label tag scores the way published MTG-Jamendo
  and MediaEval "Emotion and Themes in Music" results are scored:
  ``sklearn.metrics.roc_auc_score(..., average="macro")`` and
  ``average_precision_score(..., average="macro")`` over the tag columns. ROC-AUC is
  undefined for a tag that has no positive (or no negative) track in the evaluated set,
  so the macro averages run over the tags that have both classes there; the others are
  listed in ``skipped_tags``. On the real split-0 test set every one of the 56 tags has
  positives, so nothing is skipped and the numbers are the published protocol's.
  :func:`tag_f1_macro` gives the thresholded macro-F1 over the same tags.

Each further protocol (e.g. the MusAV pairwise accuracy) is one more function here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from moodscape.errors import DataError


def classification_metrics(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    label_names: Sequence[str],
) -> dict:
    """Score single-label predictions.

    Parameters
    ----------
    y_true, y_pred : array-like of int [shape=(n,)]
        True and predicted class indices, ``0 <= index < len(label_names)``.
    label_names : sequence of str
        The name of each class index, in index order.

    Returns
    -------
    dict
        ``accuracy``; ``macro_f1`` (unweighted mean of the per-class F1 over every class
        of ``label_names``, a class never predicted nor present counting 0);
        ``per_class``: ``{name: {precision, recall, f1, support}}``;
        ``confusion_matrix``: ``{"labels": names, "matrix": [[...]]}`` with true classes
        in rows and predicted classes in columns; ``n_tracks``.

    Examples
    --------
    >>> classification_metrics([0, 1, 1], [0, 1, 0], ["calm", "dark"])["accuracy"]
    0.6666666666666666
    """
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise DataError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal-length vectors")
    classes = np.arange(len(label_names))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=classes, zero_division=0
    )
    per_class = {
        name: {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(label_names)
    }
    matrix = confusion_matrix(y_true, y_pred, labels=classes)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else 0.0,
        "macro_f1": float(np.mean(f1)) if len(classes) else 0.0,
        "per_class": per_class,
        "confusion_matrix": {"labels": list(label_names), "matrix": matrix.tolist()},
        "n_tracks": int(len(y_true)),
    }


def tagging_metrics(
    tag_targets: np.ndarray,
    tag_scores: np.ndarray,
    tag_names: Sequence[str] | None = None,
) -> dict:
    """ROC-AUC and PR-AUC macro over tags, as published MTG-Jamendo results compute them.

    Parameters
    ----------
    tag_targets : np.ndarray [shape=(n, n_tags), dtype=bool]
        Whether each track carries each tag.
    tag_scores : np.ndarray [shape=(n, n_tags)]
        Scores, higher meaning more likely (probabilities or logits: both AUCs depend on
        the ranking only).
    tag_names : sequence of str, optional
        Names of the tag columns, used to list the skipped tags; default their indices.

    Returns
    -------
    dict
        ``roc_auc_macro`` and ``pr_auc_macro`` (``None`` when no tag can be scored),
        ``n_tags_scored``, ``n_tags`` and ``skipped_tags``: the tags left out of both
        averages because every evaluated track has them or none has.
    """
    targets, scores, names = _tag_arrays(tag_targets, tag_scores, tag_names)
    scored = _scorable_tags(targets)
    skipped = [name for name, keep in zip(names, scored) if not keep]
    if not scored.any():
        roc_auc = pr_auc = None
    else:
        roc_auc = float(roc_auc_score(targets[:, scored], scores[:, scored], average="macro"))
        pr_auc = float(average_precision_score(targets[:, scored], scores[:, scored], average="macro"))
    return {
        "roc_auc_macro": roc_auc,
        "pr_auc_macro": pr_auc,
        "n_tags_scored": int(scored.sum()),
        "n_tags": int(targets.shape[1]),
        "skipped_tags": skipped,
    }


def tag_f1_macro(tag_targets: np.ndarray, tag_probabilities: np.ndarray, threshold: float = 0.5) -> float:
    """Macro-F1 over tags of thresholded probabilities, over the tags :func:`tagging_metrics` scores.

    A track is predicted to carry a tag when its probability is at least ``threshold``.
    """
    targets, probabilities, _ = _tag_arrays(tag_targets, tag_probabilities, None)
    scored = _scorable_tags(targets)
    if not scored.any():
        return 0.0
    predicted = probabilities[:, scored] >= threshold
    return float(f1_score(targets[:, scored], predicted, average="macro", zero_division=0))


def _tag_arrays(tag_targets, tag_scores, tag_names) -> tuple[np.ndarray, np.ndarray, list[str]]:
    targets = np.asarray(tag_targets).astype(bool)
    scores = np.asarray(tag_scores, dtype=np.float64)
    if targets.ndim != 2 or targets.shape != scores.shape:
        raise DataError(f"tag targets {targets.shape} and scores {scores.shape} must be equal (n, n_tags)")
    names = [str(i) for i in range(targets.shape[1])] if tag_names is None else list(tag_names)
    if len(names) != targets.shape[1]:
        raise DataError(f"{len(names)} tag names for {targets.shape[1]} tag columns")
    return targets, scores, names


def _scorable_tags(targets: np.ndarray) -> np.ndarray:
    """Tags with at least one positive and one negative track: (n_tags,) bool."""
    positives = targets.sum(axis=0)
    return (positives > 0) & (positives < targets.shape[0])
