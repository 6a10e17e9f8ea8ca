"""The new-label classifier: LoRA learns, the backbone stays frozen, checkpoints load safely, runs resume."""

from __future__ import annotations

import copy
import json

from pydantic import ValidationError
import pytest
import torch

from moodscape.errors import ArtifactError, ConfigError, DataError
from moodscape.evaluation import classification_metrics
from moodscape.models.backbone import backbone_key, state_fingerprint
from moodscape.training.classify import (
    ClassifierConfig,
    last_checkpoint_path,
    load_classifier,
    train_classifier,
    trained_state,
)

LABELS = {"low": 0, "mid": 1, "high": 2}
TINY = {"batch_size": 8, "crop_frames": 64, "n_eval_crops": 2, "lr": 3e-3, "progress": False, "device": "cpu"}


@pytest.fixture(scope="module")
def task(make_band_task):
    return make_band_task(30, 15, 15)


@pytest.fixture(scope="module")
def small_task(make_band_task):
    return make_band_task(12, 6, 6)


LORA_SEEDS = (0, 1, 2)
LORA_BUDGET = {"epochs": 8, "patience": 2}  # stops two epochs after the validation macro-F1 stops rising


@pytest.fixture(scope="module")
def lora_runs(task, tmp_path_factory) -> dict:
    """LoRA on the band task with each seed of ``LORA_SEEDS``, each saved to a checkpoint."""
    runs = {}
    for seed in LORA_SEEDS:
        path = tmp_path_factory.mktemp(f"lora{seed}") / "classifier.pt"
        config = ClassifierConfig(mode="lora", seed=seed, **LORA_BUDGET, **TINY)
        result = train_classifier(
            task["backbone"], task["mels"], task["labels"], task["splits"], config, label_to_idx=LABELS, checkpoint_path=path
        )
        runs[seed] = (result, path)
    return runs


@pytest.fixture(scope="module")
def lora_run(lora_runs):
    """The run of the first seed and its checkpoint."""
    return lora_runs[LORA_SEEDS[0]]


def train(task, checkpoint_path=None, **settings):
    config = ClassifierConfig(**{**TINY, **settings})
    return train_classifier(
        task["backbone"], task["mels"], task["labels"], task["splits"], config,
        label_to_idx=LABELS, checkpoint_path=checkpoint_path,
    )  # fmt: skip


def backbone_tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's weights and BatchNorm buffers by plain name (no head, no adapters)."""
    return {backbone_key(key): value for key, value in model.state_dict().items() if backbone_key(key) is not None}


def test_lora_learns_a_separable_task_with_few_trainable_parameters(lora_runs):
    """The band task is separable by construction (a class's third of the bands is 25 dB above
    noise of σ 6 dB), so the known answer is a perfect test split, on every seed; a model that
    learned nothing scores the majority-class macro-F1, computed here for contrast."""
    chance = classification_metrics([0, 1, 2] * 5, [0] * 15, list(LABELS))["macro_f1"]
    for seed, (result, _) in lora_runs.items():
        metrics = result.metrics
        assert metrics["macro_f1"] == metrics["accuracy"] == 1.0 > chance, (seed, metrics["history"])
        assert metrics["confusion_matrix"]["labels"] == ["low", "mid", "high"]
        assert set(metrics["per_class"]) == set(LABELS) and metrics["n_tracks"] == 15
        assert metrics["epochs_run"] == len(metrics["history"]) <= LORA_BUDGET["epochs"]
        assert metrics["best_epoch"] + LORA_BUDGET["patience"] >= metrics["epochs_run"]
        assert {"train_loss", "val_loss", "val_macro_f1", "train_seconds"} <= set(metrics["history"][0])
        assert metrics["parameters"]["adapter_share"] <= 0.03
        assert metrics["parameters"]["trainable"] == metrics["parameters"]["adapters"] + metrics["parameters"]["head"]
        json.dumps(metrics, allow_nan=False)


def test_lora_training_leaves_backbone_weights_and_batchnorm_buffers_bit_identical(task, lora_run):
    result, _ = lora_run
    before, after = backbone_tensors(task["backbone"]), backbone_tensors(result.model)
    assert before.keys() == after.keys()
    assert any("running_mean" in key for key in before) and any("num_batches_tracked" in key for key in before)
    assert [key for key in before if not torch.equal(before[key], after[key])] == []


def test_lora_checkpoint_holds_only_adapters_and_head_with_backbone_and_labels(task, lora_run):
    result, path = lora_run
    checkpoint = torch.load(path, weights_only=True)
    assert all("lora_A" in key or "lora_B" in key or ".head." in key for key in checkpoint["state_dict"])
    assert any(".head." in key for key in checkpoint["state_dict"])
    assert checkpoint["backbone_fingerprint"] == state_fingerprint(task["backbone"])
    assert checkpoint["label_to_idx"] == LABELS and checkpoint["model_args"] == {"n_outputs": 3}
    assert checkpoint["config"]["mode"] == "lora" and checkpoint["epoch"] == result.metrics["best_epoch"]
    assert checkpoint["best_val_macro_f1"] == result.metrics["best_val_macro_f1"]


def test_load_classifier_rebuilds_the_trained_model(task, lora_run):
    result, path = lora_run
    loaded = load_classifier(path, task["backbone"], LABELS)
    mel = torch.from_numpy(task["mels"]["track_000"][:, :64])[None, None]  # (1, 1, F, T)
    with torch.no_grad():
        assert torch.equal(loaded(mel), result.model(mel))


def test_load_classifier_refuses_another_backbone(task, lora_run):
    _, path = lora_run
    other = copy.deepcopy(task["backbone"])
    with torch.no_grad():
        other.layer1[0].conv1.weight[0, 0, 0, 0] += 1.0
    with pytest.raises(ArtifactError, match="trained on a different backbone"):
        load_classifier(path, other, LABELS)


def test_load_classifier_refuses_other_labels_and_names_them(task, lora_run):
    _, path = lora_run
    with pytest.raises(ArtifactError) as error:
        load_classifier(path, task["backbone"], {"low": 0, "mid": 1, "loud": 2})
    assert "only in the checkpoint: high" in str(error.value) and "only in the given labels: loud" in str(error.value)
    with pytest.raises(ArtifactError, match=r"different index: high \(2 vs 1\), mid \(1 vs 2\)"):
        load_classifier(path, task["backbone"], {"low": 0, "mid": 2, "high": 1})


def test_probe_trains_only_the_head(small_task, tmp_path):
    result = train(small_task, tmp_path / "probe.pt", mode="probe", epochs=1)
    assert set(torch.load(tmp_path / "probe.pt", weights_only=True)["state_dict"]) == {"head.weight", "head.bias"}
    before, after = backbone_tensors(small_task["backbone"]), backbone_tensors(result.model)
    assert all(torch.equal(before[key], after[key]) for key in before)
    assert result.metrics["parameters"]["trainable"] == result.metrics["parameters"]["head"]


def test_full_fine_tuning_trains_every_parameter(small_task):
    result = train(small_task, mode="full", epochs=1)
    assert result.metrics["parameters"]["trainable"] == result.metrics["parameters"]["total"]
    before, after = backbone_tensors(small_task["backbone"]), backbone_tensors(result.model)
    assert not torch.equal(before["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])
    assert not torch.equal(before["bn1.running_mean"], after["bn1.running_mean"])  # BN trains too


def test_a_resumed_run_ends_as_an_uninterrupted_one(small_task, tmp_path):
    settings = {"mode": "lora", "dropout": 0.1, "patience": 10}
    train(small_task, tmp_path / "stopped" / "classifier.pt", epochs=2, **settings)
    assert torch.load(last_checkpoint_path(tmp_path / "stopped" / "classifier.pt"), weights_only=True)["epoch"] == 2
    resumed = train(small_task, tmp_path / "stopped" / "classifier.pt", epochs=4, **settings)
    straight = train(small_task, tmp_path / "straight" / "classifier.pt", epochs=4, **settings)

    assert resumed.metrics["history"] == [
        {**epoch, "train_seconds": resumed_epoch["train_seconds"]}
        for epoch, resumed_epoch in zip(straight.metrics["history"], resumed.metrics["history"])
    ]
    for name in ("stopped", "straight"):
        assert last_checkpoint_path(tmp_path / name / "classifier.pt").name == "classifier-last.pt"
    last = [torch.load(last_checkpoint_path(tmp_path / name / "classifier.pt"), weights_only=True) for name in ("stopped", "straight")]
    assert all(torch.equal(last[0]["state_dict"][key], last[1]["state_dict"][key]) for key in last[0]["state_dict"])
    best_resumed, best_straight = resumed.checkpoint["state_dict"], straight.checkpoint["state_dict"]
    assert all(torch.equal(best_resumed[key], best_straight[key]) for key in best_straight)


def test_a_finished_run_on_other_labels_is_not_resumed(small_task, tmp_path):
    """A classifier-last.pt of the same label names but other track labels was taken as this run's, 0 epochs run."""
    settings = {"mode": "lora", "epochs": 2, "patience": 10}
    train(small_task, tmp_path / "old" / "classifier.pt", **settings)
    relabelled = {**small_task, "labels": {track: (label + 1) % len(LABELS) for track, label in small_task["labels"].items()}}
    again = train(relabelled, tmp_path / "old" / "classifier.pt", **settings)
    fresh = train(relabelled, tmp_path / "fresh" / "classifier.pt", **settings)
    assert again.metrics["resumed_after_epoch"] == 0
    assert again.metrics["history"] == [{**epoch, "train_seconds": mine["train_seconds"]}
                                        for epoch, mine in zip(fresh.metrics["history"], again.metrics["history"])]
    assert all(torch.equal(again.checkpoint["state_dict"][key], value) for key, value in fresh.checkpoint["state_dict"].items())


def test_a_resumed_run_says_so(small_task, tmp_path, caplog):
    settings = {"mode": "lora", "patience": 10}
    train(small_task, tmp_path / "classifier.pt", epochs=1, **settings)
    resumed = train(small_task, tmp_path / "classifier.pt", epochs=2, **settings)
    assert resumed.metrics["resumed_after_epoch"] == 1
    assert "resuming from" in caplog.text and "after epoch 1" in caplog.text


def test_the_same_seed_gives_the_same_weights_and_another_seed_does_not(small_task):
    first, again, other = (train(small_task, mode="lora", epochs=1, seed=seed) for seed in (0, 0, 1))
    first, again, other = (trained_state(run.model, "lora") for run in (first, again, other))
    assert all(torch.equal(first[key], again[key]) for key in first)
    assert not all(torch.equal(first[key], other[key]) for key in first)


def test_bad_settings_and_splits_are_refused_by_name(small_task):
    with pytest.raises(ValidationError, match="'lora', 'full' or 'probe'"):
        ClassifierConfig(mode="adapter")
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        ClassifierConfig(r=0)
    with pytest.raises(ConfigError, match="ClassifierConfig: rank: Extra inputs are not permitted"):
        ClassifierConfig.from_dict({"rank": 4})
    splits = {**small_task["splits"], "track_000": "dev"}
    with pytest.raises(DataError, match="unknown split names"):
        train_classifier(small_task["backbone"], small_task["mels"], small_task["labels"], splits, ClassifierConfig(**TINY))
    no_validation = {track: "train" if split == "validation" else split for track, split in small_task["splits"].items()}
    with pytest.raises(DataError, match="no labelled tracks in split"):
        train_classifier(small_task["backbone"], small_task["mels"], small_task["labels"], no_validation, ClassifierConfig(**TINY))
