"""Baselines of the valence/arousal model: chosen on training songs only, scored like the model, on its folds."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from moodscape.evaluation import (
    archetype_mean_readout,
    av_baselines,
    av_table,
    best_single_feature_readout,
    feature_pair_accuracy,
    pairwise_accuracy,
    ridge_readout,
    score_av_predictions,
)

N_TRIPLETS = 30


def triplet_pairs(songids: list[str], values: np.ndarray, av_type: str) -> pd.DataFrame:
    """Every pair of each consecutive triplet of songs, judged from ``values``; one ``ab`` per ten triplets."""
    rows = []
    for start in range(0, len(songids), 3):
        for i, j in ((0, 1), (1, 2), (0, 2)):
            a, b = start + i, start + j
            higher = "a" if values[a] > values[b] else "b"
            if start % 30 == 0 and (i, j) == (0, 1):
                higher = "ab"
            rows.append({"songid_a": songids[a], "songid_b": songids[b], "higher_value": higher, "type": av_type})
    return pd.DataFrame(rows)


@pytest.fixture
def songs():
    """90 songs in 30 triplets, 3 folds of whole triplets, true (valence, arousal) and judged pairs of both."""
    rng = np.random.default_rng(0)
    n = 3 * N_TRIPLETS
    songids = [f"s{i:03d}" for i in range(n)]
    folds = np.repeat(np.arange(N_TRIPLETS) % 3, 3)
    truth = rng.uniform(0, 1, size=(n, 2))  # (valence, arousal)
    pairs = pd.concat([triplet_pairs(songids, truth[:, 0], "valence"), triplet_pairs(songids, truth[:, 1], "arousal")],
                      ignore_index=True)
    ground_truth = [("gt", av_type, pairs[pairs["type"] == av_type].drop(columns="type")) for av_type in ("arousal", "valence")]
    return {"songids": songids, "folds": folds, "truth": truth, "pairs": pairs, "ground_truth": ground_truth, "rng": rng}


def test_the_best_feature_is_chosen_on_the_training_songs_not_the_held_out_ones(songs):
    rng, truth, folds = songs["rng"], songs["truth"], songs["folds"]
    held_out = folds == 0
    noise = rng.normal(size=(len(truth), 4))
    # arousal: "train_best" orders the songs outside fold 0, "test_best" (negated) only the fold-0 songs
    train_best = np.where(held_out, noise[:, 0], truth[:, 1])
    test_best = np.where(held_out, -truth[:, 1], noise[:, 1])
    # valence: "falls" falls with valence everywhere: chosen with sign −
    features = np.column_stack([test_best, train_best, -3 * truth[:, 0] + 0.01 * noise[:, 2], noise[:, 3]])
    names = ["test_best", "train_best", "falls", "noise"]
    targets = truth.copy()
    targets[::7, 0] = np.nan  # unknown Spotify values do not stop the readout

    oof, chosen = best_single_feature_readout(features, names, songs["songids"], targets, songs["pairs"], folds)

    fold0 = {av_type: next(pick for pick in picks if pick["fold"] == 0) for av_type, picks in chosen.items()}
    assert (fold0["arousal"]["feature"], fold0["arousal"]["sign"]) == ("train_best", 1)
    assert fold0["arousal"]["train_accuracy"] == 100.0
    assert all((pick["feature"], pick["sign"]) == ("falls", -1) for pick in chosen["valence"])
    # the held-out songs of fold 0 are read from "train_best", which is noise there: near chance, not 100 %
    fold0_pairs = songs["pairs"][songs["pairs"]["songid_a"].isin(np.array(songs["songids"])[held_out])]
    fold0_arousal = fold0_pairs[fold0_pairs["type"] == "arousal"]
    accuracy = pairwise_accuracy(fold0_arousal, dict(zip(songs["songids"], oof[:, 1])))["accuracy"]
    assert accuracy < 80.0
    assert pairwise_accuracy(fold0_arousal, dict(zip(songs["songids"], -test_best)))["accuracy"] == 100.0
    # the readout is on the target scale: valence, read from a feature that is -3 × valence, is nearly exact
    assert np.allclose(oof[:, 0], truth[:, 0], atol=0.05)


def test_feature_pair_accuracy_is_the_musav_protocol_per_feature(songs):
    rng = songs["rng"]
    features = rng.normal(size=(len(songs["songids"]), 3))
    features[:3, 2] = 1.0  # a tie inside the first triplet: skipped, as the protocol skips equal predictions
    _, _, arousal = songs["ground_truth"][0]
    from moodscape.evaluation import _judged_pairs

    index_a, index_b, direction = _judged_pairs(songs["pairs"], songs["songids"], "arousal")
    accuracy = feature_pair_accuracy(features, index_a, index_b, direction)
    for column in range(3):
        for row, sign in ((0, 1), (1, -1)):
            expected = pairwise_accuracy(arousal, dict(zip(songs["songids"], sign * features[:, column])))["accuracy"]
            assert accuracy[row, column] == pytest.approx(expected)


def test_ridge_uses_only_the_training_folds(songs):
    rng, folds = songs["rng"], songs["folds"]
    features = rng.normal(size=(len(folds), 6))
    targets = np.column_stack([features @ [1, -1, 0, 0, 0, 0.5], features @ [0, 0, 2, 1, 0, 0]]) * 0.1 + 0.5
    targets += rng.normal(scale=0.01, size=targets.shape)

    oof, alpha = ridge_readout(features, targets, folds)

    assert np.corrcoef(oof[:, 1], targets[:, 1])[0, 1] > 0.95
    assert set(alpha) == {"valence", "arousal"} and all(len(values) == 3 for values in alpha.values())
    for fold in range(3):
        held_out = folds == fold
        permuted = targets.copy()
        permuted[held_out] = rng.permutation(targets[held_out])  # the held-out targets scrambled...
        permuted[held_out & (np.arange(len(folds)) % 5 == 0), 0] = np.nan
        again, _ = ridge_readout(features, permuted, folds)
        assert np.allclose(again[held_out], oof[held_out])  # ...leave the held-out predictions unchanged


def test_the_best_feature_uses_only_the_training_folds(songs):
    rng, folds, truth = songs["rng"], songs["folds"], songs["truth"]
    features = truth @ rng.normal(size=(2, 5)) + rng.normal(scale=0.3, size=(len(folds), 5))
    oof, chosen = best_single_feature_readout(features, list("abcde"), songs["songids"], truth, songs["pairs"], folds)
    held_out = folds == 1
    scrambled = truth.copy()
    scrambled[held_out] = rng.permutation(truth[held_out])
    held_out_ids = set(np.array(songs["songids"])[held_out])
    pairs = songs["pairs"].copy()
    among_held_out = pairs["songid_a"].isin(held_out_ids)
    pairs.loc[among_held_out, "higher_value"] = pairs.loc[among_held_out, "higher_value"].map({"a": "b", "b": "a", "ab": "ab"})
    again, chosen_again = best_single_feature_readout(features, list("abcde"), songs["songids"], scrambled, pairs, folds)
    assert np.allclose(again[held_out], oof[held_out])
    assert [c for c in chosen_again["arousal"] if c["fold"] == 1] == [c for c in chosen["arousal"] if c["fold"] == 1]


def test_the_spotify_and_model_rows_are_the_direct_scores_of_their_predictions(songs):
    rng, truth, folds = songs["rng"], songs["truth"], songs["folds"]
    targets = np.clip(truth + rng.normal(scale=0.1, size=truth.shape), 0, 1)
    targets[5, 1] = np.nan  # a song without a Spotify energy: its arousal pairs are not scored in the Spotify row
    model_oof = truth + rng.normal(scale=0.05, size=truth.shape)
    features = np.column_stack([truth, rng.normal(size=(len(truth), 3))])
    archetypes = np.where(truth[:, 1] > 0.5, "loud", "quiet")

    result = av_baselines(songs["songids"], features, ["v", "a", "x", "y", "z"], targets, songs["pairs"], folds,
                          songs["ground_truth"], model_oof, archetypes)

    predictors = result["predictors"]
    assert list(predictors) == ["model", "best_feature", "ridge", "spotify", "oracle"]
    spotify = score_av_predictions(av_table(songs["songids"], targets), songs["ground_truth"])
    assert {key: predictors["spotify"][key] for key in spotify} == spotify
    assert "held_out" not in predictors["spotify"]
    arousal_gt = next(row for row in predictors["spotify"]["pairwise"] if row["type"] == "arousal")
    assert arousal_gt["pairs_without_prediction"] == 2  # song 5 is in two pairs of its triplet
    truth_table = av_table(songs["songids"], targets)
    model = score_av_predictions(av_table(songs["songids"], model_oof), songs["ground_truth"], truth_table)
    assert {key: predictors["model"][key] for key in model} == model
    assert result["folds"] == dict(zip(songs["songids"], folds.tolist()))
    assert predictors["best_feature"]["feature"]["arousal"] == "a (+), 3 of 3 folds"
    for row in predictors.values():  # every row scores the same pairs, except where a prediction is missing
        assert [r["pairs"] + r["pairs_without_prediction"] for r in row["pairwise"]] == [len(t) for _, _, t in songs["ground_truth"]]
    json.dumps(result, allow_nan=False)


def test_the_archetype_oracle_predicts_the_training_mean_of_the_archetype():
    targets = np.array([[0.1, 0.2], [0.3, 0.4], [0.9, 0.8], [0.7, 0.6], [0.2, np.nan], [0.8, 0.9]])
    archetypes = ["calm", "calm", "loud", "loud", "calm", "bright"]
    folds = np.array([0, 1, 0, 1, 2, 2])
    oof = archetype_mean_readout(archetypes, targets, folds)
    assert oof[0] == pytest.approx([0.25, 0.4])  # song 0: calm songs of folds 1-2; an unknown arousal is left out
    assert oof[2] == pytest.approx([0.7, 0.6])
    assert oof[4] == pytest.approx([0.2, 0.3])  # calm songs of folds 0-1
    assert oof[5] == pytest.approx(np.nanmean(targets[:4], axis=0))  # no training song of "bright": the training mean


def test_songs_without_features_leave_the_baselines_and_the_model_row_to_the_intersection(songs, tmp_path):
    from moodscape.features import FEATURE_NAMES
    from moodscape.pipeline.parallel import MapOutcome
    from moodscape.pipeline.train_av import _av_baselines

    rng, songids = songs["rng"], songs["songids"]
    failed = songids[4]
    rows = pd.DataFrame(rng.normal(size=(len(songids), len(FEATURE_NAMES))), columns=FEATURE_NAMES).assign(track_id=songids)
    features = MapOutcome(rows=rows[rows["track_id"] != failed][["track_id", *FEATURE_NAMES]], failures=[(failed, "silent")])
    targets = pd.DataFrame(songs["truth"], index=songids, columns=["valence", "arousal"])
    model_oof = songs["truth"] + rng.normal(scale=0.05, size=songs["truth"].shape)

    from moodscape.config import Settings

    settings = Settings.model_validate({"jamendo": {"root": tmp_path}, "musav": {"root": tmp_path / "musav"}})
    section = _av_baselines(settings, songids, targets, songs["pairs"], songs["folds"], model_oof, features,
                            songs["ground_truth"])

    assert (section["n_songs"], section["n_songs_model"]) == (len(songids) - 1, len(songids))
    assert section["feature_failures"] == [{"songid": failed, "reason": "silent"}]
    assert failed not in section["folds"] and "oracle" not in section["predictors"]  # no planted truth configured
    assert section["musav_set"] == f"MusAV (Bogdanov et al., ISMIR 2022) at {tmp_path / 'musav'}"
    for row in section["predictors"].values():  # song 4's two pairs per type are left out of every row alike
        assert [r["pairs_without_prediction"] for r in row["pairwise"]] == [2, 2]
    kept = [songid != failed for songid in songids]
    model = score_av_predictions(av_table(np.array(songids)[kept], model_oof[kept]), songs["ground_truth"], targets)
    assert section["predictors"]["model"]["pairwise"] == model["pairwise"]


@pytest.mark.slow
def test_the_demo_baselines_are_scored_on_the_models_folds_and_pairs(demo_run, demo_corpus):
    from moodscape.config import Settings
    from moodscape.datasets import musav
    from moodscape.training.av import song_folds

    settings = Settings.load(demo_corpus / "moodscape.toml")
    av = json.loads((demo_run / "metrics" / "av.json").read_text())
    baselines = json.loads((demo_run / "metrics" / "baselines.json").read_text())["av"]
    songids = pd.read_parquet(demo_run / "musav_embeddings.parquet")["track_id"].tolist()
    gt = pd.concat([musav.read_ground_truth(demo_corpus / "musav" / "annotations" / f"annotations.{t}.all.agreement.gt")
                    for t in ("arousal", "valence")])
    folds = dict(zip(songids, song_folds(songids, gt, settings.av.folds, settings.seed).tolist()))
    assert baselines["folds"] == {songid: folds[songid] for songid in baselines["folds"]}
    assert baselines["n_songs"] == len(baselines["folds"]) == len(songids) - len(baselines["feature_failures"])
    features = pd.read_parquet(demo_run / "musav_features.parquet")
    assert set(features["track_id"]) >= set(baselines["folds"])
    predictors = baselines["predictors"]
    assert set(predictors) >= {"model", "best_feature", "ridge", "spotify", "oracle"}  # the demo has a truth.json
    if not baselines["feature_failures"]:  # on the same songs the model row is av.json's own
        assert predictors["model"]["pairwise"] == av["pairwise"]
    assert baselines["musav_set"] == av["musav_set"] == "synthetic demo MusAV (moodscape demo-data)"
    assert av["in_domain"] is True and av["baselines"]["pairwise_accuracy"]["ridge"] == predictors["ridge"]["pairwise_accuracy"]
    manifest = json.loads((demo_run / "manifest.json").read_text())
    assert {"metrics/baselines.json", "musav_features.parquet"} <= set(manifest["stages"]["train-av"]["outputs"])


def test_the_run_summary_shows_each_headline_beside_its_baselines(tmp_path):
    from moodscape import artifacts
    from moodscape.artifacts import Workdir
    from moodscape.pipeline.summary import run_summary

    workdir = Workdir(tmp_path)
    row = {"pairwise_accuracy": {"arousal": 85.0, "valence": 70.0},
           "held_out": {name: {"r2": 0.5, "pearson_r": 0.7} for name in ("valence", "arousal")}}
    av = {"pairwise_accuracy": {"arousal": 91.25, "valence": 80.0}, "musav_set": "synthetic demo MusAV (moodscape demo-data)",
          "held_out": {name: {"r2": 0.8, "pearson_r": 0.9} for name in ("valence", "arousal")}}
    artifacts.write_json(workdir.av_metrics, av)
    artifacts.write_json(workdir.classifier_metrics, {"accuracy": 0.9, "macro_f1": 0.85})
    artifacts.write_json(workdir.pretrain_metrics, {"test": {"roc_auc_macro": 0.75, "pr_auc_macro": 0.4}})
    artifacts.update_baselines(workdir, "av", {"predictors": {
        "best_feature": {**row, "feature": {"arousal": "rms_mean (+), 5 of 5 folds", "valence": "mode_major (−), 3 of 5 folds"}},
        "ridge": {**row, "pairwise_accuracy": {"arousal": 88.0, "valence": 75.0}},
        "spotify": {"pairwise_accuracy": {"arousal": 80.125, "valence": None}}}})
    artifacts.update_baselines(workdir, "labels", {"stage1_features_logistic": {"accuracy": 0.95, "macro_f1": 0.94}})
    artifacts.update_baselines(workdir, "tags", {"stage1_features_logistic": None})

    summary = run_summary(workdir)

    assert summary["arousal (held out)"] == ("MusAV pairwise accuracy 91.2 % (best feature rms_mean 85.0 %, ridge 88.0 %, "
                                             "Spotify targets 80.1 %); R² 0.800 (best feature rms_mean 0.500, ridge 0.500)")
    assert summary["valence (held out)"].startswith("MusAV pairwise accuracy 80.0 % (best feature mode_major 70.0 %")
    assert "Spotify targets n/a" in summary["valence (held out)"]
    assert summary["classifier (test)"] == ("accuracy 0.900, macro-F1 0.850 "
                                            "(logistic on stage-1 features: accuracy 0.950, macro-F1 0.940)")
    assert summary["backbone tags (test)"] == "ROC-AUC macro 0.750, PR-AUC macro 0.400"  # no stage-1 probe recorded
    assert summary["valence/arousal data"].startswith("synthetic demo MusAV (moodscape demo-data): out-of-fold, but in-domain")


def test_the_run_summary_of_a_contrastive_backbone_says_it_was_trained_without_tags(tmp_path):
    from moodscape import artifacts
    from moodscape.artifacts import Workdir
    from moodscape.pipeline.summary import run_summary

    workdir = Workdir(tmp_path)
    artifacts.write_json(workdir.pretrain_metrics, {"objective": "contrastive", "reason": "auto: none of the 9 tracks carries a tag",
                                                    "test": {"embedding_retrieval_top1": 0.625}})
    artifacts.update_baselines(workdir, "tags", {"backbone": None, "note": "pretrained without tags"})

    summary = run_summary(workdir)

    assert "backbone tags (test)" not in summary
    assert summary["backbone (test)"] == ("contrastive, without tags (auto: none of the 9 tracks carries a tag): each crop's "
                                          "partner is its nearest crop for 62.5 % of crops")
