"""Any folder of audio files, with optional tags, as a track table.

Track ids are the file paths relative to the folder, without extension, with ``/``
separators (``rock/song`` for ``<root>/rock/song.mp3``). Tracks get a split from a stable
hash of their id, so adding files never moves an existing track to another split.

Tags CSV: a header row with the columns ``track_id`` and ``tags``, and optionally
``split`` (``train``, ``validation``, ``test``; empty means "use the hash split").
Several tags go in one field separated by ``|`` or ``,`` (quote the field when it
contains commas: ``song,"happy,calm"``); a ``mood/theme---`` prefix is removed. A line
with another number of fields than the header is skipped and listed, a file with a
missing or repeated column or an unclosed quote is refused (:func:`read_tags_csv`).

Like every loader, :func:`load_folder` returns ``(track_table, problems)``: files or CSV
lines it skipped, as one-line messages ``"<file>[:<line>]: <what is wrong>"``. Every entry
of the folder is a track or such a line, but for files and folders whose names are not
those of audio: files of an audio format that is not read (``.wma``, tracker modules, or
any extension left out of ``extensions``), folders named like audio files, links to folders (not followed), broken links,
link loops and FIFOs are all listed. A file name may end in a space (``song .mp3`` is the
track ``"song "``); a tags CSV line names it with or without that space.

Embedded tags: every track gets its file's title, artist, album, genre, mood, style and
BPM (:mod:`moodscape.datasets.embedded_tags`; ``""`` and NaN when absent). With
``tags_from`` (``[folder] tags_from = ["genre", "mood"]``) the chosen fields become
original tags, split on ``; / , |`` and nulls, lower-case, trimmed and deduplicated. When a
tags CSV also gives a track tags, the track's tags are the CSV's, in its order, followed by
the embedded ones the CSV does not already name (compared lower-case); the CSV alone gives
splits. A file whose tags mutagen cannot parse keeps its audio, without tags, and is listed.
"""

import csv
import hashlib
import io
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd

from moodscape.audio import audio_info, file_problem
from moodscape.config import FOLDER_EXTENSIONS
from moodscape.datasets import SPLITS, TRACK_COLUMNS
from moodscape.datasets.embedded_tags import FIELDS, TAG_FIELDS, no_tags, read_embedded_tags, tags_from_fields
from moodscape.datasets.jamendo import TAG_PREFIX
from moodscape.datasets.text import read_text
from moodscape.errors import AudioError, ConfigError, DataError

TAG_SEPARATORS = re.compile(r"[|,]")
AUDIO_EXTENSIONS = frozenset(
    "mp3 mp2 mp1 ogg oga opus flac wav wave aif aiff aifc au snd caf w64 rf64 m4a m4b mp4 aac alac wma ape wv mpc tta "
    "spx amr ac3 dts mka webm weba dsf dff shn ra mid midi mod xm it s3m mtm umx 669 med".split()
)
"""Extensions of audio formats: a file with one of them that is not read is reported, never silently left out."""
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


def _extension(name: str) -> str:
    """Lower-case extension of a file name, without its dot and without spaces around it."""
    return Path(name).suffix.lower().strip().lstrip(".")


def _scan(root: Path, extensions: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Audio files below ``root`` with one of ``extensions``, sorted, and a problem line for
    every other entry the scan sees that is no track.

    Regular files of another audio format (:data:`AUDIO_EXTENSIONS`), folders named like
    the audio files read, links to folders (not followed), broken links, link loops,
    FIFOs, devices and folders that cannot be listed are reported; other regular files
    (``cover.jpg``, ``notes.txt``) and folders are not.
    """
    wanted = {extension.lower().strip().lstrip(".") for extension in extensions}
    files, problems = [], []
    for path, entry in sorted(_walk(root), key=lambda item: item[0]):
        problem = _entry_problem(path, entry, wanted)
        if problem is not None:
            problems.append(f"{path}: skipped: {problem}")
        elif not entry.is_dir(follow_symlinks=False) and _extension(entry.name) in wanted:
            files.append(path)
    return files, problems


def _walk(folder: Path) -> Iterator[tuple[Path, os.DirEntry | OSError]]:
    """``(path, entry)`` of every entry below ``folder``, links to folders not followed;
    ``(folder, error)`` for a folder that cannot be listed."""
    try:
        with os.scandir(folder) as listing:
            entries = list(listing)
    except OSError as error:
        yield folder, error
        return
    for entry in entries:
        path = folder / entry.name
        yield path, entry
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(path)


def _entry_problem(path: Path, entry: os.DirEntry | OSError, wanted: set[str]) -> str | None:
    """Why an entry of the scan is no track, when that is worth a line; None for audio files and for others."""
    if isinstance(entry, OSError):
        return f"cannot list this folder ({entry.strerror or entry})"
    extension = _extension(entry.name)
    if entry.is_dir(follow_symlinks=False):
        return "a folder named like an audio file (the files in it are scanned)" if extension in wanted else None
    problem = file_problem(path)
    if problem is not None:
        return "symbolic link to a folder, not followed" if entry.is_symlink() and os.path.isdir(path) else problem
    if extension in wanted or extension not in AUDIO_EXTENSIONS:
        return None
    return f"audio format .{extension} is not read (the extensions read are {', '.join(sorted(wanted))})"


def _scan_audio(root: Path, extensions: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
    """Track id, absolute path and duration of every readable audio file below ``root``, and
    the problem lines of every entry that is no track."""
    records, path_of = [], {}
    files, problems = _scan(root, extensions)
    for path in files:
        track_id = path.relative_to(root).with_suffix("").as_posix()
        if track_id in path_of:
            problems.append(f"{path}: skipped: track id {track_id!r} is already taken by {path_of[track_id]}")
            continue
        try:
            info = audio_info(path)
        except AudioError as error:
            problems.append(f"{path}: skipped: {str(error).removeprefix(f'{path}: ')}")
            continue
        if info.frames <= 0:
            problems.append(f"{path}: skipped: no audio frames")
            continue
        path_of[track_id] = path
        records.append({"track_id": track_id, "audio_path": str(path), "duration": info.duration, **_embedded_tags(path, problems)})
    columns = ["track_id", "audio_path", "duration", *FIELDS]
    return pd.DataFrame.from_records(records, columns=columns), sorted(problems, key=_problem_path)


def _embedded_tags(path: Path, problems: list[str]) -> dict:
    """The file's embedded :data:`~moodscape.datasets.embedded_tags.FIELDS`; none, and a problem line, when unreadable."""
    try:
        return read_embedded_tags(path)
    except DataError as error:
        problems.append(str(error))
        return no_tags()


def _problem_path(problem: str) -> str:
    return problem.partition(": skipped: ")[0]


def _parse_tags(field: str) -> list[str]:
    """Short tag names of one ``tags`` field, repeats removed."""
    tags = (tag.strip().removeprefix(TAG_PREFIX) for tag in TAG_SEPARATORS.split(field))
    return list(dict.fromkeys(tag for tag in tags if tag))


def read_tags_csv(path: str | Path) -> tuple[dict[str, tuple[list[str], str]], list[str]]:
    """Read a tags CSV (see the module docstring for the format).

    Parameters
    ----------
    path : str or Path
        CSV with the columns ``track_id``, ``tags`` and optionally ``split`` (names
        matched without case and surrounding spaces; other columns are ignored), in any
        encoding :func:`moodscape.datasets.text.read_text` reads.

    Returns
    -------
    annotations : dict
        ``track_id -> (tags, split)``, ``split`` being ``""`` when not given; the track
        id as written, spaces around it kept (a file name may end in a space).
    problems : list of str
        ``"<file>:<line>: ..."`` for lines skipped (empty or repeated track id, another
        number of fields than the header, a NUL byte) and for an unknown split name
        (the line is kept without its split). Blank lines are ignored.

    Raises
    ------
    DataError
        Naming the file and line, if the file cannot be read, lacks the ``track_id`` or
        ``tags`` column, names a column twice, has an unclosed quote, or has no line
        after its header.
    """
    path = Path(path)
    annotations: dict[str, tuple[list[str], str]] = {}
    problems, first_line = [], {}
    reader = csv.reader(io.StringIO(read_text(path), newline=""), strict=True)
    line_no = 0
    try:
        header = [name.strip().lower() for name in next(reader, [])]
        columns = _csv_columns(path, header)
        for fields in reader:
            line_no = reader.line_num
            if not "".join(fields).strip():
                continue
            if problem := _csv_line_problem(fields, len(header)):
                problems.append(f"{path}:{line_no}: line skipped: {problem}")
                continue
            track_id, tags, split = (fields[columns[name]] if name in columns else "" for name in _CSV_COLUMNS)
            split = split.strip()
            if not track_id.strip():
                problems.append(f"{path}:{line_no}: line skipped: empty track_id")
                continue
            if track_id in first_line:
                problems.append(f"{path}:{line_no}: line skipped: track id {track_id!r} repeats line {first_line[track_id]}")
                continue
            if split and split not in SPLITS:
                problems.append(f"{path}:{line_no}: split {split!r} is not one of {', '.join(SPLITS)}; hash split used")
                split = ""
            first_line[track_id] = line_no
            annotations[track_id] = (_parse_tags(tags), split)
    except csv.Error as error:  # the line after the last row read begins the line that cannot be read
        raise DataError(f"{path}:{line_no + 1}: not a valid CSV from this line on ({error}); check its quotes") from None
    if not first_line and not problems:
        raise DataError(f"{path}: no track line after the header; add lines track_id,tags or remove folder.tags_csv")
    return annotations, problems


_CSV_COLUMNS = ("track_id", "tags", "split")


def _csv_line_problem(fields: list[str], n_columns: int) -> str | None:
    """Why a tags CSV line is skipped before its fields are read, if it is."""
    if len(fields) > n_columns:
        return f"{len(fields)} fields where the header has {n_columns} (quote a field that holds commas: \"happy,calm\")"
    if len(fields) < n_columns:
        return f"{len(fields)} field(s) where the header has {n_columns}"
    return "it holds a NUL byte" if any("\0" in field for field in fields) else None


def _csv_columns(path: Path, header: list[str]) -> dict[str, int]:
    """Where ``track_id``, ``tags`` and ``split`` are in a tags CSV's header, or raise DataError."""
    expected = "expected the header track_id,tags[,split] (comma-separated)"
    missing = sorted(name for name in _CSV_COLUMNS[:2] if name not in header)
    if missing:
        raise DataError(f"{path}:1: missing column(s) {', '.join(missing)}; {expected}, got {','.join(header)[:120]!r}")
    repeated = [name for name in _CSV_COLUMNS if header.count(name) > 1]
    if repeated:
        raise DataError(f"{path}:1: column {repeated[0]} appears twice; {expected}")
    return {name: header.index(name) for name in _CSV_COLUMNS if name in header}


def _annotations_by_track(
    track_ids: Sequence[str], annotations: dict[str, tuple[list[str], str]]
) -> dict[str, tuple[str, tuple[list[str], str]]]:
    """``track_id -> (CSV track id, annotation)``: the CSV line of the same id, else the one
    that differs from it only by spaces around it (``song`` for ``song .mp3``, or the reverse)."""
    by_stripped: dict[str, str] = {}
    for key in annotations:
        by_stripped.setdefault(key.strip(), key)
    matched = {}
    for track_id in track_ids:
        key = track_id if track_id in annotations else by_stripped.get(track_id.strip())
        if key is not None:
            matched[track_id] = (key, annotations[key])
    return matched


def _examples(items: Sequence[str]) -> str:
    """A short, comma-separated sample of ``items`` for a problem message."""
    shown = ", ".join(items[:_EXAMPLES_SHOWN])
    return shown + (", ..." if len(items) > _EXAMPLES_SHOWN else "")


def load_folder(
    root: str | Path,
    *,
    tags_csv: str | Path | None = None,
    extensions: Sequence[str] = FOLDER_EXTENSIONS,
    split_fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    tags_from: Sequence[str] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """Load every audio file below a folder as a track table, with its embedded tags.

    Parameters
    ----------
    root : str or Path
        Folder searched recursively.
    tags_csv : str or Path, optional
        Tags (and optional splits) per track id; tracks not in it get no tags.
    extensions : sequence of str, default :data:`moodscape.config.FOLDER_EXTENSIONS`
        File extensions taken as audio, case-insensitive (``[folder] extensions``).
    split_fractions : sequence of 3 float, default (0.7, 0.15, 0.15)
        Fractions of train, validation and test for :func:`hash_split`.
    seed : int, default 0
        Seed of :func:`hash_split`.
    tags_from : sequence of str, default ()
        Embedded fields (of :data:`~moodscape.datasets.embedded_tags.TAG_FIELDS`) that
        become original tags, merged with the CSV's as the module docstring says.

    Returns
    -------
    tracks : pandas.DataFrame
        The track table (:data:`moodscape.datasets.TRACK_COLUMNS`) and the embedded
        :data:`~moodscape.datasets.embedded_tags.FIELDS`, sorted by track id; ``mel_path``
        is ``""``.
    problems : list of str
        Audio files skipped (unreadable, empty, or a second file with the same id such as
        ``a.mp3`` beside ``a.wav``), the other entries that are no track (see the module
        docstring), skipped CSV lines, and CSV track ids with no audio.

    Raises
    ------
    DataError
        If ``root`` is not a folder or the tags CSV cannot be read.
    ConfigError
        If ``split_fractions`` are not 3 non-negative numbers summing to 1, or ``tags_from``
        names another field.
    """
    _check_split_fractions(split_fractions)
    unknown_fields = sorted(set(tags_from) - set(TAG_FIELDS))
    if unknown_fields:
        raise ConfigError(f"tags_from: {', '.join(unknown_fields)} is no embedded tag field; use some of {', '.join(TAG_FIELDS)}")
    root = Path(root).resolve()
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    tracks, problems = _scan_audio(root, extensions)
    annotations: dict[str, tuple[str, tuple[list[str], str]]] = {}
    if tags_csv is not None:
        csv_annotations, csv_problems = read_tags_csv(tags_csv)
        annotations = _annotations_by_track(tracks["track_id"], csv_annotations)
        unknown = sorted(set(csv_annotations) - {key for key, _ in annotations.values()})
        if unknown:
            csv_problems.append(f"{tags_csv}: {len(unknown)} track ids have no audio under {root}: {_examples(unknown)}")
        problems += csv_problems
    tags, splits = [], []
    for track_id, metadata in zip(tracks["track_id"], tracks[list(FIELDS)].to_dict("records")):
        _, (track_tags, split) = annotations.get(track_id, ("", ([], "")))
        tags.append(_merged_tags(track_tags, tags_from_fields(metadata, tags_from)))
        splits.append(split or hash_split(track_id, split_fractions, seed))
    table = tracks.assign(mel_path="", tags=pd.Series(tags, index=tracks.index, dtype=object), split=splits)
    return table[TRACK_COLUMNS + list(FIELDS)], problems


def _merged_tags(csv_tags: list[str], embedded: list[str]) -> list[str]:
    """A tags CSV's tags, then the embedded tags it does not name (compared lower-case)."""
    named = {tag.lower() for tag in csv_tags}
    return csv_tags + [tag for tag in embedded if tag not in named]
