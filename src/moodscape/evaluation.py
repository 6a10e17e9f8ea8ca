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

- :func:`pairwise_accuracy` and :func:`evaluate_musav` score valence/arousal predictions
  with the MusAV protocol (Bogdanov et al., "MusAV: A dataset of relative arousal-valence
  annotations for validation of audio models", ISMIR 2022), exactly as the dataset's own
  ``scripts/evaluate.py`` does; :func:`regression_metrics` scores absolute predictions
  (e.g. against Spotify's valence and energy) with R², Pearson's r and RMSE.

Each further protocol is one more function here. This module imports no torch: light
stages use it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import pearsonr
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    confusion_matrix,
    f1_score,
    mean_squared_error,
    precision_recall_fscore_support,
    r2_score,
    roc_auc_score,
)

from moodscape.datasets import musav
from moodscape.errors import DataError

PAIR_COUNTS = ("correct", "incorrect", "skipped_ab", "skipped_equal", "skipped_other")


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


def pairwise_accuracy(
    ground_truth: pd.DataFrame,
    predictions: Mapping[str, float],
    *,
    source: str = "",
) -> dict:
    """Percentage of ground-truth pairs whose order the predictions reproduce (MusAV protocol).

    The loop of MusAV's ``scripts/evaluate.py`` (Bogdanov et al., ISMIR 2022) for one
    model, pair by pair in file order:

    1. ``higher_value == "ab"`` (annotators found both songs equal): ``skipped_ab``;
       no prediction is looked up.
    2. Equal predictions for both songs: ``skipped_equal``.
    3. ``higher_value == "a"``: correct when ``pred[a] > pred[b]``, else incorrect;
       ``"b"``: correct when ``pred[a] < pred[b]``, else incorrect.
    4. Any other ``higher_value`` (e.g. ``"undefined"``) counts in neither accuracy term,
       as in the original; it is tallied in ``skipped_other`` so no pair goes unreported.

    Parameters
    ----------
    ground_truth : pandas.DataFrame
        Pairs as :func:`moodscape.datasets.musav.read_ground_truth` returns them (columns
        ``songid_a``, ``songid_b``, ``higher_value``).
    predictions : mapping of str to float
        One model's predicted arousal (or valence) per song id.
    source : str, optional
        Where ground truth and predictions come from (file, model), for error messages.

    Returns
    -------
    dict
        ``correct``, ``incorrect``, ``skipped_ab``, ``skipped_equal``, ``skipped_other``
        (int) and ``accuracy`` = ``100 * correct / (correct + incorrect)``, in percent as
        the dataset reports it (it prints ``%.02f``); ``None`` when no pair was counted
        (the original would divide by zero).

    Raises
    ------
    DataError
        If a song of a pair other than ``ab`` has no prediction (the original raises
        ``KeyError``) or a non-finite one (the original would count it nowhere).

    Examples
    --------
    >>> pairs = pd.DataFrame({"songid_a": ["x", "y"], "songid_b": ["y", "z"], "higher_value": ["a", "b"]})
    >>> pairwise_accuracy(pairs, {"x": 0.9, "y": 0.5, "z": 0.1})["accuracy"]
    50.0
    """
    counts = dict.fromkeys(PAIR_COUNTS, 0)
    for songid_a, songid_b, higher_value in ground_truth[["songid_a", "songid_b", "higher_value"]].itertuples(index=False):
        if higher_value == "ab":
            counts["skipped_ab"] += 1
            continue
        value_a, value_b = (_prediction(predictions, songid, source) for songid in (songid_a, songid_b))
        counts[_pair_outcome(higher_value, value_a, value_b)] += 1
    judged = counts["correct"] + counts["incorrect"]
    return {**counts, "accuracy": 100.0 * counts["correct"] / judged if judged else None}


def _prediction(predictions: Mapping[str, float], songid: str, source: str) -> float:
    """The finite prediction of a song, or a DataError naming it and ``source``."""
    where = f" ({source})" if source else ""
    if songid not in predictions:
        raise DataError(f"no prediction for song {songid}{where}")
    value = float(predictions[songid])
    if not math.isfinite(value):
        raise DataError(f"prediction for song {songid} is {value}{where}")
    return value


def _pair_outcome(higher_value: str, value_a: float, value_b: float) -> str:
    """Which count of :data:`PAIR_COUNTS` a non-``ab`` pair adds to, in the original's order."""
    if value_a == value_b:
        return "skipped_equal"
    if higher_value not in ("a", "b"):
        return "skipped_other"
    return "correct" if (value_a > value_b) == (higher_value == "a") else "incorrect"


def evaluate_musav(predictions: pd.DataFrame, annotations_dir: str | Path) -> list[dict]:
    """Score every model on every MusAV ground-truth file, as ``scripts/evaluate.py`` would.

    Parameters
    ----------
    predictions : pandas.DataFrame
        Columns ``songid``, ``model``, ``arousal_mean``, ``valence_mean``, as
        :func:`moodscape.datasets.musav.read_predictions` returns them.
    annotations_dir : str or Path
        The dataset's ``annotations`` folder; the files of
        :func:`moodscape.datasets.musav.ground_truth_files` are scored (``gt``, ``gt.fa``,
        ``gt.ct``, ``gt.ct.fa`` × arousal, valence, and the same under ``ismir2022/``).

    Returns
    -------
    list of dict
        One per file (in :func:`~moodscape.datasets.musav.ground_truth_files` order) and
        model (sorted): ``file`` (posix path relative to ``annotations_dir``), ``model``,
        ``type`` (``arousal`` scores ``arousal_mean``, ``valence`` ``valence_mean``) and
        the counts and ``accuracy`` of :func:`pairwise_accuracy`.

    Raises
    ------
    DataError
        If no ground-truth file is found, there are no predictions, or a song of a scored
        pair has no prediction (the message names song, file and model).
    """
    annotations_dir = Path(annotations_dir)
    found = musav.ground_truth_files(annotations_dir)
    if not found:
        raise DataError(f"{annotations_dir}: no MusAV ground-truth file found")
    by_model = _predictions_by_model(predictions)
    rows = []
    for _, av_type, path in found:
        ground_truth = musav.read_ground_truth(path)
        file = path.relative_to(annotations_dir).as_posix()
        for model, values in by_model.items():
            counts = pairwise_accuracy(ground_truth, values[av_type], source=f"file {file}, model {model}")
            rows.append({"file": file, "model": model, "type": av_type, **counts})
    return rows


def _predictions_by_model(predictions: pd.DataFrame) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {"arousal": {songid: value}, "valence": {...}}}``, models sorted."""
    missing = [column for column in musav.PREDICTION_COLUMNS if column not in predictions.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {', '.join(missing)}")
    if predictions.empty:
        raise DataError("no predictions to evaluate")
    return {
        model: {av_type: dict(zip(rows["songid"], rows[f"{av_type}_mean"])) for av_type in musav.AV_TYPES}
        for model, rows in sorted(predictions.groupby("model", sort=False), key=lambda item: item[0])
    }


def regression_metrics(y_true: Sequence[float] | np.ndarray, y_pred: Sequence[float] | np.ndarray) -> dict:
    """R², Pearson's r and RMSE of absolute predictions, over the pairs without NaN.

    Parameters
    ----------
    y_true, y_pred : array-like of float [shape=(n,)]
        Targets (e.g. Spotify valence) and predictions; a pair where either is NaN is
        left out.

    Returns
    -------
    dict
        ``r2`` (:func:`sklearn.metrics.r2_score`), ``pearson_r``
        (:func:`scipy.stats.pearsonr` statistic; ``None`` when either side is constant),
        ``rmse`` (square root of :func:`sklearn.metrics.mean_squared_error`) and ``n``,
        the number of pairs used. With fewer than 2 pairs the three metrics are ``None``.

    Raises
    ------
    DataError
        If the inputs are not equal-length vectors.

    Examples
    --------
    >>> metrics = regression_metrics([0.2, 0.4, float("nan")], [0.3, 0.5, 0.9])
    >>> round(metrics["rmse"], 6), metrics["n"]
    (0.1, 2)
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise DataError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must be equal-length vectors")
    kept = ~(np.isnan(y_true) | np.isnan(y_pred))
    y_true, y_pred = y_true[kept], y_pred[kept]
    if len(y_true) < 2:
        return {"r2": None, "pearson_r": None, "rmse": None, "n": int(len(y_true))}
    constant = np.ptp(y_true) == 0 or np.ptp(y_pred) == 0
    return {
        "r2": float(r2_score(y_true, y_pred)),
        "pearson_r": None if constant else float(pearsonr(y_true, y_pred).statistic),
        "rmse": math.sqrt(mean_squared_error(y_true, y_pred)),
        "n": int(len(y_true)),
    }
