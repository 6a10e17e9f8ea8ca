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

from moodscape.artifacts import AV_COLUMNS  # column order of every (n, 2) array: 0 valence, 1 arousal
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


# --------------------------------------------------------------------------- baselines
#
# Every quality number is shown beside baselines scored on the same held-out items. The
# valence/arousal baselines below are out-of-fold readouts on the model's own folds; they
# are scored by :func:`score_av_predictions`, the one function that scores any table of
# (valence, arousal) predictions with the MusAV protocol and R² / Pearson r.

PAIR_DIRECTIONS = {"a": 1, "b": -1}
"""Sign of ``x_a - x_b`` that orders a judged pair correctly; other answers are not judged."""
RIDGE_ALPHAS = tuple(float(alpha) for alpha in np.logspace(-3, 4, 15))
"""Penalties :func:`ridge_readout` chooses from, by leave-one-out CV on the training songs."""


def musav_ground_truth(annotations_dir: str | Path) -> list[tuple[str, str, pd.DataFrame]]:
    """Read every MusAV ground-truth file in a folder.

    Parameters
    ----------
    annotations_dir : str or Path
        The dataset's ``annotations`` folder.

    Returns
    -------
    list of (str, str, pandas.DataFrame)
        ``(subset, type, pairs)`` in :func:`moodscape.datasets.musav.ground_truth_files`
        order, ``subset`` e.g. ``"gt"`` or ``"ismir2022/gt.ct.fa"``.
    """
    return [(subset, av_type, musav.read_ground_truth(path))
            for subset, av_type, path in musav.ground_truth_files(annotations_dir)]


def ground_truth_training_pairs(ground_truth: Sequence[tuple[str, str, pd.DataFrame]], annotations_dir: str | Path) -> pd.DataFrame:
    """The pairs of the ``gt`` files of both types, with a ``type`` column: those the ranking loss trains on.

    Parameters
    ----------
    ground_truth : sequence of (str, str, pandas.DataFrame)
        As :func:`musav_ground_truth` returns it.
    annotations_dir : str or Path
        Where the files were read, for the error message.

    Raises
    ------
    DataError
        When there is no ``gt`` file.
    """
    tables = [truth.assign(type=av_type) for subset, av_type, truth in ground_truth if subset == "gt"]
    if not tables:
        raise DataError(f"{annotations_dir}: no ground-truth file annotations.{{arousal,valence}}.all.agreement.gt")
    return pd.concat(tables, ignore_index=True)


def score_av_predictions(
    predictions: pd.DataFrame,
    ground_truth: Sequence[tuple[str, str, pd.DataFrame]],
    targets: pd.DataFrame | None = None,
) -> dict:
    """Score one table of (valence, arousal) predictions: MusAV pairwise accuracy, R², Pearson r.

    Parameters
    ----------
    predictions : pandas.DataFrame [shape=(n_songs, 2)]
        Index ``songid``, columns ``valence`` and ``arousal``; NaN where the song has no
        prediction.
    ground_truth : sequence of (str, str, pandas.DataFrame)
        As :func:`musav_ground_truth` returns it. A pair is scored when both its songs
        have a finite prediction of its type; the others are counted in
        ``pairs_without_prediction``.
    targets : pandas.DataFrame [shape=(n_songs, 2)], optional
        Absolute targets (Spotify valence and energy) of the same songs; ``None`` leaves
        out ``held_out`` (e.g. when the predictions are the targets themselves).

    Returns
    -------
    dict
        ``n_songs`` (songs with a finite prediction of either type); ``held_out``:
        ``{dimension: regression_metrics}`` when ``targets`` are given;
        ``pairwise_accuracy``: ``{type: accuracy}`` of the ``gt`` files; ``pairwise``:
        one row per file, ``file`` (the subset), ``type``, the counts and ``accuracy`` of
        :func:`pairwise_accuracy`, ``pairs`` (pairs scored) and
        ``pairs_without_prediction``.
    """
    scored_songs = predictions[list(AV_COLUMNS)].notna().any(axis=1)
    result: dict = {"n_songs": int(scored_songs.sum())}
    if targets is not None:
        aligned = targets.reindex(predictions.index)
        result["held_out"] = {name: regression_metrics(aligned[name].to_numpy(float), predictions[name].to_numpy(float))
                              for name in AV_COLUMNS}
    rows = []
    for subset, av_type, truth in ground_truth:
        values = predictions[av_type].dropna()
        scored = truth["songid_a"].isin(values.index) & truth["songid_b"].isin(values.index)
        counts = pairwise_accuracy(truth[scored], values.to_dict(), source=f"ground truth {subset} ({av_type})")
        rows.append({"file": subset, "type": av_type, **counts, "pairs": int(scored.sum()),
                     "pairs_without_prediction": int((~scored).sum())})
    result["pairwise_accuracy"] = {row["type"]: row["accuracy"] for row in rows if row["file"] == "gt"}
    result["pairwise"] = rows
    return result


def av_table(songids: Sequence[str], values: np.ndarray) -> pd.DataFrame:
    """(valence, arousal) values ``(n, 2)`` as a table indexed by ``songid``."""
    return pd.DataFrame(np.asarray(values, np.float64), index=pd.Index(list(songids), name="songid"),
                        columns=list(AV_COLUMNS))


def _judged_pairs(pairs: pd.DataFrame, songids: Sequence[str], av_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows ``a``, ``b`` and direction (+1: ``a`` higher, -1: ``b``) of the judged ``av_type`` pairs among ``songids``."""
    songs = pd.Index(list(songids))
    chosen = pairs[(pairs["type"] == av_type) & pairs["higher_value"].isin(PAIR_DIRECTIONS.keys())]
    index_a, index_b = songs.get_indexer(chosen["songid_a"]), songs.get_indexer(chosen["songid_b"])
    known = (index_a >= 0) & (index_b >= 0)
    direction = chosen["higher_value"].map(PAIR_DIRECTIONS).to_numpy(np.int64)
    return index_a[known], index_b[known], direction[known]


def feature_pair_accuracy(features: np.ndarray, index_a: np.ndarray, index_b: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """MusAV pairwise accuracy (%) of every feature column read as a prediction, and of its negation.

    Parameters
    ----------
    features : np.ndarray [shape=(n_songs, n_features)]
    index_a, index_b : np.ndarray [shape=(n_pairs,), dtype=int]
        Rows of the two songs of each judged pair.
    direction : np.ndarray [shape=(n_pairs,)]
        +1 when ``a`` was judged higher, -1 when ``b`` was.

    Returns
    -------
    np.ndarray [shape=(2, n_features)]
        Row 0: the feature as it is; row 1: its negation. Pairs with equal values are
        skipped, as in :func:`pairwise_accuracy`; NaN where no pair is counted.
    """
    agreement = np.sign(features[index_a] - features[index_b]) * direction[:, None]  # (n_pairs, n_features)
    correct, incorrect = (agreement > 0).sum(axis=0), (agreement < 0).sum(axis=0)
    judged = correct + incorrect
    with np.errstate(invalid="ignore", divide="ignore"):
        return 100.0 * np.stack([correct, incorrect]) / judged


def best_single_feature_readout(
    features: np.ndarray,
    feature_names: Sequence[str],
    songids: Sequence[str],
    targets: np.ndarray,
    pairs: pd.DataFrame,
    folds: np.ndarray,
) -> tuple[np.ndarray, dict[str, list[dict]]]:
    """Out-of-fold predictions of the one stage-1 feature (and sign) that best orders the training pairs.

    For each test fold ``f`` and dimension, the feature and sign with the highest MusAV
    pairwise accuracy on the judged pairs among the training songs (every fold but
    ``f``) is chosen; its signed value ``s`` is mapped to the target scale by least
    squares on the training songs' known targets, ``ŷ = ȳ + β (s - s̄)``, with ``β``
    floored at a tiny positive value so the readout keeps the chosen order (``β = 1``
    when the training songs have fewer than two known targets). Held-out songs never
    enter the choice or the fit.

    Parameters
    ----------
    features : np.ndarray [shape=(n_songs, n_features)]
        Stage-1 features, finite.
    feature_names : sequence of str [shape=(n_features,)]
    songids : sequence of str [shape=(n_songs,)]
    targets : np.ndarray [shape=(n_songs, 2)]
        (valence, arousal), NaN where unknown.
    pairs : pandas.DataFrame
        Judged pairs: ``songid_a``, ``songid_b``, ``type``, ``higher_value`` (the ``gt``
        pairs the model trains on).
    folds : np.ndarray [shape=(n_songs,), dtype=int]
        Test fold of each song (the model's folds).

    Returns
    -------
    oof : np.ndarray [shape=(n_songs, 2)]
        Out-of-fold (valence, arousal).
    chosen : dict
        ``{dimension: [{"fold", "feature", "sign", "train_accuracy", "train_pairs"}, ...]}``,
        one entry per fold.
    """
    features, targets, folds = _baseline_arrays(features, targets, folds, songids)
    oof = np.full(targets.shape, np.nan)
    chosen: dict[str, list[dict]] = {name: [] for name in AV_COLUMNS}
    for column, av_type in enumerate(AV_COLUMNS):
        index_a, index_b, direction = _judged_pairs(pairs, songids, av_type)
        for fold in np.unique(folds):
            train = folds != fold
            inside = train[index_a] & train[index_b]
            accuracy = feature_pair_accuracy(features, index_a[inside], index_b[inside], direction[inside])
            if np.isnan(accuracy).all():
                raise DataError(f"fold {fold}: the training songs have no judged {av_type} pair to choose a feature with")
            negated, feature = np.unravel_index(np.nanargmax(accuracy), accuracy.shape)
            sign = -1.0 if negated else 1.0
            signed = sign * features[:, feature]
            oof[folds == fold, column] = _least_squares_readout(signed[train], targets[train, column], signed[folds == fold])
            chosen[av_type].append({"fold": int(fold), "feature": str(feature_names[feature]), "sign": int(sign),
                                    "train_accuracy": float(accuracy[negated, feature]), "train_pairs": int(inside.sum())})
    return oof, chosen


def _least_squares_readout(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
    """``ȳ + β (x - x̄)`` with ``β`` the least-squares slope on the known training targets, floored above 0."""
    known = np.isfinite(y_train)
    if known.sum() < 2:
        return x_test - x_train.mean()
    x, y = x_train[known], y_train[known]
    variance = np.var(x)
    slope = np.cov(x, y, bias=True)[0, 1] / variance if variance > 0 else 0.0
    return y.mean() + max(slope, 1e-9) * (x_test - x.mean())


def ridge_readout(
    features: np.ndarray,
    targets: np.ndarray,
    folds: np.ndarray,
    alphas: Sequence[float] = RIDGE_ALPHAS,
) -> tuple[np.ndarray, dict[str, list[float]]]:
    """Out-of-fold predictions of ridge regression on all standardised stage-1 features.

    For each test fold and dimension, ``StandardScaler`` + ``RidgeCV`` is fitted on the
    training songs (every other fold) with a known target; ``RidgeCV`` picks the penalty
    from ``alphas`` by efficient leave-one-out CV on those songs only.

    Parameters
    ----------
    features : np.ndarray [shape=(n_songs, n_features)]
    targets : np.ndarray [shape=(n_songs, 2)]
        (valence, arousal), NaN where unknown.
    folds : np.ndarray [shape=(n_songs,), dtype=int]
    alphas : sequence of float

    Returns
    -------
    oof : np.ndarray [shape=(n_songs, 2)]
        Out-of-fold (valence, arousal); NaN for a fold whose training songs have fewer
        than two known targets.
    alpha : dict
        ``{dimension: [chosen penalty per fold]}`` (``None`` where nothing was fitted).
    """
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, targets, folds = _baseline_arrays(features, targets, folds)
    oof = np.full(targets.shape, np.nan)
    chosen: dict[str, list[float | None]] = {name: [] for name in AV_COLUMNS}
    for column, av_type in enumerate(AV_COLUMNS):
        for fold in np.unique(folds):
            train = (folds != fold) & np.isfinite(targets[:, column])
            if train.sum() < 2:
                chosen[av_type].append(None)
                continue
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=list(alphas)))
            model.fit(features[train], targets[train, column])
            oof[folds == fold, column] = model.predict(features[folds == fold])
            chosen[av_type].append(float(model[-1].alpha_))
    return oof, chosen


def archetype_mean_readout(archetypes: Sequence[str], targets: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Out-of-fold oracle: each held-out song gets the mean training target of its planted archetype.

    Parameters
    ----------
    archetypes : sequence of str [shape=(n_songs,)]
        The planted archetype of each song (demo corpus only: ``truth.json``).
    targets : np.ndarray [shape=(n_songs, 2)]
        (valence, arousal), NaN where unknown.
    folds : np.ndarray [shape=(n_songs,), dtype=int]

    Returns
    -------
    np.ndarray [shape=(n_songs, 2)]
        Out-of-fold (valence, arousal); a song whose archetype has no training song with
        a known target gets the mean of all training songs.
    """
    targets = np.asarray(targets, np.float64)
    archetypes = pd.Series(list(archetypes), dtype=object)
    folds = np.asarray(folds)
    oof = np.full(targets.shape, np.nan)
    for fold in np.unique(folds):
        train, test = folds != fold, folds == fold
        table = pd.DataFrame(targets[train], columns=list(AV_COLUMNS)).assign(archetype=archetypes[train].to_numpy())
        means = table.groupby("archetype").mean()
        fallback = table[list(AV_COLUMNS)].mean()
        predicted = means.reindex(archetypes[test].to_numpy()).fillna(fallback)
        oof[test] = predicted[list(AV_COLUMNS)].to_numpy()
    return oof


def _baseline_arrays(features, targets, folds, songids=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    features, targets, folds = np.asarray(features, np.float64), np.asarray(targets, np.float64), np.asarray(folds)
    n = len(features) if songids is None else len(songids)
    if features.ndim != 2 or len(features) != n or targets.shape != (n, len(AV_COLUMNS)) or folds.shape != (n,):
        raise DataError(f"baselines need features (n, d), targets (n, 2) and folds (n,) for the same {n} songs, "
                        f"got {features.shape}, {targets.shape}, {folds.shape}")
    if not np.isfinite(features).all():
        raise DataError("stage-1 features must be finite")
    return features, targets, folds


AV_BASELINE_NAMES = {
    "model": "the model (out-of-fold)",
    "best_feature": "best single stage-1 feature",
    "ridge": "ridge on stage-1 features",
    "spotify": "Spotify-style targets",
    "oracle": "planted-archetype mean (oracle)",
}
"""Key and display name of each row of :func:`av_baselines`, in display order."""


def av_baselines(
    songids: Sequence[str],
    features: np.ndarray,
    feature_names: Sequence[str],
    targets: np.ndarray,
    pairs: pd.DataFrame,
    folds: np.ndarray,
    ground_truth: Sequence[tuple[str, str, pd.DataFrame]],
    model_oof: np.ndarray,
    archetypes: Sequence[str] | None = None,
) -> dict:
    """Score the model's out-of-fold (valence, arousal) beside its baselines, on the same songs and pairs.

    Parameters
    ----------
    songids : sequence of str [shape=(n_songs,)]
        The songs scored: those with both a model prediction and stage-1 features.
    features : np.ndarray [shape=(n_songs, n_features)]
        Their stage-1 features.
    feature_names : sequence of str [shape=(n_features,)]
    targets : np.ndarray [shape=(n_songs, 2)]
        Spotify-style (valence, arousal), NaN where unknown.
    pairs : pandas.DataFrame
        The judged pairs the model trains on (``songid_a``, ``songid_b``, ``type``,
        ``higher_value``).
    folds : np.ndarray [shape=(n_songs,), dtype=int]
        The model's test fold of each song: every baseline is fitted, for fold ``f``, on
        the songs of the other folds only.
    ground_truth : sequence of (str, str, pandas.DataFrame)
        The files to score on (:func:`musav_ground_truth`).
    model_oof : np.ndarray [shape=(n_songs, 2)]
        The model's out-of-fold (valence, arousal).
    archetypes : sequence of str [shape=(n_songs,)], optional
        Planted archetype of each song (demo only); adds the ``oracle`` row.

    Returns
    -------
    dict
        ``n_songs``, ``folds`` (``{songid: fold}``) and ``predictors``:
        ``{key: {"name", **score_av_predictions(...), ...}}`` for the keys of
        :data:`AV_BASELINE_NAMES` (``oracle`` only with ``archetypes``).
        ``best_feature`` adds ``chosen`` (per dimension, per fold: feature, sign,
        training accuracy) and ``feature`` (per dimension, the most chosen
        ``"name (+)"``); ``ridge`` adds ``alpha``; ``spotify`` has no ``held_out``
        (its predictions are the targets).
    """
    songids = list(songids)
    truth = av_table(songids, targets)
    best, chosen = best_single_feature_readout(features, feature_names, songids, targets, pairs, folds)
    ridge, alpha = ridge_readout(features, targets, folds)
    readouts = {"model": (model_oof, {}),
                "best_feature": (best, {"feature": _most_chosen(chosen), "chosen": chosen}),
                "ridge": (ridge, {"alpha": alpha}),
                "spotify": (targets, {})}
    if archetypes is not None:
        readouts["oracle"] = (archetype_mean_readout(archetypes, targets, folds), {})
    predictors = {}
    for key, (values, details) in readouts.items():
        scores = score_av_predictions(av_table(songids, values), ground_truth, None if key == "spotify" else truth)
        predictors[key] = {"name": AV_BASELINE_NAMES[key], **scores, **details}
    return {"n_songs": len(songids), "folds": dict(zip(songids, map(int, folds))), "predictors": predictors}


def _most_chosen(chosen: Mapping[str, list[dict]]) -> dict[str, str]:
    """Per dimension, the feature and sign chosen in most folds, e.g. ``"rms_mean (+), 5 of 5 folds"``."""
    summary = {}
    for av_type, per_fold in chosen.items():
        picks = pd.Series([f"{pick['feature']} ({'+' if pick['sign'] > 0 else '−'})" for pick in per_fold])
        counts = picks.value_counts(sort=True)
        summary[av_type] = f"{counts.index[0]}, {counts.iloc[0]} of {len(picks)} folds"
    return summary
