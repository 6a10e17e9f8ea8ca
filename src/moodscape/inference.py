"""Stage 5: every track in one pass, audio → log-mel → classifier → labels, embedding, mood.

A worker needs one file, the *inference bundle* (:func:`export_bundle`, saved with
``torch.save``, loaded with ``weights_only=True``): the stage-3 classifier as a plain
:class:`~moodscape.models.backbone.AudioResNet` whose LoRA adapters are merged into the
weights, the label names in index order, the stage-4 valence/arousal regressor (or none)
and the crop settings. :func:`load_bundle` rebuilds both networks (channels_last, eval
mode) without importing peft.

For each chunk of tracks, :func:`infer_chunk` decodes every track to a log-mel (or reads
its MTG-Jamendo mel ``.npy``), cuts ``n_eval_crops`` evenly spaced crops of
``crop_frames`` frames from each, runs all crops of the chunk through the network,
``batch_size`` crops per forward pass, and averages each track's crop embeddings as
:func:`moodscape.training.data.embed_tracks` does. From that mean embedding come the class
probabilities (softmax of the linear head, whose output on the mean embedding is the mean
of the crops' logits) and the (valence, arousal) of the regressor. A track that cannot be
decoded fails alone, with the error's message; the others of its chunk go on.
:func:`infer_chunk` is the batched function of :func:`moodscape.pipeline.parallel.map_tracks`, so
the chunks are spread over Dask workers, written as they finish and resumed after a kill.
:func:`lookup_tables` turns the rows into the stage's two tables.

Threads: inside a Dask worker, torch runs on one thread. The parallelism of the map is its
worker processes (the local cluster starts one single-threaded worker per core), so while
one worker decodes audio the other cores run the network of the others; two processes ×
one thread keep two cores busy without the synchronisation of one process × two threads.
Outside Dask (``scheduler="synchronous"``) the caller's torch setting stays.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import torch
from torch import nn

from moodscape.artifacts import AV_COLUMNS, EMBEDDING_COLUMNS, LABEL_COLUMN_PREFIX
from moodscape.audio import MEL_HOP, MEL_N_BANDS, MEL_SR, crop, eval_crop_starts, load_mel, mel_crops_from_audio
from moodscape.errors import ArtifactError, ConfigError, DataError
from moodscape.models.av import AV_OUTPUTS
from moodscape.models.backbone import EMBEDDING_DIM, AudioResNet, build_backbone, check_same_tensors
from moodscape.models.checkpoint import read_checkpoint, resolve_device

BUNDLE_VERSION = 1
assert len(EMBEDDING_COLUMNS) == EMBEDDING_DIM and AV_COLUMNS == AV_OUTPUTS

AVBuilder = Callable[..., nn.Module]
"""Builds the valence/arousal module from its checkpoint's ``model_args``."""
TrackResult = tuple[str, dict[str, Any] | None, str | None]

@dataclass
class InferenceBundle:
    """The networks and settings of stage 5, as :func:`load_bundle` rebuilds them.

    Attributes
    ----------
    model : AudioResNet
        The classifier, adapters merged, channels_last, eval mode, on ``device``.
    av_model : nn.Module or None
        Maps ``(B, 512)`` embeddings to ``(B, 2)`` (valence, arousal), eval mode; ``None``
        when the bundle has no regressor.
    label_names : list of str
        Name of each output of the head, in index order.
    crop_frames, n_eval_crops : int
        Crop length in frames, and evenly spaced crops averaged per track.
    batch_size : int
        Crops per forward pass.
    device : torch.device
    """

    model: AudioResNet
    av_model: nn.Module | None
    label_names: list[str]
    crop_frames: int
    n_eval_crops: int
    batch_size: int
    device: torch.device


class NetworkOutputs(NamedTuple):
    """What the networks give for ``n`` tracks.

    Attributes
    ----------
    probabilities : np.ndarray [shape=(n, n_labels), dtype=float32]
    embeddings : np.ndarray [shape=(n, 512), dtype=float32]
        Mean over the track's crops.
    valence_arousal : np.ndarray [shape=(n, 2), dtype=float32]
        NaN when the bundle has no regressor.
    """

    probabilities: np.ndarray
    embeddings: np.ndarray
    valence_arousal: np.ndarray


# Bundles loaded in this process, by (resolved path, modification time): each Dask worker
# loads the file once, and again only if it changes.
_LOADED: dict[tuple[str, int], InferenceBundle] = {}


# --------------------------------------------------------------------------- the bundle


def export_bundle(
    classifier: nn.Module,
    label_names: Sequence[str],
    av_checkpoint: Mapping[str, Any] | None = None,
    *,
    crop_frames: int = 256,
    n_eval_crops: int = 4,
    batch_size: int = 32,
    device: str = "auto",
) -> dict:
    """Return the inference bundle dict of a trained classifier and AV regressor.

    Parameters
    ----------
    classifier : nn.Module
        The stage-3 classifier: a LoRA-adapted ``PeftModel`` (its adapters are merged
        into a copy; the model is unchanged) or an ``AudioResNet`` with a head.
    label_names : sequence of str
        Name of each head output, in index order.
    av_checkpoint : mapping, optional
        The stage-4 checkpoint, ``{"state_dict", "model_args", ...}``; ``None`` for no
        valence/arousal.
    crop_frames, n_eval_crops, batch_size : int
        Crop length, crops averaged per track, crops per forward pass.
    device : str
        ``"auto"`` (CUDA when the worker has it), ``"cpu"`` or ``"cuda"``; resolved where
        the bundle is loaded.

    Returns
    -------
    dict
        Tensors and plain values only, for ``torch.save`` and
        ``torch.load(weights_only=True)``: ``version``, ``model_args``, ``state_dict``,
        ``label_names``, ``av`` (``{"model_args", "state_dict"}`` or ``None``),
        ``crop_frames``, ``n_eval_crops``, ``batch_size``, ``device``.
    """
    for name, value in (("crop_frames", crop_frames), ("n_eval_crops", n_eval_crops), ("batch_size", batch_size)):
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    model = _plain_classifier(classifier)
    label_names = [str(name) for name in label_names]
    if model.head.out_features != len(label_names):
        raise ConfigError(f"the classifier has {model.head.out_features} outputs but {len(label_names)} label names were given")
    if len(set(label_names)) != len(label_names):
        raise ConfigError(f"label names must be unique, got {label_names}")
    av = None
    if av_checkpoint is not None:
        if not {"state_dict", "model_args"} <= set(av_checkpoint):
            raise ArtifactError("the AV checkpoint must be a dict with 'state_dict' and 'model_args'")
        av = {"model_args": dict(av_checkpoint["model_args"]), "state_dict": _cpu_copy(av_checkpoint["state_dict"])}
    return {
        "version": BUNDLE_VERSION,
        "model_args": model.model_args,
        "state_dict": _cpu_copy(model.state_dict()),
        "label_names": label_names,
        "av": av,
        "crop_frames": int(crop_frames),
        "n_eval_crops": int(n_eval_crops),
        "batch_size": int(batch_size),
        "device": str(device),
    }


def load_bundle(path: str | os.PathLike, av_builder: AVBuilder | None = None) -> InferenceBundle:
    """Rebuild the networks of a bundle file written from :func:`export_bundle`.

    Parameters
    ----------
    path : path
        The ``torch.save``-d bundle dict.
    av_builder : callable, optional
        ``av_builder(**model_args) -> nn.Module`` for the regressor; default
        :func:`moodscape.models.av.build_av_ensemble`.

    Returns
    -------
    InferenceBundle

    Raises
    ------
    ArtifactError
        If the file cannot be read with ``weights_only=True``, lacks an entry, or its
        tensors do not fit the networks (the message names the keys).
    """
    source = f"inference bundle {path}"
    bundle = read_checkpoint(path, "inference bundle", _BUNDLE_KEYS)
    device = resolve_device(bundle["device"])
    model = build_backbone(**bundle["model_args"])
    if model.head is None or model.head.out_features != len(bundle["label_names"]):
        raise ArtifactError(f"{source}: {len(bundle['label_names'])} label names for model_args {bundle['model_args']}")
    check_same_tensors(model.state_dict(), bundle["state_dict"], source)
    model.load_state_dict(bundle["state_dict"])
    model = model.to(device, memory_format=torch.channels_last).eval()
    av_model = None
    if bundle["av"] is not None:
        av_model = _build_av(bundle["av"], av_builder, source).to(device).eval()
    return InferenceBundle(
        model=model,
        av_model=av_model,
        label_names=list(bundle["label_names"]),
        crop_frames=bundle["crop_frames"],
        n_eval_crops=bundle["n_eval_crops"],
        batch_size=bundle["batch_size"],
        device=device,
    )


def cached_bundle(path: str | os.PathLike, av_builder: AVBuilder | None = None) -> InferenceBundle:
    """:func:`load_bundle`, once per process and file version (path and modification time)."""
    resolved = Path(path).resolve()
    key = (str(resolved), resolved.stat().st_mtime_ns)
    if key not in _LOADED:
        for stale in [loaded for loaded in _LOADED if loaded[0] == key[0]]:
            del _LOADED[stale]
        _LOADED[key] = load_bundle(resolved, av_builder)
    return _LOADED[key]


# --------------------------------------------------------------------------- the network


def predict_mels(bundle: InferenceBundle, mels: Sequence[np.ndarray]) -> NetworkOutputs:
    """Run tracks' log-mels through the bundle's networks, all crops batched together.

    Parameters
    ----------
    bundle : InferenceBundle
    mels : sequence of np.ndarray [shape=(96, T)]
        One log-mel per track, in dB; a track shorter than a crop is repeated to fill it.

    Returns
    -------
    NetworkOutputs
        Row ``i`` belongs to ``mels[i]``.
    """
    return predict_crops(bundle, [mel_crops(mel, bundle.crop_frames, bundle.n_eval_crops) for mel in mels])


def mel_crops(mel: np.ndarray, crop_frames: int, n_crops: int) -> np.ndarray:
    """The ``(n_crops, 96, crop_frames)`` evenly spaced crops of one log-mel (:func:`~moodscape.audio.eval_crop_starts`)."""
    return np.stack([crop(mel, start, crop_frames) for start in eval_crop_starts(mel.shape[1], crop_frames, n_crops)])


def predict_crops(bundle: InferenceBundle, crops: Sequence[np.ndarray]) -> NetworkOutputs:
    """Run tracks' crops through the bundle's networks, ``bundle.batch_size`` crops per forward pass.

    Parameters
    ----------
    bundle : InferenceBundle
    crops : sequence of np.ndarray [shape=(n_eval_crops, 96, crop_frames)]
        The crops of each track (:func:`mel_crops`, or
        :func:`~moodscape.audio.mel_crops_from_audio`).

    Returns
    -------
    NetworkOutputs
        Row ``i`` belongs to ``crops[i]``; a track's embedding is the mean over its crops.
    """
    n_tracks, n_crops = len(crops), bundle.n_eval_crops
    flat = np.concatenate(crops) if n_tracks else np.zeros((0, MEL_N_BANDS, bundle.crop_frames), dtype=np.float32)  # (n * n_crops, F, C)
    with torch.inference_mode():
        crop_embeddings = [torch.zeros(0, EMBEDDING_DIM, device=bundle.device)]
        for first in range(0, len(flat), bundle.batch_size):
            x = torch.from_numpy(flat[first : first + bundle.batch_size])[:, None].to(bundle.device, memory_format=torch.channels_last)  # (B, 1, F, crop_frames)
            crop_embeddings.append(bundle.model.embed(x).float())  # (B, 512)
        embeddings = torch.cat(crop_embeddings).reshape(n_tracks, n_crops, EMBEDDING_DIM).mean(dim=1)  # (n, 512)
        probabilities = torch.softmax(bundle.model.head(embeddings), dim=1)  # (n, K)
        if bundle.av_model is None:
            valence_arousal = torch.full((n_tracks, len(AV_COLUMNS)), math.nan)
        else:
            valence_arousal = bundle.av_model(embeddings).float()  # (n, 2)
    return NetworkOutputs(
        probabilities=probabilities.cpu().numpy(),
        embeddings=embeddings.cpu().numpy(),
        valence_arousal=valence_arousal.cpu().numpy(),
    )


def infer_chunk(
    bundle_path: str | os.PathLike,
    chunk: Sequence[tuple[str, tuple[str, str]]],
    *,
    av_builder: AVBuilder | None = None,
) -> list[TrackResult]:
    """Stage 5 for a chunk of tracks: the batched function of :func:`~moodscape.pipeline.parallel.map_tracks`.

    Give it to the map as ``functools.partial(infer_chunk, bundle_path)``.

    Parameters
    ----------
    bundle_path : path
        The bundle file; loaded once per process (:func:`cached_bundle`).
    chunk : sequence of (track_id, (kind, path))
        ``kind`` is ``"audio"`` (decoded, resampled and turned into a log-mel) or
        ``"mel"`` (an MTG-Jamendo mel ``.npy``).
    av_builder : callable, optional
        See :func:`load_bundle`.

    Returns
    -------
    list of (track_id, row or None, error or None)
        One per track of ``chunk``, in its order. A row holds ``duration`` (seconds),
        ``prob_<i>`` for each label index, ``valence``, ``arousal`` (NaN without a
        regressor) and ``embedding`` (a ``(512,)`` float32 array).
    """
    _one_thread_in_dask_worker()
    bundle = cached_bundle(bundle_path, av_builder)
    results: dict[str, TrackResult] = {}
    decoded: list[tuple[str, np.ndarray]] = []
    for track_id, argument in chunk:
        try:
            decoded.append((track_id, track_crops(argument, bundle.crop_frames, bundle.n_eval_crops)))
        except Exception as exc:  # one bad track must never stop its chunk
            results[track_id] = (track_id, None, f"{type(exc).__name__}: {exc}")
    outputs = predict_crops(bundle, [crops for _, (crops, _) in decoded])
    for index, (track_id, (_, n_frames)) in enumerate(decoded):
        row = {"duration": track_duration(n_frames)}
        row.update({f"prob_{label}": float(p) for label, p in enumerate(outputs.probabilities[index])})
        row.update({name: float(value) for name, value in zip(AV_COLUMNS, outputs.valence_arousal[index])})
        row["embedding"] = outputs.embeddings[index]  # (512,) float32: one column, cheap to move and store
        results[track_id] = (track_id, row, None)
    return [results[track_id] for track_id, _ in chunk]


def track_duration(n_frames: int) -> float:
    """Seconds of audio behind ``n_frames`` mel frames (centred frames, hop 256 at 12 kHz).

    A signal of ``n`` samples gives ``ceil(n / hop) + 1`` frames, so ``(n_frames - 1)``
    hops is its length to within one hop (21 ms).
    """
    return max(n_frames - 1, 0) * MEL_HOP / MEL_SR


# --------------------------------------------------------------------------- the tables


def lookup_tables(
    rows: pd.DataFrame, label_names: Sequence[str], tracks: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The stage's two tables from the rows of :func:`infer_chunk`, in the order of ``rows``.

    Parameters
    ----------
    rows : pandas.DataFrame
        ``track_id`` and the columns of an :func:`infer_chunk` row.
    label_names : sequence of str
        Name of each label index.
    tracks : pandas.DataFrame
        ``track_id`` and ``tags`` (a list of str per track) of the collection; a track
        missing from it, or a table without ``tags``, gets ``""``.

    Returns
    -------
    lookup : pandas.DataFrame
        ``track_id``, ``new_acoustic_label`` (the most probable label), ``probability``
        (its probability), ``p_<label name>`` for each label, ``valence``, ``arousal``,
        ``tags`` (the track's original tags joined with ","), ``duration``.
    embeddings : pandas.DataFrame
        ``track_id``, ``emb_000`` … ``emb_511`` (float32).
    """
    label_names = [str(name) for name in label_names]
    probabilities = rows[[f"prob_{label}" for label in range(len(label_names))]].to_numpy(dtype=np.float64)  # (n, K)
    best = probabilities.argmax(axis=1) if len(rows) else np.zeros(0, dtype=int)
    tags = dict(zip(tracks["track_id"], tracks["tags"])) if "tags" in tracks else {}
    track_ids = rows["track_id"].tolist()
    lookup = pd.DataFrame({
        "track_id": track_ids,
        "new_acoustic_label": [label_names[label] for label in best],
        "probability": probabilities[np.arange(len(best)), best],
        **{f"{LABEL_COLUMN_PREFIX}{name}": probabilities[:, label] for label, name in enumerate(label_names)},
        **{name: rows[name].to_numpy(dtype=np.float64) for name in AV_COLUMNS},
        "tags": [_joined_tags(tags.get(track_id)) for track_id in track_ids],
        "duration": rows["duration"].to_numpy(dtype=np.float64),
    })
    return lookup, embedding_table(rows)


def embedding_table(rows: pd.DataFrame) -> pd.DataFrame:
    """``track_id`` and ``emb_000`` … ``emb_511`` (float32) of :func:`infer_chunk` rows, in their order."""
    embeddings = pd.DataFrame(embedding_matrix(rows), columns=EMBEDDING_COLUMNS)
    embeddings.insert(0, "track_id", rows["track_id"].tolist())
    return embeddings


def embedding_matrix(rows: pd.DataFrame) -> np.ndarray:
    """The ``(n, 512)`` float32 matrix of the ``embedding`` column of :func:`infer_chunk` rows."""
    if not len(rows):
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    return np.stack([np.asarray(vector, dtype=np.float32) for vector in rows["embedding"]])


# --------------------------------------------------------------------------- helpers


def _plain_classifier(classifier: nn.Module) -> AudioResNet:
    """The classifier as a plain AudioResNet: a PeftModel's adapters merged into a copy."""
    model = classifier
    if not isinstance(classifier, AudioResNet):
        from peft import PeftModel  # only the exporting process pays for peft

        from moodscape.models.lora import merged_copy

        if not isinstance(classifier, PeftModel):
            raise ConfigError(f"expected an AudioResNet or a LoRA-adapted one, got {type(classifier).__name__}")
        model = merged_copy(classifier)
    if not isinstance(model, AudioResNet) or model.head is None:
        raise ConfigError("the classifier must be an AudioResNet with a head")
    return model


def _cpu_copy(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous().clone() for key, value in state.items()}


_BUNDLE_KEYS = ("model_args", "state_dict", "label_names", "av", "crop_frames", "n_eval_crops", "batch_size", "device")


def _build_av(av: Mapping[str, Any], av_builder: AVBuilder | None, source: str) -> nn.Module:
    if av_builder is None:
        from moodscape.models.av import build_av_ensemble as av_builder
    try:
        av_model = av_builder(**av["model_args"])
    except (TypeError, ValueError, ConfigError) as error:
        raise ArtifactError(f"{source}: cannot build the AV regressor from {av['model_args']!r}: {error}") from None
    check_same_tensors(av_model.state_dict(), av["state_dict"], f"{source} (AV regressor)")
    av_model.load_state_dict(av["state_dict"])
    return av_model


def track_crops(argument: tuple[str, str], crop_frames: int, n_crops: int) -> tuple[np.ndarray, int]:
    """A track's evaluation crops and its number of mel frames; audio is decoded only around the crops."""
    kind, path = argument
    if kind == "audio":
        return mel_crops_from_audio(path, crop_frames, n_crops)
    if kind == "mel":
        mel = load_mel(path)
        return mel_crops(mel, crop_frames, n_crops), int(mel.shape[1])
    raise DataError(f"unknown input kind {kind!r} for {path} (expected 'audio' or 'mel')")


def _joined_tags(tags: Any) -> str:
    if tags is None or (isinstance(tags, float) and math.isnan(tags)):
        return ""
    if isinstance(tags, str):
        return tags
    return ",".join(str(tag) for tag in tags)


def _one_thread_in_dask_worker() -> None:
    """One torch thread per Dask worker thread (see the module docstring)."""
    try:
        from distributed import get_worker
    except ImportError:
        return
    try:
        get_worker()
    except ValueError:  # not in a worker
        return
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)
