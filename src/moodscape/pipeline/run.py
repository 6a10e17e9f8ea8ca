"""``moodscape run``: every stage in order, each only when its inputs or settings changed.

Before a stage runs, :func:`moodscape.artifacts.stale_reason` compares what the stage
would read now (:meth:`moodscape.pipeline.stages.Stage.request`) with what the manifest recorded
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

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from .collection import Collection, inference_tracks, load_collection
from .stages import STAGES, Stage


@dataclass
class StageOutcome:
    """What ``moodscape run`` did with one stage."""

    stage: str
    status: str
    """``"ran"``, ``"current"`` (skipped, up to date) or ``"not configured"``."""
    reason: str = ""
    seconds: float = 0.0
    summary: dict[str, Any] = field(default_factory=dict)


def _request_collection(stage: Stage, settings: Settings, collection: Collection) -> Collection:
    if stage.name != "infer":
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
    """Run every stale stage of :data:`~moodscape.pipeline.stages.STAGES`, in order.

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
        if stage.name == "train-av" and settings.musav.root is None:
            outcome = StageOutcome(stage.name, "not configured", "no [musav] root in the settings")
        else:
            request = stage.request(settings, workdir, _request_collection(stage, settings, collection))
            reason = "forced" if force else artifacts.stale_reason(workdir, stage.name, *request)
            if reason is None:
                outcome = StageOutcome(stage.name, "current", "inputs and settings unchanged")
            else:
                started = time.perf_counter()
                summary = stage.run(settings, workdir, show_progress=show_progress)
                outcome = StageOutcome(stage.name, "ran", reason, time.perf_counter() - started, summary)
        outcomes.append(outcome)
        if on_stage is not None:
            on_stage(outcome)
    return outcomes
