"""A synthetic serving bundle of any size, for the web app's load benchmark (issue 5).

``write_synthetic_bundle(root, n_tracks)`` writes every file of the serving bundle that
``moodscape infer`` leaves in a work directory, in the same formats:

- ``inference_lookup.csv``: track_id, new_acoustic_label, probability, p_<label> (label
  index order), valence, arousal, tags, duration;
- ``embeddings.parquet``: track_id, emb_000 … emb_511 (float32, Snappy, row groups);
- ``catalog_tracks.parquet``: track_id, audio_path ("": no audio), split;
- ``label_to_idx.json``, ``cluster_profiles.json`` (a cluster per label and one dropped
  cluster, as the label step leaves them), ``cluster_selection.json`` (a small K scan),
  ``metrics/classifier.json``, ``metrics/av.json``;
- ``models/inference_bundle.pt``: ``moodscape.inference.export_bundle`` of a randomly
  initialised ResNet with a head of ``n_labels`` and an unfitted 5-member AV ensemble.

The data are made so that recommendations mean something: each label has a centre in the
512-d embedding space (non-negative, like the pooled ReLU features of the real network),
each label has 32 sub-centres ("styles"), and a track is centre + style + noise. Valence
and arousal are the label's mood (a point of the valence/arousal plane that fits its
name) plus an offset of its style plus noise, so tracks near in embedding space are near
in mood too. Probabilities are a softmax of noisy logits favouring the track's label;
``new_acoustic_label`` is their argmax (so a few tracks carry another label than the one
they were drawn from, like a real classifier's mistakes). Tags come from a vocabulary
with a few tags per label and some shared ones; the profiles' tag statistics are computed
from the tags actually written.

Everything is written in chunks of ``chunk_size`` rows, so memory stays at a few hundred
MB whatever ``n_tracks`` is (1,000,000 tracks: about 2.1 GB of embeddings on disk).

Run: ``PYTHONPATH=src python bench/synthetic_bundle.py OUT --tracks 1000000``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

EMBEDDING_DIM = 512
EMBEDDING_COLUMNS = [f"emb_{index:03d}" for index in range(EMBEDDING_DIM)]
STYLES_PER_LABEL = 32
CHUNK_SIZE = 65_536

# Label names and their mood (valence, arousal on 0–1), as a run of the label step names them.
MOODS = [
    ("Calm / Relaxing", 0.62, 0.22),
    ("Party / Upbeat", 0.82, 0.84),
    ("Sad", 0.20, 0.28),
    ("Dark / Deep", 0.26, 0.55),
    ("Heavy / Action", 0.38, 0.90),
    ("Trailer / Epic", 0.58, 0.74),
    ("Romantic", 0.74, 0.40),
    ("Dreamy / Ambient", 0.50, 0.15),
    ("Happy / Pop", 0.88, 0.62),
    ("Tense / Suspense", 0.22, 0.72),
]
LABEL_TAGS = [
    ["calm", "relaxing", "soft", "meditative", "peaceful"],
    ["party", "upbeat", "dance", "fun", "groovy"],
    ["sad", "melancholic", "emotional", "lonely", "slow"],
    ["dark", "deep", "mysterious", "ominous", "night"],
    ["action", "heavy", "energetic", "aggressive", "powerful"],
    ["epic", "trailer", "dramatic", "film", "adventure"],
    ["romantic", "love", "warm", "tender", "sentimental"],
    ["dreamy", "ambient", "space", "atmospheric", "floating"],
    ["happy", "pop", "summer", "positive", "bright"],
    ["tense", "suspense", "thriller", "nervous", "horror"],
]
SHARED_TAGS = ["background", "melodic", "motivational", "children", "commercial", "documentary",
               "nature", "corporate", "game", "travel"]
COMBOS_PER_LABEL = 64


def label_moods(n_labels: int) -> list[tuple[str, float, float, list[str]]]:
    """(name, valence, arousal, tags) of each label; beyond the named ten, evenly spread moods."""
    moods = []
    for index in range(n_labels):
        if index < len(MOODS):
            name, valence, arousal = MOODS[index]
            tags = LABEL_TAGS[index]
        else:
            angle = 2 * math.pi * index / n_labels
            name, valence, arousal = f"Mood {index}", 0.5 + 0.3 * math.cos(angle), 0.5 + 0.3 * math.sin(angle)
            tags = [f"mood{index}_{j}" for j in range(5)]
        moods.append((name, valence, arousal, tags))
    return moods


class _Latent:
    """The fixed random structure shared by every chunk: centres, styles, tag combinations."""

    def __init__(self, n_labels: int, seed: int):
        rng = np.random.default_rng([seed, 0])
        self.moods = label_moods(n_labels)
        self.names = [name for name, *_ in self.moods]
        # Centres: non-negative, sparse-ish, like average-pooled ReLU features.
        self.centres = np.maximum(rng.normal(0.4, 0.8, (n_labels, EMBEDDING_DIM)), 0).astype(np.float32)
        self.styles = rng.normal(0.0, 0.35, (n_labels, STYLES_PER_LABEL, EMBEDDING_DIM)).astype(np.float32)
        # A style's mood offset: a fixed projection of its embedding offset, so mood follows embedding.
        projection = rng.normal(0.0, 1.0, (EMBEDDING_DIM, 2)).astype(np.float32)
        offsets = self.styles.reshape(-1, EMBEDDING_DIM) @ projection
        offsets = 0.08 * offsets / offsets.std(axis=0)
        self.style_va = offsets.reshape(n_labels, STYLES_PER_LABEL, 2)
        self.label_va = np.array([[v, a] for _, v, a, _ in self.moods], dtype=np.float32)
        self.label_share = rng.dirichlet(np.full(n_labels, 8.0))
        # Tags: a vocabulary; per label a list of comma-joined combinations and their incidence.
        self.vocab = sorted({tag for *_, tags in self.moods for tag in tags} | set(SHARED_TAGS))
        position = {tag: i for i, tag in enumerate(self.vocab)}
        self.combos, self.incidence = [], []
        for _, _, _, tags in self.moods:
            strings, incidence = [], np.zeros((COMBOS_PER_LABEL, len(self.vocab)), dtype=np.int64)
            for c in range(COMBOS_PER_LABEL):
                own = list(rng.choice(tags, size=rng.integers(1, 4), replace=False))
                shared = list(rng.choice(SHARED_TAGS, size=rng.integers(0, 3), replace=False))
                stray = [rng.choice(self.vocab)] if rng.random() < 0.2 else []
                combo = sorted(set(own + shared + stray)) if c else []  # combination 0: no tags at all
                strings.append(",".join(combo))
                incidence[c, [position[t] for t in combo]] = 1
            self.combos.append(np.array(strings, dtype=object))
            self.incidence.append(incidence)


def _chunk_columns(latent: _Latent, labels: np.ndarray, first: int, seed: int, chunk_index: int) -> dict:
    """Every column of one chunk of tracks drawn from ``labels`` (their generating labels)."""
    rng = np.random.default_rng([seed, 1, chunk_index])
    n, n_labels = len(labels), len(latent.names)
    styles = rng.integers(0, STYLES_PER_LABEL, n)
    embeddings = latent.centres[labels] + latent.styles[labels, styles]
    embeddings += rng.normal(0.0, 0.25, embeddings.shape).astype(np.float32)
    np.maximum(embeddings, 0, out=embeddings)
    logits = rng.normal(0.0, 1.0, (n, n_labels)).astype(np.float32)
    logits[np.arange(n), labels] += rng.uniform(1.0, 8.0, n).astype(np.float32)
    logits -= logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    predicted = probabilities.argmax(axis=1)
    va = latent.label_va[labels] + latent.style_va[labels, styles] + rng.normal(0.0, 0.06, (n, 2)).astype(np.float32)
    va = np.clip(va, 0.0, 1.0).astype(np.float32)
    combo_index = rng.integers(0, COMBOS_PER_LABEL, n)
    tags = np.empty(n, dtype=object)
    tag_counts = np.zeros((n_labels, len(latent.vocab)), dtype=np.int64)
    for label in range(n_labels):
        rows = predicted == label  # profiles count tags by the label a track ends up with
        drawn_from = labels == label
        tags[drawn_from] = latent.combos[label][combo_index[drawn_from]]
        for source in range(n_labels):
            both = rows & (labels == source)
            if both.any():
                counts = np.bincount(combo_index[both], minlength=COMBOS_PER_LABEL)
                tag_counts[label] += counts @ latent.incidence[source]
    return {
        "track_ids": [f"track_{first + i:07d}" for i in range(n)],
        "embeddings": embeddings,
        "probabilities": probabilities,
        "predicted": predicted,
        "valence": va[:, 0],
        "arousal": va[:, 1],
        "tags": tags,
        "duration": rng.uniform(20.0, 300.0, n),
        "tag_counts": tag_counts,
    }


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def _profiles(latent: _Latent, sizes: np.ndarray, tag_counts: np.ndarray, n_tracks: int) -> dict:
    """cluster_profiles.json: a cluster per label (cluster_id = label index) and one dropped cluster."""
    total = tag_counts.sum(axis=0)
    global_share = total / max(n_tracks, 1)
    clusters = []
    for label, (name, *_rest) in enumerate(latent.moods):
        size = int(sizes[label])
        share = tag_counts[label] / max(size, 1)
        lift = np.divide(share, global_share, out=np.zeros_like(share), where=global_share > 0)
        # The z-score of the share against the collection's (a stand-in for the label step's log-odds z).
        spread = np.sqrt(np.maximum(global_share * (1 - global_share), 1e-12) / max(size, 1))
        score = (share - global_share) / spread
        distinctive = (lift >= 1.2) & (tag_counts[label] >= 3) & (score >= 3.0)
        order = np.argsort(-score)[:10]
        top_tags = [{"tag": latent.vocab[t], "count": int(tag_counts[label, t]), "share": float(share[t]),
                     "global_share": float(global_share[t]), "lift": float(lift[t]), "score": float(score[t]),
                     "distinctive": bool(distinctive[t])} for t in order if tag_counts[label, t] > 0]
        clusters.append({"cluster_id": label, "size": size, "name": name, "named_by": "tags", "dropped": None,
                         "distinctive_tags": [item["tag"] for item in top_tags if item["distinctive"]][:3],
                         "top_tags": top_tags})
    dropped_id = len(latent.moods)
    reason = "too small: 4 tracks < min_size 5"
    clusters.append({"cluster_id": dropped_id, "size": 4, "name": None, "named_by": None, "dropped": reason,
                     "distinctive_tags": [], "top_tags": []})
    return {"fitted_on": "train", "n_tracks": int(n_tracks), "dropped": {str(dropped_id): reason}, "clusters": clusters}


def _selection(n_labels: int, n_tracks: int, seed: int) -> dict:
    """cluster_selection.json with a small K scan whose elbow and best silhouette are at K = n_labels + 1."""
    rng = np.random.default_rng([seed, 2])
    k_best = n_labels + 1
    ks = list(range(max(2, k_best - 3), k_best + 4))
    scan = []
    for k in ks:
        inertia = 4000.0 * (k_best / k) ** (1.6 if k <= k_best else 0.4)
        silhouette = 0.22 - 0.015 * abs(k - k_best) + float(rng.normal(0, 0.002))
        scan.append({"k": k, "inertia": inertia, "silhouette": silhouette,
                     "davies_bouldin": 1.4 + 0.06 * abs(k - k_best), "calinski_harabasz": 40.0 - 2.5 * abs(k - k_best)})
    best = max(scan, key=lambda row: row["silhouette"])["k"]
    return {
        "rule": "elbow_with_silhouette_guard",
        "rule_text": "K is the elbow of the inertia curve, provided its silhouette is at least 90% of the best "
                     "silhouette in the scan; otherwise K is the one with the best silhouette.",
        "k": k_best, "elbow_k": k_best, "best_silhouette_k": best,
        "reason": f"synthetic bundle: elbow of the inertia curve at K={k_best}",
        "k_range": [ks[0], ks[-1]], "algorithm": "kmeans", "n_tracks": int(n_tracks),
        "silhouette_sample": int(min(n_tracks, 10_000)), "features_used": ["bpm", "spectral_centroid_mean", "rms_mean"],
        "features_dropped": [], "scan": scan, "n_train": int(n_tracks), "n_assigned": int(n_tracks),
    }


def _classifier_metrics(names: list[str], confusion: np.ndarray) -> dict:
    """metrics/classifier.json from the confusion of generating label (truth) against argmax label."""
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    diagonal = np.diag(confusion).astype(float)
    precision = np.divide(diagonal, predicted, out=np.zeros_like(diagonal), where=predicted > 0)
    recall = np.divide(diagonal, support, out=np.zeros_like(diagonal), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(diagonal), where=precision + recall > 0)
    return {
        "accuracy": float(diagonal.sum() / max(confusion.sum(), 1)),
        "macro_f1": float(f1.mean()),
        "per_class": {name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                             "support": int(support[i])} for i, name in enumerate(names)},
        "confusion_matrix": {"labels": list(names), "matrix": confusion.astype(int).tolist()},
        "n_tracks": int(confusion.sum()),
        "mode": "lora",
        "parameters": {"backbone": 11170242, "adapters": 285696, "head": 513 * len(names), "trainable": 285696 + 513 * len(names)},
        "synthetic": True,
    }


def _av_metrics(n_tracks: int) -> dict:
    pairwise = []
    for file, accuracy in (("gt", (92.7, 83.8)), ("gt.fa", (95.1, 84.7))):
        for kind, value in zip(("arousal", "valence"), accuracy):
            total = 110
            correct = round(total * value / 100)
            pairwise.append({"file": file, "type": kind, "correct": correct, "incorrect": total - correct,
                             "skipped_ab": 3, "skipped_equal": 0, "skipped_other": 0,
                             "accuracy": 100.0 * correct / total, "pairs_without_prediction": 0})
    return {
        "mode": "combined", "folds": 5, "held_out_by": "whole-triplet folds (out-of-fold predictions)",
        "held_out": {"valence": {"r2": 0.61, "pearson_r": 0.79, "rmse": 0.12, "n": 120},
                     "arousal": {"r2": 0.74, "pearson_r": 0.86, "rmse": 0.10, "n": 120}},
        "pairwise_accuracy": {"arousal": 92.7, "valence": 83.8},
        "pairwise": pairwise,
        "synthetic": True,
        "n_catalog_tracks": int(n_tracks),
    }


def _write_model(path: Path, names: list[str], seed: int) -> None:
    """models/inference_bundle.pt: a random ResNet with a head of len(names) and an unfitted AV ensemble."""
    import torch

    from moodscape.inference import export_bundle
    from moodscape.models.av import av_checkpoint, build_av_ensemble
    from moodscape.models.backbone import build_backbone
    from moodscape.models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    classifier = build_backbone(len(names)).eval()
    bundle = export_bundle(classifier, names, av_checkpoint(build_av_ensemble(n_members=5)), device="cpu")
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(bundle, path)


def write_synthetic_bundle(root: Path, n_tracks: int, *, n_labels: int = 8, seed: int = 0,
                           chunk_size: int = CHUNK_SIZE, verbose: bool = False) -> Path:
    """Write a complete serving bundle of ``n_tracks`` synthetic tracks into ``root``.

    Parameters
    ----------
    root : Path
        The bundle directory (created; existing bundle files are overwritten).
    n_tracks : int
        Tracks in the catalog.
    n_labels : int, default=8
        Labels (the first ten have mood names; more get "Mood <i>").
    seed : int
        Everything written is a function of ``(n_tracks, n_labels, seed, chunk_size)``.
    chunk_size : int
        Rows generated and written at a time (memory ≈ chunk_size × 2 KB × a few).

    Returns
    -------
    Path
        ``root``.
    """
    if n_tracks < 1 or n_labels < 2:
        raise ValueError(f"need n_tracks >= 1 and n_labels >= 2, got {n_tracks}, {n_labels}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    latent = _Latent(n_labels, seed)
    names = latent.names
    labels_all = np.random.default_rng([seed, 3]).choice(n_labels, size=n_tracks, p=latent.label_share)

    lookup_fields = [("track_id", pa.string()), ("new_acoustic_label", pa.string()), ("probability", pa.float64())]
    lookup_fields += [(f"p_{name}", pa.float64()) for name in names]
    lookup_fields += [("valence", pa.float64()), ("arousal", pa.float64()), ("tags", pa.string()), ("duration", pa.float64())]
    lookup_schema = pa.schema(lookup_fields)
    embedding_schema = pa.schema([("track_id", pa.large_string())] + [(c, pa.float32()) for c in EMBEDDING_COLUMNS])
    catalog_schema = pa.schema([("track_id", pa.large_string()), ("audio_path", pa.large_string()), ("split", pa.large_string())])

    partial = {name: root / f".{name}.partial" for name in ("inference_lookup.csv", "embeddings.parquet", "catalog_tracks.parquet")}
    sizes = np.zeros(n_labels, dtype=np.int64)
    tag_counts = np.zeros((n_labels, len(latent.vocab)), dtype=np.int64)
    confusion = np.zeros((n_labels, n_labels), dtype=np.int64)
    name_array = np.array(names, dtype=object)
    # pandas writes the CSV, as ``moodscape infer`` does (quotes only where needed, floats as repr).
    with open(partial["inference_lookup.csv"], "w", newline="") as csv_file, \
            pq.ParquetWriter(partial["embeddings.parquet"], embedding_schema, compression="snappy") as emb_writer, \
            pq.ParquetWriter(partial["catalog_tracks.parquet"], catalog_schema, compression="snappy") as cat_writer:
        for chunk_index, first in enumerate(range(0, n_tracks, chunk_size)):
            labels = labels_all[first : first + chunk_size]
            columns = _chunk_columns(latent, labels, first, seed, chunk_index)
            predicted = columns["predicted"]
            sizes += np.bincount(predicted, minlength=n_labels)
            tag_counts += columns["tag_counts"]
            np.add.at(confusion, (labels, predicted), 1)
            probabilities = columns["probabilities"].astype(np.float64)  # float32 values, written as float64 like infer
            ids = pa.array(columns["track_ids"], pa.string())
            arrays = [ids, pa.array(name_array[predicted], pa.string()),
                      pa.array(probabilities[np.arange(len(labels)), predicted])]
            arrays += [pa.array(np.ascontiguousarray(probabilities[:, k])) for k in range(n_labels)]
            arrays += [pa.array(columns["valence"].astype(np.float64)), pa.array(columns["arousal"].astype(np.float64)),
                       pa.array(columns["tags"], pa.string()), pa.array(columns["duration"])]
            pa.Table.from_arrays(arrays, schema=lookup_schema).to_pandas().to_csv(csv_file, index=False, header=chunk_index == 0)
            transposed = np.ascontiguousarray(columns["embeddings"].T)  # each column contiguous: zero-copy arrays
            large_ids = ids.cast(pa.large_string())
            emb_writer.write_table(pa.Table.from_arrays([large_ids] + [pa.array(row) for row in transposed], schema=embedding_schema))
            n = len(labels)
            cat_writer.write_table(pa.Table.from_arrays(
                [large_ids, pa.array([""] * n, pa.large_string()), pa.array(["test"] * n, pa.large_string())], schema=catalog_schema))
            if verbose and chunk_index % 4 == 0:
                print(f"  {first + n:>9,} / {n_tracks:,} tracks, {time.perf_counter() - started:.1f} s", file=sys.stderr)
    for name, path in partial.items():
        os.replace(path, root / name)

    _write_json(root / "label_to_idx.json", {name: index for index, name in enumerate(names)})
    _write_json(root / "cluster_profiles.json", _profiles(latent, sizes, tag_counts, n_tracks))
    _write_json(root / "cluster_selection.json", _selection(n_labels, n_tracks, seed))
    _write_json(root / "metrics" / "classifier.json", _classifier_metrics(names, confusion))
    _write_json(root / "metrics" / "av.json", _av_metrics(n_tracks))
    _write_model(root / "models" / "inference_bundle.pt", names, seed)
    _write_json(root / "synthetic.json", {"n_tracks": int(n_tracks), "n_labels": int(n_labels), "seed": int(seed),
                                          "chunk_size": int(chunk_size), "seconds": time.perf_counter() - started})
    return root


def bundle_is_complete(root: Path, n_tracks: int, n_labels: int = 8, seed: int = 0) -> bool:
    """True when ``root`` holds a finished synthetic bundle written with these arguments."""
    marker = Path(root) / "synthetic.json"
    if not marker.exists():
        return False
    info = json.loads(marker.read_text())
    return (info.get("n_tracks"), info.get("n_labels"), info.get("seed")) == (n_tracks, n_labels, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="bundle directory to write")
    parser.add_argument("--tracks", type=int, default=100_000)
    parser.add_argument("--labels", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rewrite even if a finished bundle of these arguments is there")
    args = parser.parse_args(argv)
    if not args.force and bundle_is_complete(args.out, args.tracks, args.labels, args.seed):
        print(f"{args.out}: a finished bundle of {args.tracks:,} tracks is already there (--force rewrites it)")
        return 0
    (args.out / "synthetic.json").unlink(missing_ok=True)
    started = time.perf_counter()
    write_synthetic_bundle(args.out, args.tracks, n_labels=args.labels, seed=args.seed, verbose=True)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"wrote {args.out}: {args.tracks:,} tracks, {args.labels} labels, {size / 1e9:.2f} GB, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
