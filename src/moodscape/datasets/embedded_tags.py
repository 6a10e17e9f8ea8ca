"""Metadata embedded in audio files: Vorbis comments (Ogg, Opus, FLAC), ID3 (MP3, WAV,
AIFF), MP4 atoms (m4a) and APEv2, read with mutagen.

:func:`read_embedded_tags` gives a file's title, artist, album, genre, mood, style and
BPM, :func:`read_cover_art` its embedded picture; :func:`tags_from_fields` turns the
chosen fields into original tags, split on the usual separators and normalised, for
``[folder] tags_from``.

=======  ================  =========================  ===============================
field    Vorbis / APEv2    ID3                        MP4
=======  ================  =========================  ===============================
title    TITLE             TIT2                       ©nam
artist   ARTIST            TPE1                       ©ART
album    ALBUM             TALB                       ©alb
genre    GENRE             TCON (ID3v1 numbers named) ©gen
mood     MOOD              TMOO, TXXX:MOOD            ----:com.apple.iTunes:MOOD
style    STYLE             TXXX:STYLE                 ----:com.apple.iTunes:STYLE
bpm      BPM               TBPM                       tmpo
=======  ================  =========================  ===============================
"""

from __future__ import annotations

import base64
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, get_args

from moodscape.config import EmbeddedTagField
from moodscape.errors import DataError

TEXT_FIELDS = ("title", "artist", "album", "genre", "mood", "style")
"""Text fields of the track table (``""`` when a file has none); several values are joined by ``"; "``."""
FIELDS = (*TEXT_FIELDS, "bpm")
"""Every embedded field a folder's track table has; ``bpm`` is a float, NaN when absent."""
TAG_FIELDS = get_args(EmbeddedTagField)
"""Fields ``[folder] tags_from`` may turn into original tags."""
VALUE_SEPARATORS = re.compile(r"[;/,|\x00]")
"""What separates several values in one tag field: ``;``, ``/``, ``,``, ``|`` and ID3's null."""
_JOIN = "; "

_VORBIS = {field: [field] for field in FIELDS}
_ID3 = {"title": ["TIT2"], "artist": ["TPE1"], "album": ["TALB"], "genre": ["TCON"], "mood": ["TMOO", "TXXX:MOOD"],
        "style": ["TXXX:STYLE"], "bpm": ["TBPM"]}
_MP4 = {"title": ["©nam"], "artist": ["©ART"], "album": ["©alb"], "genre": ["©gen"], "mood": ["----:com.apple.iTunes:MOOD"],
        "style": ["----:com.apple.iTunes:STYLE"], "bpm": ["tmpo"]}


def no_tags() -> dict[str, Any]:
    """The fields of a file without embedded tags: ``""`` for text, NaN for ``bpm``."""
    return {**dict.fromkeys(TEXT_FIELDS, ""), "bpm": math.nan}


def read_embedded_tags(path: str | os.PathLike) -> dict[str, Any]:
    """Read a file's embedded title, artist, album, genre, mood, style and BPM.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file of any format mutagen knows; names may hold any character,
        spaces around the extension included.

    Returns
    -------
    dict
        :data:`FIELDS` → value: text fields stripped, repeats removed, several values
        joined by ``"; "`` (``""`` when absent); ``bpm`` a float (NaN when absent or not
        a number).

    Raises
    ------
    DataError
        When mutagen cannot parse the file's tags (``"<path>: embedded tags not read: ..."``).
    """
    try:
        file = _parse(path)
    except Exception as error:  # mutagen's parsers raise many types on a damaged file
        raise DataError(f"{path}: embedded tags not read: {error or 'the tag data is damaged'}") from None
    tags = no_tags()
    if file is None or file.tags is None:
        return tags
    for field, values in _field_values(file.tags).items():
        values = list(dict.fromkeys(value.replace("\x00", _JOIN).strip() for value in values))
        values = [value for value in values if value]
        if field == "bpm":
            tags["bpm"] = _number(values)
        elif values:
            tags[field] = _JOIN.join(values)
    return tags


def read_cover_art(path: str | os.PathLike) -> tuple[bytes, str] | None:
    """A file's embedded picture (the front cover when marked so, else the first one).

    Reads ID3 ``APIC`` frames, FLAC picture blocks, Vorbis ``METADATA_BLOCK_PICTURE``
    comments, MP4 ``covr`` atoms and APEv2 ``Cover Art (Front)`` items.

    Returns
    -------
    (bytes, str) or None
        The image and its MIME type (from its first bytes when they tell); ``None`` when the
        file holds no picture.

    Raises
    ------
    DataError
        When mutagen cannot parse the file's tags.
    """
    try:
        file = _parse(path)
        pictures = [] if file is None else _pictures(file)
    except Exception as error:  # mutagen's parsers raise many types on a damaged file
        raise DataError(f"{path}: embedded picture not read: {error or 'the tag data is damaged'}") from None
    pictures = [(front, data, mime) for front, data, mime in pictures if data]
    if not pictures:
        return None
    _, data, mime = max(pictures, key=lambda picture: picture[0])  # the first front cover, else the first picture
    return data, _image_type(data, mime)


def _image_type(data: bytes, declared: str) -> str:
    """The MIME type of an image by its first bytes; the declared one when they do not tell."""
    for magic, mime in ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif")):
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return declared if declared.startswith("image/") else "application/octet-stream"


_FRONT_COVER = 3
"""The picture type of a front cover (ID3v2 APIC and FLAC picture blocks)."""


def _pictures(file: Any) -> list[tuple[bool, bytes, str]]:
    """(is front cover, image bytes, declared MIME type) of every picture in a mutagen file."""
    from mutagen.apev2 import APEv2
    from mutagen.flac import Picture
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Cover, MP4Tags

    pictures = [(picture.type == _FRONT_COVER, picture.data, picture.mime) for picture in getattr(file, "pictures", None) or []]
    tags = file.tags
    if isinstance(tags, ID3):
        pictures += [(frame.type == _FRONT_COVER, frame.data, frame.mime) for frame in tags.getall("APIC")]
    elif isinstance(tags, MP4Tags):
        pictures += [(True, bytes(cover), "image/png" if cover.imageformat == MP4Cover.FORMAT_PNG else "image/jpeg")
                     for cover in tags.get("covr", [])]
    elif isinstance(tags, APEv2):
        item = tags.get("Cover Art (Front)")
        if item is not None:
            pictures.append((True, bytes(item.value).partition(b"\x00")[2], ""))
    elif tags is not None:
        for value in _as_list(tags.get("metadata_block_picture")):
            picture = Picture(base64.b64decode(value))
            pictures.append((picture.type == _FRONT_COVER, picture.data, picture.mime))
    return pictures


class _Unnamed(io.BufferedReader):
    """A file without a name, so that mutagen chooses its parser from the content alone."""

    name = ""


def _parse(path: str | os.PathLike) -> Any:
    """``mutagen.File`` of ``path``; when the parser its extension suggests fails (a WAV named
    ``.flac``), the one its first bytes suggest. Raises the first parser's error when both fail."""
    import mutagen

    try:
        return mutagen.File(os.fspath(path))
    except Exception as error:
        first = error
    with open(path, "rb", buffering=0) as raw:
        try:
            return mutagen.File(_Unnamed(raw))
        except Exception:
            raise first from None


def _field_values(tags: Any) -> dict[str, list[str]]:
    """The text values of every field in a mutagen tag object, by its tagging system."""
    from mutagen.id3 import ID3
    from mutagen.mp4 import MP4Tags

    if isinstance(tags, ID3):
        return {field: [value for key in keys for value in _id3_values(tags, key)] for field, keys in _ID3.items()}
    keys_of = _MP4 if isinstance(tags, MP4Tags) else _VORBIS  # Vorbis comments and APEv2 ignore case
    return {field: [_text(value) for key in keys for value in _as_list(tags.get(key))] for field, keys in keys_of.items()}


def _id3_values(tags: Any, key: str) -> list[str]:
    """Text of the ID3 frames ``key`` (``"TXXX:<description>"``, any case, for user frames); genres named."""
    frame_id, _, description = key.partition(":")
    frames = [frame for frame in tags.getall(frame_id) if not description or frame.desc.upper() == description]
    if frame_id == "TCON":
        return [genre for frame in frames for genre in frame.genres]
    return [str(text) for frame in frames for text in frame.text]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A tag value as text: MP4 freeform atoms are UTF-8 bytes, APEv2 values and numbers print."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _number(values: Sequence[str]) -> float:
    """The first value that reads as a positive finite number, else NaN."""
    for value in values:
        try:
            number = float(value.replace(",", "."))
        except ValueError:
            continue
        if math.isfinite(number) and number > 0:
            return number
    return math.nan


def split_values(text: str) -> list[str]:
    """Normalised tags of one field: split on :data:`VALUE_SEPARATORS`, lower-case, trimmed,
    empty ones and repeats removed.

    Examples
    --------
    >>> split_values("Rock / Pop; rock|Synth-Pop\\x00 ")
    ['rock', 'pop', 'synth-pop']
    """
    return list(dict.fromkeys(tag for tag in (part.strip().lower() for part in VALUE_SEPARATORS.split(text)) if tag))


def tags_from_fields(metadata: Mapping[str, Any], fields: Iterable[str]) -> list[str]:
    """Original tags from the embedded ``fields`` of one file (:func:`split_values` of each, in order, repeats removed).

    Parameters
    ----------
    metadata : mapping
        What :func:`read_embedded_tags` returned.
    fields : iterable of str
        Some of :data:`TAG_FIELDS`, e.g. ``["genre", "mood"]``.

    Returns
    -------
    list of str
    """
    return list(dict.fromkeys(tag for field in fields for tag in split_values(str(metadata.get(field) or ""))))
