"""The report's figures: every one is a valid, deterministic PNG, missing data included."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from moodscape.report import figures

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LABELS = ["calm / soft", "dark / epic", "happy / upbeat", "sad / slow"]
TAGS = [f"tag{i:02d}" for i in range(56)]


def scan_rows() -> list[dict]:
    """A K scan with one NaN silhouette and one missing Davies–Bouldin index."""
    rows = [
        {"k": k, "inertia": 1000.0 / k, "silhouette": 0.2 - 0.01 * k,
         "davies_bouldin": 1.0 + 0.05 * k, "calinski_harabasz": 500.0 / k}
        for k in range(2, 11)
    ]
    rows[2]["silhouette"] = float("nan")
    rows[3]["davies_bouldin"] = None
    return rows


def epochs(n: int, score_key: str) -> list[dict]:
    """Learning-curve rows with decreasing losses and a rising validation score."""
    return [{"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.2 / e ** 0.5,
             score_key: 0.5 + 0.03 * e} for e in range(1, n + 1)]


def ablation_rows() -> list[dict]:
    """Ablation variants, one without a tag score and one without a parameter count."""
    return [
        {"variant": "lora-r1", "trainable_parameters": 2.4e4, "macro_f1": 0.51, "tag_roc_auc_macro": 0.74},
        {"variant": "lora-r8", "trainable_parameters": 1.9e5, "macro_f1": 0.55, "tag_roc_auc_macro": 0.76},
        {"variant": "full", "trainable_parameters": 1.1e7, "macro_f1": 0.57, "tag_roc_auc_macro": 0.77},
        {"variant": "probe", "trainable_parameters": 5.0e3, "macro_f1": 0.45, "tag_roc_auc_macro": None},
        {"variant": "tags", "trainable_parameters": None, "macro_f1": 0.40, "tag_roc_auc_macro": 0.70},
    ]


def transfer_rows() -> list[dict]:
    """Ablation rows with the transfer scores, the stage-1 reference row and one variant without MusAV scores."""
    rows = [{**row, "musav_pairwise_accuracy": {"arousal": 80.0 + i, "valence": 70.0 - i}} for i, row in enumerate(ablation_rows())]
    rows[1]["musav_pairwise_accuracy"] = None
    return rows + [{"variant": "stage1_features", "trainable_parameters": None, "macro_f1": 0.99,
                    "tag_roc_auc_macro": 0.72, "musav_pairwise_accuracy": {"arousal": 78.5, "valence": float("nan")}}]


def av_frames(n: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predicted and target valence/arousal, some targets missing."""
    rng = np.random.default_rng(1)
    target = pd.DataFrame({"valence": rng.uniform(0, 1, n), "arousal": rng.uniform(0, 1, n)})
    predicted = target + rng.normal(0, 0.1, (n, 2))
    target.loc[::7, "arousal"] = np.nan
    return predicted, target


def track_points(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray, list]:
    """Valence, arousal and labels of ``n`` tracks, some unlabelled."""
    rng = np.random.default_rng(seed)
    labels = list(rng.choice(LABELS + [None], n))
    return rng.uniform(-0.05, 1.05, n), rng.uniform(0, 1, n), labels


FIGURES = {
    "k_selection": lambda: figures.k_selection(scan_rows(), chosen_k=4),
    "tag_heatmap": lambda: figures.tag_heatmap(
        pd.DataFrame(np.random.default_rng(3).normal(0, 2, (4, 10)), index=LABELS, columns=TAGS[:10]),
        highlight={LABELS[0]: ["tag01", "tag02"], "no such cluster": ["tag03"]},
    ),
    "confusion_matrix": lambda: figures.confusion_matrix(
        [[30, 2, 1, 0], [4, 25, 3, 1], [0, 5, 28, 2], [1, 0, 0, 0]], LABELS
    ),
    "training_curves": lambda: figures.training_curves(
        epochs(8, "val_roc_auc_macro"), epochs(6, "val_macro_f1"),
        pretrain_best_epoch=7, classifier_best_epoch=5,
    ),
    "training_curves_contrastive": lambda: figures.training_curves(
        epochs(8, "val_retrieval_top1"), epochs(6, "val_macro_f1"), pretrain_best_epoch=8, contrastive=True,
    ),
    "ablation": lambda: figures.ablation(ablation_rows()),
    "ablation_transfer": lambda: figures.ablation_transfer(transfer_rows(), {"tags": "tag-trained backbone"}),
    "av_scatter": lambda: figures.av_scatter(
        *av_frames(), metrics={"valence": {"r2": 0.81, "pearson_r": 0.91}, "arousal": {"r2": None}}
    ),
    "label_distribution": lambda: figures.label_distribution(
        pd.Series([120, 300, 45, 80], index=LABELS)
    ),
    "va_map": lambda: figures.va_map(*track_points(300)),
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    """Each figure of :data:`FIGURES` rendered once."""
    return {name: render() for name, render in FIGURES.items()}


def assert_png(data: bytes) -> None:
    """The bytes are a PNG that Pillow accepts, larger than 200 × 150 pixels."""
    assert isinstance(data, bytes)
    assert data.startswith(PNG_SIGNATURE)
    Image.open(io.BytesIO(data)).verify()
    with Image.open(io.BytesIO(data)) as image:
        assert image.width > 200 and image.height > 150


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_a_valid_png(rendered, name):
    assert_png(rendered[name])


@pytest.mark.parametrize("name", FIGURES)
def test_figure_is_deterministic(rendered, name):
    assert FIGURES[name]() == rendered[name]


def test_label_colors_follow_the_given_order_and_grey_out_unlabelled():
    colors = figures.label_colors(["b", "a", None, "b", float("nan")])
    assert list(colors) == ["b", "a", None]
    assert colors["b"] == "#1f77b4" and colors["a"] == "#ff7f0e"  # tab10, in order
    assert colors[None] == figures.UNLABELLED_COLOR
    assert figures.label_colors(["b", "a"]) == {"b": "#1f77b4", "a": "#ff7f0e"}


@pytest.mark.parametrize("n", [9, 18, 30])
def test_label_colors_are_distinct_and_never_grey(n):
    names = [f"cluster {i}" for i in range(n)]
    colors = figures.label_colors(names)
    assert len(set(colors.values())) == n
    assert all(len({c[1:3], c[3:5], c[5:7]}) > 1 for c in colors.values())


def test_k_selection_survives_missing_indices():
    rows = [{"k": k, "inertia": 10.0 / k, "silhouette": None,
             "davies_bouldin": float("nan")} for k in range(2, 6)]
    assert_png(figures.k_selection(rows, chosen_k=12))  # chosen K outside the scan
    assert_png(figures.k_selection([], chosen_k=3))


def test_training_curves_without_any_record():
    assert_png(figures.training_curves(None, None))
    assert_png(figures.training_curves([], epochs(3, "val_macro_f1"), pretrain_best_epoch=2))


def test_ablation_skips_missing_metrics():
    rows = ablation_rows() + [{"variant": "lora-r4", "trainable_parameters": 9.6e4,
                               "macro_f1": None, "tag_roc_auc_macro": float("nan")}]
    assert_png(figures.ablation(rows))
    assert_png(figures.ablation([{"variant": "full", "trainable_parameters": 10,
                                  "macro_f1": None, "tag_roc_auc_macro": None}]))


def test_ablation_figures_draw_the_stage1_row_as_a_reference_and_survive_missing_scores():
    assert_png(figures.ablation(transfer_rows()))
    assert_png(figures.ablation_transfer([{"variant": "stage1_features", "tag_roc_auc_macro": 0.7}]))
    assert_png(figures.ablation_transfer([{"variant": "lora-r1"}]))
    assert_png(figures.ablation_transfer([]))


def test_va_map_handles_unlabelled_and_nan_tracks():
    valence, arousal, labels = track_points(50)
    labels[:5] = [None, float("nan"), pd.NA, None, None]
    valence[7] = np.nan
    assert_png(figures.va_map(valence, arousal, labels))
    assert_png(figures.va_map(valence[:3], arousal[:3], [None, None, None]))


def test_va_map_draws_twenty_thousand_tracks():
    valence, arousal, labels = track_points(20_000)
    assert_png(figures.va_map(valence, arousal, labels))


def test_tag_heatmap_of_56_tags_and_12_clusters_is_wide():
    rng = np.random.default_rng(4)
    clusters = [f"cluster {i}: mood" for i in range(12)]
    score = pd.DataFrame(rng.normal(0, 3, (12, 56)), index=clusters, columns=TAGS)
    score.iloc[0, 0] = np.nan
    data = figures.tag_heatmap(score, highlight={c: TAGS[i:i + 3] for i, c in enumerate(clusters)},
                               value_name="z")
    assert_png(data)
    with Image.open(io.BytesIO(data)) as image:
        assert image.width > image.height
        assert image.width >= 56 * 0.2 * figures.DPI  # at least 0.2 inch per tag


def test_empty_inputs_say_not_recorded_instead_of_failing():
    assert_png(figures.tag_heatmap(pd.DataFrame()))
    assert_png(figures.confusion_matrix([], []))
    assert_png(figures.label_distribution(pd.Series(dtype=float)))
    assert_png(figures.av_scatter(pd.DataFrame({"valence": [np.nan]}), pd.DataFrame({"valence": [0.5]})))


def test_confusion_matrix_with_an_empty_true_row():
    assert_png(figures.confusion_matrix([[0, 0], [3, 4]], ["a", "b"]))


def test_av_scatter_rejects_misaligned_frames():
    predicted, target = av_frames(10)
    with pytest.raises(ValueError, match="rows"):
        figures.av_scatter(predicted, target.iloc[:5])


def test_label_distribution_matches_va_map_colours_by_default():
    counts = pd.Series({"cluster 10": 5, "cluster 2": 9, None: 3})
    assert_png(figures.label_distribution(counts))
    expected = figures.label_colors(["cluster 2", "cluster 10", None])
    assert figures._sorted_labels(counts.index) == list(expected)
