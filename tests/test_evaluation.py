"""Shared metrics against values computed by hand on tiny fixtures."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from moodscape.errors import DataError
from moodscape.evaluation import classification_metrics, tag_f1_macro, tagging_metrics

Y_TRUE = [0, 0, 1, 1, 2, 2]
Y_PRED = [0, 1, 1, 1, 2, 0]
# Per class: 0 has tp 1, fp 1, fn 1; 1 has tp 2, fp 1, fn 0; 2 has tp 1, fp 0, fn 1.
F1 = {"calm": 0.5, "dark": 0.8, "epic": 2 / 3}


def test_classification_metrics_match_hand_counts():
    metrics = classification_metrics(Y_TRUE, Y_PRED, ["calm", "dark", "epic"])
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["macro_f1"] == pytest.approx(np.mean(list(F1.values())))
    assert metrics["per_class"]["calm"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert metrics["per_class"]["dark"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert metrics["per_class"]["epic"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert metrics["confusion_matrix"] == {
        "labels": ["calm", "dark", "epic"],
        "matrix": [[1, 1, 0], [0, 2, 0], [1, 0, 1]],  # rows true, columns predicted
    }
    assert metrics["n_tracks"] == 6
    json.dumps(metrics, allow_nan=False)


def test_macro_f1_counts_a_class_absent_from_truth_and_predictions_as_zero():
    metrics = classification_metrics(Y_TRUE, Y_PRED, ["calm", "dark", "epic", "odd"])
    assert metrics["per_class"]["odd"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics["macro_f1"] == pytest.approx(sum(F1.values()) / 4)


def test_classification_metrics_refuse_unequal_lengths():
    with pytest.raises(DataError, match="equal-length"):
        classification_metrics([0, 1], [0], ["a", "b"])


# tag a: positives score 0.9, 0.4; negatives 0.1, 0.6 -> 3 of 4 pairs ranked right, AUC 0.75;
#        ranking 0.9(+) 0.6(-) 0.4(+) 0.1(-) -> AP = (1/1 + 2/3) / 2.
# tag b: perfectly ranked -> AUC 1, AP 1.   tag c: no positive, tag d: all positive -> skipped.
TAG_TARGETS = np.array([[1, 0, 0, 1], [0, 1, 0, 1], [1, 1, 0, 1], [0, 0, 0, 1]], dtype=bool)
TAG_SCORES = np.array([[0.9, 0.2, 0.5, 0.5], [0.1, 0.8, 0.5, 0.5], [0.4, 0.7, 0.5, 0.5], [0.6, 0.3, 0.5, 0.5]])


def test_tagging_aucs_average_over_tags_with_both_classes_only():
    metrics = tagging_metrics(TAG_TARGETS, TAG_SCORES, ["a", "b", "c", "d"])
    assert metrics["roc_auc_macro"] == pytest.approx((0.75 + 1.0) / 2)
    assert metrics["pr_auc_macro"] == pytest.approx(((1 + 2 / 3) / 2 + 1.0) / 2)
    assert metrics["n_tags_scored"] == 2 and metrics["n_tags"] == 4
    assert metrics["skipped_tags"] == ["c", "d"]


def test_tagging_aucs_equal_sklearn_macro_when_every_tag_has_both_classes():
    rng = np.random.default_rng(0)
    targets = rng.random((50, 6)) < 0.3
    scores = rng.random((50, 6)) + targets * 0.3
    metrics = tagging_metrics(targets, scores)
    assert metrics["skipped_tags"] == []
    assert metrics["roc_auc_macro"] == pytest.approx(roc_auc_score(targets, scores, average="macro"))
    assert metrics["pr_auc_macro"] == pytest.approx(average_precision_score(targets, scores, average="macro"))


def test_tagging_metrics_without_a_scorable_tag_give_none():
    metrics = tagging_metrics(np.zeros((3, 2), bool), np.ones((3, 2)))
    assert metrics["roc_auc_macro"] is None and metrics["pr_auc_macro"] is None
    assert metrics["skipped_tags"] == ["0", "1"]


def test_tag_f1_macro_thresholds_probabilities_over_the_scored_tags():
    # tag a predicted [1, 0, 0, 1] vs [1, 0, 1, 0]: F1 0.5; tag b predicted exactly: F1 1.
    assert tag_f1_macro(TAG_TARGETS, TAG_SCORES) == pytest.approx(0.75)


def test_tagging_metrics_refuse_mismatched_shapes():
    with pytest.raises(DataError, match="equal"):
        tagging_metrics(TAG_TARGETS, TAG_SCORES[:, :3])
