"""MusAV: Spotify previews with relative arousal/valence judgments and Spotify AV values.

Files read (the layout of the MTG/musav-dataset repository and its audio):

- ``audio.chunk_000-006.songids``: the Spotify ids of the songs, one per line;
- ``annotations/annotations.{arousal,valence}.all``: raw pairwise judgments (JSON lines);
- ``annotations/[ismir2022/]annotations.{type}.all.agreement.gt[.ct][.fa]``: the ground
  truth pairs of the evaluation protocol (JSON lines);
- ``<metadata_root>/[<2 chars>/]<songid>.yaml``: Spotify metadata, whose
  ``audio_features.valence`` and ``audio_features.energy`` are the absolute targets
  (energy is used as arousal);
- ``<audio_root>/[<2 chars>/]<songid>.mp3``: the 30-s previews.

Files read and written in the format of the dataset's own evaluation script
(``scripts/evaluate.py``): a predictions file, JSON lines ``{"songid", "model",
"arousal_mean", "valence_mean"}`` (:func:`read_predictions`, :func:`format_predictions`).

A malformed annotation line, or a pair a ground-truth file gives twice, raises
:class:`~moodscape.errors.DataError` naming the file and line: these files are the
evaluation ground truth and are never silently repaired. Fields beyond those read are
ignored; the files are decoded by :func:`moodscape.datasets.text.read_text` (a
byte-order mark, UTF-16 and any line ends are read). :func:`load_musav` returns
``(songs, problems)``, ``problems`` being a list of one-line messages about repeated song
ids and missing audio and metadata, like the other loaders.
"""

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import yaml

from moodscape.datasets.text import read_lines, read_text
from moodscape.errors import DataError

AV_TYPES = ("arousal", "valence")
GROUND_TRUTH_SUBSETS = ("gt", "gt.fa", "gt.ct", "gt.ct.fa")
PAPER_SUBSETS_DIR = "ismir2022"
SONGIDS_FILE = "audio.chunk_000-006.songids"
JUDGMENTS_FILE = "annotations/annotations.{type}.all"
GROUND_TRUTH_FILE = "annotations.{type}.all.agreement.{subset}"
JUDGMENT_COLUMNS = ["tripletid", "songid_a", "songid_b", "annotator", "type", "higher_value"]
GROUND_TRUTH_COLUMNS = [
    "pairid", "songid_a", "songid_b", "higher_value", "agreement",
    "triplet_consistency", "tripletid", "triplet_type",
]
SONG_COLUMNS = ["songid", "audio_path", "valence", "arousal"]
PREDICTION_COLUMNS = ["songid", "model", "arousal_mean", "valence_mean"]
_EXAMPLES_SHOWN = 5


def _json_lines(path: Path, required: list[str]) -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, record)`` of a JSON-lines file whose records hold ``required`` strings."""
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{line_no}: not valid JSON: {error}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(record).__name__}")
        bad = [key for key in required if not isinstance(record.get(key), str) or not record[key]]
        if bad:
            raise DataError(f"{path}:{line_no}: missing or empty field(s) {', '.join(bad)}")
        yield line_no, record


def read_judgments(path: str | Path) -> pd.DataFrame:
    """Read raw pairwise judgments (``annotations.{arousal,valence}.all``).

    Parameters
    ----------
    path : str or Path
        JSON lines ``{"tripletid", "songid_a", "songid_b", "annotator", "type",
        "higher_value"}``.

    Returns
    -------
    pandas.DataFrame
        One row per judgment with those six columns, in file order. ``higher_value`` is
        ``a``, ``b``, ``ab`` or, in the real files, also ``not_selected``.

    Raises
    ------
    DataError
        If a line is not a JSON object with all six fields as non-empty strings.
    """
    path = Path(path)
    records = [record for _, record in _json_lines(path, JUDGMENT_COLUMNS)]
    return pd.DataFrame.from_records(records, columns=JUDGMENT_COLUMNS)


def read_ground_truth(path: str | Path) -> pd.DataFrame:
    """Read a ground-truth pair file (``annotations.{type}.all.agreement*``).

    Parameters
    ----------
    path : str or Path
        JSON lines with ``pairid`` (``<songid_a>-<songid_b>``), ``higher_value``,
        ``agreement``, ``tripletid``, ``triplet_type`` and, in ``.gt*`` files,
        ``triplet_consistency``.

    Returns
    -------
    pandas.DataFrame
        One row per pair, columns :data:`GROUND_TRUTH_COLUMNS`; ``songid_a`` and
        ``songid_b`` are the ``pairid`` split at its first ``-`` (Spotify ids have none);
        ``triplet_consistency`` is NaN where absent.

    Raises
    ------
    DataError
        If a line is not a JSON object with the required fields, its ``pairid`` does
        not name two songs or repeats the ``pairid`` of an earlier line (the same pair
        the other way round is another line of the protocol, as in the original).
    """
    path = Path(path)
    required = ["pairid", "higher_value", "agreement", "tripletid", "triplet_type"]
    records, first_line = [], {}
    for line_no, record in _json_lines(path, required):
        songid_a, _, songid_b = record["pairid"].partition("-")
        if not songid_a or not songid_b:
            raise DataError(f"{path}:{line_no}: pairid {record['pairid']!r} is not '<songid_a>-<songid_b>'")
        if record["pairid"] in first_line:
            raise DataError(f"{path}:{line_no}: the pair {record['pairid']} was already judged on line "
                            f"{first_line[record['pairid']]}; a ground-truth file gives each pair once")
        first_line[record["pairid"]] = line_no
        consistency = record.get("triplet_consistency", math.nan)
        records.append({**record, "songid_a": songid_a, "songid_b": songid_b, "triplet_consistency": consistency})
    return pd.DataFrame.from_records(records, columns=GROUND_TRUTH_COLUMNS)


def _finite_number(value) -> float | None:
    """``value`` as a float when it is a finite int or float (bool excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Read a predictions file in the format of MusAV's ``scripts/evaluate.py``.

    Parameters
    ----------
    path : str or Path
        JSON lines ``{"songid": str, "model": str, "arousal_mean": float,
        "valence_mean": float}``, one per song and model; blank lines are ignored.

    Returns
    -------
    pandas.DataFrame
        One row per line, columns :data:`PREDICTION_COLUMNS` (the means as floats), in
        file order.

    Raises
    ------
    DataError
        Naming the file and line, if a line is not a JSON object, ``songid`` or ``model``
        is not a non-empty string, a mean is not a finite number (booleans refused), or
        the same (songid, model) was already given.
    """
    path = Path(path)
    records, first_line = [], {}
    for line_no, record in _json_lines(path, ["songid", "model"]):
        means = {key: _finite_number(record.get(key)) for key in ("arousal_mean", "valence_mean")}
        bad = [key for key, value in means.items() if value is None]
        if bad:
            raise DataError(f"{path}:{line_no}: {', '.join(bad)} must be finite number(s)")
        key = (record["songid"], record["model"])
        if key in first_line:
            raise DataError(f"{path}:{line_no}: song {key[0]} model {key[1]} already predicted on line {first_line[key]}")
        first_line[key] = line_no
        records.append({"songid": key[0], "model": key[1], **means})
    return pd.DataFrame.from_records(records, columns=PREDICTION_COLUMNS).astype(
        {"arousal_mean": float, "valence_mean": float}
    )


def format_predictions(table: pd.DataFrame) -> str:
    """Format predictions as the JSON lines MusAV's ``scripts/evaluate.py`` reads.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns :data:`PREDICTION_COLUMNS` (others are ignored).

    Returns
    -------
    str
        One line ``{"songid": ..., "model": ..., "arousal_mean": ..., "valence_mean": ...}``
        per row, keys in that order, each ending in a newline; floats are written exactly
        (``repr``), so :func:`read_predictions` gives the same values back.

    Raises
    ------
    DataError
        If a column is missing or a mean is not finite.

    Examples
    --------
    >>> print(format_predictions(pd.DataFrame(
    ...     {"songid": ["x"], "model": ["m"], "arousal_mean": [0.41], "valence_mean": [0.38]})), end="")
    {"songid": "x", "model": "m", "arousal_mean": 0.41, "valence_mean": 0.38}
    """
    missing = [column for column in PREDICTION_COLUMNS if column not in table.columns]
    if missing:
        raise DataError(f"predictions lack column(s) {', '.join(missing)}")
    lines = []
    for songid, model, arousal, valence in table[PREDICTION_COLUMNS].itertuples(index=False):
        record = {"songid": str(songid), "model": str(model), "arousal_mean": float(arousal), "valence_mean": float(valence)}
        if not (math.isfinite(record["arousal_mean"]) and math.isfinite(record["valence_mean"])):
            raise DataError(f"song {songid} model {model}: predictions must be finite, got {arousal!r}, {valence!r}")
        lines.append(json.dumps(record) + "\n")
    return "".join(lines)


def ground_truth_files(annotations_dir: str | Path) -> list[tuple[str, str, Path]]:
    """List the ground-truth files of the MusAV protocol present in a folder.

    Parameters
    ----------
    annotations_dir : str or Path
        The dataset's ``annotations`` folder; its ``ismir2022/`` subfolder is searched too.

    Returns
    -------
    list of (str, str, Path)
        ``(subset, type, path)`` with subset one of ``gt``, ``gt.fa``, ``gt.ct``,
        ``gt.ct.fa``, or the same prefixed by ``ismir2022/``; type ``arousal`` or
        ``valence``. Ordered by folder, subset, type; absent files are left out.
    """
    annotations_dir = Path(annotations_dir)
    found = []
    for prefix in ("", f"{PAPER_SUBSETS_DIR}/"):
        for subset in GROUND_TRUTH_SUBSETS:
            for av_type in AV_TYPES:
                path = annotations_dir / prefix / GROUND_TRUTH_FILE.format(type=av_type, subset=subset)
                if path.is_file():
                    found.append((prefix + subset, av_type, path))
    return found


def read_spotify_metadata(path: str | Path) -> dict[str, float]:
    """Read Spotify's valence and energy from a ``<songid>.yaml`` metadata file.

    Parameters
    ----------
    path : str or Path
        YAML mapping with ``audio_features: {valence: ..., energy: ...}`` (values 0-1).

    Returns
    -------
    dict
        ``{"valence": float, "arousal": float}``, arousal being Spotify's energy.

    Raises
    ------
    DataError
        If the file is not valid YAML or lacks a numeric valence or energy in 0-1.
    """
    path = Path(path)
    try:
        metadata = yaml.load(read_text(path), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise DataError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from None
    features = metadata.get("audio_features") if isinstance(metadata, dict) else None
    if not isinstance(features, dict):
        raise DataError(f"{path}: no 'audio_features' mapping")
    values = {}
    for target, key in (("valence", "valence"), ("arousal", "energy")):
        value = features.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise DataError(f"{path}: audio_features.{key} is {value!r}, expected a number in 0-1")
        values[target] = float(value)
    return values


def _songids(root: Path) -> tuple[list[str], list[str]]:
    """The song ids of the songids file, or else of the raw judgments, in first-seen order; and the repeated ids."""
    songids_path = root / SONGIDS_FILE
    if songids_path.is_file():
        first_line, problems = {}, []
        for line_no, line in enumerate(read_lines(songids_path), start=1):
            for songid in line.split():
                if songid in first_line:
                    problems.append(f"{songids_path}:{line_no}: song {songid} repeats line {first_line[songid]}; listed once")
                first_line.setdefault(songid, line_no)
        if not first_line:
            raise DataError(f"{songids_path}: no song id; the file lists one Spotify id per line")
        return list(first_line), problems
    judgment_paths = [root / JUDGMENTS_FILE.format(type=av_type) for av_type in AV_TYPES]
    if not any(path.is_file() for path in judgment_paths):
        raise DataError(f"{root}: neither {SONGIDS_FILE} nor raw judgment files found")
    judgments = pd.concat([read_judgments(path) for path in judgment_paths if path.is_file()])
    return list(dict.fromkeys(judgments[["songid_a", "songid_b"]].to_numpy().ravel())), []


def _find_song_file(folder: Path, songid: str, suffix: str) -> Path | None:
    """The file of a song in ``folder/<2 chars>/`` or directly in ``folder``, if any."""
    for candidate in (folder / songid[:2] / f"{songid}{suffix}", folder / f"{songid}{suffix}"):
        if candidate.is_file():
            return candidate
    return None


def _missing_summary(what: str, folder: Path, songids: list[str]) -> list[str]:
    """A one-item problem list naming songs lacking ``what`` under ``folder`` (empty if none)."""
    if not songids:
        return []
    shown = ", ".join(songids[:_EXAMPLES_SHOWN]) + (", ..." if len(songids) > _EXAMPLES_SHOWN else "")
    return [f"{folder}: {len(songids)} songs have no {what}: {shown}"]


def _spotify_targets(metadata_root: Path, songids: list[str]) -> tuple[list[dict[str, float]], list[str]]:
    """Spotify valence/arousal per song (``{}`` when missing or malformed) and the problems."""
    targets, missing, problems = [], [], []
    for songid in songids:
        path = _find_song_file(metadata_root, songid, ".yaml")
        try:
            targets.append(read_spotify_metadata(path) if path else {})
        except DataError as error:
            targets.append({})
            problems.append(f"{error}; song {songid} skipped")
        if path is None:
            missing.append(songid)
    return targets, _missing_summary("Spotify metadata", metadata_root, missing) + problems


def load_musav(
    root: str | Path,
    *,
    audio_root: str | Path | None = None,
    metadata_root: str | Path | None = None,
) -> tuple[pd.DataFrame, list[str]]:
    """Load the MusAV songs with their audio paths and Spotify valence/arousal.

    Parameters
    ----------
    root : str or Path
        The dataset folder (holding ``audio.chunk_000-006.songids`` and ``annotations/``).
    audio_root : str or Path, optional
        Folder of the previews, ``<2 chars>/<songid>.mp3`` (or ``<songid>.mp3``).
    metadata_root : str or Path, optional
        Folder of the Spotify metadata, ``<2 chars>/<songid>.yaml`` (or ``<songid>.yaml``).

    Returns
    -------
    songs : pandas.DataFrame
        One row per song, columns ``songid``, ``audio_path`` (absolute, ``""`` when not
        found), ``valence`` and ``arousal`` (NaN when no metadata). Songs are those of the
        songids file, or all songs of the raw judgments when it is absent.
    problems : list of str
        Song ids the songids file repeats, songs without audio (when ``audio_root`` is
        given), and songs without metadata or with a malformed metadata file (when
        ``metadata_root`` is given).

    Raises
    ------
    DataError
        If no song list can be found, or the songids file lists no song.
    """
    root = Path(root)
    songids, problems = _songids(root)
    songs = pd.DataFrame({"songid": songids, "audio_path": "", "valence": math.nan, "arousal": math.nan})
    if audio_root is not None:
        audio_root = Path(audio_root).resolve()
        audio = [_find_song_file(audio_root, songid, ".mp3") for songid in songids]
        songs["audio_path"] = [str(path) if path else "" for path in audio]
        problems += _missing_summary("audio", audio_root, [s for s, path in zip(songids, audio) if path is None])
    if metadata_root is not None:
        metadata_root = Path(metadata_root)
        targets, metadata_problems = _spotify_targets(metadata_root, songids)
        songs["valence"] = [target.get("valence", math.nan) for target in targets]
        songs["arousal"] = [target.get("arousal", math.nan) for target in targets]
        problems += metadata_problems
    return songs[SONG_COLUMNS], problems
