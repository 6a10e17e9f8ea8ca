"""Stage 5, unified inference; and the network map that stage 4 shares.

Both stages run the stage-3 network the same way: :func:`_network_map` exports the
classifier (adapters merged) and, for stage 5, the AV regressor into one bundle, and maps
:func:`moodscape.inference.infer_chunk` over the tracks through Dask, in resumable
chunks. Stage 4 uses the embeddings of that map for the MusAV songs, so the regressor is
trained on exactly the embeddings stage 5 feeds it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import pandas as pd

from .. import artifacts
from ..artifacts import Workdir
from ..config import Settings
from ..errors import DataError, MissingArtifactError
from ..inference import export_bundle, infer_chunk, lookup_tables
from ..models.checkpoint import save_checkpoint
from . import catalog_scope
from .collection import inference_tracks, load_collection
from .features import feature_tasks
from .parallel import MapOutcome, map_tracks
from .stages import BY_NAME


def label_names(workdir: Workdir) -> list[str]:
    label_to_idx = artifacts.read_json(workdir.label_to_idx)
    return sorted(label_to_idx, key=label_to_idx.get)


def network_map(
    settings: Settings, workdir: Workdir, stage: str, tasks: dict[str, tuple[str, str]],
    av_checkpoint: dict | None, show_progress: bool,
) -> MapOutcome:
    """Run the stage-3 network (and the AV regressor, if given) over ``tasks`` in one pass per track."""
    from ..training.classify import load_classifier

    for required in (workdir.backbone, workdir.classifier, workdir.label_to_idx):
        if not required.exists():
            raise MissingArtifactError(required)
    label_to_idx = artifacts.read_json(workdir.label_to_idx)
    names = sorted(label_to_idx, key=label_to_idx.get)
    classifier = load_classifier(workdir.classifier, workdir.backbone, label_to_idx)
    bundle = export_bundle(
        classifier, names, av_checkpoint, crop_frames=settings.train.crop_frames,
        n_eval_crops=settings.train.n_eval_crops, batch_size=settings.infer.batch_size, device=settings.infer.device,
    )
    bundle_path = workdir.inference_bundle(stage)
    save_checkpoint(bundle, bundle_path)
    model_files = [workdir.backbone, workdir.classifier] + ([workdir.av_regressor] if av_checkpoint else [])
    fingerprint = {"models": [artifacts.file_hash(path) for path in model_files],
                   "settings": settings.stage_settings("infer"), "crops": [settings.train.crop_frames, settings.train.n_eval_crops]}
    cfg = settings.features
    return map_tracks(
        functools.partial(infer_chunk, str(bundle_path)), tasks, chunk_dir=workdir.chunk_dir(stage), fingerprint=fingerprint,
        scheduler=cfg.scheduler, n_workers=cfg.n_workers, chunk_size=cfg.chunk_size, batched=True,
        track_timeout_s=cfg.track_timeout_s,
        description="network" if stage == "infer" else "MusAV embeddings", show_progress=show_progress and bool(tasks),
    )


def catalog_table(tracks: pd.DataFrame, track_ids: pd.Series) -> pd.DataFrame:
    """The serving catalog: ``track_id``, ``audio_path`` (absolute, ``""`` when none), ``split``
    and the dataset's ``title``/``artist``/``album`` (a folder's embedded tags),
    ``artist_id``/``album_id`` and ``added_from`` (:mod:`~moodscape.pipeline.catalog_scope`)
    when it has them, for ``track_ids`` in order."""
    optional = ("title", "artist", "album", "artist_id", "album_id", catalog_scope.ADDED_FROM)
    columns = ["track_id", "audio_path", "split"] + [c for c in optional if c in tracks]
    table = tracks.reindex(columns=columns).drop_duplicates("track_id").set_index("track_id").loc[list(track_ids)]
    audio = table["audio_path"].fillna("").astype(str)
    table["audio_path"] = [str(Path(path).resolve()) if path else "" for path in audio]
    return table.fillna("").astype(str).reset_index()





def _av_checkpoint_dict(workdir: Workdir) -> dict | None:
    from ..models.checkpoint import read_checkpoint

    if not workdir.av_regressor.exists():
        return None
    return read_checkpoint(workdir.av_regressor, "AV regressor checkpoint", ("state_dict", "model_args"))


def run_infer(settings: Settings, workdir: Workdir, *, show_progress: bool = True) -> dict[str, Any]:
    """Stage 5: labels, probabilities, valence/arousal and embeddings of every requested track."""
    cfg = settings.infer
    collection = load_collection(settings)
    requested, unreadable = inference_tracks(settings, collection)
    previous = None if cfg.replace else catalog_scope.previous_catalog(workdir)
    if cfg.folder is not None:
        if previous is not None:
            catalog_scope.check_labels(previous[0], label_names(workdir), workdir.inference_lookup)
        tracks = catalog_scope.ids_in_catalog(requested, cfg.folder, None if previous is None else previous[2])
    else:
        added = catalog_scope.added_tracks(None if previous is None else previous[2], requested["track_id"])
        tracks = pd.concat([requested, added], ignore_index=True) if len(added) else requested
    if tracks.empty and not unreadable:
        raise DataError(f"no track to infer (infer.split = {cfg.split!r})")
    source = settings.features.source if settings.features.source in ("audio", "mel") else "auto"
    tasks, skipped, _ = feature_tasks(tracks, "auto" if cfg.folder else source)
    skipped = unreadable + skipped
    av = _av_checkpoint_dict(workdir)
    outcome = network_map(settings, workdir, "infer", tasks, av, show_progress)
    skipped += outcome.failures
    if outcome.rows.empty:
        raise DataError(f"no track could be inferred ({len(skipped)} skipped, see {workdir.skipped_report('infer')})")
    lookup, embeddings = lookup_tables(outcome.rows, label_names(workdir), tracks)
    catalog = catalog_table(tracks, lookup["track_id"])
    if cfg.folder is not None and previous is not None:
        lookup, embeddings, catalog = catalog_scope.merged(previous, (lookup, embeddings, catalog))
    with BY_NAME["infer"].staged(workdir) as out:
        artifacts.write_table(out.inference_lookup, lookup)
        artifacts.write_table(out.embeddings, embeddings)
        artifacts.write_table(out.catalog, catalog)
        for source, target in ((workdir.inference_bundle("infer"), out.serving_model),
                               (artifacts.checkpoint_description(workdir.inference_bundle("infer")),
                                artifacts.checkpoint_description(out.serving_model))):
            artifacts.write_bytes(target, source.read_bytes())
        artifacts.write_skipped(out.skipped_report("infer"), skipped)
        BY_NAME["infer"].record(out, settings, collection.with_tracks(requested))
        out.remove(workdir.chunk_dir("infer"))
    return {"tracks": len(lookup), "skipped": len(skipped), "labels": int(lookup["new_acoustic_label"].nunique()),
            "valence/arousal": "yes" if av else "no (run train-av)", "resumed": outcome.resumed}
