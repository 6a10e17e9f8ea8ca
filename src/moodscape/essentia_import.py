"""Stage 1a from precomputed descriptors: AcousticBrainz / Essentia MusicExtractor JSON.

Maps the extractor's keys (verified on the JSON written by ``essentia`` 2.1-beta6,
``MusicExtractor`` 2.0; AcousticBrainz low-level dumps use the same layout) onto
:data:`moodscape.features.FEATURE_NAMES`:

==========================  ===============================================================
column                      source
==========================  ===============================================================
bpm                         ``rhythm.bpm``
spectral_centroid_mean/std  ``lowlevel.spectral_centroid.mean`` / ``.stdev``
spectral_rolloff_mean       ``lowlevel.spectral_rolloff.mean``
spectral_bandwidth_mean     ``sqrt(lowlevel.spectral_spread.mean)`` (spread is a variance, Hz²)
spectral_flatness_mean      ``10 ** (-6 * lowlevel.barkbands_flatness_db.mean)`` (inverse of
                            Essentia's FlatnessDB; over Bark bands, not linear bins)
spectral_contrast_mean_0-5  ``lowlevel.spectral_contrast_coeffs.mean`` (6 values; Essentia's
                            contrast is a different formula, negative, over 6 bands)
spectral_contrast_mean_6    NaN (Essentia has no 7th band)
zcr_mean                    ``lowlevel.zerocrossingrate.mean`` × analysis rate / 22050
rms_mean, rms_std           ``lowlevel.spectral_rms.mean`` / ``.stdev`` (RMS of the spectrum,
                            not of the signal: other units)
onset_rate                  ``rhythm.onset_rate``
mfcc_mean_0-12              ``lowlevel.mfcc.mean`` (40 bands, Essentia's dB scaling)
chroma_degree_0-11          ``tonal.hpcp.mean`` (36 bins from A) folded to 12, scaled to max 1,
                            rotated to start at the key's tonic (the key estimate's ``key``
                            below, else moodscape's Krumhansl–Schmuckler estimate)
mode_major, key_strength    ``tonal.key_edma`` (else ``key_krumhansl``, ``key_temperley``,
                            or the older ``tonal.key_scale`` / ``tonal.key_strength``)
loudness_db                 ``lowlevel.loudness_ebu128.integrated`` (LUFS)
dynamic_complexity          ``lowlevel.dynamic_complexity``
spectral_flux_mean          ``lowlevel.spectral_flux.mean`` (L2 flux of the normalised
                            spectrum, not our log-mel flux)
==========================  ===============================================================

Units and definitions differ from the audio path, so a table imported here must not be
mixed with :func:`moodscape.features.extract_features` output in one clustering; that is
fine, as the scaler and K-Means are fitted on whichever table is used.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from moodscape.errors import DataError
from moodscape.features import FEATURE_NAMES, N_CHROMA, N_CONTRAST_BANDS, N_MFCC, ZCR_UNIT_SR, estimate_key

#: Essentia's key names (sharps and flats) as pitch classes, C = 0.
PITCH_CLASSES = {name: index for index, names in enumerate(
    [("C", "B#"), ("C#", "Db"), ("D",), ("D#", "Eb"), ("E", "Fb"), ("F", "E#"), ("F#", "Gb"), ("G",), ("G#", "Ab"),
     ("A",), ("A#", "Bb"), ("B", "Cb")]) for name in names}
KEY_SOURCES = ("tonal.key_edma", "tonal.key_krumhansl", "tonal.key_temperley", "tonal.key")
"""Key estimates tried in order; ``tonal.key`` stands for the old flat ``key_*`` keys."""

_SCALAR_SOURCES = {
    "bpm": "rhythm.bpm",
    "spectral_centroid_mean": "lowlevel.spectral_centroid.mean",
    "spectral_centroid_std": "lowlevel.spectral_centroid.stdev",
    "spectral_rolloff_mean": "lowlevel.spectral_rolloff.mean",
    "rms_mean": "lowlevel.spectral_rms.mean",
    "rms_std": "lowlevel.spectral_rms.stdev",
    "onset_rate": "rhythm.onset_rate",
    "loudness_db": "lowlevel.loudness_ebu128.integrated",
    "dynamic_complexity": "lowlevel.dynamic_complexity",
    "spectral_flux_mean": "lowlevel.spectral_flux.mean",
}


def read_essentia_json(path: str | os.PathLike) -> dict[str, float]:
    """Read one extractor JSON file into the feature columns.

    Parameters
    ----------
    path : str or os.PathLike
        A MusicExtractor / AcousticBrainz low-level JSON file.

    Returns
    -------
    dict[str, float]
        Every name in :data:`~moodscape.features.FEATURE_NAMES`; missing descriptors
        are NaN, with one warning per file listing them.

    Raises
    ------
    DataError
        The file is missing or is not a JSON object.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"{path}: cannot read Essentia JSON ({error})") from None
    if not isinstance(document, dict):
        raise DataError(f"{path}: Essentia JSON must hold an object at top level")

    columns, missing = _map_descriptors(document)
    row = {name: columns.get(name, np.nan) for name in FEATURE_NAMES}
    if missing:
        warnings.warn(
            f"{path}: {len(missing)} descriptor(s) missing, set to NaN: {', '.join(missing)}",
            stacklevel=2,
        )
    return row


def import_essentia_features(paths_by_track_id: Mapping[str, str | os.PathLike]) -> pd.DataFrame:
    """Build the feature table from one extractor JSON file per track.

    Parameters
    ----------
    paths_by_track_id : Mapping[str, path]
        Track id → JSON file.

    Returns
    -------
    pd.DataFrame [shape=(n_tracks, 1 + n_features)]
        Columns ``track_id`` then :data:`~moodscape.features.FEATURE_NAMES`, float64.
    """
    rows = [
        {"track_id": str(track_id), **read_essentia_json(path)}
        for track_id, path in paths_by_track_id.items()
    ]
    table = pd.DataFrame(rows, columns=["track_id", *FEATURE_NAMES])
    table[FEATURE_NAMES] = table[FEATURE_NAMES].astype(np.float64)
    return table


def _map_descriptors(document: Mapping[str, Any]) -> tuple[dict[str, float], list[str]]:
    """Feature columns found in a parsed extractor document, and the sources missing."""
    columns: dict[str, float] = {}
    missing: list[str] = []

    def take(source: str) -> Any:
        value = _lookup(document, source)
        if value is None:
            missing.append(source)
        return value

    for name, source in _SCALAR_SOURCES.items():
        columns[name] = _as_float(take(source))

    spread = _as_float(take("lowlevel.spectral_spread.mean"))
    columns["spectral_bandwidth_mean"] = float(np.sqrt(spread)) if spread >= 0 else np.nan
    flatness_db = _as_float(take("lowlevel.barkbands_flatness_db.mean"))
    columns["spectral_flatness_mean"] = 10.0 ** (-6.0 * flatness_db)
    zcr = _as_float(take("lowlevel.zerocrossingrate.mean"))
    analysis_sr = _as_float(_lookup(document, "metadata.audio_properties.analysis.sample_rate"))
    columns["zcr_mean"] = zcr * (44100.0 if np.isnan(analysis_sr) else analysis_sr) / ZCR_UNIT_SR

    contrast = _as_vector(take("lowlevel.spectral_contrast_coeffs.mean"), N_CONTRAST_BANDS)
    columns.update({f"spectral_contrast_mean_{i}": v for i, v in enumerate(contrast)})
    mfcc = _as_vector(take("lowlevel.mfcc.mean"), N_MFCC)
    columns.update({f"mfcc_mean_{i}": v for i, v in enumerate(mfcc)})
    chroma = hpcp_to_chroma(_as_vector(take("tonal.hpcp.mean"), 36))
    tonic, scale, strength = _key_estimate(document)
    if tonic is None:
        tonic = estimate_key(chroma)[0] if np.isfinite(chroma).all() else 0
    columns.update({f"chroma_degree_{i}": v for i, v in enumerate(np.roll(chroma, -tonic))})

    if scale is None:
        missing.append("tonal.key_edma.scale")
    columns["mode_major"] = {"major": 1.0, "minor": 0.0}.get(scale, np.nan)
    columns["key_strength"] = strength
    return columns, missing


def hpcp_to_chroma(hpcp: np.ndarray) -> np.ndarray:
    """Fold a 36-bin HPCP (bin 0 = A, 3 bins per semitone) into 12 chroma bins, C first.

    Parameters
    ----------
    hpcp : np.ndarray [shape=(36,)]

    Returns
    -------
    np.ndarray [shape=(12,)]
        Each semitone sums its centre bin and the two neighbours; scaled to max 1.
    """
    hpcp = np.asarray(hpcp, dtype=np.float64)
    per_semitone = np.roll(hpcp, 1).reshape(N_CHROMA, 3).sum(axis=1)  # semitone 0 = A
    chroma = np.roll(per_semitone, 9)  # A is pitch class 9 when C is 0
    peak = np.nanmax(chroma) if np.isfinite(chroma).any() else np.nan
    return chroma / peak if peak > 0 else chroma


def _key_estimate(document: Mapping[str, Any]) -> tuple[int | None, str | None, float]:
    """Tonic pitch class (0 = C, None when not named), scale ('major'/'minor') and strength of the first key estimate present."""
    for source in KEY_SOURCES:
        prefix = source + "_" if source == "tonal.key" else source + "."
        scale = _lookup(document, prefix + "scale")
        if isinstance(scale, str):
            key = _lookup(document, prefix + "key")
            return PITCH_CLASSES.get(key) if isinstance(key, str) else None, scale, _as_float(_lookup(document, prefix + "strength"))
    return None, None, np.nan


def _lookup(document: Mapping[str, Any], dotted: str) -> Any:
    """Value at a dotted path (``lowlevel.mfcc.mean``), or None."""
    node: Any = document
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _as_float(value: Any) -> float:
    """A finite-or-NaN float from a JSON scalar (None or non-numbers give NaN)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return np.nan
    return float(value)


def _as_vector(value: Any, length: int) -> np.ndarray:
    """A float vector of ``length`` from a JSON list; NaN where absent or malformed."""
    vector = np.full(length, np.nan)
    if isinstance(value, list):
        numbers = [_as_float(v) for v in value[:length]]
        vector[: len(numbers)] = numbers
    return vector
