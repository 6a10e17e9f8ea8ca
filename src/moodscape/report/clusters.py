"""Report sections 1–3: the data, the acoustic clusters (step 1) and their names (step 2)."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from . import figures
from .record import SECTIONS, RunRecord, not_run, used_settings
from .markdown import Document, integer, number, percent

SPLITS = ("train", "validation", "test")
PROFILE_ROWS = 5
"""Tags (or features) listed per cluster in the naming tables."""


def data_section(document: Document, run: RunRecord) -> None:
    """Section 1: the dataset, its splits, the tag vocabulary and the features used."""
    document.heading(2, SECTIONS[0])
    source = run.stage_settings("data").get("source", "jamendo")
    root = run.stage_settings(source).get("root")
    kind = "MTG-Jamendo (autotagging_moodtheme)" if source == "jamendo" else "a folder of audio files"
    document.text(f"Collection: {kind} at `{root}`, {integer(len(run.tracks))} tracks with "
                  f"{integer(len(run.vocabulary))} tags in the vocabulary.")
    labelled = set(run.track_labels["track_id"]) if run.track_labels is not None else set()
    inferred = set(run.lookup["track_id"]) if run.lookup is not None else set()
    rows = []
    for split in (*SPLITS, *sorted(set(run.tracks["split"]) - set(SPLITS))):
        ids = set(run.tracks.loc[run.tracks["split"] == split, "track_id"])
        rows.append([split or "(in no split)", integer(len(ids)), integer(len(ids & run.featured)), integer(len(ids & labelled)),
                     integer(len(ids & inferred))])
    document.table(["split", "tracks", "with features", "with a new label", "in the lookup"], rows,
                   numeric=[False, True, True, True, True])
    _skipped(document, run)
    train_tags = Counter(tag for tags in run.tracks.loc[run.tracks["split"] == "train", "tags"] for tag in tags)
    listing = ", ".join(f"{tag} ({train_tags.get(tag, 0)})" for tag in sorted(run.vocabulary, key=lambda t: (-train_tags.get(t, 0), t)))
    document.text(f"Tag vocabulary, with the number of training tracks carrying each tag: {listing}.")
    if run.selection is None:
        return
    source_used = run.manifest.get("stages", {}).get("features", {}).get("details", {}).get("source", "audio")
    used, dropped = run.selection.get("features_used", []), run.selection.get("features_dropped", [])
    document.text(f"Stage 1 features ({len(used)}, computed from `{source_used}`): "
                  + ", ".join(f"`{name}`" for name in used) + "."
                  + (f" Dropped before clustering (constant or missing): {', '.join(f'`{n}`' for n in dropped)}." if dropped else ""))


def _skipped(document: Document, run: RunRecord) -> None:
    """What the loader and each stage left out, and the most frequent reason."""
    rows = [["dataset loader", integer(len(run.dataset_problems)), run.dataset_problems[0] if run.dataset_problems else "—"]]
    for stage, table in run.skipped.items():
        reasons = table["reason"].value_counts()
        common = f"{reasons.index[0]} ({reasons.iloc[0]})" if len(reasons) else "—"
        rows.append([stage, integer(len(table)), common])
    document.text("Left out along the way (each stage lists its skipped tracks with the reason in the work "
                  "directory's `reports/`):")
    document.table(["stage", "tracks or rows skipped", "most frequent reason (tracks)"], rows, numeric=[False, True, False])


def clustering_section(document: Document, run: RunRecord) -> None:
    """Section 2: standardisation, K-Means, the K scan and the chosen K."""
    document.heading(2, SECTIONS[1])
    if run.selection is None:
        not_run(document, "`cluster_selection.json`", "cluster")
        return
    selection = run.selection
    document.text("Each feature $j$ is standardised with the mean and standard deviation of the training split "
                  "(scikit-learn's `StandardScaler`, fitted on training tracks only):")
    document.equation(r"z_{ij} = \frac{x_{ij} - \mu_j}{\sigma_j}")
    algorithm = ("mini-batch K-Means (k-means++ starts)" if selection.get("algorithm") == "minibatch"
                 else "K-Means (Lloyd's algorithm, k-means++ starts)")
    document.text(f"{algorithm} then partitions the training tracks into $K$ clusters "
                  r"$C_1, \dots, C_K$ with centroids $\mu_k$, minimising the inertia:")
    document.equation(r"\min\limits_{C_1, \dots, C_K} \sum_{k=1}^{K} \sum_{i \in C_k} \left\lVert z_i - \mu_k \right\rVert^2")
    document.text("Tracks of the validation and test splits are assigned to the nearest centroid afterwards. "
                  "Three scores compare the K of the scan. The silhouette of track $i$, with $a(i)$ its mean distance to "
                  "the other tracks of its cluster and $b(i)$ its mean distance to the tracks of the nearest other "
                  "cluster, averaged over tracks (higher is better):")
    document.equation(r"s(i) = \frac{b(i) - a(i)}{\max\left(a(i),\, b(i)\right)}, \qquad "
                      r"S = \frac{1}{n} \sum_{i=1}^{n} s(i)")
    document.text("Davies–Bouldin, with $s_k$ the mean distance of cluster $k$'s tracks to its centroid (lower is better):")
    document.equation(r"\mathrm{DB} = \frac{1}{K} \sum_{k=1}^{K} \max\limits_{l \neq k} "
                      r"\frac{s_k + s_l}{\left\lVert \mu_k - \mu_l \right\rVert}")
    document.text("Calinski–Harabasz, the ratio of between- to within-cluster dispersion with $n$ tracks and "
                  r"overall mean $\mu$ (higher is better):")
    document.equation(r"\mathrm{CH} = \frac{\sum_{k} n_k \left\lVert \mu_k - \mu \right\rVert^2 / (K - 1)}"
                      r"{\sum_{k} \sum_{i \in C_k} \left\lVert z_i - \mu_k \right\rVert^2 / (n - K)}")
    chosen = selection["k"]
    rows = [[f"**{row['k']}**" if row["k"] == chosen else str(row["k"]), number(row.get("inertia"), 1),
             number(row.get("silhouette")), number(row.get("davies_bouldin")), number(row.get("calinski_harabasz"), 1)]
            for row in selection.get("scan", [])]
    if rows:
        sample = selection.get("silhouette_sample")
        document.text(f"The scan over K = {selection['k_range'][0]}…{selection['k_range'][1]} "
                      f"({selection.get('algorithm', 'kmeans')}, {integer(selection.get('n_train'))} training tracks; "
                      f"silhouette on {integer(sample)} of them):")
        document.table(["K", "inertia", "silhouette", "Davies–Bouldin", "Calinski–Harabasz"], rows, numeric=[True] * 5)
        document.figure("k_selection", figures.k_selection(selection["scan"], chosen),
                        f"the K scan: the elbow of the inertia and the three scores; K = {chosen} marked")
    if selection.get("structure") == "none":
        document.text(f"**The scan found no cluster structure** (Kneedle gap {number(selection.get('knee_gap'), 2)}, "
                      f"silhouette rise {number(selection.get('silhouette_rise'))}): every K of it is as arbitrary as the next, "
                      f"so K is the target label count, `cluster.target_k` = {selection.get('target_k')}.")
    document.text(f"**Chosen K = {chosen}** by the rule `{selection.get('rule')}`: {selection.get('rule_text', '')}",
                  f"Here: {selection.get('reason', '')}. {integer(selection.get('n_assigned'))} tracks were assigned a cluster.")
    if run.clusters is not None:
        sizes = run.clusters.merge(run.tracks[["track_id", "split"]], on="track_id").groupby(["cluster_id", "split"]).size().unstack(fill_value=0)
        document.table(["cluster", *[split for split in SPLITS if split in sizes]],
                       [[str(cluster), *[integer(sizes.loc[cluster, split]) for split in SPLITS if split in sizes]] for cluster in sizes.index],
                       numeric=[False] + [True] * sum(split in sizes for split in SPLITS))


def naming_section(document: Document, run: RunRecord) -> None:
    """Section 3: the distinctiveness score, the per-cluster tag tables and the heat map."""
    document.heading(2, SECTIONS[2])
    if run.profiles is None:
        not_run(document, "`cluster_profiles.json`", "label")
        return
    label = used_settings(run, "label", "label")
    document.text("A cluster is named after the tags its training tracks carry more often than the whole training "
                  "collection does. For cluster $c$ and tag $t$, with $a$ tracks of the cluster's $n$ carrying $t$, $A$ of the "
                  r"collection's $N$, $p = A / N$ and a Beta prior of $\alpha$ pseudo-tracks centred on $p$ (Monroe, Colaresi & Quinn "
                  "2008, one group against the whole corpus), the score is the z-score of the smoothed log-odds ratio:")
    document.equation(r"\delta_{ct} = \log \frac{a + \alpha p}{n - a + \alpha (1 - p)} "
                      r"- \log \frac{A + \alpha p}{N - A + \alpha (1 - p)}")
    document.equation(r"\sigma_{ct}^2 = \frac{1}{a + \alpha p} + \frac{1}{n - a + \alpha (1 - p)} "
                      r"+ \frac{1}{A + \alpha p} + \frac{1}{N - A + \alpha (1 - p)}, \qquad z_{ct} = \frac{\delta_{ct}}{\sigma_{ct}}")
    document.text("and the lift is the tag's share in the cluster over its share in the collection:")
    document.equation(r"\mathrm{lift}_{ct} = \frac{a / n}{A / N}")
    document.text(f"With $\\alpha = {label.get('prior')}$, a tag is *distinctive* for a cluster when "
                  f"$\\mathrm{{lift}} \\geq {label.get('min_lift')}$, $a \\geq {label.get('min_tag_count')}$ and "
                  f"$z \\geq {label.get('min_score')}$; the name joins the "
                  f"{label.get('max_tags_in_name')} highest-z distinctive tags, names are unique, and clusters with fewer "
                  f"than {label.get('min_size')} training tracks are dropped (their tracks get no new label). "
                  f"The profiles were fitted on {integer(run.profiles.get('n_tracks'))} training tracks.")
    clusters = run.profiles.get("clusters", [])
    _acoustic_text(document, label)
    document.table(["cluster", "training tracks", "name", "named by", "distinctive tags", "naming features (z)"],
                   [[str(c["cluster_id"]), integer(c["size"]), c["name"] or f"dropped: {c['dropped']}",
                     c.get("named_by") or "—", ", ".join(c.get("distinctive_tags", [])) or "—",
                     ", ".join(f"{f['feature']} {f['z']:+.2f} ({f['word']})" for f in c.get("acoustic_features", []) if f["in_name"]) or "—"]
                    for c in clusters],
                   numeric=[False, True, False, False, False, False])
    for cluster in clusters:
        title = cluster["name"] or "dropped"
        document.text(f"**Cluster {cluster['cluster_id']} — {title}** ({integer(cluster['size'])} training tracks"
                      + (f"; dropped: {cluster['dropped']}" if cluster["dropped"] else "") + ")")
        if cluster.get("top_tags"):
            document.table(["tag", "tracks", "share", "collection share", "lift", "z", "distinctive"],
                           [[row["tag"], integer(row["count"]), percent(row["share"]), percent(row["global_share"]),
                             number(row["lift"], 2), number(row["score"], 2), "yes" if row["distinctive"] else ""]
                            for row in cluster["top_tags"][:PROFILE_ROWS]],
                           numeric=[False, True, True, True, True, True, False])
        if cluster.get("named_by") == "acoustic" or (cluster.get("acoustic_features") and not cluster.get("top_tags")):
            document.table(["feature", "z (cluster mean)", "word", "in the name"],
                           [[row["feature"], number(row["z"], 2), row["word"] or "—", "yes" if row["in_name"] else ""]
                            for row in cluster["acoustic_features"][:PROFILE_ROWS]],
                           numeric=[False, True, False, False])
    names = {c["cluster_id"]: c["name"] or f"{c['cluster_id']} (dropped)" for c in clusters}
    if run.tag_score is not None:
        score = _heatmap_order(run.tag_score)
        highlight = {names.get(c["cluster_id"], str(c["cluster_id"])): c.get("distinctive_tags", []) for c in clusters}
        document.figure("cluster_tags", figures.tag_heatmap(score.rename(index=lambda c: names.get(c, str(c))), highlight=highlight),
                        "distinctiveness z of every tag (columns) in every cluster (rows), training split; "
                        "outlined: the distinctive tags")
    if any(c.get("named_by") == "acoustic" for c in clusters):
        profile = _heatmap_order(pd.DataFrame({c["cluster_id"]: {f["feature"]: f["z"] for f in c["acoustic_features"]}
                                               for c in clusters}).T).rename(index=names)
        profile.columns.name = "stage-1 feature"
        highlight = {names[c["cluster_id"]]: [f["feature"] for f in c["acoustic_features"] if f["in_name"]] for c in clusters}
        document.figure("cluster_features", figures.tag_heatmap(profile, highlight=highlight, value_name="z of the cluster mean"),
                        "acoustic profile: the mean standardised value of every stage-1 feature (columns) in every cluster "
                        "(rows), training split; outlined: the features whose words name a cluster")


def _acoustic_text(document: Document, label: dict) -> None:
    """How a cluster without a distinctive tag is named after its sound."""
    if not label.get("acoustic_names", True):
        document.text("Clusters without a distinctive tag are dropped (`label.acoustic_names` is off).")
        return
    document.text("A cluster without a distinctive tag (and every cluster of a collection without tags) is named after "
                  "its sound instead: with $z_{ij}$ the standardised feature $j$ of track $i$ (as the clustering "
                  "standardises it), the cluster's acoustic profile is its mean, in standard deviations of the collection:")
    document.equation(r"\bar z_{cj} = \frac{1}{n_c} \sum_{i \in C_c} z_{ij}")
    document.text(f"The features with $|\\bar z_{{cj}}| \\geq {label.get('min_feature_z', 0.5)}$ and a plain word "
                  "(tempo: Slow / Fast, spectral centroid: Dark / Bright, onset rate: Smooth / Percussive, mode: Minor / "
                  "Major, …; one word per quality), farthest first, give up to "
                  f"{label.get('max_words_in_name', 3)} words of the name, under the same uniqueness rules; tag names are "
                  "chosen first.")


def _heatmap_order(score: pd.DataFrame) -> pd.DataFrame:
    """Columns (tags, features) not 0 everywhere, grouped by the cluster they score highest in (a diagonal-ish layout)."""
    carried = score.loc[:, (score != 0).any(axis=0)]
    order = sorted(carried.columns, key=lambda tag: (carried.index.get_loc(carried[tag].idxmax()), -carried[tag].max()))
    return carried[order]
