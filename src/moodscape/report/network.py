"""Report section 4: the backbone, LoRA, the new-label classifier and the ablation (step 3)."""

from __future__ import annotations

from typing import Any

from moodscape.artifacts import EMBEDDING_COLUMNS
from moodscape.audio import MEL_HOP, MEL_N_BANDS, MEL_SR

from . import figures
from .record import SECTIONS, RunRecord, not_run, used_settings
from .markdown import Document, integer, number, percent

ABLATION_NAMES = {"full": "full fine-tuning", "probe": "linear probe (head only)",
                  "tags": "tag-trained backbone + logistic probe", "stage1_features": "stage-1 features (no network)"}


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
                  f"embedding is the {len(EMBEDDING_COLUMNS)}-d global average pool.")
    if (run.pretrain or {}).get("objective") == "contrastive":
        _contrastive_backbone(document, run.pretrain)
        return
    document.text("It is first trained on the original tags, one logit per tag, with the binary cross-entropy over T tags:")
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
    _tag_baseline(document, run, test)


def _contrastive_backbone(document: Document, pretrain: dict[str, Any]) -> None:
    """The self-supervised backbone: NT-Xent over two augmented crops of each track, and its scores."""
    history, config = pretrain.get("history", {}), pretrain.get("history", {}).get("config", {})
    document.text(f"It is trained without labels ({pretrain.get('reason')}): two crops of each track, cut at random "
                  "positions and each given its own level, fade, EQ tilt and shift along the mel bands, are positives; "
                  "the other crops of the batch are negatives. A projection head maps each embedding to z (discarded "
                  f"after training), and over the 2B crops of a batch, with τ = {config.get('temperature')} and p(i) "
                  "the partner of crop i, the NT-Xent loss is:")
    document.equation(r"\mathcal{L} = -\frac{1}{2B} \sum_{i=1}^{2B} \log \frac{\exp(\cos(z_i, z_{p(i)}) / \tau)}"
                      r"{\sum_{k \ne i} \exp(\cos(z_i, z_k) / \tau)}")
    document.text(f"Pretraining ran {history.get('epochs_run')} epochs (best {history.get('best_epoch')}, the lowest "
                  f"validation NT-Xent, {number(history.get('best_val_nt_xent'))}; the partner was the nearest crop for "
                  f"{percent(history.get('best_val_retrieval_top1'))} of validation crops). On the test split the "
                  "backbone's own embedding (no projection) finds each crop's partner first for "
                  f"{percent(pretrain.get('test', {}).get('embedding_retrieval_top1'))} of "
                  f"{integer(2 * pretrain.get('n_tracks', {}).get('test', 0))} crops.")


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
    _label_baseline(document, run, metrics)
    per_class = metrics.get("per_class", {})
    document.table(["label", "precision", "recall", "F1", "test tracks"],
                   [[label, number(row["precision"]), number(row["recall"]), number(row["f1"]), integer(row["support"])]
                    for label, row in per_class.items()], numeric=[False, True, True, True, True])
    confusion = metrics.get("confusion_matrix")
    if confusion:
        document.figure("confusion_matrix", figures.confusion_matrix(confusion["matrix"], confusion["labels"]),
                        "test-split confusion matrix (colour: share of the true label's tracks; numbers: tracks)")
    pretrain_history = (run.pretrain or {}).get("history", {})
    contrastive = (run.pretrain or {}).get("objective") == "contrastive"
    document.figure("training_curves", figures.training_curves(
        pretrain_history.get("epochs"), metrics.get("history"), pretrain_best_epoch=pretrain_history.get("best_epoch"),
        classifier_best_epoch=metrics.get("best_epoch"), contrastive=contrastive),
        f"training curves: backbone pretraining {'without labels' if contrastive else 'on the tags'} (left), "
        "LoRA classifier on the new labels (right)")


def _baselines(run: RunRecord) -> dict[str, Any]:
    """``metrics/baselines.json`` when the record carries it (``{}`` otherwise)."""
    baselines = getattr(run, "baselines", None)
    return baselines if isinstance(baselines, dict) else {}


def _tag_baseline(document: Document, run: RunRecord, test: dict[str, Any]) -> None:
    """The backbone's tag scores beside a logistic regression on the stage-1 features, same test tracks."""
    section = _baselines(run).get("tags") or {}
    stage1 = section.get("stage1_features_logistic")
    if not stage1:
        return
    rows = [["tag-trained backbone (above)", number(test.get("roc_auc_macro")), number(test.get("pr_auc_macro")),
             integer((section.get("backbone") or {}).get("n_tracks", {}).get("test"))],
            ["baseline: logistic regression on the standardised stage-1 features", number(stage1.get("roc_auc_macro")),
             number(stage1.get("pr_auc_macro")), integer(stage1.get("n_tracks", {}).get("test"))]]
    gap = _difference(test.get("roc_auc_macro"), stage1.get("roc_auc_macro"))
    document.text("The same test tracks scored by a baseline with no network: one logistic regression per tag on the "
                  "standardised stage-1 features, fitted on the training split"
                  + (f"; the backbone's ROC-AUC macro is {gap:+.3f} from it." if gap is not None else "."))
    document.table(["model", "tag ROC-AUC macro", "tag PR-AUC macro", "test tracks"], rows, numeric=[False, True, True, True])


def _label_baseline(document: Document, run: RunRecord, metrics: dict[str, Any]) -> None:
    """The classifier beside a logistic regression on the stage-1 features for the new labels."""
    section = _baselines(run).get("labels") or {}
    stage1 = section.get("stage1_features_logistic")
    if not stage1:
        return
    document.text("The new labels are K-Means clusters of the standardised stage-1 features, so a linear model on "
                  "those features sets the bar for them (multinomial logistic regression, fitted on the training "
                  "split, scored on the classifier's test tracks). Beating it is not the aim of the network, which "
                  "hears only the audio; how well its embedding transfers is measured in the ablation below.")
    document.table(["model", "accuracy", "macro-F1", "test tracks"],
                   [["classifier (this run)", number(metrics.get("accuracy")), number(metrics.get("macro_f1")),
                     integer(metrics.get("n_tracks_per_split", {}).get("test"))],
                    ["baseline: logistic regression on the standardised stage-1 features", number(stage1.get("accuracy")),
                     number(stage1.get("macro_f1")), integer(stage1.get("n_tracks", {}).get("test"))]],
                   numeric=[False, True, True, True])


def _ablation(document: Document, run: RunRecord) -> None:
    document.heading(3, "Ablation")
    if run.ablation is None:
        not_run(document, "the ablation (`metrics/ablation.json`)", "ablate")
        _ablation_sizes(document, run)
        return
    rows = run.ablation.get("variants", [])
    n_tracks = run.ablation.get("n_tracks", {})
    epochs = (run.ablation.get("ablate_settings") or {}).get("epochs")
    document.text("Every variant trains on the same splits with the same settings"
                  + (f", at most {epochs} epoch{'s' if epochs != 1 else ''} each (early stopping on validation "
                     "macro-F1)" if epochs else "")
                  + "; a variant marked * is the run's own model, adopted rather than trained again. Each is scored "
                  f"on the new labels (test accuracy and macro-F1; {integer(n_tracks.get('train'))} training and "
                  f"{integer(n_tracks.get('test'))} test tracks), the tag-trained backbone through a logistic probe. "
                  "The last row uses no network: the same logistic regression on the standardised stage-1 features.")
    document.table(["variant", "trainable parameters", "checkpoint", "epochs run", "s / epoch", "wall time", "accuracy",
                    "macro-F1"],
                   [[_variant_name(row["variant"]) + (" *" if row.get("reused_from") and row["variant"] != "tags" else ""),
                     integer(row.get("trainable_parameters")), _megabytes(row.get("checkpoint_bytes")),
                     "—" if row.get("epochs_run") is None else str(row["epochs_run"]),
                     number(row.get("seconds_per_epoch"), 1), _duration(row.get("wall_seconds"))
                     + (f", embeddings from the {_variant_name(row['embedding_shared_with'])} row" if row.get("embedding_shared_with") else ""),
                     number(row.get("accuracy")),
                     number(row.get("macro_f1"))] for row in rows], numeric=[False] + [True] * 7)
    document.figure("ablation", figures.ablation(rows),
                    "ablation: new-label macro-F1 and tag ROC-AUC against trainable parameters "
                    "(dashed: stage-1 features, no network)")
    _transfer(document, run, rows)


def _transfer(document: Document, run: RunRecord, rows: list[dict[str, Any]]) -> None:
    """The seed's claim, measured: does training on the acoustic labels give a network that transfers better?"""
    transfer = run.ablation.get("transfer")
    n_tag_tracks = run.ablation.get("n_tag_tracks", {})
    document.heading(4, "Transfer: do the acoustic labels give a better network?")
    document.text("The new labels are a function of the stage-1 features, so new-label macro-F1 cannot say whether "
                  "training on them gives a better *network*. Transfer can: every variant's embedding (and the "
                  "stage-1 features, with no network) feeds the same models, fitted the same way. (1) The stage-4 "
                  "valence/arousal regressor, with this run's `[av]` settings and seed, cross-fitted on the MusAV "
                  "previews over the same whole-triplet folds for every row and scored out-of-fold with the MusAV "
                  "protocol; (2) a one-vs-rest logistic probe for the original tags, fitted on "
                  f"{integer(n_tag_tracks.get('train'))} training tracks and scored on {integer(n_tag_tracks.get('test'))} "
                  "test tracks (ROC-AUC and PR-AUC macro).")
    variants = {row["variant"] for row in rows}
    if {"probe", "tags"} <= variants:
        document.text("The linear probe trains only a new head on the frozen backbone, so its embedding is the "
                      "tag-trained backbone's: their transfer columns are the same numbers by construction.")
    if not transfer:
        document.text("*The MusAV transfer was not measured in this ablation (no `[musav]` set, or `ablate.transfer = false`).*")
    document.table(["variant", "MusAV arousal", "MusAV valence", "arousal R²", "valence R²", "tag ROC-AUC", "tag PR-AUC"],
                   [[_variant_name(row["variant"]), _pct(_accuracy(row, "arousal")), _pct(_accuracy(row, "valence")),
                     number((row.get("av_r2") or {}).get("arousal")), number((row.get("av_r2") or {}).get("valence")),
                     number(row.get("tag_roc_auc_macro")), number(row.get("tag_pr_auc_macro"))] for row in rows],
                   numeric=[False] + [True] * 6)
    if transfer:
        songs = transfer.get("n_songs", {})
        document.text(f"MusAV columns: % of correctly ordered pairs of the ground-truth files (`gt`), held-out, "
                      f"{integer(songs.get('embedded'))} of {integer(songs.get('listed'))} listed songs. Every subset:")
        _subset_table(document, rows)
    names = {row["variant"]: _variant_name(row["variant"]) for row in rows}
    document.figure("ablation_transfer", figures.ablation_transfer(rows, names),
                    "transfer of each variant's embedding: MusAV pairwise accuracy (held-out) and tag ROC-AUC "
                    "(dashed: stage-1 features, no network)")
    for line in transfer_findings(rows):
        document.text(line)


def _subset_table(document: Document, rows: list[dict[str, Any]]) -> None:
    keys = []
    for row in rows:
        for entry in row.get("musav_pairwise") or []:
            if (entry.get("file"), entry.get("type")) not in keys:
                keys.append((entry.get("file"), entry.get("type")))
    if not keys:
        return
    table = []
    for subset, av_type in keys:
        cells = [f"`{subset}` {av_type}"]
        for row in rows:
            match = [e for e in row.get("musav_pairwise") or [] if (e.get("file"), e.get("type")) == (subset, av_type)]
            cells.append(_pct(match[0].get("accuracy")) if match else "—")
        table.append(cells)
    document.table(["subset", *(_variant_name(row["variant"]) for row in rows)], table, numeric=[False] + [True] * len(rows))


def transfer_findings(rows: list[dict[str, Any]]) -> list[str]:
    """What the transfer numbers show, in sentences computed from them (whichever way they go).

    Compares every variant trained on the new labels with the tag-trained backbone, and
    both with the stage-1 features, on MusAV arousal and valence accuracy and tag ROC-AUC.
    A difference is called a gain or a loss only when it exceeds one binomial standard
    error of the accuracy on the judged pairs; otherwise it is "within noise".
    """
    by_variant = {row["variant"]: row for row in rows}
    tags, stage1 = by_variant.get("tags"), by_variant.get("stage1_features")
    # The linear probe keeps the tag-trained backbone's embedding: it cannot transfer differently.
    trained = [row for row in rows if row["variant"] not in ("tags", "stage1_features", "probe")]
    lines = []
    if tags is None or not trained:
        return ["*The ablation has no tag-trained backbone row or no variant trained on the new labels, so the "
                "claim is not compared here.*"]
    verdicts = []
    for av_type in ("arousal", "valence"):
        base = _accuracy(tags, av_type)
        if base is None:
            continue
        parts = []
        for row in trained:
            value = _accuracy(row, av_type)
            if value is None:
                continue
            delta = value - base
            noise = _standard_error(row, av_type)
            verdict = "gain" if noise is not None and delta > noise else "loss" if noise is not None and delta < -noise else "noise"
            verdicts.append(verdict)
            parts.append(f"{_variant_name(row['variant'])} {value:.1f} % ({delta:+.1f} points)")
        reference = _accuracy(stage1, av_type) if stage1 else None
        deltas = [_accuracy(row, av_type) - base for row in trained if _accuracy(row, av_type) is not None]
        ahead, behind = sum(d > 0 for d in deltas), sum(d < 0 for d in deltas)
        trend = (f"{ahead} of {len(deltas)} ahead of the tag-trained backbone, {behind} behind" if deltas else "")
        lines.append(f"**MusAV {av_type}** (held-out pairwise accuracy, `gt`): tag-trained backbone {base:.1f} %; on the "
                     f"acoustic labels: {'; '.join(parts)}" + (f" ({trend})" if trend else "")
                     + (f". Stage-1 features with no network: {reference:.1f} %." if reference is not None else "."))
    roc = tags.get("tag_roc_auc_macro")
    if roc is not None:
        parts = [f"{_variant_name(row['variant'])} {row['tag_roc_auc_macro']:.3f} ({row['tag_roc_auc_macro'] - roc:+.3f})"
                 for row in trained if row.get("tag_roc_auc_macro") is not None]
        reference = stage1.get("tag_roc_auc_macro") if stage1 else None
        lines.append(f"**Tag ROC-AUC macro** (probe): tag-trained backbone {roc:.3f}; on the acoustic labels: "
                     f"{'; '.join(parts)}" + (f". Stage-1 features: {reference:.3f}." if reference is not None else "."))
    if verdicts:
        gains, losses = verdicts.count("gain"), verdicts.count("loss")
        total = len(verdicts)
        if gains == total:
            summary = "every variant trained on the acoustic labels transfers better to valence/arousal than the tag-trained backbone: the measurement supports the claim on this data"
        elif losses == total:
            summary = "every variant trained on the acoustic labels transfers worse to valence/arousal than the tag-trained backbone: the measurement contradicts the claim on this data"
        elif gains > losses:
            summary = f"{gains} of {total} comparisons favour the acoustic labels, {losses} the tags, the rest are within noise: weak support for the claim"
        elif losses > gains:
            summary = f"{losses} of {total} comparisons favour the tag-trained backbone, {gains} the acoustic labels, the rest are within noise: the claim is not supported"
        else:
            summary = f"{gains} of {total} comparisons favour the acoustic labels, {losses} the tags, {total - gains - losses} are within noise: no clear difference"
        lines.append(f"In short, {summary}. A difference counts when it exceeds one binomial standard error of the "
                     "accuracy on the judged pairs: a yardstick for the noise of a few hundred pairs, not a significance test.")
    return lines


def _accuracy(row: dict[str, Any] | None, av_type: str) -> float | None:
    value = ((row or {}).get("musav_pairwise_accuracy") or {}).get(av_type)
    return None if value is None else float(value)


def _standard_error(row: dict[str, Any], av_type: str) -> float | None:
    """One binomial standard error, in points, of a ``gt`` accuracy on its judged pairs."""
    for entry in row.get("musav_pairwise") or []:
        if entry.get("file") == "gt" and entry.get("type") == av_type and entry.get("accuracy") is not None:
            judged = (entry.get("correct") or 0) + (entry.get("incorrect") or 0)
            if judged:
                p = entry["accuracy"] / 100
                return 100 * (p * (1 - p) / judged) ** 0.5
    return None


def _pct(value: Any) -> str:
    return "—" if value is None else f"{number(float(value), 1)} %"


def _difference(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else float(a) - float(b)


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
