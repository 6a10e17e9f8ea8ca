"""Stage-1 baselines of stages 3a/3b: the tag and label probes on standardised features, written to baselines.json."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from moodscape.artifacts import Workdir
from moodscape.training.probe import feature_matrices, stage1_label_baseline, stage1_tag_baseline


def feature_table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Features where ``f0`` carries a class, ``f1`` is noise and ``empty`` is all NaN."""
    rng = np.random.default_rng(seed)
    classes = rng.integers(0, 3, n)
    table = pd.DataFrame({"track_id": [f"t{i}" for i in range(n)], "f0": classes + rng.normal(0, 0.2, n),
                          "f1": rng.normal(0, 1, n), "empty": np.nan})
    table.loc[5, "f1"] = np.nan  # one missing value, filled with the training mean
    return table, classes


def test_feature_matrices_drop_empty_columns_and_fill_missing_values():
    table, _ = feature_table()
    train, test = feature_matrices(table, ["t5", "t6", "t7"], ["t8", "t5"])
    assert train.shape == (3, 2) and test.shape == (2, 2)
    assert np.isfinite(train).all() and np.isfinite(test).all()
    assert train[0, 1] == pytest.approx(np.mean(train[1:, 1]))


def test_stage1_baselines_learn_what_the_features_carry():
    table, classes = feature_table()
    ids = table["track_id"].tolist()
    tags = np.stack([classes == 0, classes == 2, np.arange(len(ids)) % 2 == 0], axis=1)
    tag = stage1_tag_baseline(table, ids[:80], tags[:80], ids[80:] + ["unknown"], np.vstack([tags[80:], tags[:1]]),
                              ["a", "b", "parity"])
    assert tag["roc_auc_macro"] > 0.75 and 0 <= tag["pr_auc_macro"] <= 1
    assert tag["n_tracks"] == {"train": 80, "test": 40} and tag["n_tracks_without_features"] == 1
    label = stage1_label_baseline(table, ids[:80], classes[:80], ids[80:], classes[80:], ["x", "y", "z"])
    assert label["accuracy"] > 0.9 and label["macro_f1"] > 0.9


def test_pretrain_and_train_write_their_baselines_beside_the_network(tmp_path):
    from moodscape.pipeline.network import _write_label_baselines, _write_tag_baselines

    workdir = Workdir(tmp_path)
    table, classes = feature_table()
    table.to_parquet(workdir.features, index=False)
    ids = table["track_id"].tolist()
    tags = np.stack([classes == 0, classes == 1], axis=1)
    parts = {"train": table.iloc[:80], "validation": table.iloc[80:90], "test": table.iloc[90:]}
    targets = {"train": tags[:80], "validation": tags[80:90], "test": tags[90:]}
    _write_tag_baselines(workdir, parts, targets, ["a", "b"], {"roc_auc_macro": 0.7, "pr_auc_macro": 0.5})
    splits = {t: "train" if i < 80 else "validation" if i < 90 else "test" for i, t in enumerate(ids)}
    _write_label_baselines(workdir, dict(zip(ids, classes.tolist())), splits, {"x": 0, "y": 1, "z": 2},
                           {"accuracy": 0.8, "macro_f1": 0.75})
    written = json.loads(workdir.baselines.read_text())
    assert written["tags"]["backbone"] == {"roc_auc_macro": 0.7, "pr_auc_macro": 0.5, "n_tracks": {"train": 80, "test": 30}}
    assert written["tags"]["stage1_features_logistic"]["n_tracks"] == {"train": 80, "test": 30}
    assert 0.5 < written["tags"]["stage1_features_logistic"]["roc_auc_macro"] <= 1
    assert written["labels"]["classifier"]["macro_f1"] == 0.75
    assert written["labels"]["stage1_features_logistic"]["n_tracks"] == {"train": 80, "test": 30}
    assert written["labels"]["stage1_features_logistic"]["accuracy"] > 0.9
