"""Which tracks the serving catalog holds: the collection's, and those added from other folders.

``moodscape infer`` infers the collection (every track, ``infer.split = "all"``) and the
tracks added earlier with ``moodscape infer --audio-folder X``, so rebuilding the catalog
never loses them. ``infer --audio-folder X`` adds X's files to the catalog: a file
already in it (the same resolved path) keeps its id, so running it again changes
nothing; another gets its id in X (``song`` for ``X/song.mp3``), or, when that id is
taken, ``<X's name>/<id>`` (then ``... (2)``, ``(3)``). The catalog table remembers the
folder each added track came from in its ``added_from`` column. ``infer.replace`` (``--replace``)
makes the inferred tracks the whole catalog, as it was before this module.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .. import artifacts
from ..artifacts import LABEL_COLUMN_PREFIX, Workdir
from ..datasets import TRACK_COLUMNS
from ..errors import ArtifactError, ConfigError

ADDED_FROM = "added_from"
"""Catalog column: the folder a track was added from (``""`` for the collection's tracks)."""


def previous_catalog(workdir: Workdir) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None:
    """The catalog of the last stage 5, as ``(lookup, embeddings, catalog)``; None if it has none.

    Raises
    ------
    ArtifactError
        When one of its tables cannot be read; the message says how to rebuild it.
    """
    paths = (workdir.inference_lookup, workdir.embeddings, workdir.catalog)
    if not all(path.exists() for path in paths):
        return None
    try:
        return tuple(artifacts.read_table(path) for path in paths)
    except ArtifactError as error:
        raise ArtifactError(f"{error}; infer with --replace to build the catalog afresh") from None


def check_labels(lookup: pd.DataFrame, label_names: list[str], lookup_path: Path) -> None:
    """Raise ConfigError unless the previous ``lookup`` has a column for each label, in order.

    New rows join the catalog only if its rows were inferred with the same labels.
    """
    columns = [column for column in lookup.columns if column.startswith(LABEL_COLUMN_PREFIX)]
    if columns != [f"{LABEL_COLUMN_PREFIX}{name}" for name in label_names]:
        raise ConfigError(f"{lookup_path}: the catalog was inferred with other labels than the current model's; "
                          "run `moodscape infer` to infer it again, or add the folder with --replace to replace it")


def added_tracks(catalog: pd.DataFrame | None, collection_ids: pd.Series) -> pd.DataFrame:
    """The tracks added from folders (not in the collection) as a track table to infer again.

    Parameters
    ----------
    catalog : pandas.DataFrame or None
        The previous catalog table.
    collection_ids : pandas.Series
        Ids of the collection tracks inferred now; an added track with one of them gives way.

    Returns
    -------
    pandas.DataFrame
        :data:`~moodscape.datasets.TRACK_COLUMNS`, then the catalog's other columns
        (``added_from``, ``title``, ...); no tags, no duration.
    """
    if catalog is None or ADDED_FROM not in catalog:
        return pd.DataFrame(columns=[*TRACK_COLUMNS, ADDED_FROM])
    added = catalog[(catalog[ADDED_FROM] != "") & (catalog["audio_path"] != "") & ~catalog["track_id"].isin(collection_ids)]
    table = added.reindex(columns=[*TRACK_COLUMNS, *(c for c in catalog.columns if c not in TRACK_COLUMNS)])
    return table.assign(mel_path="", tags=[[] for _ in range(len(table))]).reset_index(drop=True)


def ids_in_catalog(tracks: pd.DataFrame, folder: Path, catalog: pd.DataFrame | None) -> pd.DataFrame:
    """A folder's tracks with the ids they get in the catalog (see the module docstring).

    Parameters
    ----------
    tracks : pandas.DataFrame
        The folder's track table (ids relative to ``folder``).
    folder : Path
    catalog : pandas.DataFrame or None
        The catalog they join.

    Returns
    -------
    pandas.DataFrame
        ``tracks`` with new ids and an ``added_from`` column.
    """
    folder = Path(folder).resolve()
    existing = {} if catalog is None else dict(zip(catalog["audio_path"], catalog["track_id"]))
    taken = set() if catalog is None else set(catalog["track_id"])
    used, ids = set(), []
    for track_id, path in zip(tracks["track_id"], tracks["audio_path"]):
        known = existing.get(str(Path(path).resolve()))
        if known is None or known in used:
            known = _free_id(track_id, folder.name, taken)
            taken.add(known)
        used.add(known)
        ids.append(known)
    return tracks.assign(track_id=ids, **{ADDED_FROM: str(folder)})


def _free_id(track_id: str, folder_name: str, taken: set[str]) -> str:
    """``track_id``, else ``<folder_name>/<track_id>``, else that with `` (2)``, `` (3)``, … : the first not taken."""
    if track_id not in taken:
        return track_id
    candidate = base = f"{folder_name}/{track_id}"
    number = 2
    while candidate in taken:
        candidate, number = f"{base} ({number})", number + 1
    return candidate


def merged(previous: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
           new: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(lookup, embeddings, catalog)``: the previous rows whose ids are not new, then the new rows."""
    new_ids = set(new[0]["track_id"])
    tables = []
    for old, fresh in zip(previous, new):
        kept = old[~old["track_id"].isin(new_ids)]
        tables.append(pd.concat([kept, fresh], ignore_index=True) if len(kept) else fresh.reset_index(drop=True))
    catalog = tables[2]
    if ADDED_FROM in catalog:
        catalog[ADDED_FROM] = catalog[ADDED_FROM].fillna("")
    return tables[0], tables[1], catalog.fillna("")
