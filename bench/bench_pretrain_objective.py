"""Benchmark of the pretraining objective: a backbone trained on the tags against one trained without labels.

On a demo corpus (``moodscape demo-data``), stages 1-2 run once (features, cluster at the
planted K, label); then, for each objective (``tags``, ``contrastive``), a copy of that
work directory runs ``pretrain --objective X``, ``train`` and ``train-av`` with the demo
config's settings. Each backbone is scored by

- **tag probe**: ROC-AUC / PR-AUC macro on the test split of a one-vs-rest logistic probe
  on the frozen backbone's embeddings of the tagged tracks, fitted on the training split
  (:func:`moodscape.training.probe.tag_probe_metrics`, the ablation's protocol); the
  same probe on the standardised stage-1 features is the baseline;
- **MusAV**: the pairwise accuracy (arousal, valence) of the stage-4 regressor on the
  classifier's embeddings, out-of-fold, beside stage 4's own baselines (best single
  stage-1 feature, ridge on the stage-1 features, the Spotify-style targets);
- the classifier of the new labels (test macro-F1), as stage 3b reports it.

Run: ``PYTHONPATH=src python bench/bench_pretrain_objective.py --corpus DEMO --out DIR``
(about an hour on two busy CPU cores for the 200-track demo). Prints a Markdown table and
writes ``DIR/bench_pretrain_objective.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

from moodscape import artifacts
from moodscape.artifacts import Workdir
from moodscape.config import Settings
from moodscape.datasets import jamendo
from moodscape.models.backbone import build_backbone, load_backbone_weights
from moodscape.pipeline.collection import load_collection
from moodscape.pipeline.network import prepare_mels
from moodscape.training.data import embed_tracks
from moodscape.training.probe import stage1_tag_baseline, tag_probe_metrics

OBJECTIVES = ("tags", "contrastive")


def moodscape(*args: str | Path) -> float:
    """Run one CLI command in a fresh process; return its wall seconds."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "moodscape", *map(str, args)], check=True)
    return time.perf_counter() - started


def planted_k(corpus: Path) -> int:
    truth = json.loads((corpus / "truth.json").read_text())["tracks"]
    return len({t["archetype"] for t in truth.values() if t["dataset"] == "jamendo"})


def tagged_split(settings: Settings, workdir: Workdir) -> dict:
    """Mels, tagged track ids and tag matrices of the train and test splits; the vocabulary."""
    collection = load_collection(settings)
    tracks = collection.tracks[collection.tracks["tags"].map(len) > 0]
    mels, _ = prepare_mels(settings, workdir, tracks, show_progress=False)
    parts = {split: tracks[(tracks["split"] == split) & tracks["track_id"].isin(mels)] for split in ("train", "test")}
    return {"mels": mels, "vocabulary": collection.vocabulary,
            "ids": {split: part["track_id"].tolist() for split, part in parts.items()},
            "tags": {split: jamendo.tag_matrix(part, collection.vocabulary)[0] for split, part in parts.items()}}


def backbone_tag_probe(settings: Settings, workdir: Workdir, data: dict) -> dict:
    """The tag probe on the frozen embeddings of the work directory's backbone."""
    model = build_backbone(None)
    load_backbone_weights(model, workdir.backbone)
    crops = {"crop_frames": settings.pretrain.crop_frames, "n_eval_crops": settings.pretrain.n_eval_crops, "batch_size": 32}
    embedded = {split: embed_tracks(model.eval(), data["mels"], ids, **crops) for split, ids in data["ids"].items()}
    return tag_probe_metrics(embedded["train"], data["tags"]["train"], embedded["test"], data["tags"]["test"],
                             data["vocabulary"])


def run_objective(corpus: Path, base: Path, out: Path, objective: str) -> dict:
    """Pretrain with ``objective`` in a copy of the stage-1/2 work directory, then train and train-av; its scores."""
    root = out / objective
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(base, root)
    config = corpus / "moodscape.toml"
    seconds = {stage: moodscape(stage, "--config", config, "--workdir", root, *extra)
               for stage, extra in (("pretrain", ["--objective", objective]), ("train", []), ("train-av", []))}
    settings, workdir = Settings.load(config), Workdir(root)
    pretrain, av = artifacts.read_json(workdir.pretrain_metrics), artifacts.read_json(workdir.av_metrics)
    data = tagged_split(settings, workdir)
    return {"objective": pretrain["objective"], "reason": pretrain["reason"],
            "pretrain_epochs": pretrain["history"]["epochs_run"], "pretrain_best_epoch": pretrain["history"]["best_epoch"],
            "tag_probe": backbone_tag_probe(settings, workdir, data),
            "tag_head_roc_auc_macro": pretrain["test"].get("roc_auc_macro"),
            "classifier_macro_f1": artifacts.read_json(workdir.classifier_metrics)["macro_f1"],
            "musav_pairwise_accuracy": av["pairwise_accuracy"], "seconds": seconds,
            "stage1_tag_probe": stage1_tag_baseline(artifacts.read_table(workdir.features), data["ids"]["train"],
                                                    data["tags"]["train"], data["ids"]["test"], data["tags"]["test"],
                                                    data["vocabulary"]),
            "av_baselines": {name: row["pairwise_accuracy"]
                             for name, row in artifacts.read_json(workdir.baselines)["av"]["predictors"].items()}}


def table(rows: dict[str, dict]) -> str:
    """The Markdown table: one row per backbone, then the stage-1 baselines on the same items."""
    def cell(value, digits=3):
        return "—" if value is None else f"{value:.{digits}f}"

    lines = ["| backbone / baseline | tag probe ROC-AUC macro (test) | tag probe PR-AUC macro | tag head ROC-AUC | "
             "new-label classifier macro-F1 | MusAV arousal % | MusAV valence % |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for objective, row in rows.items():
        accuracy = row["musav_pairwise_accuracy"]
        lines.append(f"| {objective} ({row['reason']}; {row['pretrain_epochs']} epochs, best {row['pretrain_best_epoch']}) | "
                     f"{cell(row['tag_probe']['roc_auc_macro'])} | {cell(row['tag_probe']['pr_auc_macro'])} | "
                     f"{cell(row['tag_head_roc_auc_macro'])} | {cell(row['classifier_macro_f1'])} | "
                     f"{cell(accuracy['arousal'], 1)} | {cell(accuracy['valence'], 1)} |")
    first = next(iter(rows.values()))
    stage1 = first["stage1_tag_probe"]
    lines.append(f"| baseline: logistic probe on stage-1 features | {cell(stage1['roc_auc_macro'])} | "
                 f"{cell(stage1['pr_auc_macro'])} | — | — | — | — |")
    names = {"best_feature": "best single stage-1 feature", "ridge": "ridge on stage-1 features",
             "spotify": "Spotify-style targets", "oracle": "planted archetype (oracle)"}
    for name, accuracy in first["av_baselines"].items():
        if name == "model":  # the row's own regressor, above
            continue
        lines.append(f"| baseline: {names.get(name, name)} (stage 4) | — | — | — | — | "
                     f"{cell(accuracy.get('arousal'), 1)} | {cell(accuracy.get('valence'), 1)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, required=True, help="a demo corpus (moodscape demo-data --out …)")
    parser.add_argument("--out", type=Path, required=True, help="work directories and the JSON result go here")
    args = parser.parse_args()
    config, base = args.corpus / "moodscape.toml", args.out / "base"
    started = time.perf_counter()
    if not (base / "label_to_idx.json").exists():
        for stage, extra in (("features", []), ("cluster", ["--k", planted_k(args.corpus)]), ("label", [])):
            moodscape(stage, "--config", config, "--workdir", base, *extra)
    rows = {objective: run_objective(args.corpus, base, args.out, objective) for objective in OBJECTIVES}
    baselines = [{k: v for k, v in row["av_baselines"].items() if k != "model"} for row in rows.values()]
    assert all(b == baselines[0] for b in baselines), "stage 4's baselines differ between the runs"
    document = {"rows": rows, "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads",
                "python": platform.python_version(), "torch": torch.__version__,
                "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "wall_seconds": time.perf_counter() - started}
    artifacts.write_json(args.out / "bench_pretrain_objective.json", document)
    print(table(rows))


if __name__ == "__main__":
    main()
