"""``moodscape run``: every stage in order, each only when its inputs or settings changed.

Before a stage runs, :func:`moodscape.artifacts.stale_reason` compares what the stage
would read now (:func:`moodscape.stages.stage_request`) with what the manifest recorded
when its outputs were written. A current stage is skipped; a stale one runs and records
its new outputs, whose new hashes then make the stages after it stale in turn, as
``make`` does with timestamps. Changing ``cluster.k`` thus re-runs stage 1b and every
stage after it, and a second run with nothing changed runs nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import artifacts
from .artifacts import Workdir
from .config import Settings
from .pipeline import Collection, inference_tracks, load_collection
from .stages import STAGES, stage_request


@dataclass
class StageOutcome:
    """What ``moodscape run`` did with one stage."""

    stage: str
    status: str
    """``"ran"``, ``"current"`` (skipped, up to date) or ``"not configured"``."""
    reason: str = ""
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def _runner(stage: str) -> Callable[[Settings, Workdir, bool], dict[str, Any]]:
    """The stage's runner; imported lazily so that stages 1–2 never import torch."""
    from . import pipeline

    if stage in ("features", "cluster", "label"):
        function = {"features": pipeline.run_features, "cluster": pipeline.run_cluster, "label": pipeline.run_label}[stage]
        if stage == "features":
            return lambda settings, workdir, progress: function(settings, workdir, show_progress=progress)
        return lambda settings, workdir, progress: function(settings, workdir)
    if stage == "report":
        from .pipeline_report import run_report

        return lambda settings, workdir, progress: run_report(settings, workdir, show_progress=progress)
    if stage in ("pretrain", "train"):
        from . import pipeline_network

        function = pipeline_network.run_pretrain if stage == "pretrain" else pipeline_network.run_train
    else:
        from . import pipeline_av

        function = pipeline_av.run_train_av if stage == "train-av" else pipeline_av.run_infer
    return lambda settings, workdir, progress: function(settings, workdir, show_progress=progress)


def _request_collection(stage: str, settings: Settings, collection: Collection) -> Collection:
    if stage != "infer":
        return collection
    return collection.with_tracks(inference_tracks(settings, collection)[0])


def run_pipeline(
    settings: Settings,
    workdir: Workdir,
    *,
    force: bool = False,
    show_progress: bool = True,
    on_stage: Callable[[StageOutcome], None] | None = None,
) -> list[StageOutcome]:
    """Run every stale stage of :data:`~moodscape.stages.STAGES`, in order.

    Parameters
    ----------
    settings : Settings
    workdir : Workdir
    force : bool
        Run every stage, current or not, with every mel-spectrogram computed afresh.
    show_progress : bool
        Progress bars of the stages.
    on_stage : callable, optional
        Called with each :class:`StageOutcome` as soon as it is known (the CLI prints it).

    Returns
    -------
    list of StageOutcome
        One per stage, in order. Stage 4 is ``"not configured"`` when the settings name
        no MusAV dataset; stage 5 then writes no valence/arousal.
    """
    collection = load_collection(settings)
    if force:
        shutil.rmtree(workdir.mel_cache, ignore_errors=True)
    outcomes = []
    for stage in STAGES:
        if stage == "train-av" and settings.musav.root is None:
            outcome = StageOutcome(stage, "not configured", "no [musav] root in the settings")
        else:
            request = stage_request(stage, settings, workdir, _request_collection(stage, settings, collection))
            reason = "forced" if force else artifacts.stale_reason(workdir, stage, *request)
            if reason is None:
                outcome = StageOutcome(stage, "current", "inputs and settings unchanged")
            else:
                started = time.perf_counter()
                summary = _runner(stage)(settings, workdir, show_progress)
                outcome = StageOutcome(stage, "ran", reason, time.perf_counter() - started, summary)
        outcomes.append(outcome)
        if on_stage is not None:
            on_stage(outcome)
    return outcomes
