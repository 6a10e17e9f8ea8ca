"""Report section 4: the backbone, LoRA, the new-label classifier and the ablation (step 3)."""

from __future__ import annotations

from typing import Any

from moodscape.artifacts import EMBEDDING_COLUMNS
from moodscape.audio import MEL_HOP, MEL_N_BANDS, MEL_SR

from . import figures
from .document import SECTIONS, RunRecord, not_run, used_settings
from .markdown import Document, integer, number, percent

ABLATION_NAMES = {"full": "full fine-tuning", "probe": "linear probe (head only)",
                  "tags": "tag-trained backbone + logistic probe"}


def network_section(document: Document, run: RunRecord) -> None:
    """Section 4: LoRA's equations and parameter counts, training, metrics and the ablation."""
    document.heading(2, SECTIONS[3])
    _backbone(document, run)
    if run.classifier is None:
        not_run(document, "`metrics/classifier.json`", "train")
        return
    _lora(document, run)
    mode = run.classifier.get("mode", "lora")
    if mode != "lora":
        document.text(f"**This run trained `{mode}`** ({ABLATION_NAMES.get(mode, mode)}) instead of LoRA adapters "
                      "(`[train] mode`); the equations above describe the default, and the counts are this run's.")
    _classifier(document, run)
    _ablation(document, run)


def _backbone(document: Document, run: RunRecord) -> None:
    document.text("The backbone is torchvision's ResNet-18 with a one-channel stem, reading log-mel spectrograms "
                  f"({MEL_N_BANDS} bands at {MEL_SR / 1000:g} kHz, hop {MEL_HOP}: the MTG-Jamendo mel chain); its "
                  f"embedding is the {len(EMBEDDING_COLUMNS)}-d global average pool. It is first trained on the original "
                  "tags, one logit per tag, with the binary cross-entropy over T tags:")
    document.equation(r"\mathcal{L}_{\mathrm{tags}} = -\frac{1}{T} \sum_{t=1}^{T} "
                      r"\left[ y_t \log \sigma(o_t) + (1 - y_t) \log\left(1 - \sigma(o_t)\right) \right]")
    pretrain = run.pretrain
    if pretrain is None:
        backbone = used_settings(run, "pretrain", "pretrain").get("backbone")
        document.text(f"*The backbone was loaded from `{backbone}`; no pretraining metrics in this run.*" if backbone
                      else "*No pretraining metrics (`metrics/pretrain.json`) in this run.*")
        return
    test, history = pretrain.get("test", {}), pretrain.get("history", {})
    document.text(f"Pretraining ran {history.get('epochs_run')} epochs (best {history.get('best_epoch')}, validation "
                  f"ROC-AUC macro {number(history.get('best_val_roc_auc_macro'))}). On the test split, scored on the "
                  f"original tags as published MTG-Jamendo results are (macro over tags with a positive and a negative "
                  f"test track: {test.get('n_tags_scored')} of {test.get('n_tags')}):")
    document.table(["ROC-AUC macro", "PR-AUC macro", "F1 macro (threshold 0.5)", "test tracks"],
                   [[number(test.get("roc_auc_macro")), number(test.get("pr_auc_macro")), number(test.get("f1_macro")),
                     integer(pretrain.get("n_tracks", {}).get("test"))]], numeric=[True] * 4)


def _lora(document: Document, run: RunRecord) -> None:
    config = run.classifier.get("config", {})
    parameters = run.classifier["parameters"]
    document.text("For the new labels the backbone is frozen and LoRA (Hu et al. 2021) adapts it: beside a frozen "
                  r"weight $W_0$ a trainable low-rank update of rank $r$ is added and scaled by $\alpha / r$,")
    document.equation(r"h = W_0 x + \frac{\alpha}{r} B A x, \qquad W_0 \in \mathbb{R}^{d \times k}, \quad "
                      r"B \in \mathbb{R}^{d \times r}, \quad A \in \mathbb{R}^{r \times k}, \quad r \ll \min(d, k)")
    document.text(r"For a convolution $W_0 \in \mathbb{R}^{c_{\mathrm{out}} \times c_{\mathrm{in}} \times k_h \times k_w}$ "
                  r"(peft's `Conv2d` adapter), $A$ is an $r$-channel convolution with the original kernel size, stride "
                  r"and padding and $B$ a 1×1 convolution back to $c_{\mathrm{out}}$ channels, so $d = c_{\mathrm{out}}$ "
                  r"and $k = c_{\mathrm{in}} k_h k_w$:")
    document.equation(r"h = W_0 * x + \frac{\alpha}{r} \, B * (A * x), \qquad "
                      r"\Delta W = \frac{\alpha}{r} B A \in \mathbb{R}^{c_{\mathrm{out}} \times c_{\mathrm{in}} k_h k_w}")
    document.text(r"$A$ starts Kaiming-uniform and $B = 0$, so $\Delta W = 0$ and the adapted network computes exactly "
                  r"the pretrained function at step 0. An adapter trains $r(d + k)$ parameters instead of the layer's $dk$:")
    document.equation(r"\underbrace{r\,(d + k)}_{\text{LoRA}} \quad \text{vs} \quad \underbrace{d\,k}_{\text{full}}")
    if run.adapters is not None and len(run.adapters):
        adapters = run.adapters.assign(full=lambda t: t["d"] * t["k"], lora=lambda t: t["r"] * (t["d"] + t["k"]))
        rows = [[f"`{row.layer}`", row.kernel, integer(row.d), integer(row.k), integer(row.r), integer(row.full),
                 integer(row.lora), percent(row.lora / row.full)] for row in adapters.itertuples()]
        rows.append(["**all adapted layers**", "", "", "", "", integer(adapters["full"].sum()),
                     integer(adapters["lora"].sum()), percent(adapters["lora"].sum() / adapters["full"].sum())])
        document.text(f"The classifier's adapters, read from its checkpoint (r = {config.get('r')}, α = {config.get('alpha')}, "
                      f"scale α/r = {number(config.get('alpha', 0) / config.get('r', 1), 2)}):")
        document.table(["layer", "kernel", "d", "k", "r", "dk", "r(d + k)", "r(d + k) / dk"], rows,
                       numeric=[False, False, True, True, True, True, True, True])
    document.table(["part", "parameters", "trains"],
                   [["frozen backbone (convolutions, BatchNorm)", integer(parameters["backbone"]), "no"],
                    ["LoRA adapters", integer(parameters["adapters"]), "yes"],
                    ["new head (512 → labels)", integer(parameters["head"]), "yes"],
                    ["**trainable**", f"**{integer(parameters['trainable'])}**",
                     f"{percent(parameters.get('trainable_share_of_backbone'))} of the backbone"]],
                   numeric=[False, True, False])
    document.text("Every BatchNorm stays in evaluation mode: its running mean and variance are those of pretraining "
                  "and never update, and its affine γ, β are frozen with the rest of the backbone.")


def _classifier(document: Document, run: RunRecord) -> None:
    metrics = run.classifier
    config = metrics.get("config", {})
    weighted = config.get("class_weighting", False)
    document.text("Adapters and head minimise the cross-entropy of the softmax over the $C$ new labels"
                  + (", each track weighted by its class's $w_c = n / (C n_c)$ (scikit-learn's \"balanced\"), the loss "
                     "being the weighted mean:" if weighted else ":"))
    if weighted:
        document.equation(r"\mathcal{L} = -\frac{\sum_{i} w_{y_i} \log p_{i, y_i}}{\sum_{i} w_{y_i}}, \qquad "
                          r"p_{ic} = \frac{e^{o_{ic}}}{\sum_{c'} e^{o_{ic'}}}, \qquad w_c = \frac{n}{C \, n_c}")
    else:
        document.equation(r"\mathcal{L} = -\frac{1}{n} \sum_{i} \log p_{i, y_i}, \qquad p_{ic} = \frac{e^{o_{ic}}}{\sum_{c'} e^{o_{ic'}}}")
    document.text("Predictions average the logits of several crops of each track. Accuracy and macro-F1 over the "
                  "test split, with $P_c$ and $R_c$ the precision and recall of label c:")
    document.equation(r"\mathrm{accuracy} = \frac{1}{n} \sum_{i=1}^{n} \mathbb{1}\left[\hat{y}_i = y_i\right], \qquad "
                      r"\mathrm{F1}_{\mathrm{macro}} = \frac{1}{C} \sum_{c=1}^{C} \frac{2 P_c R_c}{P_c + R_c}")
    splits = metrics.get("n_tracks_per_split", {})
    document.text(f"Trained with AdamW (lr {config.get('lr')}, weight decay {config.get('weight_decay')}, batch "
                  f"{config.get('batch_size')}, crops of {config.get('crop_frames')} frames) for {metrics.get('epochs_run')} "
                  f"epochs with early stopping on validation macro-F1 (patience {config.get('patience')}); the best epoch, "
                  f"{metrics.get('best_epoch')}, is kept. Splits: {integer(splits.get('train'))} training, "
                  f"{integer(splits.get('validation'))} validation, {integer(splits.get('test'))} test tracks.")
    document.table(["test accuracy", "test macro-F1", "validation macro-F1 (best)", "seconds per epoch", "device", "processes"],
                   [[number(metrics["accuracy"]), number(metrics["macro_f1"]), number(metrics.get("best_val_macro_f1")),
                     number(metrics.get("train_seconds_per_epoch"), 1), metrics.get("device", "—"), str(metrics.get("world_size", 1))]],
                   numeric=[True] * 4 + [False, True])
    per_class = metrics.get("per_class", {})
    document.table(["label", "precision", "recall", "F1", "test tracks"],
                   [[label, number(row["precision"]), number(row["recall"]), number(row["f1"]), integer(row["support"])]
                    for label, row in per_class.items()], numeric=[False, True, True, True, True])
    confusion = metrics.get("confusion_matrix")
    if confusion:
        document.figure("confusion_matrix", figures.confusion_matrix(confusion["matrix"], confusion["labels"]),
                        "test-split confusion matrix (colour: share of the true label's tracks; numbers: tracks)")
    pretrain_history = (run.pretrain or {}).get("history", {})
    document.figure("training_curves", figures.training_curves(
        pretrain_history.get("epochs"), metrics.get("history"),
        pretrain_best_epoch=pretrain_history.get("best_epoch"), classifier_best_epoch=metrics.get("best_epoch")),
        "training curves: backbone pretraining on the tags (left), LoRA classifier on the new labels (right)")


def _ablation(document: Document, run: RunRecord) -> None:
    document.heading(3, "Ablation")
    if run.ablation is None:
        not_run(document, "the ablation (`metrics/ablation.json`)", "ablate")
        _ablation_sizes(document, run)
        return
    rows = run.ablation.get("variants", [])
    n_tracks = run.ablation.get("n_tracks", {})
    document.text("Every variant trains on the same splits with the same settings; each is scored on the new labels "
                  "(test accuracy and macro-F1) and, through a logistic probe on its embeddings, on the original tags "
                  f"(test ROC-AUC and PR-AUC macro). {integer(n_tracks.get('train'))} training and "
                  f"{integer(n_tracks.get('test'))} test tracks.")
    document.table(["variant", "trainable parameters", "checkpoint", "s / epoch", "wall time", "accuracy", "macro-F1",
                    "tag ROC-AUC", "tag PR-AUC"],
                   [[_variant_name(row["variant"]), integer(row.get("trainable_parameters")), _megabytes(row.get("checkpoint_bytes")),
                     number(row.get("seconds_per_epoch"), 1), _duration(row.get("wall_seconds")), number(row.get("accuracy")),
                     number(row.get("macro_f1")), number(row.get("tag_roc_auc_macro")), number(row.get("tag_pr_auc_macro"))]
                    for row in rows], numeric=[False] + [True] * 8)
    document.figure("ablation", figures.ablation(rows),
                    "ablation: new-label macro-F1 and tag ROC-AUC against trainable parameters")


def _ablation_sizes(document: Document, run: RunRecord) -> None:
    """Without an ablation run: what each variant would train, from the adapted layers' shapes."""
    if run.adapters is None or not len(run.adapters):
        return
    parameters = run.classifier["parameters"]
    per_rank = int((run.adapters["d"] + run.adapters["k"]).sum())
    ranks = used_settings(run, "ablate", "ablate").get("ranks", [])
    rows = [[_variant_name(f"lora-r{r}"), integer(r * per_rank + parameters["head"])] for r in ranks]
    rows += [[_variant_name("full"), integer(parameters["backbone"] + parameters["head"])],
             [_variant_name("probe"), integer(parameters["head"])]]
    document.text("Trainable parameters of the variants it compares, from the shapes of the adapted layers above "
                  r"($\sum r(d + k)$ plus the head):")
    document.table(["variant", "trainable parameters"], rows, numeric=[False, True])


def _variant_name(variant: str) -> str:
    if variant.startswith("lora-r"):
        return f"LoRA r = {variant.removeprefix('lora-r')}"
    return ABLATION_NAMES.get(variant, variant)


def _megabytes(size: Any) -> str:
    return "—" if size is None else f"{size / 1e6:.2f} MB"


def _duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
