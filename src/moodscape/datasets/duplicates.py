"""Identical recordings in a collection: find them and keep one of each.

A folder often holds the same file twice (a compilation and the album, a copy in
another folder under another name). Left in, the copies land in different splits by
their ids and the test split holds tracks the model trained on. Files are grouped by size,
then by a BLAKE2b hash of their bytes, so only files of equal size are read; of a group
of byte-identical files the one with the smallest track id is kept and the others are
dropped from the collection, their tags merged into the kept track's; each dropped copy
is a problem line of the folder scan (``"<path>: skipped: identical to <kept path>, ..."``),
as every folder entry that is no track is.

Copies that differ in their bytes but not in their audio (the same stream with other
embedded tags, or WAV and FLAC of one recording) are not detected: that needs the decoded
audio, which only the features stage reads, and a collection that changed after it.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

_READ_BYTES = 1 << 20


@dataclass(frozen=True)
class DuplicateGroup:
    """Track ids (and files) of one recording: the one kept and the copies dropped."""

    kept: str
    dropped: tuple[str, ...]
    kept_path: str = ""
    dropped_paths: tuple[str, ...] = ()

    def describe(self) -> str:
        """One report line: ``kept A; dropped B, C (identical audio files)``."""
        return f"kept {self.kept}; dropped {', '.join(self.dropped)} (identical audio files)"

    def problems(self) -> list[str]:
        """A folder-scan problem line per dropped copy: ``"<path>: skipped: identical to <kept path>, ..."``."""
        return [f"{path}: skipped: identical to {self.kept_path}, which is kept as track {self.kept!r}"
                for path in self.dropped_paths]


def identical_files(paths: Sequence[str | Path]) -> list[list[int]]:
    """Groups of byte-identical files among ``paths``.

    Parameters
    ----------
    paths : sequence of str or Path

    Returns
    -------
    list of list of int
        Indices into ``paths`` of every group of two or more identical files, each group
        in index order, groups ordered by their first index. A file that cannot be read
        is in no group (the stage that decodes it lists it).
    """
    by_size: dict[int, list[int]] = defaultdict(list)
    for index, path in enumerate(paths):
        try:
            by_size[Path(path).stat().st_size].append(index)
        except OSError:
            continue
    groups = []
    for same_size in by_size.values():
        if len(same_size) < 2:
            continue
        by_digest: dict[bytes, list[int]] = defaultdict(list)
        for index in same_size:
            digest = _content_digest(Path(paths[index]))
            if digest is not None:
                by_digest[digest].append(index)
        groups += [group for group in by_digest.values() if len(group) > 1]
    return sorted(groups)


def _content_digest(path: Path) -> bytes | None:
    """BLAKE2b digest of a file's bytes, or None when it cannot be read."""
    digest = hashlib.blake2b(digest_size=32)
    try:
        with path.open("rb") as file:
            while block := file.read(_READ_BYTES):
                digest.update(block)
    except OSError:
        return None
    return digest.digest()


def drop_identical(tracks: pd.DataFrame) -> tuple[pd.DataFrame, list[DuplicateGroup]]:
    """Keep one track of every group whose audio files are byte-identical.

    Parameters
    ----------
    tracks : pandas.DataFrame
        A track table (:data:`moodscape.datasets.TRACK_COLUMNS`) whose ``audio_path``
        names each track's file.

    Returns
    -------
    tracks : pandas.DataFrame
        The table without the dropped copies, in its order; the kept track of a group
        carries the union of the group's tags.
    groups : list of DuplicateGroup
        One per group of identical files, ordered by kept track id.
    """
    paths = tracks["audio_path"].tolist()
    with_audio = [index for index, path in enumerate(paths) if path]
    found = identical_files([paths[index] for index in with_audio])
    if not found:
        return tracks, []
    track_ids, tags = tracks["track_id"].tolist(), tracks["tags"].tolist()
    groups, dropped_rows, merged_tags = [], set(), {}
    for group in found:
        rows = sorted((with_audio[i] for i in group), key=lambda row: track_ids[row])
        kept, copies = rows[0], rows[1:]
        merged_tags[kept] = list(dict.fromkeys(tag for row in rows for tag in tags[row]))
        dropped_rows.update(copies)
        groups.append(DuplicateGroup(track_ids[kept], tuple(track_ids[row] for row in copies),
                                     paths[kept], tuple(paths[row] for row in copies)))
    tracks = tracks.copy()
    tracks["tags"] = [merged_tags.get(row, row_tags) for row, row_tags in enumerate(tags)]
    keep = [row not in dropped_rows for row in range(len(tracks))]
    return tracks[keep].reset_index(drop=True), sorted(groups, key=lambda group: group.kept)
