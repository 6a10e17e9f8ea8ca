"""Analyse an uploaded audio file with the stage-5 networks."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
from fastapi import APIRouter, File, HTTPException, UploadFile

from moodscape.errors import MoodscapeError

from ..analyze import ALLOWED_SUFFIXES, analyze_file, sniff_audio, upload_refusal
from ..deps import Services, ServicesDep, finite_or_none
from ..schemas import AnalysisPublic

router = APIRouter(tags=["analyze"])

_COPY_BLOCK = 1 << 20


@router.post("/analyze", response_model=AnalysisPublic,
             responses={408: {"description": "The file did not arrive in time."},
                        413: {"description": "The file is larger than the upload limit, too long or too large to decode."},
                        415: {"description": "The file is not audio this server can decode."},
                        422: {"description": "The audio cannot be analysed (unknown length, sample rate, samples, too short or silent)."},
                        503: {"description": "The server is analysing as many files as it may; retry after Retry-After seconds."}})
def analyze_upload(services: ServicesDep, file: UploadFile = File(description="An audio file (MP3, WAV, FLAC, OGG, Opus, AIFF, m4a/AAC).")) -> dict:
    """Predict an uploaded track's label, probabilities and valence/arousal (whole and over time) and its nearest catalog tracks."""
    name = Path(file.filename or "upload").name
    suffix = Path(name).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise HTTPException(415, f"{name!r}: unsupported file type {suffix or '(none)'}; send one of {', '.join(sorted(ALLOWED_SUFFIXES))}")
    with services.analysis_slots.hold(), tempfile.TemporaryDirectory(prefix="moodscape-upload-") as folder:
        path = Path(folder) / f"upload{suffix}"
        _save_limited(file, path, services.max_upload_bytes)
        _check_audio(path, name)
        try:
            analysis = analyze_file(services.inference_bundle(), path)
        except MoodscapeError as error:
            raise HTTPException(422, f"{name!r}: {_without_path(error, path)}") from None
    if not np.isfinite(analysis.probabilities).all():
        raise HTTPException(422, f"{name!r}: the networks gave no finite prediction for this audio")
    return _analysis_record(services, name, analysis)


def _check_audio(path: Path, name: str) -> None:
    """Raise the 4xx :func:`sniff_audio` or :func:`upload_refusal` finds for the saved upload."""
    if (reason := sniff_audio(path)) is not None:
        raise HTTPException(415, f"{name!r} is not decodable audio: {reason}")
    if (refusal := upload_refusal(path)) is not None:
        status, reason = refusal
        raise HTTPException(status, f"{name!r}: {reason}")


def _without_path(error: Exception, path: Path) -> str:
    """An error's message without the server's temporary path (the messages start with the file's path)."""
    return str(error).removeprefix(f"{path}: ").replace(str(path), "the file").replace(str(path.parent), "")


def _save_limited(upload: UploadFile, path: Path, limit: int) -> None:
    """Copy the upload to ``path``; 413 as soon as it passes ``limit`` bytes."""
    written = 0
    with open(path, "wb") as out:
        while block := upload.file.read(_COPY_BLOCK):
            written += len(block)
            if written > limit:
                raise HTTPException(413, f"the upload is larger than the limit of {limit // (1 << 20)} MiB")
            out.write(block)
    if written == 0:
        raise HTTPException(415, "the upload is empty")


def _analysis_record(services: Services, name: str, analysis) -> dict:
    labels = services.catalog.labels
    display = services.display_names()

    def labelled(probabilities) -> dict:
        best = int(max(range(len(labels)), key=lambda index: probabilities[index]))
        return {"label": labels[best], "label_name": display[labels[best]], "probability": float(probabilities[best])}

    hits = services.recommender.nearest(analysis.embedding, limit=10)
    return {
        "filename": name,
        "duration": float(analysis.duration),
        **labelled(analysis.probabilities),
        "probabilities": dict(zip(labels, map(float, analysis.probabilities))),
        "valence": finite_or_none(analysis.valence),
        "arousal": finite_or_none(analysis.arousal),
        "features": {key: float(value) for key, value in analysis.features.items() if math.isfinite(value)},
        "timeline": [{"start": float(segment.start), "end": float(segment.end), **labelled(segment.probabilities),
                      "valence": finite_or_none(segment.valence), "arousal": finite_or_none(segment.arousal)}
                     for segment in analysis.timeline],
        "nearest": services.hit_records(hits),
    }
