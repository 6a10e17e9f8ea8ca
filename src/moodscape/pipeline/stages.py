"""The registry of stages: how each runs, what it depends on, what it writes.

Every stage is one :class:`Stage`. ``moodscape run`` runs :data:`STAGES` in order, and a
stage runner records, when it finishes, :meth:`Stage.record`: its outputs and the answer
of :meth:`Stage.request` (the settings and input files that determine them) in
``manifest.json``. Before each stage ``moodscape run`` compares that same answer with the
manifest (:func:`moodscape.artifacts.stale_reason`); keeping both uses on one definition
is what makes "nothing changed → nothing re-runs" hold.

Audio files themselves are not hashed (a collection has thousands); the track table is,
through :func:`collection_fingerprint`, so added, removed, moved or re-split tracks are
seen.
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from ..datasets import musav

Request = tuple[dict[str, Any], list[Path]]
"""The JSON-ready settings (their hash is what the manifest compares) and input files of a stage."""

_TRACK_COLUMNS = ["track_id", "audio_path", "mel_path", "split"]
_EXECUTION_ONLY = ("scheduler", "n_workers", "chunk_size", "track_timeout_s")
"""Feature settings that change how the map runs, never what it computes."""


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline.

    Attributes
    ----------
    name : str
        Its CLI command and its name in the manifest.
    runner : str
        ``"module:function"`` in :mod:`moodscape.pipeline`; the function takes
        ``(settings, workdir, *, show_progress)`` and returns the summary the CLI prints.
        Imported when the stage runs, so that stages 1–2 never import torch.
    settings_sections : tuple of str
        The settings tables that determine its outputs.
    requests : callable
        ``(settings, workdir, collection) -> Request``.
    outputs : callable
        ``(workdir) -> list of Path``: what the stage always writes.
    uses_collection : bool
        Whether its request depends on the collection (stage 4 reads only MusAV).
    """

    name: str
    runner: str
    settings_sections: tuple[str, ...]
    requests: Callable[[Settings, Workdir, Any], Request]
    outputs: Callable[[Workdir], list[Path]]
    uses_collection: bool = True

    def run(self, settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
        """Run the stage; returns its summary."""
        module, function = self.runner.split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), function)(
            settings, workdir, show_progress=show_progress)

    def request(self, settings: Settings, workdir: Workdir, collection: Any = None) -> Request:
        """The settings and input files that determine the stage's outputs.

        ``collection`` (a :class:`~moodscape.pipeline.collection.Collection`) may be
        omitted for a stage that does not use it.
        """
        return self.requests(settings, workdir, collection if self.uses_collection else None)

    def staged(self, workdir: Workdir) -> AbstractContextManager[artifacts.StagedWorkdir]:
        """Where the stage writes its artifacts, moved into ``workdir`` all together at the end of the block
        (:func:`moodscape.artifacts.staged`)."""
        return artifacts.staged(workdir, self.name)

    def record(self, workdir: Workdir, settings: Settings, collection: Any = None, *,
               extra_outputs: Sequence[Path] = (), details: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Record the stage's outputs (and ``extra_outputs``) with its request in ``manifest.json``.

        ``workdir`` is where the outputs were written: the stage's staged work directory
        (:meth:`staged`), so that the entry is committed with them.
        """
        return artifacts.record_stage(workdir, self.name, [*self.outputs(workdir), *extra_outputs],
                                      *self.request(settings, workdir.committed, collection), details)


def collection_fingerprint(tracks: pd.DataFrame) -> str:
    """SHA-256 of a track table's ids, files, splits and tags (row order included)."""
    digest = hashlib.sha256()
    digest.update(pd.util.hash_pandas_object(tracks[_TRACK_COLUMNS].astype(str), index=False).to_numpy().tobytes())
    digest.update("\n".join(",".join(tags) for tags in tracks["tags"]).encode())
    return digest.hexdigest()


def musav_files(settings: Settings) -> list[Path]:
    """The MusAV files stage 4 reads besides audio and metadata: song ids and ground truth."""
    root = settings.musav.root
    if root is None:
        return []
    files = [Path(root) / musav.SONGIDS_FILE]
    return files + [path for _, _, path in musav.ground_truth_files(Path(root) / "annotations")]


def report_inputs(workdir: Workdir) -> list[Path]:
    """The artifacts the report reads (those that exist count for staleness)."""
    return [workdir.features, workdir.clusters, workdir.cluster_selection, workdir.cluster_profiles, workdir.track_labels,
            workdir.pretrain_metrics, workdir.classifier, workdir.classifier_metrics, workdir.ablation_metrics,
            workdir.av_metrics, workdir.musav_predictions, workdir.baselines, workdir.inference_lookup, workdir.dataset_problems,
            *(workdir.skipped_report(stage.name) for stage in STAGES)]


# --------------------------------------------------------------------------- what each stage depends on


def _collection(settings: Settings, collection: Any) -> tuple[dict[str, str], list[Path]]:
    return {"collection": collection_fingerprint(collection.tracks)}, list(collection.source_files)


def _features(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    dataset = "jamendo" if settings.data.source == "jamendo" else "folder"
    chosen = settings.stage_settings("data", dataset, "features")
    chosen["features"] = {k: v for k, v in chosen["features"].items() if k not in _EXECUTION_ONLY}
    return {**chosen, **fingerprint}, sources


def _cluster(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    return {**settings.stage_settings("cluster"), "seed": settings.seed, **fingerprint}, [workdir.features, *sources]


def _label(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    return {**settings.stage_settings("label"), **fingerprint}, [workdir.clusters, workdir.features, workdir.cluster_selection, *sources]


def _pretrain(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    if settings.pretrain.backbone is not None:
        return {"backbone_file": str(settings.pretrain.backbone)}, [settings.pretrain.backbone]
    fingerprint, sources = _collection(settings, collection)
    return {**settings.stage_settings("pretrain"), "seed": settings.seed, **fingerprint}, sources


def _train(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    return ({**settings.stage_settings("train"), "seed": settings.seed, **fingerprint},
            [workdir.backbone, workdir.track_labels, workdir.label_to_idx, *sources])


def _train_av(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    network = [workdir.backbone, workdir.classifier, workdir.label_to_idx]
    return {**settings.stage_settings("musav", "av"), "seed": settings.seed}, network + musav_files(settings)


def _infer(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    network = [workdir.backbone, workdir.classifier, workdir.label_to_idx, workdir.av_regressor]
    return {**settings.stage_settings("infer"), **fingerprint}, network + sources


def _report(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    fingerprint, sources = _collection(settings, collection)
    return {"settings": settings.model_dump(mode="json"), **fingerprint}, report_inputs(workdir) + sources


def _ablate(settings: Settings, workdir: Workdir, collection: Any) -> Request:
    transfer = [workdir.classifier, workdir.features, workdir.musav_features, *musav_files(settings)]
    return ({**settings.stage_settings("train", "ablate", "musav", "av"), "seed": settings.seed},
            [workdir.backbone, workdir.track_labels, *transfer])


def _checkpoint(path: Path) -> list[Path]:
    return [path, artifacts.checkpoint_description(path)]


STAGES = (
    Stage("features", "features:run_features", ("data", "jamendo", "folder", "features"), _features,
          lambda w: [w.features]),
    Stage("cluster", "cluster:run_cluster", ("cluster",), _cluster, lambda w: [w.clusters, w.cluster_selection]),
    Stage("label", "label:run_label", ("label",), _label, lambda w: [w.cluster_profiles, w.track_labels, w.label_to_idx]),
    Stage("pretrain", "network:run_pretrain", ("pretrain",), _pretrain, lambda w: _checkpoint(w.backbone)),
    Stage("train", "network:run_train", ("train",), _train, lambda w: [*_checkpoint(w.classifier), w.classifier_metrics]),
    Stage("train-av", "train_av:run_train_av", ("musav", "av"), _train_av,
          lambda w: [*_checkpoint(w.av_regressor), w.av_metrics, w.musav_embeddings, w.musav_predictions,
                     w.musav_features, w.baselines], uses_collection=False),
    Stage("infer", "infer:run_infer", ("infer",), _infer,
          lambda w: [w.inference_lookup, w.embeddings, w.catalog, *_checkpoint(w.serving_model)]),
    Stage("report", "report:run_report", (), _report, lambda w: [w.report_markdown, w.report_html]),
)
"""The stages ``moodscape run`` runs, in order."""

ABLATE = Stage("ablate", "network:run_ablate", ("train", "ablate", "musav", "av"), _ablate, lambda w: [w.ablation_metrics])
"""The ablation: not part of ``moodscape run`` (``moodscape ablate``)."""

BY_NAME = {stage.name: stage for stage in (*STAGES, ABLATE)}
"""Every stage by its name."""



def producer_of(path: Path) -> str | None:
    """The stage that writes an artifact of this file name, if any (for "run `moodscape <stage>` first")."""
    name = Path(path).name
    return next((stage.name for stage in BY_NAME.values() for output in stage.outputs(Workdir(Path("."))) if output.name == name),
                None)


def serving_bundle(workdir: Workdir) -> list[Path]:
    """The artifacts ``moodscape serve`` cannot start without: the labels, and stage 5's outputs."""
    return [workdir.label_to_idx, workdir.cluster_profiles, *BY_NAME["infer"].outputs(workdir)]


def serving_extras(workdir: Workdir) -> list[Path]:
    """The artifacts ``moodscape serve`` reads when they are there: the choice of K, the metrics, the
    classifier's and the regressor's descriptions (checked against the labels) and the report."""
    return [workdir.cluster_selection, workdir.classifier_metrics, workdir.av_metrics, *_checkpoint(workdir.classifier),
            *_checkpoint(workdir.av_regressor), workdir.report_html]
