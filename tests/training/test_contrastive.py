"""A backbone without labels: NT-Xent over two augmented crops of a track, and its choice under ``objective = "auto"``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_runner import invoke
from sklearn.metrics import silhouette_score
from sklearn.neighbors import KNeighborsClassifier

from moodscape.audio import mel_from_audio
from moodscape.datasets.folder import load_folder
from moodscape.errors import ConfigError
from moodscape.artifacts import Workdir
from moodscape.models.backbone import AudioResNet
from moodscape.training.contrastive import (
    FADE_DB,
    GAIN_DB,
    PITCH_BANDS,
    TILT_DB,
    ContrastiveConfig,
    CropPairs,
    augment,
    nt_xent_loss,
    pair_batch,
    partners,
    pretrain_contrastive,
    retrieval_accuracy,
)
from moodscape.training.classify import ClassifierConfig, train_classifier
from moodscape.training.data import embed_tracks
from moodscape.training.pretrain import choose_objective

# --------------------------------------------------------------------------- the loss


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_nt_xent_of_two_orthogonal_pairs_is_the_hand_computed_value(temperature):
    """Rows a, b, a', b' with a = a' ⟂ b = b': each row's partner has cosine 1, the two others 0, so
    ℓ = -log(e^{1/τ} / (e^{1/τ} + 2)) = log(1 + 2 e^{-1/τ}) for every row."""
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [0.0, 3.0]])  # lengths do not matter: cosines
    loss = nt_xent_loss(z, partners(2), temperature)
    assert loss.item() == pytest.approx(math.log(1 + 2 * math.exp(-1 / temperature)), abs=1e-6)
    assert nt_xent_loss(torch.tensor([[1.0, 2.0], [-3.0, 1.0]]), partners(1), temperature).item() == 0.0  # no negatives


def reference_nt_xent(z: np.ndarray, partner: np.ndarray, temperature: float) -> float:
    """The NT-Xent of SimCLR written out row by row, in float64."""
    unit = z / np.linalg.norm(z, axis=1, keepdims=True)
    losses = []
    for i in range(len(z)):
        others = [math.exp(unit[i] @ unit[k] / temperature) for k in range(len(z)) if k != i]
        losses.append(-math.log(math.exp(unit[i] @ unit[partner[i]] / temperature) / sum(others)))
    return float(np.mean(losses))


def test_nt_xent_and_retrieval_match_a_straightforward_reference():
    rng = np.random.default_rng(0)
    for n_pairs, dim, temperature in [(3, 4, 0.1), (8, 16, 0.5), (5, 2, 2.0)]:
        z = rng.normal(size=(2 * n_pairs, dim))
        partner = partners(n_pairs)
        assert partner.tolist() == [(i + n_pairs) % (2 * n_pairs) for i in range(2 * n_pairs)]
        loss = nt_xent_loss(torch.tensor(z, dtype=torch.float32), partner, temperature).item()
        assert loss == pytest.approx(reference_nt_xent(z, partner.numpy(), temperature), rel=1e-4)
        unit = z / np.linalg.norm(z, axis=1, keepdims=True)
        cosines = unit @ unit.T - 3 * np.eye(len(z))
        expected = np.mean(cosines.argmax(axis=1) == partner.numpy())
        assert retrieval_accuracy(torch.tensor(z, dtype=torch.float32), partner) == pytest.approx(expected)


# --------------------------------------------------------------------------- augmentations and crop pairs


def test_augmentations_keep_shape_and_finiteness_and_stay_mild():
    rng = np.random.default_rng(0)
    mel = np.full((96, 64), -60.0, dtype=np.float32)
    mel[40] = -10.0  # one loud band: where the pitch shift moves it
    for _ in range(50):
        view = augment(mel, rng)
        assert view.shape == mel.shape and view.dtype == np.float32 and np.isfinite(view).all()
        assert abs(int(view.mean(axis=1).argmax()) - 40) <= math.ceil(PITCH_BANDS)
        assert np.abs(view[80:] - mel[80:]).max() <= GAIN_DB + FADE_DB / 2 + TILT_DB / 2 + 1e-4  # far from the shifted band
    assert not np.allclose(augment(mel, rng), mel)


def test_crop_pairs_are_two_finite_views_fixed_by_seed_epoch_and_index():
    rng = np.random.default_rng(1)
    mels = {"long": rng.normal(-40, 6, (96, 300)).astype(np.float32), "short": rng.normal(-40, 6, (96, 20)).astype(np.float32)}
    pairs = CropPairs(mels, ["long", "short"], crop_frames=64, seed=3)
    views, index = pairs[0]
    assert views.shape == (2, 1, 96, 64) and index == 0 and torch.isfinite(views).all()
    assert not torch.equal(views[0], views[1])
    assert torch.equal(pairs[0][0], views) and pairs[1][0].shape == (2, 1, 96, 64)  # a short track is repeated to fill
    pairs.set_epoch(1)
    assert not torch.equal(pairs[0][0], views)
    mel, partner = pair_batch([pairs[0], pairs[1]])
    assert mel.shape == (4, 1, 96, 64) and partner.tolist() == [2, 3, 0, 1]
    assert torch.equal(mel[0], pairs[0][0][0]) and torch.equal(mel[2], pairs[0][0][1])


# --------------------------------------------------------------------------- the objective under "auto"


def tag_rows(n_tagged: int, n_untagged: int, tags_of_first: tuple[int, ...] = (0,)) -> np.ndarray:
    """``n_tagged`` tracks with tag ``tags_of_first[i % len]`` among 3, then untagged ones: (n, 3) bool."""
    rows = np.zeros((n_tagged + n_untagged, 3), bool)
    for i in range(n_tagged):
        rows[i, tags_of_first[i % len(tags_of_first)]] = True
    return rows


def test_auto_picks_tags_when_most_tracks_carry_them_and_contrastive_otherwise():
    tagged = {"train": tag_rows(10, 0, (0, 1)), "validation": tag_rows(4, 0, (0, 1)), "test": tag_rows(4, 0)}
    assert choose_objective("auto", tagged) == ("tags", "auto: 18 of 18 tracks carry tags")
    none = {split: np.zeros((n, 0), bool) for split, n in (("train", 10), ("validation", 3), ("test", 3))}
    assert choose_objective("auto", none) == ("contrastive", "auto: none of the 16 tracks carries a tag")
    few = {"train": tag_rows(3, 10, (0, 1)), "validation": tag_rows(2, 3, (0, 1)), "test": tag_rows(1, 4)}
    objective, reason = choose_objective("auto", few)
    assert objective == "contrastive" and "only 6 of 23 tracks carry tags" in reason
    one_tag = {"train": tag_rows(10, 0), "validation": tag_rows(4, 0), "test": tag_rows(4, 0)}
    assert choose_objective("auto", one_tag)[0] == "contrastive"  # every validation track has the one tag: no ROC-AUC
    assert choose_objective("contrastive", tagged) == ("contrastive", "pretrain.objective = 'contrastive'")
    assert choose_objective("tags", few)[0] == "tags"  # asked for, and possible
    with pytest.raises(ConfigError, match="pretrain.objective = 'tags', but none of the 16 tracks carries a tag; "
                                          "set pretrain.objective = 'contrastive'"):
        choose_objective("tags", none)


# --------------------------------------------------------------------------- on the demo's audio, without its tags

SEEDS = (0, 1, 2)
N_TRAIN = 48
TINY = {"epochs": 3, "patience": 3, "batch_size": 16, "crop_frames": 32, "n_eval_crops": 2, "lr": 2e-3,
        "device": "cpu", "progress": False}


def archetype_of(track_id: str, truth: dict) -> int:
    """The planted archetype of a demo track named by its audio file (``05/41705`` is ``track_0041705``)."""
    return truth[f"track_{int(Path(track_id).name):07d}"]["archetype"]


@pytest.fixture(scope="module")
def tag_free_demo(demo_corpus) -> dict:
    """The demo's MTG-Jamendo audio read as a folder without tags: mels by split and each track's archetype.

    A third of the tracks are test tracks (the separation is measured on them), and
    :data:`N_TRAIN` of the training ones train.
    """
    tracks, _ = load_folder(demo_corpus / "mtg-jamendo" / "audio", split_fractions=(0.5, 0.15, 0.35))
    assert not tracks["tags"].map(len).any()
    truth = json.loads((demo_corpus / "truth.json").read_text())["tracks"]
    ids = {split: tracks.loc[tracks["split"] == split, "track_id"].tolist() for split in ("train", "validation", "test")}
    ids["train"] = ids["train"][:N_TRAIN]
    paths = dict(zip(tracks["track_id"], tracks["audio_path"]))
    mels = {split: {t: mel_from_audio(paths[t]) for t in split_ids} for split, split_ids in ids.items()}
    return {"mels": mels, "archetype": {t: archetype_of(t, truth) for t in tracks["track_id"]}}


def archetype_separation(model: AudioResNet, demo: dict) -> dict[str, float]:
    """How well the embeddings of held-out tracks separate the archetypes.

    ``knn``: accuracy on the test tracks of a 5-NN (cosine) fitted on the training tracks'
    embeddings and archetypes; ``silhouette``: of the test tracks' archetypes (cosine).
    """
    crops = {"crop_frames": TINY["crop_frames"], "n_eval_crops": TINY["n_eval_crops"], "batch_size": 32}
    train, test = demo["mels"]["train"], demo["mels"]["test"]
    train_archetypes = [demo["archetype"][t] for t in train]
    test_archetypes = [demo["archetype"][t] for t in test]
    train_embedded, test_embedded = embed_tracks(model, train, **crops), embed_tracks(model, test, **crops)
    knn = KNeighborsClassifier(5, metric="cosine").fit(train_embedded, train_archetypes)
    return {"knn": knn.score(test_embedded, test_archetypes),
            "silhouette": float(silhouette_score(test_embedded, test_archetypes, metric="cosine"))}


@pytest.fixture(scope="module")
def separation_by_seed(tag_free_demo, make_calibrated_backbone) -> dict:
    """``{seed: (trained, random-init)}`` archetype separation of the contrastive backbone and of its baseline.

    The baseline is a random backbone whose BatchNorm statistics are those of the training
    crops, as after any training (stronger than a bare initialisation).
    """
    mels = tag_free_demo["mels"]
    scores = {}
    for seed in SEEDS:
        trained, _ = pretrain_contrastive(mels["train"], mels["validation"], ContrastiveConfig(seed=seed, **TINY))
        random_init = make_calibrated_backbone({t: mel[:, : TINY["crop_frames"]] for t, mel in mels["train"].items()}, seed=seed)
        scores[seed] = archetype_separation(trained, tag_free_demo), archetype_separation(random_init, tag_free_demo)
    return scores


@pytest.mark.slow
def test_contrastive_backbone_separates_the_planted_archetypes_better_than_a_random_one(separation_by_seed):
    """Worst trained seed against the best random one, by both measures (on the demo of the suite: silhouette
    0.37-0.39 against at most 0.05, 5-NN accuracy 0.73-0.91 against at most 0.64 over 44 test tracks)."""
    trained = {key: min(scores[0][key] for scores in separation_by_seed.values()) for key in ("knn", "silhouette")}
    random_init = {key: max(scores[1][key] for scores in separation_by_seed.values()) for key in ("knn", "silhouette")}
    assert trained["silhouette"] >= random_init["silhouette"] + 0.2, (trained, random_init)
    assert trained["knn"] >= random_init["knn"] + 0.05, (trained, random_init)


# --------------------------------------------------------------------------- the stage on a folder without tags


@pytest.fixture(scope="module")
def folder_without_tags(demo_corpus, tmp_path_factory) -> Path:
    """40 of the demo's audio files in a folder with no tags, and its config; returns the config file."""
    root = tmp_path_factory.mktemp("untagged")
    (root / "music").mkdir()
    for path in sorted((demo_corpus / "mtg-jamendo" / "audio").rglob("*.mp3"))[:40]:
        shutil.copy(path, root / "music" / path.name)
    config = root / "moodscape.toml"
    config.write_text('[data]\nsource = "folder"\n[folder]\nroot = "music"\n[features]\nscheduler = "synchronous"\n'
                      '[pretrain]\nepochs = 2\nbatch_size = 8\ncrop_frames = 32\nn_eval_crops = 1\ndevice = "cpu"\n')
    return config


def test_pretrain_on_a_folder_without_tags_picks_the_contrastive_objective_and_says_so(folder_without_tags, demo_corpus, tmp_path):
    workdir = tmp_path / "run"
    result = invoke("pretrain", "--config", folder_without_tags, "--workdir", workdir)
    assert result.exit_code == 0, result.output
    assert "contrastive" in result.output and "auto: none of the 40 tracks carries a tag" in result.output
    metrics = json.loads((workdir / "metrics" / "pretrain.json").read_text())
    assert metrics["objective"] == "contrastive" and metrics["reason"] == "auto: none of the 40 tracks carries a tag"
    assert sum(metrics["n_tracks"].values()) == 40 and metrics["history"]["epochs_run"] == 2
    assert 0 <= metrics["test"]["embedding_retrieval_top1"] <= 1
    checkpoint = torch.load(workdir / "models" / "backbone.pt", map_location="cpu", weights_only=True)
    assert checkpoint["objective"] == "contrastive" and checkpoint["model_args"] == {"n_outputs": None}
    assert not any(key.startswith(("head.", "projection.")) for key in checkpoint["state_dict"])
    # stage 3b on top of it, with the planted archetypes as the new labels
    truth = json.loads((demo_corpus / "truth.json").read_text())["tracks"]
    tracks, _ = load_folder(folder_without_tags.parent / "music")
    mels = {track: paths[0] for track, paths in Workdir(workdir).cached_mels().items()}
    labels = {track: archetype_of(track, truth) for track in tracks["track_id"]}
    config = ClassifierConfig(epochs=1, batch_size=8, crop_frames=32, n_eval_crops=1, device="cpu", progress=False)
    result = train_classifier(workdir / "models" / "backbone.pt", mels, labels, dict(zip(tracks["track_id"], tracks["split"])),
                              config, label_to_idx={str(a): a for a in range(6)}, checkpoint_path=tmp_path / "classifier.pt")
    assert 0 <= result.metrics["accuracy"] <= 1 and (tmp_path / "classifier.pt").exists()


def test_the_tag_objective_on_a_folder_without_tags_is_one_clear_error(folder_without_tags, tmp_path):
    result = invoke("pretrain", "--config", folder_without_tags, "--workdir", tmp_path / "run", "--objective", "tags")
    assert result.exit_code != 0
    assert "error:" in result.output and "pretrain.objective = 'contrastive'" in result.output
