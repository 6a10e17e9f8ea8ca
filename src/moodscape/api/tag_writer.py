"""Write the lookup's results into the catalog's audio files as tags (``moodscape write-tags``).

Four fields, each under the key every library manager reads for its tagging system:

=========  ===================  ============================  ======================================
field      Vorbis (Ogg, FLAC)   ID3 (MP3, WAV, AIFF)          MP4 (m4a)
=========  ===================  ============================  ======================================
label      MOOD                 TMOO                          ----:com.apple.iTunes:MOOD
bpm        BPM                  TBPM                          tmpo
valence    MOODSCAPE_VALENCE    TXXX:MOODSCAPE_VALENCE        ----:com.apple.iTunes:MOODSCAPE_VALENCE
arousal    MOODSCAPE_AROUSAL    TXXX:MOODSCAPE_AROUSAL        ----:com.apple.iTunes:MOODSCAPE_AROUSAL
=========  ===================  ============================  ======================================

``label`` is the display name of the track's new label (as renamed in the web app), ``bpm``
the stage-1 tempo (rounded), valence and arousal with three decimals. Only these keys are
ever written or removed; the audio data is never touched: each file is tagged in a copy
beside it that replaces it atomically, with its mode, so a file is either fully tagged or
unchanged.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import Workdir
from ..errors import ConfigError, MoodscapeError

FIELDS = ("label", "valence", "arousal", "bpm")
_VORBIS = {"label": "MOOD", "bpm": "BPM", "valence": "MOODSCAPE_VALENCE", "arousal": "MOODSCAPE_AROUSAL"}
_ID3 = {"label": "TMOO", "bpm": "TBPM", "valence": "TXXX:MOODSCAPE_VALENCE", "arousal": "TXXX:MOODSCAPE_AROUSAL"}
_MP4 = {"label": "----:com.apple.iTunes:MOOD", "bpm": "tmpo", "valence": "----:com.apple.iTunes:MOODSCAPE_VALENCE",
        "arousal": "----:com.apple.iTunes:MOODSCAPE_AROUSAL"}


@dataclass(frozen=True)
class Change:
    """One field of one file: its value now and after (``""``: absent)."""

    path: str
    field: str
    old: str
    new: str


@dataclass
class TagPlan:
    """What ``write-tags`` would do: the changes, and the files it cannot tag (path, reason)."""

    changes: list[Change]
    problems: list[tuple[str, str]]
    unchanged: int = 0

    @property
    def files(self) -> list[str]:
        return list(dict.fromkeys(change.path for change in self.changes))


def parse_fields(text: str) -> list[str]:
    """The comma-separated ``--fields`` as a list of :data:`FIELDS`; raises ConfigError on an unknown one."""
    fields = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [field for field in fields if field not in FIELDS]
    if unknown or not fields:
        raise ConfigError(f"--fields {text!r}: unknown field {unknown[0] if unknown else '(none)'!r}; "
                          f"choose among {','.join(FIELDS)}")
    return list(dict.fromkeys(fields))


def catalog_values(workdir: Workdir, fields: Sequence[str]) -> dict[str, dict[str, str]]:
    """The tag values of every catalog track with an audio file.

    Returns
    -------
    dict
        Absolute audio path → {field: text}; a field without a value (no AV model, no tempo) is left out.
    """
    from .catalog import load_catalog
    from .names import NameStore, display_names

    catalog = load_catalog(workdir.root)
    names = {label: label for label in catalog.labels}
    if workdir.names_db.is_file():  # never create the database on a dry run
        store = NameStore(workdir.names_db)
        try:
            names = display_names(catalog.labels, store)
        finally:
            store.close()
    tempo = _tempo(workdir) if "bpm" in fields else {}
    values: dict[str, dict[str, str]] = {}
    for row, path in enumerate(catalog.audio_path):
        if not path:
            continue
        track = {"label": names[catalog.labels[catalog.label_of[row]]],
                 "valence": _decimal(catalog.valence[row]), "arousal": _decimal(catalog.arousal[row]),
                 "bpm": _decimal(tempo.get(catalog.track_ids[row], math.nan), 0)}
        values[str(path)] = {field: track[field] for field in fields if track[field]}
    return values


def _tempo(workdir: Workdir) -> dict[str, float]:
    """Stage-1 tempo of each track, from the features table (empty without one or its ``bpm`` column)."""
    import pyarrow.parquet as pq

    path = workdir.features
    if not path.is_file() or "bpm" not in pq.read_schema(path).names:
        return {}
    table = pq.read_table(path, columns=["track_id", "bpm"])
    return dict(zip(table.column("track_id").to_pylist(), table.column("bpm").to_pylist()))


def _decimal(value: Any, digits: int = 3) -> str:
    if value is None or not math.isfinite(float(value)) or (digits == 0 and float(value) <= 0):
        return ""
    return f"{float(value):.{digits}f}" if digits else str(round(float(value)))


def plan(values: dict[str, dict[str, str]], fields: Sequence[str], *, remove: bool = False) -> TagPlan:
    """Compare each file's tags with ``values`` (or, with ``remove``, with none of ``fields``)."""
    result = TagPlan([], [])
    for path, wanted in values.items():
        try:
            current = read_fields(path)
        except MoodscapeError as error:
            result.problems.append((path, str(error)))
            continue
        changes = [Change(path, field, current.get(field, ""), "" if remove else wanted.get(field, current.get(field, "")))
                   for field in fields]
        changes = [change for change in changes if change.old != change.new]
        result.changes += changes
        result.unchanged += not changes
    return result


def apply(tag_plan: TagPlan) -> list[tuple[str, str]]:
    """Write the planned changes, file by file. Returns the files that could not be written, with why."""
    failed = []
    by_file: dict[str, dict[str, str]] = {}
    for change in tag_plan.changes:
        by_file.setdefault(change.path, {})[change.field] = change.new
    for path, new in by_file.items():
        try:
            write_fields(path, new)
        except MoodscapeError as error:
            failed.append((path, str(error)))
    return failed


def _open(path: str | os.PathLike) -> tuple[Any, dict[str, str]]:
    """``mutagen.File`` of ``path`` (tags added when it has none) and the keys of its tagging system."""
    import mutagen
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    try:
        file = mutagen.File(os.fspath(path))
    except Exception as error:  # mutagen's parsers raise many types on a damaged file
        raise TagWriteError(f"{path}: tags not readable ({error or 'damaged'}); nothing written") from None
    if file is None:
        raise TagWriteError(f"{path}: not an audio format mutagen can tag; nothing written")
    if file.tags is None:
        try:
            file.add_tags()
        except Exception as error:
            raise TagWriteError(f"{path}: this format takes no tags ({error}); nothing written") from None
    if isinstance(file.tags, ID3):
        return file, _ID3
    if isinstance(file.tags, MP4Tags):
        return file, _MP4
    if any(base.__name__ == "VComment" for base in type(file.tags).__mro__):  # FLAC, Ogg Vorbis, Opus
        return file, _VORBIS
    raise TagWriteError(f"{path}: {type(file.tags).__name__} tags are not supported; nothing written")


class TagWriteError(MoodscapeError):
    """A file's tags cannot be read or written."""


def read_fields(path: str | os.PathLike) -> dict[str, str]:
    """The current value of each of :data:`FIELDS` in ``path`` (absent fields left out)."""
    file, keys = _open(path)
    found = {}
    for field, key in keys.items():
        values = _get(file.tags, key)
        if values:
            found[field] = "; ".join(values)
    return found


def _get(tags: Any, key: str) -> list[str]:
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(tags, ID3):
        return [str(text) for frame in tags.getall(key) for text in frame.text]
    raw = tags.get(key) or []
    if isinstance(tags, MP4Tags):
        return [value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value) for value in raw]
    return [str(value) for value in raw]


def _set(tags: Any, key: str, value: str) -> None:
    """Set ``key`` to ``value``, or delete it when ``value`` is ``""``."""
    from mutagen.id3 import ID3, TBPM, TMOO, TXXX, Encoding
    from mutagen.mp4 import MP4FreeForm, MP4Tags

    if isinstance(tags, ID3):
        tags.delall(key)
        if value:
            frame_id, _, description = key.partition(":")
            frame = {"TMOO": TMOO, "TBPM": TBPM}.get(frame_id)
            tags.add(frame(encoding=Encoding.UTF8, text=[value]) if frame
                     else TXXX(encoding=Encoding.UTF8, desc=description, text=[value]))
        return
    if not value:
        if key in tags:
            del tags[key]
    elif isinstance(tags, MP4Tags):
        tags[key] = [int(value)] if key == "tmpo" else [MP4FreeForm(value.encode("utf-8"))]
    else:
        tags[key] = [value]


def write_fields(path: str | os.PathLike, new: dict[str, str]) -> None:
    """Set (or, for ``""``, delete) ``new``'s fields in ``path``, through a copy that replaces it atomically.

    Raises
    ------
    TagWriteError
        When the file is read-only, gone, damaged or its folder not writable; ``path`` is then unchanged.
    """
    shown, path = path, Path(os.path.realpath(path))  # a symlink stays a link: its target is tagged
    try:
        status = path.stat()
    except OSError as error:
        raise TagWriteError(f"{shown}: cannot be read ({error.strerror or error}); nothing written") from None
    if not status.st_mode & stat.S_IWUSR or not os.access(path, os.W_OK):  # a file made read-only stays so, even for root
        raise TagWriteError(f"{shown}: the file is read-only; make it writable to tag it")
    temporary = None
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tagging", dir=path.parent)
        os.close(fd)
        temporary = Path(name)
        shutil.copy2(path, temporary)  # contents, mode and times
        with contextlib.suppress(OSError):  # the owner too, where we may (root)
            os.chown(temporary, status.st_uid, status.st_gid)
        file, keys = _open(temporary)
        for field, value in new.items():
            _set(file.tags, keys[field], value)
        file.save()
        os.replace(temporary, path)
        temporary = None
    except TagWriteError as error:
        raise TagWriteError(str(error).replace(str(temporary), str(shown))) from None
    except Exception as error:  # OSError, or mutagen failing on a damaged file
        raise TagWriteError(f"{shown}: not written ({getattr(error, 'strerror', None) or error}); the file is unchanged") from None
    finally:
        if temporary is not None:
            temporary.unlink(missing_ok=True)

