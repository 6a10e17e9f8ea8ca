"""Linear probes on frozen embeddings: how much a network's 512-d space already knows.

The ablation compares networks by fitting the same probe on each one's embeddings:
logistic regression on standardised embeddings of the training split, scored on the
test split. Tags use one binary probe per tag (one-vs-rest), the protocol of linear
evaluation on MTG-Jamendo.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
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
