"""Stage runner of the report: read a run's artifacts, write ``report/report.md`` and ``.html``.

:func:`load_run` gathers what every stage left in the work directory into a
:class:`~moodscape.report.record.RunRecord` (``None`` for a stage that has not run);
:func:`run_report` builds the report from it, writes the figures, the Markdown and the
self-contained HTML atomically, and records the stage in the manifest so that
``moodscape run`` rebuilds the report exactly when an artifact it reads changed (an
ablation run afterwards, for instance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import artifacts
from ..artifacts import AV_COLUMNS, Workdir
from ..config import Settings
from ..datasets import jamendo, musav
from ..errors import DamagedArtifactError
from ..labeling import tag_statistics
from ..report.document import build_report
from ..report.html import render_html
from ..report.record import TITLE, RunRecord
from .collection import load_collection
from .stages import BY_NAME, STAGES


RUNTIME_PACKAGES = ("torch", "torchvision", "peft", "matplotlib", "fastapi")
"""Packages whose versions the report adds to those the manifest recorded."""


def run_report(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Write the report of the run in ``workdir``; return a summary for the CLI."""
    collection = load_collection(settings)
    run = load_run(settings, workdir, collection.tracks, collection.vocabulary)
    document = build_report(run)
    markdown = document.markdown()
    html = render_html(markdown, document.figures, title=f"{TITLE}: {workdir.root}")
    with BY_NAME["report"].staged(workdir) as out:
        written = []
        for path, png in document.figures.items():
            target = out.report_figure(Path(path).stem)
            artifacts.write_bytes(target, png)
            written.append(target)
        for old in workdir.report_figures.glob("*.png"):
            if old.name not in {path.name for path in written}:
                out.remove(old)
        artifacts.write_bytes(out.report_markdown, markdown.encode("utf-8"))
        artifacts.write_bytes(out.report_html, html.encode("utf-8"))
        BY_NAME["report"].record(out, settings, collection, extra_outputs=written)
    return {"markdown": workdir.report_markdown, "html": workdir.report_html, "figures": len(written)}


def load_run(settings: Settings, workdir: Workdir, tracks: pd.DataFrame, vocabulary: list[str]) -> RunRecord:
    """Read every artifact the report shows; a missing one leaves its field ``None``.

    Parameters
    ----------
    settings : Settings
    workdir : Workdir
    tracks : pandas.DataFrame
        The collection's tracks (``track_id``, ``split``, ``tags``).
    vocabulary : list of str

    Returns
    -------
    RunRecord
    """
    def json_or_none(path: Path) -> Any:
        return artifacts.read_json(path) if path.exists() else None

    def table_or_none(path: Path, columns: tuple[str, ...] = ("track_id",)) -> pd.DataFrame | None:
        return artifacts.read_table(path, columns) if path.exists() else None

    featured = set(artifacts.read_table(workdir.features)["track_id"]) if workdir.features.exists() else set()
    clusters = table_or_none(workdir.clusters, ("track_id", "cluster_id"))
    run = RunRecord(
        workdir=str(workdir.root), settings=settings.model_dump(mode="json"), manifest=artifacts.read_manifest(workdir),
        tracks=tracks[["track_id", "split", "tags"]], vocabulary=list(vocabulary), featured=featured,
        selection=json_or_none(workdir.cluster_selection), clusters=clusters,
        profiles=json_or_none(workdir.cluster_profiles),
        track_labels=table_or_none(workdir.track_labels, ("track_id", "new_acoustic_label")),
        pretrain=json_or_none(workdir.pretrain_metrics), classifier=json_or_none(workdir.classifier_metrics),
        ablation=json_or_none(workdir.ablation_metrics), av=json_or_none(workdir.av_metrics),
        lookup=table_or_none(workdir.inference_lookup, ("track_id", "new_acoustic_label", "probability")),
        versions=artifacts.package_versions(RUNTIME_PACKAGES),
    )
    run.skipped = {stage.name: artifacts.read_table(workdir.skipped_report(stage.name), ("track_id", "reason"))
                   for stage in STAGES if workdir.skipped_report(stage.name).exists()}
    if workdir.dataset_problems.exists():
        run.dataset_problems = workdir.dataset_problems.read_text(encoding="utf-8").splitlines()
    if clusters is not None and run.profiles is not None:
        run.tag_score = _tag_scores(clusters, tracks, vocabulary, settings.label.prior)
    if workdir.classifier.exists():
        run.adapters = adapter_shapes(workdir.classifier)
    if workdir.musav_predictions.exists() and settings.musav.root is not None:
        run.musav = _musav_held_out(settings, workdir.musav_predictions)
    return run


def adapter_shapes(checkpoint_path: Path) -> pd.DataFrame:
    """One row per LoRA-adapted layer of a classifier checkpoint: ``layer``, ``kernel``, ``d``, ``k``, ``r``.

    ``lora_A`` has shape ``(r, c_in, k_h, k_w)`` (a convolution) or ``(r, in)`` (a linear
    layer) and ``lora_B`` ``(c_out, r, …)``, so ``d = c_out`` and ``k = c_in·k_h·k_w``.
    Empty for a checkpoint without adapters (full fine-tuning, linear probe).

    Raises
    ------
    DamagedArtifactError
        When the description's shapes are not those of adapters (a crafted or damaged file).
    """
    shapes = artifacts.read_checkpoint_description(checkpoint_path, "classifier checkpoint")["shapes"]
    try:
        rows = _adapter_rows(shapes)
    except (AttributeError, IndexError, KeyError, TypeError, ValueError) as error:
        described = artifacts.checkpoint_description(checkpoint_path)
        raise DamagedArtifactError(described, f"classifier checkpoint {checkpoint_path}: the shapes in {described} are not "
                                              f"those of LoRA adapters ({type(error).__name__}: {error})") from None
    return pd.DataFrame(rows, columns=["layer", "kernel", "d", "k", "r"])


def _adapter_rows(shapes: dict[str, list[int]]) -> list[dict[str, Any]]:
    rows = []
    for key, a in shapes.items():
        if not (key.startswith("state_dict/") and key.endswith("lora_A.weight")):
            continue
        b = shapes[key.replace("lora_A", "lora_B")]
        kernel = "×".join(str(size) for size in a[2:]) or "linear"
        layer = key.removeprefix("state_dict/").removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        rows.append({"layer": layer, "kernel": kernel, "d": int(b[0]), "k": int(np.prod(a[1:])), "r": int(a[0])})
    return rows


def _tag_scores(clusters: pd.DataFrame, tracks: pd.DataFrame, vocabulary: list[str], prior: float) -> pd.DataFrame | None:
    """Stage 2's distinctiveness z of every tag in every cluster, over the training split (as stage 2 fits)."""
    train = clusters.merge(tracks[["track_id", "split", "tags"]], on="track_id")
    train = train[train["split"] == "train"]
    if train.empty:
        return None
    tags, names = jamendo.tag_matrix(train, vocabulary)
    stats = tag_statistics(train["cluster_id"].to_numpy(), tags, names, prior=prior)
    return stats.score


def _musav_held_out(settings: Settings, predictions_path: Path) -> pd.DataFrame:
    """Held-out predictions of the MusAV songs beside their Spotify targets."""
    cfg = settings.musav
    songs, _ = musav.load_musav(cfg.root, audio_root=cfg.audio_root, metadata_root=cfg.metadata_root)
    predictions = musav.read_predictions(predictions_path)
    predicted = predictions.rename(columns={f"{name}_mean": f"{name}_predicted" for name in AV_COLUMNS})
    columns = ["songid", *(f"{name}_predicted" for name in AV_COLUMNS)]
    return predicted[columns].merge(songs[["songid", *AV_COLUMNS]], on="songid")
