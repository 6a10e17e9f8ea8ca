"""Stage 4: valence/arousal from embeddings recovers a planted order, folds keep triplets whole, checkpoints load."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from pydantic import ValidationError
import pytest
import torch
from scipy.stats import spearmanr

from moodscape.errors import ArtifactError, DataError
from moodscape.evaluation import best_single_feature_readout, pairwise_accuracy
from moodscape.models.av import AVEnsemble, av_checkpoint, load_av_regressor
from moodscape.training.av import (
    AVConfig,
    cross_fit_av,
    fit_av,
    masked_mse,
    pair_set,
    ranknet_loss,
    song_folds,
)
from moodscape.models.checkpoint import save_checkpoint

N_TRIPLETS, N_SINGLES, DIM = 80, 3, 16
AB_MARGIN = 0.03
FAST = {"hidden": 32, "lr": 1e-2, "epochs": 150, "patience": 20, "batch_size": 32, "folds": 4, "progress": False}


def planted_av(seed: int = 0) -> dict:
    """Songs in disjoint triplets (plus a few unjudged ones) whose AV is a noisy linear function of 4 dimensions.

    Valence rises with dims 0 and 1, arousal with dim 2 and falls with dim 3; both are
    squashed into 0–1. Each triplet's three pairs are judged for both types from the true
    values (``ab`` within ``AB_MARGIN``), with one ``undefined`` answer per triplet; a few
    valence targets are NaN.
    """
    rng = np.random.default_rng(seed)
    n = 3 * N_TRIPLETS + N_SINGLES
    embeddings = rng.normal(size=(n, DIM)).astype(np.float32)
    valence = embeddings[:, 0] + 0.5 * embeddings[:, 1] + 0.15 * rng.normal(size=n)
    arousal = embeddings[:, 2] - 0.5 * embeddings[:, 3] + 0.15 * rng.normal(size=n)
    truth = 1 / (1 + np.exp(-np.stack([valence, arousal], axis=1)))  # (n, 2)
    songids = [f"song{i:03d}" for i in range(n)]
    rows = []
    for triplet in range(N_TRIPLETS):
        for i, j in ((0, 1), (0, 2), (1, 2)):
            a, b = 3 * triplet + i, 3 * triplet + j
            for column, kind in enumerate(("valence", "arousal")):
                gap = truth[a, column] - truth[b, column]
                answer = "ab" if abs(gap) < AB_MARGIN else ("a" if gap > 0 else "b")
                rows.append((f"t{triplet}", songids[a], songids[b], kind, answer))
        rows.append((f"t{triplet}", songids[3 * triplet], songids[3 * triplet + 1], "valence", "undefined"))
    targets = truth.copy()
    targets[rng.choice(n, size=10, replace=False), 0] = np.nan
    pairs = pd.DataFrame(rows, columns=["tripletid", "songid_a", "songid_b", "type", "higher_value"])
    return {"embeddings": embeddings, "songids": songids, "truth": truth, "targets": targets, "pairs": pairs}


def musav_accuracy(scores: np.ndarray, data: dict, kind: str) -> float:
    """The MusAV protocol's % of correctly ordered ``kind`` pairs (:func:`moodscape.evaluation.pairwise_accuracy`)."""
    column = 0 if kind == "valence" else 1
    ground_truth = data["pairs"][data["pairs"]["type"] == kind]
    return pairwise_accuracy(ground_truth, dict(zip(data["songids"], scores[:, column])))["accuracy"]


def best_single_dimension(data: dict, folds: np.ndarray) -> np.ndarray:
    """The baseline a regressor must beat: out-of-fold (valence, arousal) of the one embedding dimension
    that best orders the training pairs (:func:`moodscape.evaluation.best_single_feature_readout`), on the model's folds."""
    names = [f"dim_{index}" for index in range(data["embeddings"].shape[1])]
    oof, _ = best_single_feature_readout(data["embeddings"].astype(np.float64), names, data["songids"],
                                         data["targets"], data["pairs"], folds)
    return oof


def r_squared(predictions: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return 1 - ((predictions - truth) ** 2).sum(axis=0) / ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)


MODE_SETTINGS = {"mse": {}, "rank": {}, "combined": {"rank_weight": 0.1}}
SEEDS = (0, 1, 2)


def cross_fit_modes(data: dict, seed: int) -> dict:
    """One cross-fit per mode of ``data``, seeded with ``seed``."""
    return {
        mode: cross_fit_av(
            data["embeddings"], data["songids"], data["targets"], data["pairs"],
            AVConfig(mode=mode, seed=seed, **FAST, **extra),
        )
        for mode, extra in MODE_SETTINGS.items()
    }  # fmt: skip


@pytest.fixture(scope="module")
def data():
    return planted_av()


@pytest.fixture(scope="module")
def fits_by_seed(data) -> dict:
    """``{seed: {mode: AVCrossFit}}``: the planted data of each seed, cross-fitted per mode.

    ``combined`` weighs the rank loss by 0.1: with outputs on the 0–1 target scale,
    sigmoid(s_a - s_b) stays near 0.5, so at weight 1 the rank term stretches the scale
    against the MSE term.
    """
    planted = {seed: data if seed == 0 else planted_av(seed) for seed in SEEDS}
    return {seed: (planted[seed], cross_fit_modes(planted[seed], seed)) for seed in SEEDS}


@pytest.fixture(scope="module")
def fits(fits_by_seed):
    """The cross-fits of seed 0, whose data is :func:`data`."""
    return fits_by_seed[0][1]


def test_song_folds_keep_every_triplet_in_one_fold_balanced_and_reproducible(data):
    folds = song_folds(data["songids"], data["pairs"], n_folds=4, seed=3)
    fold_of = dict(zip(data["songids"], folds))
    assert all(fold_of[a] == fold_of[b] for a, b in zip(data["pairs"]["songid_a"], data["pairs"]["songid_b"]))
    assert set(folds) == {0, 1, 2, 3}
    assert np.ptp(np.bincount(folds)) <= 3
    assert np.array_equal(folds, song_folds(data["songids"], data["pairs"], n_folds=4, seed=3))
    assert not np.array_equal(folds, song_folds(data["songids"], data["pairs"], n_folds=4, seed=4))


def test_song_folds_refuse_more_folds_than_connected_groups(data):
    songids = data["songids"][:6]  # two triplets
    with pytest.raises(DataError, match="2 groups"):
        song_folds(songids, data["pairs"], n_folds=3, seed=0)


@pytest.mark.parametrize("mode", ["mse", "rank", "combined"])
def test_every_mode_orders_held_out_songs_better_than_the_best_single_dimension(fits_by_seed, mode):
    """On every seed, out-of-fold predictions beat one embedding dimension picked with hindsight.

    Valence and arousal each depend on two dimensions, so a model that learned nothing
    more than the strongest one (or nothing at all: 50 %) fails.
    """
    for seed, (data, fits) in fits_by_seed.items():
        fit = fits[mode]
        assert np.isfinite(fit.oof).all()
        assert len(fit.ensemble.members) == len(fit.history) == 4
        baseline = best_single_dimension(data, fit.folds)
        for column, kind in enumerate(("valence", "arousal")):
            accuracy, baseline_accuracy = musav_accuracy(fit.oof, data, kind), musav_accuracy(baseline, data, kind)
            assert accuracy > baseline_accuracy > 50.0, (seed, kind, accuracy, baseline_accuracy)
            rho, baseline_rho = (spearmanr(values[:, column], data["truth"][:, column])[0] for values in (fit.oof, baseline))
            assert rho > baseline_rho, (seed, kind, rho, baseline_rho)


def test_mse_mode_predicts_the_targets_out_of_fold_better_than_the_best_single_dimension(fits_by_seed):
    for seed, (data, fits) in fits_by_seed.items():
        fit = fits["mse"]
        r2, baseline = (r_squared(values, data["truth"]) for values in (fit.oof, best_single_dimension(data, fit.folds)))
        assert (r2 > baseline).all(), (seed, r2, baseline)


def test_each_member_standardises_with_its_training_songs_only(fits, data):
    fit = fits["combined"]
    for fold, member in enumerate(fit.ensemble.members):
        train = ~np.isin(fit.folds, [fold, (fold + 1) % 4])
        rows = data["embeddings"][train].astype(np.float64)
        np.testing.assert_allclose(member.mean.numpy(), rows.mean(axis=0), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(member.scale.numpy(), rows.std(axis=0), rtol=1e-5)
        assert fit.history[fold]["n_songs"]["train"] == train.sum()


def test_rank_mode_calibrates_outputs_onto_the_target_scale(fits, data):
    oof, targets = fits["rank"].oof, data["targets"]
    np.testing.assert_allclose(oof.mean(axis=0), np.nanmean(targets, axis=0), atol=0.03)
    assert np.all((oof.std(axis=0) > 0.5 * np.nanstd(targets, axis=0)) & (oof.std(axis=0) < 1.5 * np.nanstd(targets, axis=0)))
    assert all(history["calibration_slope"] != [1.0, 1.0] for history in fits["rank"].history)
    assert all(history["calibration_slope"] == [1.0, 1.0] for history in fits["combined"].history)


def test_ensemble_forward_on_a_torch_batch_equals_predict(fits, data):
    ensemble = fits["combined"].ensemble
    with torch.no_grad():
        outputs = ensemble(torch.from_numpy(data["embeddings"][:20]))  # (20, 2)
    assert outputs.shape == (20, 2)
    np.testing.assert_array_equal(outputs.double().numpy(), ensemble.predict(data["embeddings"][:20]))
    assert np.all(np.abs(ensemble.predict(data["embeddings"]) - fits["combined"].oof).mean(axis=0) < 0.2)


def test_checkpoint_round_trip_gives_identical_predictions(fits, data, tmp_path):
    ensemble = fits["combined"].ensemble
    path = tmp_path / "av.pt"
    save_checkpoint(av_checkpoint(ensemble, config=AVConfig(**FAST).model_dump()), path)
    loaded = load_av_regressor(path)
    assert isinstance(loaded, AVEnsemble) and loaded.model_args == ensemble.model_args
    assert torch.load(path, weights_only=True)["config"]["hidden"] == 32
    np.testing.assert_array_equal(loaded.predict(data["embeddings"]), ensemble.predict(data["embeddings"]))


def test_unreadable_or_mismatched_checkpoints_raise_artifact_errors_naming_the_file(fits, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a torch file")
    with pytest.raises(ArtifactError, match="corrupt.pt"):
        load_av_regressor(corrupt)
    with pytest.raises(ArtifactError, match="does not exist"):
        load_av_regressor(tmp_path / "missing.pt")
    checkpoint = av_checkpoint(fits["mse"].ensemble)
    checkpoint["model_args"]["hidden"] = 64
    save_checkpoint(checkpoint, tmp_path / "wide.pt")
    with pytest.raises(ArtifactError, match=r"wide.pt.*wrong shape"):
        load_av_regressor(tmp_path / "wide.pt")


def test_fit_av_is_reproducible_and_keeps_the_best_epoch(data):
    songs = data["songids"][:150]
    x, y = data["embeddings"][:150], data["targets"][:150]
    pairs = pair_set(data["pairs"], songs[:120]), pair_set(data["pairs"], songs[120:])
    config = AVConfig(mode="combined", **{**FAST, "epochs": 30, "patience": 5})
    runs = [fit_av(x[:120], y[:120], pairs[0], x[120:], y[120:], pairs[1], config) for _ in range(2)]
    (first, history), (second, history_again) = runs
    assert history == history_again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert history["best_val_loss"] == min(history["val_loss"]) == history["val_loss"][history["best_epoch"] - 1]
    assert history["epochs_run"] <= min(config.epochs, history["best_epoch"] + config.patience)


def test_pair_set_keeps_judged_pairs_among_the_given_songs(data):
    songs = data["songids"][:6]  # triplets 0 and 1
    pairs = pair_set(data["pairs"], songs)
    assert len(pairs) == 12  # 2 triplets × 3 pairs × 2 types, the undefined answers skipped
    assert set(pairs.target) <= {0.0, 0.5, 1.0} and set(pairs.column) == {0, 1}
    assert pairs.index_a.max() < 6 and (pairs.index_a != pairs.index_b).all()
    with pytest.raises(DataError, match="pair types"):
        pair_set(data["pairs"].assign(type="tempo"), songs)
    with pytest.raises(DataError, match="repeat"):
        pair_set(data["pairs"], songs + songs[:1])


def test_losses_follow_their_equations():
    outputs = torch.tensor([[0.2, 0.9], [0.4, 0.1]])
    targets = torch.tensor([[0.0, math.nan], [0.0, 0.0]])
    assert masked_mse(outputs, targets).item() == pytest.approx((0.04 + 0.16 + 0.01) / 3)
    # P(a above b) = sigmoid(s_a - s_b): a tie at 0.5 costs log 2, a confident right answer almost nothing
    column, equal = torch.tensor([1]), torch.tensor([0.5])
    assert ranknet_loss(outputs[:1], outputs[:1], column, equal).item() == pytest.approx(math.log(2))
    far_a, far_b = torch.tensor([[0.0, 20.0]]), torch.tensor([[0.0, 0.0]])
    assert ranknet_loss(far_a, far_b, column, torch.tensor([1.0])).item() < 1e-6


@pytest.mark.parametrize(
    "settings", [{"mode": "listwise"}, {"folds": 2}, {"dropout": 1.0}, {"lr": 0.0}, {"rank_weight": -1.0}, {"epochs": 0}]
)
def test_config_rejects_out_of_range_settings(settings):
    with pytest.raises(ValidationError):
        AVConfig(**settings)


def test_modes_refuse_training_songs_without_what_their_loss_needs(data):
    x, songs = data["embeddings"][:60], data["songids"][:60]
    pairs = pair_set(data["pairs"], songs)
    no_targets = np.full((60, 2), np.nan)
    with pytest.raises(DataError, match="absolute targets"):
        fit_av(x, no_targets, pairs, x, data["targets"][:60], pairs, AVConfig(mode="mse", **FAST))
    with pytest.raises(DataError, match="judged pairs"):
        fit_av(x, data["targets"][:60], pair_set(data["pairs"], []), x, None, pairs, AVConfig(mode="rank", **FAST))
