"""Any folder of audio files, with optional tags, as a track table.

Track ids are the file paths relative to the folder, without extension, with ``/``
separators (``rock/song`` for ``<root>/rock/song.mp3``). Tracks get a split from a stable
hash of their id, so adding files never moves an existing track to another split.

Tags CSV: a header row with the columns ``track_id`` and ``tags``, and optionally
``split`` (``train``, ``validation``, ``test``; empty means "use the hash split").
Several tags go in one field separated by ``|`` or ``,`` (quote the field when it
contains commas: ``song,"happy,calm"``); a ``mood/theme---`` prefix is removed.

Like every loader, :func:`load_folder` returns ``(track_table, problems)``: files or CSV
lines it skipped, as one-line messages ``"<file>[:<line>]: <what is wrong>"``.
"""

import csv
import hashlib
import math
import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import soundfile

from moodscape.datasets import SPLITS, TRACK_COLUMNS
from moodscape.datasets.jamendo import TAG_PREFIX
from moodscape.errors import ConfigError, DataError

TAG_SEPARATORS = re.compile(r"[|,]")
_EXAMPLES_SHOWN = 5


def hash_split(track_id: str, split_fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0) -> str:
    """Assign a track to a split from a stable hash of its id.

    Parameters
    ----------
    track_id : str
        The track id.
    split_fractions : sequence of 3 float, default (0.7, 0.15, 0.15)
        Expected fractions of train, validation and test; they sum to 1.
    seed : int, default 0
        Another seed gives another, equally stable, assignment.

    Returns
    -------
    str
        ``"train"``, ``"validation"`` or ``"test"``; the same for the same arguments on
        any machine and Python version.
    """
    digest = hashlib.sha256(f"{seed}:{track_id}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    upper = 0.0
    for name, fraction in zip(SPLITS, split_fractions):
        upper += fraction
        if position < upper:
            return name
    return SPLITS[-1]


def _check_split_fractions(split_fractions: Sequence[float]) -> None:
    """Raise ConfigError unless there are 3 non-negative fractions summing to 1."""
    if len(split_fractions) != len(SPLITS) or min(split_fractions) < 0 or not math.isclose(sum(split_fractions), 1.0):
        raise ConfigError(f"split_fractions must be {len(SPLITS)} non-negative numbers summing to 1, got {tuple(split_fractions)}")


def _audio_files(root: Path, extensions: Sequence[str]) -> list[Path]:
    """Audio files below ``root`` with one of ``extensions`` (case-insensitive), sorted."""
    wanted = {extension.lower().lstrip(".") for extension in extensions}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower().lstrip(".") in wanted)


def _scan_audio(root: Path, extensions: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Track id, absolute path and duration of every readable audio file below ``root``."""
    records, problems, path_of = [], [], {}
    for path in _audio_files(root, extensions):
        track_id = path.relative_to(root).with_suffix("").as_posix()
        if track_id in path_of:
            problems.append(f"{path}: skipped: track id {track_id!r} is already taken by {path_of[track_id]}")
            continue
        try:
            info = soundfile.info(str(path))
        except (soundfile.SoundFileError, OSError) as error:
            problems.append(f"{path}: skipped: cannot read audio: {error}")
            continue
        if info.frames <= 0:
            problems.append(f"{path}: skipped: no audio frames")
            continue
        path_of[track_id] = path
        records.append({"track_id": track_id, "audio_path": str(path), "duration": info.duration})
    return pd.DataFrame.from_records(records, columns=["track_id", "audio_path", "duration"]), problems


def _parse_tags(field: str) -> list[str]:
    """Short tag names of one ``tags`` field, repeats removed."""
    tags = (tag.strip().removeprefix(TAG_PREFIX) for tag in TAG_SEPARATORS.split(field))
    return list(dict.fromkeys(tag for tag in tags if tag))


def read_tags_csv(path: str | Path) -> tuple[dict[str, tuple[list[str], str]], list[str]]:
    """Read a tags CSV (see the module docstring for the format).

    Parameters
    ----------
    path : str or Path
        CSV with the columns ``track_id``, ``tags`` and optionally ``split``.

    Returns
    -------
    annotations : dict
        ``track_id -> (tags, split)``, ``split`` being ``""`` when not given.
    problems : list of str
        ``"<file>:<line>: ..."`` for lines skipped (empty or repeated track id) and for
        an unknown split name (the line is kept without its split).

    Raises
    ------
    DataError
        If the file cannot be read or lacks the ``track_id`` or ``tags`` column.
    """
    path = Path(path)
    annotations: dict[str, tuple[list[str], str]] = {}
    problems, first_line = [], {}
    try:
        with path.open(encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file)
            missing = {"track_id", "tags"} - set(reader.fieldnames or ())
            if missing:
                raise DataError(f"{path}:1: missing column(s) {', '.join(sorted(missing))}; expected track_id,tags[,split]")
            for row in reader:
                line_no = reader.line_num
                track_id = (row["track_id"] or "").strip()
                split = (row.get("split") or "").strip()
                if not track_id:
                    problems.append(f"{path}:{line_no}: line skipped: empty track_id")
                    continue
                if track_id in first_line:
                    problems.append(f"{path}:{line_no}: line skipped: track id {track_id!r} repeats line {first_line[track_id]}")
                    continue
                if split and split not in SPLITS:
                    problems.append(f"{path}:{line_no}: split {split!r} is not one of {', '.join(SPLITS)}; hash split used")
                    split = ""
                first_line[track_id] = line_no
                annotations[track_id] = (_parse_tags(row["tags"] or ""), split)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: cannot read: {error}") from error
    return annotations, problems


def _examples(items: Sequence[str]) -> str:
    """A short, comma-separated sample of ``items`` for a problem message."""
    shown = ", ".join(items[:_EXAMPLES_SHOWN])
    return shown + (", ..." if len(items) > _EXAMPLES_SHOWN else "")


def load_folder(
    root: str | Path,
    *,
    tags_csv: str | Path | None = None,
    extensions: Sequence[str] = ("mp3", "ogg", "flac", "wav"),
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[pd.DataFrame, list[str]]:
    """Load every audio file below a folder as a track table.

    Parameters
    ----------
    root : str or Path
        Folder searched recursively.
    tags_csv : str or Path, optional
        Tags (and optional splits) per track id; tracks not in it get no tags.
    extensions : sequence of str, default ("mp3", "ogg", "flac", "wav")
        File extensions taken as audio, case-insensitive.
    split_fractions : sequence of 3 float, default (0.7, 0.15, 0.15)
        Fractions of train, validation and test for :func:`hash_split`.
    seed : int, default 0
        Seed of :func:`hash_split`.

    Returns
    -------
    tracks : pandas.DataFrame
        The track table (:data:`moodscape.datasets.TRACK_COLUMNS`), sorted by track id;
        ``mel_path`` is ``""``.
    problems : list of str
        Audio files skipped (unreadable, empty, or a second file with the same id such as
        ``a.mp3`` beside ``a.wav``), skipped CSV lines, and CSV track ids with no audio.

    Raises
    ------
    DataError
        If ``root`` is not a folder or the tags CSV cannot be read.
    ConfigError
        If ``split_fractions`` are not 3 non-negative numbers summing to 1.
    """
    _check_split_fractions(split_fractions)
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    tracks, problems = _scan_audio(root, extensions)
    annotations: dict[str, tuple[list[str], str]] = {}
    if tags_csv is not None:
        annotations, csv_problems = read_tags_csv(tags_csv)
        unknown = sorted(set(annotations) - set(tracks["track_id"]))
        if unknown:
            csv_problems.append(f"{tags_csv}: {len(unknown)} track ids have no audio under {root}: {_examples(unknown)}")
        problems += csv_problems
    tags, splits = [], []
    for track_id in tracks["track_id"]:
        track_tags, split = annotations.get(track_id, ([], ""))
        tags.append(track_tags)
        splits.append(split or hash_split(track_id, split_fractions, seed))
    table = tracks.assign(mel_path="", tags=pd.Series(tags, index=tracks.index, dtype=object), split=splits)
    return table[TRACK_COLUMNS], problems
