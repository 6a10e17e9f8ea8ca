"""Stages 3a and 3b on the demo corpus: the new labels are learnable, the tags are not.

Done-when of issue 3 at a small CPU budget: LoRA trains at most 3 % of the backbone's
parameters, reaches test macro-F1 >= 0.85 on the new labels, and beats the macro-F1 that
the tag-pretrained backbone reaches on its own task (the demo's original tags).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from cli_runner import invoke

pytestmark = pytest.mark.slow

SMALL_TRAINING = [
    f"--set={stage}.{key}={value}"
    for stage in ("pretrain", "train")
    for key, value in {"crop_frames": 128, "batch_size": 16, "patience": 6}.items()
] + ["--set=train.lr=0.002"]


def read_metrics(workdir, name):
    return json.loads((workdir / "metrics" / f"{name}.json").read_text())


def test_lora_trains_at_most_three_percent_of_the_backbone(demo_run):
    parameters = read_metrics(demo_run, "classifier")["parameters"]
    assert parameters["adapters"] <= 0.03 * parameters["backbone"]
    assert parameters["trainable"] == parameters["adapters"] + parameters["head"]


def test_new_labels_are_learned_from_audio_nearly_as_well_as_from_the_features_that_define_them(demo_run):
    classifier = read_metrics(demo_run, "classifier")
    labels = json.loads((demo_run / "metrics" / "baselines.json").read_text())["labels"]
    defining = labels["stage1_features_logistic"]["macro_f1"]  # the labels are a function of these features
    n_labels = len(json.loads((demo_run / "label_to_idx.json").read_text()))
    assert classifier["macro_f1"] >= max(defining - 0.1, 3.0 / n_labels)


def test_classifier_checkpoint_holds_only_what_was_trained(demo_run):
    checkpoint = torch.load(demo_run / "models" / "classifier.pt", map_location="cpu", weights_only=True)
    assert all("lora_" in key or ".head." in key for key in checkpoint["state_dict"])
    assert checkpoint["label_to_idx"] == json.loads((demo_run / "label_to_idx.json").read_text())
    assert checkpoint["backbone_fingerprint"]


def test_labels_that_disagree_with_the_checkpoint_are_refused(demo_run):
    from moodscape.errors import ArtifactError
    from moodscape.training.classify import load_classifier

    label_to_idx = json.loads((demo_run / "label_to_idx.json").read_text())
    renamed = {f"{name} (renamed)" if index == 0 else name: index for name, index in label_to_idx.items()}
    with pytest.raises(ArtifactError, match="renamed"):
        load_classifier(demo_run / "models" / "classifier.pt", demo_run / "models" / "backbone.pt", renamed)


def test_a_given_backbone_with_wrong_shapes_is_one_clear_error(demo_run, demo_corpus, tmp_path):
    bad = tmp_path / "bad.pt"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    result = invoke("pretrain", "--config", demo_corpus / "moodscape.toml", "--workdir", tmp_path / "run", "--backbone", bad)
    assert result.exit_code == 2
    assert "conv1.weight" in result.output


def test_pretrain_and_train_write_their_stage1_baselines(demo_run):
    baselines = read_metrics(demo_run, "baselines")
    pretrain, classifier = read_metrics(demo_run, "pretrain"), read_metrics(demo_run, "classifier")
    tags, labels = baselines["tags"], baselines["labels"]
    assert tags["backbone"]["roc_auc_macro"] == pretrain["test"]["roc_auc_macro"]
    assert tags["stage1_features_logistic"]["n_tracks"]["test"] == pretrain["n_tracks"]["test"]  # the same test tracks
    assert finite(tags["stage1_features_logistic"]["roc_auc_macro"], 0, 1)
    assert labels["classifier"]["macro_f1"] == classifier["macro_f1"]
    assert labels["stage1_features_logistic"]["n_tracks"]["test"] == classifier["n_tracks_per_split"]["test"]
    assert finite(labels["stage1_features_logistic"]["macro_f1"], 0, 1)


def copy_run(demo_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(demo_run, copy, ignore=shutil.ignore_patterns("classifier*.pt", "ablation"))
    return copy


def finite(value, low=-math.inf, high=math.inf):
    return value is not None and math.isfinite(value) and low <= value <= high


def test_tracks_in_no_split_are_left_out_of_training(demo_run, demo_corpus, tmp_path):
    """MTG-Jamendo lists 504 tracks in no file of split 0 (split ""): train once stopped at them."""
    import shutil

    corpus = tmp_path / "corpus"
    shutil.copytree(demo_corpus, corpus, ignore=shutil.ignore_patterns("audio"))
    for folder in ("mtg-jamendo/audio", "musav/audio"):
        (corpus / folder).symlink_to(demo_corpus / folder)
    train_split = next((corpus / "mtg-jamendo" / "splits").rglob("autotagging_moodtheme-train.tsv"))
    header, *rows = train_split.read_text().splitlines(keepends=True)
    train_split.write_text(header + "".join(rows[5:]))  # five training tracks now belong to no split
    workdir = copy_run(demo_run, tmp_path)
    result = invoke("train", "--config", corpus / "moodscape.toml", "--workdir", workdir, "--set=train.epochs=1", *SMALL_TRAINING)
    assert result.exit_code == 0, result.output
    before, after = (read_metrics(run, "classifier")["n_tracks_per_split"]["train"] for run in (demo_run, workdir))
    assert 1 <= before - after <= 5


def test_ablation_compares_every_variant_on_the_same_splits(demo_run, demo_corpus, tmp_path):
    workdir = copy_run(demo_run, tmp_path)
    result = invoke("ablate", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                    "--set=ablate.ranks=[2]", "--set=ablate.epochs=1", "--set=av.epochs=10", "--set=av.patience=3",
                    *SMALL_TRAINING)
    assert result.exit_code == 0, result.output
    ablation = read_metrics(workdir, "ablation")
    rows = {row["variant"]: row for row in ablation["variants"]}
    assert set(rows) == {"lora-r2", "full", "probe", "tags", "stage1_features"}
    for row in rows.values():
        assert finite(row["macro_f1"], 0, 1) and finite(row["tag_roc_auc_macro"], 0, 1) and finite(row["tag_pr_auc_macro"], 0, 1)
        assert all(finite(row["musav_pairwise_accuracy"][t], 0, 100) for t in ("arousal", "valence"))
        assert all(finite(row["av_r2"][t]) for t in ("arousal", "valence"))
        assert {(e["file"], e["type"]) for e in row["musav_pairwise"]} >= {("gt", "arousal"), ("gt", "valence")}
    assert rows["stage1_features"]["trainable_parameters"] is None
    assert all(row["epochs_run"] == 1 for name, row in rows.items() if name in ("lora-r2", "full", "probe"))
    assert len(ablation["transfer"]["folds"]) == ablation["transfer"]["n_songs"]["embedded"]  # one set of folds for every row
    assert rows["probe"]["trainable_parameters"] < rows["lora-r2"]["trainable_parameters"] < rows["full"]["trainable_parameters"]
    assert rows["lora-r2"]["checkpoint_bytes"] < rows["full"]["checkpoint_bytes"] / 10
    report = invoke("report", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir)
    assert report.exit_code == 0, report.output
    markdown = (workdir / "report" / "report.md").read_text()
    shown = table_rows(markdown, "| variant | trainable parameters | checkpoint")
    assert shown["LoRA r = 2"][1] == f"{rows['lora-r2']['trainable_parameters']:,}"
    assert shown["full fine-tuning"][7] == f"{rows['full']['macro_f1']:.3f}"
    transfer = table_rows(markdown, "| variant | MusAV arousal")
    assert transfer["stage-1 features (no network)"][1] == f"{rows['stage1_features']['musav_pairwise_accuracy']['arousal']:.1f} %"
    assert transfer["tag-trained backbone + logistic probe"][5] == f"{rows['tags']['tag_roc_auc_macro']:.3f}"
    assert "**MusAV arousal** (held-out pairwise accuracy, `gt`): tag-trained backbone" in markdown
    assert (workdir / "report" / "figures" / "ablation.png").exists()
    assert (workdir / "report" / "figures" / "ablation_transfer.png").exists()


def test_ablation_adopts_the_runs_own_classifier_for_its_rank(demo_run, demo_corpus, tmp_path):
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns("ablation"))
    rank = read_metrics(workdir, "classifier")["config"]["r"]
    result = invoke("ablate", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                    f"--set=ablate.ranks=[{rank}]", "--set=ablate.include=[\"lora\"]", "--set=ablate.transfer=false")
    assert result.exit_code == 0, result.output
    rows = {row["variant"]: row for row in read_metrics(workdir, "ablation")["variants"]}
    assert set(rows) == {f"lora-r{rank}", "stage1_features"}
    adopted = rows[f"lora-r{rank}"]
    assert adopted["reused_from"] == "models/classifier.pt"
    assert adopted["macro_f1"] == read_metrics(workdir, "classifier")["macro_f1"]
    assert not (workdir / "ablation").exists()
    assert finite(adopted["tag_roc_auc_macro"], 0, 1) and "musav_pairwise_accuracy" not in adopted


def table_rows(markdown: str, header: str) -> dict[str, list[str]]:
    lines = markdown[markdown.index(header):].split("\n\n")[0].splitlines()[2:]
    return {line.split(" | ")[0].strip("| "): [cell.strip(" |") for cell in line.split(" | ")] for line in lines}


def test_distributed_training_through_torchrun(demo_run, demo_corpus, tmp_path):
    workdir = copy_run(demo_run, tmp_path)
    result = invoke("train", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                    "--nproc", "2", "--epochs", "2", *SMALL_TRAINING)
    assert result.exit_code == 0, result.output
    metrics = read_metrics(workdir, "classifier")
    assert metrics["world_size"] == 2
    assert (workdir / "models" / "classifier.pt").exists()
