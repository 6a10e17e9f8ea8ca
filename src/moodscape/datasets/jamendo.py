"""MTG-Jamendo mood/theme subset: the tracks TSV, the official splits and the tag vocabulary.

The TSV format (``autotagging_moodtheme.tsv`` and the split files) is tab-separated with
the header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS`` and **one TAGS column per
tag**, so rows have a variable number of columns; the files have CRLF line endings.

Columns are found by name (other columns may come before ``TAGS``, which is last), and
the files are decoded by :func:`moodscape.datasets.text.read_text` (a byte-order mark,
UTF-16 and any line ends are read).

Problems: a file that cannot be read as a whole (missing, not UTF-8 text, a missing
column, no valid row, a tracks TSV with no row at all) raises
:class:`~moodscape.errors.DataError`. A single malformed row (empty track id,
non-numeric duration, a tag without the ``mood/theme---`` prefix, a NUL byte, ...) or a
duplicate track id is skipped instead, and the readers return it as a *problem*: a
one-line message ``"<file>:<line>: <what is wrong>"``. So is a track listed in two
splits (the first keeps it: a track is never in two splits) and a split with no track.
Every reader here returns a ``(table, problems)`` pair, ``problems`` being a
``list[str]`` ready to print.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from moodscape.datasets import SPLITS, TRACK_COLUMNS
from moodscape.datasets.text import read_lines
from moodscape.errors import ConfigError, DataError

TAG_PREFIX = "mood/theme---"
TSV_HEADER = ("TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS")
TSV_COLUMNS = ["track_id", "artist_id", "album_id", "path", "duration", "tags"]
TRACKS_TSV = "autotagging_moodtheme.tsv"
VOCABULARY_TXT = "moodtheme_split.txt"
SPLIT_TSV = "splits/split-{split}/autotagging_moodtheme-{name}.tsv"


def tracks_tsv_bytes(rows: Iterable[tuple[str, str, str, str, float, Sequence[str]]]) -> bytes:
    """An MTG-Jamendo tracks TSV as the real files are written: :data:`TSV_HEADER`, then per track
    ``TRACK_ID, ARTIST_ID, ALBUM_ID, PATH, DURATION`` (one decimal) and one TAGS column per tag, CRLF line ends.

    Parameters
    ----------
    rows : iterable of (track_id, artist_id, album_id, path, duration, tags)
        ``tags`` without :data:`TAG_PREFIX`.
    """
    lines = ["\t".join(TSV_HEADER)] + [
        "\t".join([track_id, artist_id, album_id, path, f"{duration:.1f}", *(TAG_PREFIX + tag for tag in tags)])
        for track_id, artist_id, album_id, path, duration, tags in rows
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def vocabulary_text(tags: Iterable[str]) -> str:
    """The tag vocabulary file (:data:`VOCABULARY_TXT`): one prefixed tag per line."""
    return "".join(f"{TAG_PREFIX}{tag}\n" for tag in tags)


class _MalformedRow(ValueError):
    """A TSV row that is skipped; the message says why."""


def read_tag_vocabulary(path: str | Path) -> list[str]:
    """Read the tag vocabulary file (``moodtheme_split.txt``).

    Parameters
    ----------
    path : str or Path
        Text file with one prefixed tag per line, e.g. ``mood/theme---happy``.

    Returns
    -------
    list of str
        Short tag names (prefix removed) in file order; 56 for the real file.

    Raises
    ------
    DataError
        If a line lacks the ``mood/theme---`` prefix, a tag repeats, or the file is empty.
    """
    path = Path(path)
    vocabulary: dict[str, int] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        tag = line.strip()
        if not tag:
            continue
        if not tag.startswith(TAG_PREFIX) or tag == TAG_PREFIX:
            raise DataError(f"{path}:{line_no}: expected a tag like '{TAG_PREFIX}happy', got {tag!r}")
        short = tag.removeprefix(TAG_PREFIX)
        if short in vocabulary:
            raise DataError(f"{path}:{line_no}: tag {short!r} repeats line {vocabulary[short]}")
        vocabulary[short] = line_no
    if not vocabulary:
        raise DataError(f"{path}: no tags")
    return list(vocabulary)


def _header_columns(path: Path, header: str) -> dict[str, int]:
    """Where each column of :data:`TSV_HEADER` is in the header line, or raise DataError.

    Names are matched without surrounding spaces and case; columns of other names are
    allowed before ``TAGS``, which must come last (a row has one column per tag).
    """
    names = [name.strip().upper() for name in header.split("\t")]
    while names and not names[-1]:
        names.pop()
    expected = f"expected the header {' '.join(TSV_HEADER)} (tab-separated, TAGS last), got {header[:120]!r}"
    missing = [name for name in TSV_HEADER if name not in names]
    repeated = [name for name in TSV_HEADER if names.count(name) > 1]
    if missing or repeated or names[-1] != "TAGS":
        what = (f"missing column(s) {', '.join(missing)}" if missing else
                f"column {repeated[0]} appears twice" if repeated else "TAGS is not the last column")
        raise DataError(f"{path}:1: {expected}: {what}")
    return {name: names.index(name) for name in TSV_HEADER}


def _parse_row(fields: list[str], columns: dict[str, int]) -> dict:
    """Turn the fields of one data row into a record, or raise _MalformedRow."""
    first_tag = columns["TAGS"]
    if len(fields) < first_tag:
        raise _MalformedRow(f"expected at least {first_tag} columns, got {len(fields)}")
    if any("\0" in field for field in fields):
        raise _MalformedRow("it holds a NUL byte")
    fields = [field.strip() for field in fields]
    track_id, audio_path, duration_text = (fields[columns[name]] for name in ("TRACK_ID", "PATH", "DURATION"))
    tags = [tag for tag in fields[first_tag:] if tag]  # an empty column (a trailing tab) is no tag
    if not track_id:
        raise _MalformedRow("empty TRACK_ID")
    if not audio_path:
        raise _MalformedRow("empty PATH")
    try:
        duration = float(duration_text)
    except ValueError:
        raise _MalformedRow(f"DURATION {duration_text!r} is not a number") from None
    if not duration >= 0:
        raise _MalformedRow(f"DURATION {duration_text!r} is not a non-negative number")
    unprefixed = [tag for tag in tags if not tag.startswith(TAG_PREFIX) or tag == TAG_PREFIX]
    if unprefixed:
        raise _MalformedRow(f"tag {unprefixed[0]!r} lacks the '{TAG_PREFIX}' prefix")
    short_tags = list(dict.fromkeys(tag.removeprefix(TAG_PREFIX) for tag in tags))
    artist_id, album_id = fields[columns["ARTIST_ID"]], fields[columns["ALBUM_ID"]]
    return dict(zip(TSV_COLUMNS, [track_id, artist_id, album_id, audio_path, duration, short_tags]))


def read_tracks_tsv(path: str | Path) -> tuple[pd.DataFrame, list[str]]:
    """Read an MTG-Jamendo tracks TSV (the main file or a split file).

    Parameters
    ----------
    path : str or Path
        TSV with the header ``TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS`` and one
        TAGS column per tag.

    Returns
    -------
    tracks : pandas.DataFrame
        One row per valid track, in file order, with columns ``track_id``, ``artist_id``,
        ``album_id``, ``path`` (relative, e.g. ``48/948.mp3``), ``duration`` (float
        seconds) and ``tags`` (list of short tag names, repeats removed).
    problems : list of str
        ``"<file>:<line>: ..."`` for each skipped row: a malformed row, or a repeated
        track id (the first occurrence is kept).

    Raises
    ------
    DataError
        If the file cannot be read, its header is not the MTG-Jamendo header, or it has
        data rows and none of them is valid.
    """
    path = Path(path)
    lines = read_lines(path)
    if not lines:
        raise DataError(f"{path}: empty file; expected the header {' '.join(TSV_HEADER)} (tab-separated) and a row per track")
    columns = _header_columns(path, lines[0])
    records, problems, first_line = [], [], {}
    for line_no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            record = _parse_row(line.split("\t"), columns)
        except _MalformedRow as error:
            problems.append(f"{path}:{line_no}: row skipped: {error}")
            continue
        track_id = record["track_id"]
        if track_id in first_line:
            problems.append(f"{path}:{line_no}: row skipped: track id {track_id} repeats line {first_line[track_id]}")
            continue
        first_line[track_id] = line_no
        records.append(record)
    if problems and not records:
        raise DataError(f"{path}: none of its {len(problems)} rows is valid; first: {problems[0]}")
    tracks = pd.DataFrame.from_records(records, columns=TSV_COLUMNS).astype({"duration": float})
    return tracks, problems


def _split_assignment(root: Path, split: int, tracks: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Give each track its split name; append tracks found only in a split file."""
    problems: list[str] = []
    split_of = dict.fromkeys(tracks["track_id"], "")
    only_in_splits = []
    for name in SPLITS:
        split_path = root / SPLIT_TSV.format(split=split, name=name)
        members, split_problems = read_tracks_tsv(split_path)
        problems += split_problems
        for member in members.itertuples(index=False):
            current = split_of.get(member.track_id)
            if current:
                problems.append(f"{split_path}: track {member.track_id} is already in {current}; kept there, left out of {name}")
                continue
            if current is None:
                only_in_splits.append(member._asdict())
            split_of[member.track_id] = name
    problems += [f"{root / SPLIT_TSV.format(split=split, name=name)}: no track: the {name} split is empty"
                 for name in SPLITS if name not in split_of.values()]
    if only_in_splits:
        problems.append(f"{root / TRACKS_TSV}: {len(only_in_splits)} tracks appear only in split files; their split rows are used")
        tracks = pd.concat([tracks, pd.DataFrame.from_records(only_in_splits, columns=TSV_COLUMNS)], ignore_index=True)
    return tracks.assign(split=tracks["track_id"].map(split_of)), problems


def _keep_vocabulary_tags(tracks: pd.DataFrame, vocabulary: Sequence[str], source: Path) -> tuple[pd.Series, list[str]]:
    """Drop tags outside the vocabulary; report how often each dropped tag occurred."""
    known = set(vocabulary)
    dropped = Counter(tag for tags in tracks["tags"] for tag in tags if tag not in known)
    kept = tracks["tags"].map(lambda tags: [tag for tag in tags if tag in known])
    if not dropped:
        return kept, []
    counts = ", ".join(f"{tag} ({n})" for tag, n in dropped.most_common())
    return kept, [f"{source}: dropped {dropped.total()} tags outside the {len(known)}-tag vocabulary: {counts}"]


def _resolve_vocabulary(root: Path, vocabulary: str | Sequence[str], tracks: pd.DataFrame) -> list[str]:
    """Return the tag vocabulary named by ``vocabulary`` (see :func:`load_jamendo`)."""
    if vocabulary == "split":
        return read_tag_vocabulary(root / VOCABULARY_TXT)
    if vocabulary == "all":
        return sorted({tag for tags in tracks["tags"] for tag in tags})
    if isinstance(vocabulary, str):
        raise ConfigError(f"vocabulary must be 'split', 'all' or a list of tags, got {vocabulary!r}")
    return list(vocabulary)


def _under(root: str | Path | None, relative_paths: pd.Series, suffix: str | None = None) -> pd.Series:
    """Absolute paths of ``relative_paths`` below ``root`` (``""`` when root is None)."""
    if root is None:
        return pd.Series("", index=relative_paths.index)
    base = Path(root).resolve()
    paths = (base / relative for relative in relative_paths)
    return pd.Series([str(p.with_suffix(suffix) if suffix else p) for p in paths], index=relative_paths.index)


def load_jamendo(
    root: str | Path,
    *,
    audio_root: str | Path | None = None,
    melspec_root: str | Path | None = None,
    split: int | None = 0,
    vocabulary: str | Sequence[str] = "split",
) -> tuple[pd.DataFrame, list[str]]:
    """Load the MTG-Jamendo mood/theme subset as a track table.

    Parameters
    ----------
    root : str or Path
        Folder holding ``autotagging_moodtheme.tsv``, ``moodtheme_split.txt`` and
        ``splits/split-<n>/autotagging_moodtheme-{train,validation,test}.tsv``.
    audio_root : str or Path, optional
        Folder of the MP3 audio; ``audio_path`` becomes ``audio_root/PATH``.
    melspec_root : str or Path, optional
        Folder of precomputed mel-spectrograms; ``mel_path`` becomes
        ``melspec_root/PATH`` with the suffix ``.npy``.
    split : int or None, default 0
        Which official split to read; None reads no split file (every split is ``""``).
    vocabulary : {"split", "all"} or sequence of str, default "split"
        Tags to keep: ``"split"`` the 56 tags of ``moodtheme_split.txt``, ``"all"`` every
        tag in the TSV (59), or an explicit list of short names.

    Returns
    -------
    tracks : pandas.DataFrame
        The track table (:data:`moodscape.datasets.TRACK_COLUMNS`); tracks in no split
        file have split ``""``. Tracks listed in a split file but not in the main TSV are
        added from the split file's row.
    problems : list of str
        Skipped rows and repeated ids of every file read, tracks listed in two splits
        (the first split keeps them), empty splits, tracks only in split files, and a
        count of the dropped tags outside the vocabulary.

    Raises
    ------
    DataError
        If a required file is missing or unreadable as a whole, or the tracks TSV has
        no track row.
    ConfigError
        If ``vocabulary`` is a string other than ``"split"`` or ``"all"``.
    """
    root = Path(root)
    tracks, problems = read_tracks_tsv(root / TRACKS_TSV)
    if tracks.empty:
        raise DataError(f"{root / TRACKS_TSV}: a header and no track row; expected one row per track")
    if split is None:
        tracks = tracks.assign(split="")
    else:
        tracks, split_problems = _split_assignment(root, split, tracks)
        problems += split_problems
    tags, tag_problems = _keep_vocabulary_tags(tracks, _resolve_vocabulary(root, vocabulary, tracks), root / TRACKS_TSV)
    table = tracks.assign(
        tags=tags,
        audio_path=_under(audio_root, tracks["path"]),
        mel_path=_under(melspec_root, tracks["path"], ".npy"),
    )
    return table[TRACK_COLUMNS], problems + tag_problems


def tag_matrix(track_table: pd.DataFrame, vocabulary: Sequence[str] | None = None) -> tuple[np.ndarray, list[str]]:
    """Multi-hot encode the tags of a track table.

    Parameters
    ----------
    track_table : pandas.DataFrame
        A track table; only its ``tags`` column is read.
    vocabulary : sequence of str, optional
        The tags, in column order; tags of a track outside it are ignored. Default: every
        tag in the table, sorted.

    Returns
    -------
    matrix : np.ndarray [shape=(n_tracks, n_tags), dtype=bool]
        ``matrix[i, j]`` is True when track ``i`` carries tag ``vocabulary[j]``.
    vocabulary : list of str
        The tag of each column.

    Raises
    ------
    DataError
        If ``vocabulary`` repeats a tag.
    """
    if vocabulary is None:
        vocabulary = sorted({tag for tags in track_table["tags"] for tag in tags})
    column_of = {tag: j for j, tag in enumerate(vocabulary)}
    if len(column_of) != len(vocabulary):
        raise DataError("the tag vocabulary repeats a tag")
    matrix = np.zeros((len(track_table), len(column_of)), dtype=bool)
    for i, tags in enumerate(track_table["tags"]):
        matrix[i, [column_of[tag] for tag in tags if tag in column_of]] = True
    return matrix, list(column_of)
