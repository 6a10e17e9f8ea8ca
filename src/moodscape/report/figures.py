"""The report's figures: plain data in, PNG bytes out.

Each public function takes lists, mappings, numpy arrays or pandas objects and returns
the PNG bytes of one figure, ready to be written next to ``report.md`` or inlined into
the self-contained HTML report. They draw on :class:`matplotlib.figure.Figure` directly,
never through ``pyplot``: no global state, so figures can be rendered from several
threads, and nothing is left open between calls.

Two rules keep the report consistent and reproducible:

- :func:`label_colors` is the single colour assignment for the new acoustic labels,
  so a label has the same colour in the bar chart and in the valence/arousal map;
  unlabelled tracks are grey.
- :func:`_png` writes every figure at :data:`DPI` without the "Software" metadata
  entry, so the same input gives byte-identical output.

The figures are sized for the real corpus (about 18,000 tracks, 56 tags, up to ~30
clusters): big scatters are rasterized with small markers, tick labels shrink with
their count, and optional data that is missing (``None``, empty, NaN) is skipped or
shown as "not recorded" instead of raising.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullLocator

DPI = 110
"""Resolution of every PNG, in dots per inch."""

UNLABELLED_COLOR = "#a0a0a0"
"""Colour of tracks without a label (``None`` or NaN)."""

NOT_RECORDED = "not recorded"

K_METRICS = (
    ("inertia", "inertia (elbow)"),
    ("silhouette", "silhouette (higher is better)"),
    ("davies_bouldin", "Davies–Bouldin (lower is better)"),
    ("calinski_harabasz", "Calinski–Harabasz (higher is better)"),
)

QUADRANTS = (
    # (x, y, horizontal alignment, vertical alignment, caption), in axes coordinates
    (0.02, 0.98, "left", "top", "tense / angry"),
    (0.98, 0.98, "right", "top", "happy / excited"),
    (0.02, 0.02, "left", "bottom", "sad / depressed"),
    (0.98, 0.02, "right", "bottom", "calm / relaxed"),
)


def label_colors(labels: Iterable[str | None]) -> dict[str | None, str]:
    """Assign one colour per distinct label, in the given order.

    Parameters
    ----------
    labels : iterable of str or None
        Label names; repeats keep their first position. ``None`` and NaN mean
        "unlabelled" and take no palette slot.

    Returns
    -------
    dict
        Label name to hex colour: tab10 for up to 9 labels, tab20 for up to 18,
        tab20 + tab20b + tab20c beyond (cycling past 54). The palettes' greys are
        left out, so grey means unlabelled only: the key ``None`` maps to
        :data:`UNLABELLED_COLOR` when an unlabelled entry was seen.
    """
    distinct: list[str] = []
    has_unlabelled = False
    for label in labels:
        if _is_unlabelled(label):
            has_unlabelled = True
        elif label not in distinct:
            distinct.append(label)
    palette = _palette(len(distinct))
    colors: dict[str | None, str] = {
        label: palette[i % len(palette)] for i, label in enumerate(distinct)
    }
    if has_unlabelled:
        colors[None] = UNLABELLED_COLOR
    return colors


def k_selection(scan: Sequence[Mapping[str, float]], chosen_k: int) -> bytes:
    """Plot the cluster-count scan: four validity indices against K.

    Parameters
    ----------
    scan : sequence of mapping
        One row per K with keys ``k``, ``inertia``, ``silhouette``,
        ``davies_bouldin`` and ``calinski_harabasz``. A missing, ``None`` or NaN
        value skips that point; a panel with no point says "not recorded".
    chosen_k : int
        The selected K, marked by a dashed vertical line and a highlighted marker.

    Returns
    -------
    bytes
        The PNG image (2 × 2 panels).
    """
    fig = Figure(figsize=(9.0, 6.2), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    for ax, (key, title) in zip(axes, K_METRICS):
        _k_panel(ax, scan, key, chosen_k)
        ax.set_title(title, fontsize=10)
    for ax in axes[2:]:
        ax.set_xlabel("number of clusters K")
    fig.suptitle(f"Choosing K (chosen K = {chosen_k})", fontsize=11)
    return _png(fig)


def tag_heatmap(
    score: pd.DataFrame,
    *,
    highlight: Mapping[str, Sequence[str]] | None = None,
    value_name: str = "log-odds z",
) -> bytes:
    """Plot the cluster × tag distinctiveness heat map.

    Parameters
    ----------
    score : pandas.DataFrame
        Rows are cluster display names, columns tag names (already ordered; the columns'
        ``name``, if any, labels the axis instead of "tag"), values the distinctiveness
        z-score; NaN cells are drawn light grey.
    highlight : mapping of str to sequence of str, optional
        For each row name, the tags that named the cluster; their cells are outlined
        in black. Unknown rows or tags are ignored. ``None`` outlines nothing.
    value_name : str, default "log-odds z"
        Label of the colour bar.

    Returns
    -------
    bytes
        The PNG image; RdBu_r centred at 0 with symmetric limits.
    """
    n_rows, n_cols = score.shape
    fig = Figure(figsize=(max(6.0, 0.2 * n_cols + 3.5), max(3.0, 0.32 * n_rows + 2.0)),
                 layout="constrained")
    ax = fig.add_subplot()
    if score.size == 0:
        _note(ax, NOT_RECORDED)
        return _png(fig)
    values = score.to_numpy(dtype=float)
    limit = _symmetric_limit(values)
    cmap = mpl.colormaps["RdBu_r"].with_extremes(bad="#e8e8e8")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-limit, vmax=limit,
                      aspect="auto", interpolation="nearest")
    _category_ticks(ax, [str(c) for c in score.columns], [str(r) for r in score.index])
    ax.set_xlabel(score.columns.name or "tag")
    ax.set_ylabel("cluster")
    _outline_cells(ax, score, highlight or {})
    colorbar = fig.colorbar(image, ax=ax, shrink=min(1.0, 0.4 + 0.05 * n_rows), pad=0.01)
    colorbar.set_label(value_name)
    return _png(fig)


def confusion_matrix(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> bytes:
    """Plot the test-split confusion matrix.

    Parameters
    ----------
    matrix : sequence of sequence of int
        Square counts; rows are the true label, columns the predicted one.
    labels : sequence of str
        Label names in row/column order.

    Returns
    -------
    bytes
        The PNG image: colour is the row-normalised share (Blues, 0 to 1), each cell
        annotated with its count.
    """
    counts = np.asarray(matrix, dtype=float).reshape(len(labels), len(labels))
    n = len(labels)
    side = max(4.5, 0.42 * n + 2.5)
    fig = Figure(figsize=(side + 1.0, side), layout="constrained")
    ax = fig.add_subplot()
    if n == 0:
        _note(ax, NOT_RECORDED)
        return _png(fig)
    totals = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    _annotate_counts(ax, counts, share)
    names = [str(label) for label in labels]
    _category_ticks(ax, names, names, x_rotation=45 if max(map(len, names)) > 3 else 0)
    ax.set_xlabel("predicted label")
    ax.set_ylabel("true label")
    fig.colorbar(image, ax=ax, shrink=0.8, pad=0.02).set_label("share of true label")
    return _png(fig)


def training_curves(
    pretrain_epochs: Sequence[Mapping[str, float]] | None,
    classifier_epochs: Sequence[Mapping[str, float]] | None,
    *,
    pretrain_best_epoch: int | None = None,
    classifier_best_epoch: int | None = None,
    contrastive: bool = False,
) -> bytes:
    """Plot the learning curves of backbone pretraining and of the label classifier.

    Parameters
    ----------
    pretrain_epochs : sequence of mapping, optional
        Per-epoch rows with keys ``epoch``, ``train_loss``, ``val_loss`` and
        ``val_roc_auc_macro`` (``val_retrieval_top1`` when ``contrastive``). ``None`` or
        empty: the left panel says "not recorded".
    classifier_epochs : sequence of mapping, optional
        Per-epoch rows with keys ``epoch``, ``train_loss``, ``val_loss`` and
        ``val_macro_f1``. ``None`` or empty: the right panel says "not recorded".
    pretrain_best_epoch, classifier_best_epoch : int, optional
        The kept epoch of each run, marked by a dotted vertical line.
    contrastive : bool
        The backbone was pretrained without labels (NT-Xent losses, partner retrieval).

    Returns
    -------
    bytes
        The PNG image: losses on the left axis, the validation score on the right.
    """
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    score = ("val_retrieval_top1", "val partner retrieval (top-1)") if contrastive else ("val_roc_auc_macro", "val ROC-AUC (macro)")
    _curve_panel(left, pretrain_epochs, *score, pretrain_best_epoch)
    left.set_title("Backbone pretraining " + ("without labels (NT-Xent)" if contrastive else "on the original tags"), fontsize=10)
    _curve_panel(right, classifier_epochs, "val_macro_f1", "val macro-F1",
                 classifier_best_epoch)
    right.set_title("Classifier on the new labels", fontsize=10)
    return _png(fig)


def ablation(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """Plot the ablation: quality against the number of trainable parameters.

    Parameters
    ----------
    rows : sequence of mapping
        One row per variant with keys ``variant``, ``trainable_parameters``,
        ``macro_f1`` and ``tag_roc_auc_macro``. A ``None``/NaN metric skips that
        point; a variant without a positive parameter count cannot sit on the log
        axis and is listed under the panel instead. The row of variant
        :data:`REFERENCE_VARIANT` (the stage-1 features, no network) is drawn as a
        dashed horizontal line.

    Returns
    -------
    bytes
        The PNG image: test macro-F1 (left) and tag ROC-AUC macro (right), each
        variant an annotated point; LoRA ranks are joined by a line.
    """
    fig = Figure(figsize=(11.0, 4.4), layout="constrained")
    panels = fig.subplots(1, 2)
    metrics = (("macro_f1", "test macro-F1 (new labels)"),
               ("tag_roc_auc_macro", "tag ROC-AUC macro (probe)"))
    for ax, (key, title) in zip(panels, metrics):
        _ablation_panel(ax, rows, key)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel(title)
    return _png(fig)


REFERENCE_VARIANT = "stage1_features"
"""The ablation row without a network, drawn as a reference line rather than a point or bar."""

TRANSFER_METRICS = (
    ("musav_pairwise_accuracy.arousal", "MusAV arousal pairwise accuracy (%)"),
    ("musav_pairwise_accuracy.valence", "MusAV valence pairwise accuracy (%)"),
    ("tag_roc_auc_macro", "tag ROC-AUC macro (probe)"),
)


def ablation_transfer(rows: Sequence[Mapping[str, Any]], names: Mapping[str, str] | None = None) -> bytes:
    """Plot how well each ablation variant's embedding transfers: one bar per variant and metric.

    Parameters
    ----------
    rows : sequence of mapping
        One row per variant with ``variant``, ``musav_pairwise_accuracy`` (a mapping
        with ``arousal`` and ``valence``, in percent) and ``tag_roc_auc_macro``.
        Missing or NaN values leave a gap; the :data:`REFERENCE_VARIANT` row is a
        dashed line across its panel instead of a bar.
    names : mapping of str to str, optional
        Display name of each variant (default: the variant key).

    Returns
    -------
    bytes
        The PNG image: MusAV arousal accuracy, valence accuracy (ground-truth subset,
        held-out) and tag ROC-AUC, one panel each; LoRA ranks blue, other networks
        orange, the tag-trained backbone grey. A MusAV bar carries ± one binomial
        standard error when the row's ``musav_pairwise`` holds the ``gt`` file's counts.
    """
    names = dict(names or {})
    variants = [row for row in rows if row.get("variant") != REFERENCE_VARIANT]
    reference = next((row for row in rows if row.get("variant") == REFERENCE_VARIANT), None)
    labels = [names.get(str(row.get("variant")), str(row.get("variant"))) for row in variants]
    fig = Figure(figsize=(12.0, 4.6), layout="constrained")
    for ax, (key, title) in zip(fig.subplots(1, len(TRANSFER_METRICS)), TRANSFER_METRICS):
        values = [_finite(_dotted(row, key)) for row in variants]
        line = _finite(_dotted(reference, key)) if reference is not None else None
        ax.set_title(title, fontsize=10)
        if all(value is None for value in values) and line is None:
            _note(ax, NOT_RECORDED)
            continue
        positions = np.arange(len(variants))
        heights = [np.nan if value is None else value for value in values]
        colors = [_variant_color(str(row.get("variant"))) for row in variants]
        errors = [_pairwise_error(row, key) for row in variants]
        ax.bar(positions, heights, color=colors, width=0.7,
               yerr=[np.nan if e is None else e for e in errors] if any(e is not None for e in errors) else None,
               error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "0.3"})
        for x, value in zip(positions, values):
            if value is not None:
                ax.annotate(f"{value:.1f}" if value > 1.5 else f"{value:.3f}", (x, value), xytext=(0, 2),
                            textcoords="offset points", ha="center", fontsize=7)
        if line is not None:
            ax.axhline(line, color="0.25", linestyle="--", linewidth=1.2,
                       label=names.get(REFERENCE_VARIANT, "stage-1 features"))
            ax.legend(fontsize=7, loc="lower right")
        finite = [v for v in values + [line] if v is not None]
        finite += [v + sign * e for v, e in zip(values, errors) if v is not None and e is not None for sign in (-1, 1)]
        low, high = min(finite), max(finite)
        span = max(high - low, 0.02 * max(abs(high), 1e-9), 1e-3)
        ax.set_ylim(low - 0.3 * span, high + 0.2 * span)
        ax.set_xticks(positions, labels, rotation=35, ha="right", fontsize=_tick_fontsize(len(labels)))
        ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def av_scatter(
    predicted: pd.DataFrame,
    target: pd.DataFrame,
    metrics: Mapping[str, Mapping[str, float]] | None = None,
) -> bytes:
    """Plot held-out valence/arousal predictions against their targets.

    Parameters
    ----------
    predicted, target : pandas.DataFrame
        Columns ``valence`` and ``arousal``, rows aligned by position. Rows where
        either value is NaN are dropped per panel; a missing column or no rows left
        makes that panel say "not recorded".
    metrics : mapping, optional
        ``{"valence": {"r2": .., "pearson_r": ..}, "arousal": {..}}``; written in the
        panel corner when given. Missing or ``None`` entries are left out.

    Returns
    -------
    bytes
        The PNG image: two square panels with the y = x diagonal.
    """
    if len(predicted) != len(target):
        raise ValueError(f"predicted has {len(predicted)} rows but target has {len(target)}")
    fig = Figure(figsize=(10.0, 5.0), layout="constrained")
    for ax, dimension in zip(fig.subplots(1, 2), ("valence", "arousal")):
        _av_panel(ax, predicted, target, dimension, (metrics or {}).get(dimension))
    return _png(fig)


def label_distribution(
    counts: pd.Series, *, colors: Mapping[str | None, str] | None = None
) -> bytes:
    """Plot tracks per label as horizontal bars, largest on top.

    Parameters
    ----------
    counts : pandas.Series
        Index = label name, value = number of tracks. Empty: "not recorded".
    colors : mapping, optional
        Label to colour; by default :func:`label_colors` of the label names in natural
        order ("cluster 2" before "cluster 10"), the same default as :func:`va_map`.

    Returns
    -------
    bytes
        The PNG image, each bar annotated with its count.
    """
    n = len(counts)
    fig = Figure(figsize=(7.0, max(2.5, 0.28 * n + 1.2)), layout="constrained")
    ax = fig.add_subplot()
    if n == 0:
        _note(ax, NOT_RECORDED)
        return _png(fig)
    ordered = counts.fillna(0).sort_values(ascending=True, kind="stable")
    colors = colors or label_colors(_sorted_labels(counts.index))
    names = [_label_text(label) for label in ordered.index]
    bars = ax.barh(names, ordered.to_numpy(dtype=float),
                   color=[colors.get(_label_key(label), UNLABELLED_COLOR)
                          for label in ordered.index])
    ax.bar_label(bars, labels=[f"{int(v):,}" for v in ordered], padding=3, fontsize=8)
    ax.set_xlim(0, float(ordered.max()) * 1.15 or 1.0)
    ax.tick_params(axis="y", labelsize=_tick_fontsize(n))
    ax.set_xlabel("tracks")
    ax.spines[["top", "right"]].set_visible(False)
    return _png(fig)


def va_map(
    valence: np.ndarray,
    arousal: np.ndarray,
    labels: Sequence[str | None],
    *,
    colors: Mapping[str | None, str] | None = None,
) -> bytes:
    """Plot every track on the valence/arousal plane, coloured by label.

    Parameters
    ----------
    valence, arousal : numpy.ndarray
        One value per track; tracks with a NaN coordinate are left out.
    labels : sequence of str or None
        One label per track; ``None``/NaN is unlabelled (grey, drawn underneath).
    colors : mapping, optional
        Label to colour; by default :func:`label_colors` of the distinct labels in
        natural order, the same default as :func:`label_distribution`.

    Returns
    -------
    bytes
        The PNG image: Russell's circumplex quadrants captioned in the corners, the
        legend outside the axes on the right.
    """
    x = np.asarray(valence, dtype=float).ravel()
    y = np.asarray(arousal, dtype=float).ravel()
    keys = np.array([_label_key(label) for label in labels], dtype=object)
    if not len(x) == len(y) == len(keys):
        raise ValueError(f"lengths differ: valence {len(x)}, arousal {len(y)}, labels {len(keys)}")
    finite = np.isfinite(x) & np.isfinite(y)
    x, y, keys = x[finite], y[finite], keys[finite]
    names = _sorted_labels(keys)
    colors = colors or label_colors(names)
    fig = Figure(figsize=(8.6 if len(names) <= 18 else 10.0, 6.4), layout="constrained")
    ax = fig.add_subplot()
    _track_points(ax, x, y, keys, colors)
    _circumplex(ax, x, y)
    if names:
        _label_legend(ax, names, keys, colors)
    return _png(fig)


# --- helpers -----------------------------------------------------------------------


def _png(fig: Figure) -> bytes:
    """Render a figure to deterministic PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight",
                metadata={"Software": None})
    return buffer.getvalue()


def _palette(n: int) -> list[str]:
    """The categorical palette for ``n`` labels, as hex colours, greys left out."""
    names = ("tab10",) if n <= 9 else ("tab20",) if n <= 18 else ("tab20", "tab20b", "tab20c")
    colors = [to_hex(c) for name in names for c in mpl.colormaps[name].colors]
    return [c for c in colors if len({c[1:3], c[3:5], c[5:7]}) > 1]


def _is_unlabelled(label: Any) -> bool:
    """Whether a label value means "no label" (``None``, NaN, ``pd.NA``)."""
    if label is None:
        return True
    return not isinstance(label, str) and pd.api.types.is_scalar(label) and bool(pd.isna(label))


def _label_key(label: Any) -> str | None:
    """The :func:`label_colors` key of a label value: ``None`` for unlabelled."""
    return None if _is_unlabelled(label) else label


def _label_text(label: Any) -> str:
    """The display text of a label value."""
    return "(unlabelled)" if _is_unlabelled(label) else str(label)


def _sorted_labels(labels: Iterable[Any]) -> list[str | None]:
    """Distinct labels in natural name order, unlabelled (``None``) last."""
    keys = {_label_key(label) for label in labels}
    named = sorted((k for k in keys if k is not None), key=_natural_key)
    return named + ([None] if None in keys else [])


def _natural_key(label: str) -> list[Any]:
    """Sort key that orders "cluster 2" before "cluster 10"."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.casefold())
            for part in re.split(r"(\d+)", str(label)) if part]


def _finite(value: Any) -> float | None:
    """A value as float, or ``None`` when missing or not finite."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _note(ax: Axes, text: str) -> None:
    """Replace an empty panel's content by a centred grey note."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center",
            color="0.45", fontsize=11, style="italic", in_layout=False)
    ax.tick_params(left=False, bottom=False, labelleft=False, labelbottom=False)


def _tick_fontsize(n: int) -> float:
    """Tick label size that shrinks with the number of categories."""
    return max(5.5, min(9.0, 9.0 - (n - 20) * 0.06))


def _category_ticks(ax: Axes, columns: Sequence[str], rows: Sequence[str],
                    x_rotation: float = 90) -> None:
    """Label every column and row of a matrix image."""
    ax.set_xticks(range(len(columns)), columns, rotation=x_rotation,
                  ha="center" if x_rotation in (0, 90) else "right",
                  rotation_mode="anchor" if x_rotation not in (0, 90) else "default",
                  fontsize=_tick_fontsize(len(columns)))
    ax.set_yticks(range(len(rows)), rows, fontsize=_tick_fontsize(len(rows)))
    ax.tick_params(length=2)


def _k_panel(ax: Axes, scan: Sequence[Mapping[str, float]], key: str, chosen_k: int) -> None:
    """One validity index against K, with the chosen K marked."""
    points = sorted((int(k), v) for k, v in ((_finite(row.get("k")), _finite(row.get(key)))
                                             for row in scan)
                    if k is not None and v is not None)
    if not points:
        _note(ax, NOT_RECORDED)
        return
    ks, values = zip(*points)
    ax.plot(ks, values, marker="o", markersize=3.5, color="tab:blue", linewidth=1.3)
    ax.axvline(chosen_k, color="tab:red", linestyle="--", linewidth=1.0)
    chosen = [v for k, v in points if k == chosen_k]
    if chosen:
        ax.plot([chosen_k], chosen, marker="o", markersize=9, markerfacecolor="none",
                markeredgecolor="tab:red", markeredgewidth=2.0, linestyle="none")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.xaxis.get_major_locator().set_params(integer=True)


def _symmetric_limit(values: np.ndarray) -> float:
    """Largest finite absolute value, or 1 when there is none (or it is 0)."""
    finite = np.abs(values[np.isfinite(values)])
    limit = float(finite.max()) if finite.size else 0.0
    return limit if limit > 0 else 1.0


def _outline_cells(ax: Axes, score: pd.DataFrame, highlight: Mapping[str, Sequence[str]]) -> None:
    """Draw a black rectangle around each highlighted (row, tag) cell."""
    rows = {str(name): i for i, name in enumerate(score.index)}
    columns = {str(name): j for j, name in enumerate(score.columns)}
    for row, tags in highlight.items():
        i = rows.get(str(row))
        for tag in tags if i is not None else ():
            j = columns.get(str(tag))
            if j is not None:
                ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                       edgecolor="black", linewidth=1.3))


def _annotate_counts(ax: Axes, counts: np.ndarray, share: np.ndarray) -> None:
    """Write each cell's count, white on dark cells."""
    n = len(counts)
    size = max(6.0, min(9.0, 9.0 - (n - 12) * 0.15))
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, f"{int(count)}", ha="center", va="center", fontsize=size,
                color="white" if share[i, j] > 0.55 else "black", in_layout=False)


def _series(epochs: Sequence[Mapping[str, float]], key: str) -> tuple[list[float], list[float]]:
    """Epochs and finite values of one recorded quantity."""
    pairs = [(_finite(row.get("epoch")), _finite(row.get(key))) for row in epochs]
    pairs = [(e, v) for e, v in pairs if e is not None and v is not None]
    return [e for e, _ in pairs], [v for _, v in pairs]


def _curve_panel(ax: Axes, epochs: Sequence[Mapping[str, float]] | None, score_key: str,
                 score_label: str, best_epoch: int | None) -> None:
    """Losses on the left axis and a validation score on a twin right axis."""
    if not epochs:
        _note(ax, NOT_RECORDED)
        return
    lines = []
    for key, label, color in (("train_loss", "train loss", "tab:blue"),
                              ("val_loss", "val loss", "tab:orange")):
        lines += ax.plot(*_series(epochs, key), marker="o", markersize=2.5,
                         color=color, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    score_ax = ax.twinx()
    lines += score_ax.plot(*_series(epochs, score_key), marker="s", markersize=2.5,
                           color="tab:green", label=score_label)
    score_ax.set_ylabel(score_label, color="tab:green")
    if best_epoch is not None:
        lines.append(ax.axvline(best_epoch, color="0.3", linestyle=":", linewidth=1.2,
                                label=f"best epoch ({best_epoch})"))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(handles=lines, loc="upper center", bbox_to_anchor=(0.5, -0.16),
              ncol=len(lines), fontsize=8, frameon=False)


def _ablation_panel(ax: Axes, rows: Sequence[Mapping[str, Any]], key: str) -> None:
    """One metric against trainable parameters, each variant annotated."""
    points, unplaced, reference = [], [], None
    for row in rows:
        params, value = _finite(row.get("trainable_parameters")), _finite(row.get(key))
        if value is None:
            continue
        if row.get("variant") == REFERENCE_VARIANT:
            reference = value
            continue
        if params is None or params <= 0:
            unplaced.append(str(row.get("variant")))
        else:
            points.append((params, value, str(row.get("variant"))))
    if not points:
        _note(ax, NOT_RECORDED)
        return
    if reference is not None:
        ax.axhline(reference, color="0.25", linestyle="--", linewidth=1.0, label="stage-1 features (no network)")
        ax.legend(fontsize=7, loc="lower right")
    lora = sorted((p, v) for p, v, name in points if name.startswith("lora"))
    if len(lora) > 1:
        ax.plot(*zip(*lora), color="tab:blue", linewidth=1.0, alpha=0.6)
    for params, value, name in points:
        color = "tab:blue" if name.startswith("lora") else "tab:orange"
        ax.plot([params], [value], marker="o", markersize=6, color=color, linestyle="none")
        ax.annotate(name, (params, value), xytext=(5, 5), textcoords="offset points",
                    fontsize=8)
    ax.set_xscale("log")
    ax.xaxis.set_minor_locator(NullLocator())  # decades suffice; minor log ticks are slow
    ax.margins(x=0.15, y=0.2)
    ax.set_xlabel("trainable parameters (log scale)")
    ax.grid(alpha=0.3)
    if unplaced:
        ax.text(0.01, 0.01, "no parameter count: " + ", ".join(unplaced),
                transform=ax.transAxes, fontsize=7, color="0.4", in_layout=False)


def _dotted(row: Mapping[str, Any], key: str) -> Any:
    """``row["a"]["b"]`` for ``key = "a.b"``; ``None`` where a level is missing."""
    value: Any = row
    for part in key.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _pairwise_error(row: Mapping[str, Any], key: str) -> float | None:
    """One binomial standard error (points) of a ``musav_pairwise_accuracy.<type>`` value on its judged pairs."""
    if not key.startswith("musav_pairwise_accuracy."):
        return None
    av_type = key.rsplit(".", 1)[1]
    for entry in row.get("musav_pairwise") or []:
        if isinstance(entry, Mapping) and entry.get("file") == "gt" and entry.get("type") == av_type:
            judged = (_finite(entry.get("correct")) or 0) + (_finite(entry.get("incorrect")) or 0)
            accuracy = _finite(entry.get("accuracy"))
            if judged and accuracy is not None:
                p = accuracy / 100
                return 100 * math.sqrt(p * (1 - p) / judged)
    return None


def _variant_color(variant: str) -> str:
    if variant.startswith("lora"):
        return "tab:blue"
    return "0.55" if variant == "tags" else "tab:orange"


def _av_panel(ax: Axes, predicted: pd.DataFrame, target: pd.DataFrame, dimension: str,
              metrics: Mapping[str, float] | None) -> None:
    """Prediction against target for one dimension, with the y = x diagonal."""
    ax.set_title(dimension, fontsize=10)
    if dimension not in predicted or dimension not in target:
        _note(ax, NOT_RECORDED)
        return
    x = pd.to_numeric(target[dimension], errors="coerce").to_numpy(dtype=float)
    y = pd.to_numeric(predicted[dimension], errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if not x.size:
        _note(ax, NOT_RECORDED)
        return
    ax.scatter(x, y, s=4 if x.size > 2000 else 10, alpha=0.35 if x.size > 2000 else 0.6,
               linewidths=0, color="tab:blue", rasterized=True)
    low, high = _unit_limits(x, y)
    ax.plot([low, high], [low, high], color="0.3", linestyle="--", linewidth=1.0)
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal",
           xlabel=f"target {dimension}", ylabel=f"predicted {dimension}")
    ax.set_title(f"{dimension} (n = {x.size:,})", fontsize=10)
    ax.grid(alpha=0.3)
    text = _metric_text(metrics or {})
    if text:
        ax.text(0.03, 0.97, text, transform=ax.transAxes, ha="left", va="top", fontsize=9,
                bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.85,
                      "edgecolor": "0.7"}, in_layout=False)


def _metric_text(metrics: Mapping[str, float]) -> str:
    """'R² = 0.81, r = 0.91' from whichever of the two is present."""
    parts = [f"{symbol} = {value:.2f}"
             for symbol, value in (("R²", _finite(metrics.get("r2"))),
                                   ("r", _finite(metrics.get("pearson_r"))))
             if value is not None]
    return ", ".join(parts)


def _unit_limits(*arrays: np.ndarray) -> tuple[float, float]:
    """Axis limits covering [0, 1] and every finite value, with a small margin."""
    values = np.concatenate([a[np.isfinite(a)] for a in arrays] + [np.array([0.0, 1.0])])
    low, high = float(values.min()), float(values.max())
    pad = 0.03 * (high - low)
    return low - pad, high + pad


def _track_points(ax: Axes, x: np.ndarray, y: np.ndarray, keys: np.ndarray,
                  colors: Mapping[str | None, str]) -> None:
    """Scatter all tracks at once: unlabelled underneath, labelled in a fixed shuffle.

    A single rasterized scatter is fast for tens of thousands of points, and the
    shuffle (seeded, so the image stays deterministic) keeps one label from hiding
    the others just because it was drawn last.
    """
    unlabelled = np.fromiter((k is None for k in keys), dtype=bool, count=len(keys))
    shuffled = np.random.default_rng(0).permutation(np.flatnonzero(~unlabelled))
    order = np.concatenate([np.flatnonzero(unlabelled), shuffled]).astype(int)
    big = len(keys) > 2000
    ax.scatter(x[order], y[order], s=3 if big else 12, alpha=0.55 if big else 0.8,
               linewidths=0, rasterized=True,
               c=[colors.get(k, UNLABELLED_COLOR) for k in keys[order]])


def _circumplex(ax: Axes, x: np.ndarray, y: np.ndarray) -> None:
    """Quadrant lines at 0.5, Russell's captions in the corners, square limits."""
    ax.axhline(0.5, color="0.35", linestyle="--", linewidth=0.9)
    ax.axvline(0.5, color="0.35", linestyle="--", linewidth=0.9)
    for qx, qy, ha, va, caption in QUADRANTS:
        ax.text(qx, qy, caption, transform=ax.transAxes, ha=ha, va=va, fontsize=9,
                style="italic", color="0.2", in_layout=False,
                bbox={"boxstyle": "round,pad=0.25", "facecolor": "white", "alpha": 0.8,
                      "edgecolor": "none"})
    low, high = _unit_limits(x, y)
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal",
           xlabel="valence", ylabel="arousal")


def _label_legend(ax: Axes, names: Sequence[str | None], keys: np.ndarray,
                  colors: Mapping[str | None, str]) -> None:
    """Legend of labels with track counts, outside the axes on the right."""
    counts = Counter(keys)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=5,
                      markerfacecolor=colors.get(name, UNLABELLED_COLOR), markeredgewidth=0,
                      label=f"{_label_text(name)} ({int(counts.get(name, 0)):,})")
               for name in names]
    many = len(names) > 18
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0),
              borderaxespad=0, fontsize=7 if many else 8, ncol=2 if many else 1,
              frameon=False, title="label (tracks)")
