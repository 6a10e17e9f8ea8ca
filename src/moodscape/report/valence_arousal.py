"""Report sections 5 and 6: the valence/arousal regressor (step 4) and the lookup (step 5)."""

from __future__ import annotations

import pandas as pd

from moodscape.artifacts import AV_COLUMNS, LABEL_COLUMN_PREFIX

from . import figures
from .record import SECTIONS, RunRecord, not_run, used_settings
from .markdown import Document, integer, number, percent

UNLABELLED = "(no label)"


def regression_section(document: Document, run: RunRecord) -> None:
    """Section 5: the MLP, its losses, R², Pearson r and the MusAV pairwise accuracy."""
    document.heading(2, SECTIONS[4])
    if run.av is None:
        not_run(document, "`metrics/av.json` (stage 4 needs the MusAV dataset: `[musav] root`)", "train-av")
        return
    av, settings = run.av, used_settings(run, "train-av", "av")
    mode = av.get("mode", settings.get("mode"))
    document.text("A small MLP maps a track's standardised embedding $x$ (the classifier's backbone, crops averaged) "
                  f"to valence and arousal: one hidden layer of {settings.get('hidden')} ReLU units with dropout "
                  f"{settings.get('dropout')},")
    document.equation(r"\hat{y} = W_2 \, \mathrm{ReLU}\left(W_1 x + b_1\right) + b_2 \in \mathbb{R}^2")
    document.text("trained with AdamW on the MusAV songs: the mean squared error on their absolute Spotify values "
                  "(valence; energy as arousal), over the known targets $K$,")
    document.equation(r"\mathcal{L}_{\mathrm{MSE}} = \frac{1}{|K|} \sum_{(i, c) \in K} \left(\hat{y}_{ic} - y_{ic}\right)^2")
    document.text(r"and/or the pairwise ranking loss on the human judgments (RankNet: a logistic model "
                  r"$P(a \succ b) = \sigma(f(a) - f(b))$, target $t = 1$ when $a$ was judged higher, 0 when $b$ was, "
                  r"½ when equal), which for a pair with $a$ above $b$ is $-\log \sigma(f(a) - f(b))$:")
    document.equation(r"\mathcal{L}_{\mathrm{rank}} = -\left[ t \log \sigma\left(f(a) - f(b)\right) "
                      r"+ (1 - t) \log\left(1 - \sigma\left(f(a) - f(b)\right)\right) \right]")
    used = {"mse": "the MSE alone", "rank": "the ranking loss alone (outputs then calibrated to the target scale)",
            "combined": "both, $\\mathcal{L}_{\\mathrm{MSE}} + " + f"{settings.get('rank_weight')}" + r" \cdot \mathcal{L}_{\mathrm{rank}}$"}.get(mode, mode)
    document.text(f"This run used **{mode}**: {used}. The {av.get('folds')} folds are {av.get('held_out_by')}: every "
                  "song's prediction below comes from a model that never saw it or any song it was compared with; the "
                  "saved regressor averages the fold models. Held-out scores, with R² and Pearson's r as usual,")
    document.equation(r"R^2 = 1 - \frac{\sum_i (y_i - \hat{y}_i)^2}{\sum_i (y_i - \bar{y})^2}, \qquad "
                      r"r = \frac{\sum_i (y_i - \bar{y})(\hat{y}_i - \bar{\hat{y}})}"
                      r"{\sqrt{\sum_i (y_i - \bar{y})^2} \sqrt{\sum_i (\hat{y}_i - \bar{\hat{y}})^2}}")
    held_out = av.get("held_out", {})
    document.table(["", "R²", "Pearson r", "RMSE", "songs"],
                   [[name, number(held_out.get(name, {}).get("r2")), number(held_out.get(name, {}).get("pearson_r")),
                     number(held_out.get(name, {}).get("rmse")), integer(held_out.get(name, {}).get("n"))]
                    for name in AV_COLUMNS], numeric=[False, True, True, True, True])
    document.text("MusAV's own measure (Bogdanov et al., ISMIR 2022, `scripts/evaluate.py`) is the share of the "
                  "annotators' pairs whose order the predictions reproduce. Pairs judged equal (`ab`) and pairs "
                  "with equal predictions are skipped:")
    document.equation(r"\mathrm{acc} = 100 \cdot \frac{\#\left\{(a, b) : \operatorname{sign}\left(f(a) - f(b)\right) "
                      r"= \text{judged order}\right\}}{\#\,\text{correct} + \#\,\text{incorrect}}")
    baselines = (run.baselines or {}).get("av")
    _pairwise_table(document, av, baselines)
    _baseline_regression(document, av, baselines)
    if run.musav is not None and len(run.musav):
        predicted = run.musav[[f"{name}_predicted" for name in AV_COLUMNS]].set_axis(list(AV_COLUMNS), axis=1)
        document.figure("av_scatter", figures.av_scatter(predicted, run.musav[list(AV_COLUMNS)], held_out),
                        "held-out valence and arousal of the MusAV songs against their Spotify targets")


BASELINE_COLUMNS = {"best_feature": "best single feature %", "ridge": "ridge on features %",
                    "spotify": "Spotify-style targets %", "oracle": "archetype oracle %"}
"""Column of each baseline row of ``metrics/baselines.json`` ("av") in the pairwise-accuracy table."""


def _pairwise_table(document: Document, av: dict, baselines: dict | None) -> None:
    """The MusAV pairwise accuracy per ground-truth subset, the model beside its baselines."""
    document.text("per ground-truth subset (`gt`: all ground-truth pairs; `gt.fa`: full annotator agreement only; "
                  "`gt.ct`: triplet-consistent pairs only; `gt.ct.fa`: both), beside baselines scored with the same "
                  "protocol on the same held-out songs and pairs, each fitted on the training folds of the model's own "
                  "folds: the one stage-1 feature (and sign) whose order best matches the training songs' judged pairs, "
                  "read out on the target scale by least squares; ridge regression on all standardised stage-1 "
                  "features (penalty by leave-one-out CV on the training songs); the Spotify-style targets themselves, "
                  "which need no training" + (" (pairs of a song without one are left out of that column)"
                                               if baselines else "")
                  + ("; and, on the demo corpus, an oracle that predicts the mean training target of the song's "
                     "planted archetype." if baselines and "oracle" in baselines["predictors"] else "."))
    predictors = baselines["predictors"] if baselines else {}
    shown = [key for key in BASELINE_COLUMNS if key in predictors]
    accuracy = {key: {(row["file"], row["type"]): row["accuracy"] for row in predictors[key]["pairwise"]} for key in shown}
    document.table(["ground truth", "dimension", "accuracy %", *(BASELINE_COLUMNS[key] for key in shown), "correct",
                    "incorrect", "skipped (equal judgment)", "skipped (equal prediction)"],
                   [[row["file"], row["type"], number(row.get("accuracy"), 2),
                     *(number(accuracy[key].get((row["file"], row["type"])), 2) for key in shown),
                     integer(row["correct"]), integer(row["incorrect"]), integer(row["skipped_ab"]),
                     integer(row["skipped_equal"])]
                    for row in av.get("pairwise", [])], numeric=[False, False] + [True] * (len(shown) + 5))
    if baselines is None:
        not_run(document, "`metrics/baselines.json` (the baselines of step 4)", "train-av")


def _baseline_regression(document: Document, av: dict, baselines: dict | None) -> None:
    """R² and Pearson r of the model beside the best single feature and ridge; the MusAV set; in-domain or not."""
    musav_set = av.get("musav_set") or (baselines or {}).get("musav_set")
    note = av.get("in_domain_note") or (baselines or {}).get("in_domain_note")
    if musav_set:
        document.text(f"Every number of this section comes from the **{musav_set}**. "
                      + (f"**In-domain:** {note}" if note else ""))
    if baselines is None:
        return
    predictors = baselines["predictors"]
    model_songs = baselines.get("n_songs_model", baselines["n_songs"])
    if baselines["n_songs"] != model_songs:
        document.text(f"The baselines are scored on the {integer(baselines['n_songs'])} of {integer(model_songs)} songs "
                      f"whose previews gave stage-1 features ({len(baselines.get('feature_failures', []))} failed); "
                      "the pairwise table above scores the model on all of its songs, the table below on those.")
    keys = [key for key in ("model", "best_feature", "ridge", "oracle") if key in predictors]
    names = {"model": "model", "best_feature": "best feature", "ridge": "ridge", "oracle": "oracle"}
    document.text("Held-out R² and Pearson r against the Spotify-style targets on the same songs, with the feature the "
                  "best-single-feature baseline chose in most folds:")
    document.table(["dimension", *(f"R² {names[key]}" for key in keys), *(f"r {names[key]}" for key in keys),
                    "best single feature"],
                   [[name, *(number(predictors[key]["held_out"][name]["r2"]) for key in keys),
                     *(number(predictors[key]["held_out"][name]["pearson_r"]) for key in keys),
                     predictors["best_feature"]["feature"][name]] for name in AV_COLUMNS],
                   numeric=[False] + [True] * (2 * len(keys)) + [False])


def lookup_section(document: Document, run: RunRecord) -> None:
    """Section 6: the lookup's tracks, label distribution and valence/arousal map."""
    document.heading(2, SECTIONS[5])
    if run.lookup is None:
        not_run(document, "`inference_lookup.csv`", "infer")
        return
    lookup = run.lookup
    infer = used_settings(run, "infer", "infer")
    split = infer.get("split", "test")
    scope = (f"`{infer['track_list']}`" if infer.get("track_list") else f"`{infer['folder']}`" if infer.get("folder")
             else "every track of the collection" if split == "all" else f"the {split} split")
    label_columns = [c for c in lookup.columns if c.startswith(LABEL_COLUMN_PREFIX)]
    has_av = all(name in lookup for name in AV_COLUMNS)
    document.text(f"Stage 5 ran the merged network (adapters folded into the weights) and the regressor over "
                  f"{scope}: {integer(len(lookup))} tracks, each with a label, {len(label_columns)} label "
                  f"probabilities" + (", valence, arousal" if has_av else "") + " and a 512-d embedding.")
    labels = lookup["new_acoustic_label"].fillna(UNLABELLED)
    table = pd.DataFrame({"label": labels, "probability": lookup["probability"]})
    if has_av:
        table[list(AV_COLUMNS)] = lookup[list(AV_COLUMNS)]
    summary = table.groupby("label").agg(tracks=("probability", "size"), probability=("probability", "mean"),
                                          **({name: (name, "mean") for name in AV_COLUMNS} if has_av else {}))
    summary = summary.sort_values("tracks", ascending=False)
    document.table(["label", "tracks", "share", "mean probability", *(f"mean {name}" for name in AV_COLUMNS if has_av)],
                   [[row.Index, integer(row.tracks), percent(row.tracks / len(lookup)), number(row.probability),
                     *(number(getattr(row, name)) for name in AV_COLUMNS if has_av)] for row in summary.itertuples()],
                   numeric=[False] + [True] * (3 + 2 * has_av))
    _agreement(document, run)
    document.figure("label_distribution", figures.label_distribution(summary["tracks"]), "tracks per predicted label in the lookup")
    if has_av:
        document.figure("va_map", figures.va_map(lookup["valence"].to_numpy(), lookup["arousal"].to_numpy(), list(labels)),
                        "the lookup on the valence/arousal plane, coloured by predicted label")


def _agreement(document: Document, run: RunRecord) -> None:
    """How often the predicted label equals the cluster label, per split (test: the honest one)."""
    if run.track_labels is None:
        return
    joined = run.lookup[["track_id", "new_acoustic_label"]].merge(
        run.track_labels.rename(columns={"new_acoustic_label": "cluster_label"}), on="track_id").merge(
        run.tracks[["track_id", "split"]], on="track_id")
    if joined.empty:
        return
    agree = (joined["new_acoustic_label"] == joined["cluster_label"]).groupby(joined["split"]).agg(["mean", "size"])
    agree = agree.reindex([s for s in ("train", "validation", "test") if s in agree.index] + sorted(set(agree.index) - {"train", "validation", "test"}))
    document.text("Predicted label against the label of the track's acoustic cluster, for lookup tracks that have one "
                  "(training tracks were seen in training; the test split is the honest figure):")
    document.table(["split", "tracks", "agreement"],
                   [[split, integer(row["size"]), percent(row["mean"])] for split, row in agree.iterrows()],
                   numeric=[False, True, True])
