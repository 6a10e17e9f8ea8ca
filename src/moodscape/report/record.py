"""What the report reads from one run (:class:`RunRecord`), and what every section shares.

:func:`moodscape.pipeline.report.load_run` fills a :class:`RunRecord`; the section
modules (``clusters``, ``network``, ``valence_arousal``, ``provenance``) read it, and
:mod:`moodscape.report.document` puts their sections together. Kept apart from
``document`` so that the sections and the document never import each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from moodscape.artifacts import Workdir, read_json

from .markdown import Document

TITLE = "moodscape run report"
SECTIONS = (
    "1. Data",
    "2. Step 1 — acoustic clusters",
    "3. Step 2 — naming the clusters",
    "4. Step 3 — the LoRA-adapted network",
    "5. Step 4 — valence and arousal",
    "6. Step 5 — the lookup",
    "7. Reproducibility",
)
"""The report's level-2 headings, in order (each section function writes its own)."""


@dataclass
class RunRecord:
    """What the report reads from one run; ``None`` marks a stage that has not run.

    Attributes
    ----------
    workdir : str
        The work directory, as the user named it.
    settings : dict
        Every setting of the run (``Settings.model_dump(mode="json")``).
    manifest : dict
        ``manifest.json``: per stage its settings, input and output hashes, versions.
    tracks : pandas.DataFrame
        The dataset's tracks: ``track_id``, ``split``, ``tags`` (list of str).
    vocabulary : list of str
        The original tags the dataset uses.
    featured : set of str
        Tracks with stage-1 features.
    selection : dict or None
        ``cluster_selection.json``.
    clusters : pandas.DataFrame or None
        ``clusters.csv`` (``track_id``, ``cluster_id``).
    profiles : dict or None
        ``cluster_profiles.json``.
    tag_score : pandas.DataFrame or None
        Distinctiveness z-score of every tag (columns) in every cluster (index
        ``cluster_id``) over the training split, as stage 2 computed it.
    track_labels : pandas.DataFrame or None
        ``tracks_with_cluster_names.csv``.
    pretrain, classifier, ablation, av : dict or None
        The metrics files of stages 3a, 3b, the ablation and stage 4.
    adapters : pandas.DataFrame or None
        One row per adapted layer of the classifier checkpoint: ``layer``, ``kernel``,
        ``d`` (output channels), ``k`` (input channels × kernel area), ``r``.
    musav : pandas.DataFrame or None
        MusAV songs with held-out predictions and targets: ``songid``,
        ``valence_predicted``, ``arousal_predicted``, ``valence``, ``arousal``.
    lookup : pandas.DataFrame or None
        ``inference_lookup.csv``.
    skipped : dict of str to pandas.DataFrame
        Per stage, the tracks it skipped (``track_id``, ``reason``).
    dataset_problems : list of str
        What the dataset loader skipped or repaired, one message per line.
    versions : dict
        Versions of the packages at report time (torch, peft, … which the manifest omits).
    baselines : dict
        ``metrics/baselines.json``: the baselines of every metric, one section per stage
        that owns it (``"av"`` from stage 4, ``"tags"`` from 3a, ``"labels"`` from 3b),
        scored on the model's own held-out items; ``{}`` when the file is absent. Left
        ``None``, it is read from ``workdir`` when the record is made.
    """

    workdir: str
    settings: dict[str, Any]
    manifest: dict[str, Any]
    tracks: pd.DataFrame
    vocabulary: list[str]
    featured: set[str] = field(default_factory=set)
    selection: dict[str, Any] | None = None
    clusters: pd.DataFrame | None = None
    profiles: dict[str, Any] | None = None
    tag_score: pd.DataFrame | None = None
    track_labels: pd.DataFrame | None = None
    pretrain: dict[str, Any] | None = None
    classifier: dict[str, Any] | None = None
    ablation: dict[str, Any] | None = None
    adapters: pd.DataFrame | None = None
    av: dict[str, Any] | None = None
    musav: pd.DataFrame | None = None
    lookup: pd.DataFrame | None = None
    skipped: dict[str, pd.DataFrame] = field(default_factory=dict)
    dataset_problems: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    baselines: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.baselines is None:
            self.baselines = read_baselines(Workdir(Path(self.workdir)))

    def stage_settings(self, section: str) -> dict[str, Any]:
        """One ``[section]`` of the settings (empty when absent)."""
        return dict(self.settings.get(section) or {})


def read_baselines(workdir: Workdir) -> dict[str, Any]:
    """``metrics/baselines.json`` of a run as a dict of sections, ``{}`` when the file is absent."""
    if not workdir.baselines.exists():
        return {}
    baselines = read_json(workdir.baselines)
    return baselines if isinstance(baselines, dict) else {}


def used_settings(run: RunRecord, stage: str, section: str) -> dict[str, Any]:
    """The ``[section]`` settings that produced ``stage``'s artifacts, as the manifest recorded them.

    Falls back to the run's current settings when the manifest has no such entry.
    """
    recorded = run.manifest.get("stages", {}).get(stage, {}).get("settings", {}).get(section)
    return dict(recorded) if isinstance(recorded, dict) else run.stage_settings(section)


def not_run(document: Document, what: str, command: str) -> None:
    """Say that a step's artifacts are missing and which command writes them."""
    document.text(f"*Not in this run: {what} is missing. `moodscape {command}` writes it; "
                  f"`moodscape report` then adds this section.*")


