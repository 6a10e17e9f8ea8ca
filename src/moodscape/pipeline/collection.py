"""The collection a run reads: the configured dataset's tracks, tags, splits and source files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import Settings
from ..datasets import SPLITS, duplicates, folder, jamendo
from ..errors import ConfigError, DataError


@dataclass(frozen=True)
class Collection:
    """The tracks of a run and the tag vocabulary they are labelled with.

    ``duplicates`` describes the groups of identical files of which one track was kept
    (:func:`moodscape.datasets.duplicates.drop_identical`), one line each.
    """

    tracks: pd.DataFrame
    vocabulary: list[str]
    problems: list[str]
    source_files: list[Path]
    duplicates: tuple[str, ...] = ()

    def with_tracks(self, tracks: pd.DataFrame) -> Collection:
        """The same collection restricted to (or replaced by) ``tracks``."""
        return Collection(tracks, self.vocabulary, self.problems, self.source_files, self.duplicates)


def load_collection(settings: Settings) -> Collection:
    """Read the track table of the configured dataset (MTG-Jamendo or an audio folder)."""
    if settings.data.source == "jamendo":
        cfg = settings.jamendo
        tracks, problems = jamendo.load_jamendo(
            cfg.root, audio_root=cfg.audio_root, melspec_root=cfg.melspec_root, split=cfg.split
        )
        root = Path(cfg.root)
        vocabulary = jamendo.read_tag_vocabulary(root / jamendo.VOCABULARY_TXT)
        splits = [root / jamendo.SPLIT_TSV.format(split=cfg.split, name=name) for name in SPLITS]
        sources = [root / jamendo.TRACKS_TSV, root / jamendo.VOCABULARY_TXT, *splits]
    else:
        cfg = settings.folder
        tracks, problems = folder.load_folder(cfg.root, tags_csv=cfg.tags_csv, split_fractions=cfg.split_fractions,
                                              extensions=cfg.extensions, tags_from=cfg.tags_from)
        tracks, groups = duplicates.drop_identical(tracks)  # before anything splits them
        problems = [*problems, *(line for group in groups for line in group.problems())]
        vocabulary = sorted({tag for tags in tracks["tags"] for tag in tags})
        sources = [cfg.tags_csv] if cfg.tags_csv else []
        return Collection(tracks, vocabulary, [str(p) for p in problems], sources, tuple(g.describe() for g in groups))
    return Collection(tracks, vocabulary, [str(problem) for problem in problems], sources)


def inference_tracks(settings: Settings, collection: Collection) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The tracks stage 5 covers: ``infer.folder``, ``infer.track_list`` or a split of the collection.

    Returns the track table and the ``(track_id, reason)`` list of files of
    ``infer.folder`` that could not be read at all (empty otherwise).
    """
    cfg = settings.infer
    if cfg.folder is not None:
        tracks, problems = folder.load_folder(cfg.folder, extensions=settings.folder.extensions, tags_from=settings.folder.tags_from)
        tracks, groups = duplicates.drop_identical(tracks)
        problems += [line for group in groups for line in group.problems()]
        return tracks, [_folder_problem(Path(cfg.folder), problem) for problem in problems if ": skipped: " in problem]
    tracks = collection.tracks
    if cfg.track_list is not None:
        try:
            wanted = list(dict.fromkeys(Path(cfg.track_list).read_text(encoding="utf-8").split()))
        except OSError as error:
            raise ConfigError(f"infer.track_list: cannot read {cfg.track_list}: {error}") from None
        known = set(tracks["track_id"])
        unknown = [track_id for track_id in wanted if track_id not in known]
        if unknown:
            raise DataError(f"{cfg.track_list}: {len(unknown)} track ids are not in the collection, e.g. {unknown[0]}")
        return tracks.set_index("track_id").loc[wanted].reset_index(), []
    return (tracks if cfg.split == "all" else tracks[tracks["split"] == cfg.split]), []


def _folder_problem(root: Path, problem: str) -> tuple[str, str]:
    """``(track_id, "<path>: <reason>")`` from a folder loader message ``"<path>: skipped: <reason>"``."""
    path, _, reason = problem.partition(": skipped: ")
    try:
        track_id = Path(path).relative_to(root).with_suffix("").as_posix()
    except ValueError:
        track_id = path
    return track_id, f"{path}: {reason}" if reason else problem

