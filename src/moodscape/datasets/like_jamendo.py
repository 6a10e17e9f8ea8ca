"""A rehearsal corpus at MTG-Jamendo's scale: the real metadata, synthesised content.

``moodscape demo-data --like-jamendo META`` reads a user's copy of the MTG-Jamendo
metadata (``autotagging_moodtheme.tsv``, ``moodtheme_split.txt``, ``splits/split-0/``)
and writes a corpus with its **real** track ids, artists, albums, relative paths, tags
and split 0, and each track's real duration (capped at ``max_seconds``). The content of
a track is demo music (:mod:`moodscape.datasets.demo_synth`) whose archetype, mode and
tempo are drawn from the track's own tags (:func:`track_params`), with the demo's
nuisances (level, key, timbre, tone, balance) drawn independently of them.

Tracks are written as the dataset's released mel-spectrograms, not as audio: the music is
rendered at the mel rate (12 kHz) for at most one loop of whole chord progressions (15 to
18 s) and its log-mel computed once (:func:`moodscape.audio.log_mel_spectrogram`); a
longer track repeats the loop's frames (:func:`track_mel`). A sample of tracks is also
written as MP3 (:func:`write_track_mp3`: the loop at the MP3 rate, repeated likewise),
and a MusAV-sized set of previews with simulated judgments as the demo's
(:mod:`moodscape.datasets.demo_musav`).

Every track's content depends only on the seed and its track id, so a corpus of 1,000
tracks holds the same music for those tracks as one of 18,486; ``limit`` keeps the
tracks first in a seeded order, so smaller corpora are subsets of larger ones. Files go
to disk as they are made (never all mels in memory); a rerun with the same settings keeps
the files already written (a mel if it has the expected shape), so a killed run resumes.
The metadata tables are written last.

Layout written under ``out_dir``::

    mtg-jamendo/autotagging_moodtheme.tsv        the metadata's rows, DURATION capped
    mtg-jamendo/moodtheme_split.txt              its tag vocabulary
    mtg-jamendo/splits/split-0/autotagging_moodtheme-{train,validation,test}.tsv
    mtg-jamendo/melspec/<PATH without .mp3>.npy  float32 (96, frames), the released layout
    mtg-jamendo/audio/<PATH>                     MP3 of the sample tracks only
    mp3-sample/...                               the sample's rows, in the same three files
    musav/...                                    as the demo corpus (previews, metadata, annotations)
    truth.json                                   as the demo corpus's
    moodscape.toml                               the config of the corpus (its mels)
    moodscape-mp3-sample.toml                    the config of the MP3 sample
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import threadpoolctl

from moodscape import artifacts
from moodscape.audio import MEL_HOP, MEL_N_BANDS, MEL_SR, log_mel_spectrogram
from moodscape.datasets import SPLITS
from moodscape.datasets.demo import write_truth
from moodscape.datasets.demo_musav import draw_musav_songs, write_musav
from moodscape.datasets.demo_synth import ARCHETYPES, TrackParams, draw_track_params, render_track
from moodscape.datasets.jamendo import (
    SPLIT_TSV, TRACKS_TSV, VOCABULARY_TXT, read_tag_vocabulary, read_tracks_tsv, tracks_tsv_bytes, vocabulary_text,
)
from moodscape.errors import AudioError, ConfigError

__all__ = ["LikeJamendoCorpus", "archetype_weights", "track_mel", "track_params", "write_like_jamendo", "write_track_mp3"]

MUSAV_PREVIEWS = 2092
"""Previews in the real MusAV set."""
PREVIEW_SECONDS = 30.0
"""Length of a MusAV preview (Spotify's)."""
LOOP_SECONDS = 15.0
"""A mel is rendered for whole chord progressions lasting at least this long, then repeated
(one to three progressions: 15 to 18 s at the archetypes' tempi)."""
SPLIT = 0

SETTINGS_JSON = ".like-jamendo.json"  # what the files were written with: a rerun keeps them only when it matches
_FORMAT = 1  # raised whenever the same settings would write other content
_MARGIN_SECONDS = 0.5  # rendered around the loop so that its frames lie clear of the render's fades
# uploader tags: the archetype's signature tags vote 1 for it; these vote besides (a tag's
# meaning, read as music: "calm" is slow and soft, "fast" fast); any tag, or none, leaves
# every archetype the prior's share, so a track's tags tell its music only loosely
_PRIOR = 0.25
_ALSO_HEARD = {
    "upbeat dance": {"happy": 0.6, "fast": 0.6, "positive": 0.6, "uplifting": 0.5, "motivational": 0.4,
                     "summer": 0.5, "sexy": 0.4, "commercial": 0.3, "advertising": 0.3, "corporate": 0.3},
    "heavy doom": {"horror": 0.6, "dark": 0.3},
    "sad ballad": {"ballad": 1.0, "slow": 0.6, "love": 0.4, "drama": 0.4},
    "flowing arpeggios": {"hopeful": 0.5, "inspiring": 0.4, "mellow": 0.5, "children": 0.3, "love": 0.3, "happy": 0.3},
    "dark tension": {"horror": 0.6, "drama": 0.4, "movie": 0.3, "documentary": 0.3},
    "driving rock": {"fast": 0.6, "motivational": 0.4, "inspiring": 0.3, "uplifting": 0.3, "movie": 0.3},
    "meditative": {"calm": 1.5, "relaxing": 1.5, "soft": 1.0, "slow": 0.8, "ambiental": 1.0, "nature": 0.8,
                   "mellow": 0.5, "background": 0.3},
    "retro game": {"children": 0.5, "christmas": 0.4, "holiday": 0.4, "fun": 0.4, "travel": 0.3, "happy": 0.3},
}
_MAJOR_TAGS = frozenset({"happy", "uplifting", "positive", "hopeful", "fun", "funny", "children", "christmas",
                         "holiday", "summer", "inspiring", "motivational", "party"})
_MINOR_TAGS = frozenset({"sad", "melancholic", "dark", "horror", "drama", "emotional"})
_MODE_PROBABILITY = 0.85  # that a track whose tags lean major (minor) is in a major (minor) key
_TEMPO_FACTORS = {"fast": 1.15, "energetic": 1.05, "slow": 0.85, "calm": 0.95}


@dataclasses.dataclass(frozen=True)
class LikeJamendoCorpus:
    """Where a rehearsal corpus lives and what it holds.

    ``jamendo_root`` holds the TSV, tag list and ``splits/``; ``melspec_root`` the mels;
    ``sample_root`` the metadata of the ``n_mp3`` tracks written as MP3 under
    ``jamendo_audio_root``. ``problems`` lists the metadata rows that were skipped.
    """

    root: Path
    jamendo_root: Path
    melspec_root: Path
    jamendo_audio_root: Path
    sample_root: Path
    musav_root: Path
    musav_audio_root: Path
    musav_metadata_root: Path
    truth_path: Path
    config: Path
    sample_config: Path
    n_tracks: int
    n_mp3: int
    n_musav: int
    seconds: float
    problems: tuple[str, ...]
    n_archetypes: int = len(ARCHETYPES)


@dataclasses.dataclass(frozen=True)
class _Job:
    """One file to write: a track's mel and/or its MP3 (``seconds`` long)."""

    params: TrackParams
    seconds: float
    mel_path: Path | None
    mp3_path: Path | None


@dataclasses.dataclass(frozen=True)
class _Planted:
    """A track's id and the parameters of its music (what ``truth.json`` records)."""

    track_id: str
    params: TrackParams


def _digest(seed: int, track_id: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{track_id}".encode()).digest()[:8], "big")


def archetype_weights(tags: Iterable[str]) -> np.ndarray:
    """The probability of each archetype for a track with these tags.

    Parameters
    ----------
    tags : iterable of str
        Short tag names (``"energetic"``).

    Returns
    -------
    np.ndarray [shape=(len(ARCHETYPES),)]
        Sums to 1: a prior share for every archetype plus each tag's votes.
    """
    votes = np.full(len(ARCHETYPES), _PRIOR)
    for tag in set(tags):
        for index, archetype in enumerate(ARCHETYPES):
            votes[index] += (tag in archetype.signature_tags) + _ALSO_HEARD[archetype.name].get(tag, 0.0)
    return votes / votes.sum()


def track_params(track_id: str, tags: Iterable[str], seed: int) -> TrackParams:
    """The music of one track, drawn from its tags; the same for the same seed and id.

    The archetype is drawn with :func:`archetype_weights`; tags that lean major or minor
    set the mode with probability 0.85 (else the archetype decides); ``fast``/``slow``
    tags scale the tempo.

    Parameters
    ----------
    track_id : str
    tags : iterable of str
        Short tag names.
    seed : int

    Returns
    -------
    TrackParams
    """
    tags = set(tags)
    rng = np.random.default_rng([seed, _digest(seed, track_id)])
    archetype = int(rng.choice(len(ARCHETYPES), p=archetype_weights(tags)))
    lean = len(tags & _MAJOR_TAGS) - len(tags & _MINOR_TAGS)
    keep_lean = bool(rng.random() < _MODE_PROBABILITY)
    major = None if lean == 0 else (lean > 0) == keep_lean
    params = draw_track_params(archetype, rng, major=major)
    factor = math.prod(_TEMPO_FACTORS.get(tag, 1.0) for tag in tags)
    return dataclasses.replace(params, tempo_bpm=round(params.tempo_bpm * factor, 2))


def _n_frames(seconds: float) -> int:
    """Frames of :func:`~moodscape.audio.log_mel_spectrogram` for ``seconds`` at the mel rate."""
    return -(-int(round(seconds * MEL_SR)) // MEL_HOP) + 1


def _loop_seconds(params: TrackParams) -> float:
    """The shortest whole number of chord progressions lasting at least :data:`LOOP_SECONDS`."""
    progression = 4 * len(params.progression) * 60.0 / params.tempo_bpm  # four beats a bar
    return progression * math.ceil(LOOP_SECONDS / progression)


def _mono_mel(params: TrackParams, seconds: float) -> np.ndarray:
    return log_mel_spectrogram(render_track(params, seconds, MEL_SR, 1)[:, 0])


def track_mel(params: TrackParams, seconds: float) -> np.ndarray:
    """The MTG-Jamendo log-mel of a track ``seconds`` long.

    A track no longer than one loop (:data:`LOOP_SECONDS`, whole progressions) and its
    margins is rendered whole; a longer one is its first loop, then the loop's frames
    again to its length (the render's fade-in opens it; no fade closes it).

    Parameters
    ----------
    params : TrackParams
    seconds : float

    Returns
    -------
    np.ndarray [shape=(96, ceil(seconds * 12000 / 256) + 1), dtype=float32]
    """
    loop = _loop_seconds(params)
    if seconds <= loop + 2 * _MARGIN_SECONDS:
        return _mono_mel(params, seconds)
    mel = _mono_mel(params, loop + 2 * _MARGIN_SECONDS)
    start, stop = _n_frames(_MARGIN_SECONDS), _n_frames(_MARGIN_SECONDS + loop)
    n_frames = _n_frames(seconds)
    repeats = -(-(n_frames - stop) // (stop - start))
    return np.concatenate([mel[:, :stop], *[mel[:, start:stop]] * repeats], axis=1)[:, :n_frames]


def write_track_mp3(params: TrackParams, path: Path, seconds: float, sample_rate: int, channels: int) -> None:
    """Write a track ``seconds`` long as MP3, as :func:`track_mel` makes its mel.

    A track no longer than a loop is rendered whole; a longer one is its first loop, then
    the loop again, encoded block by block, so memory holds one loop whatever the length.

    Parameters
    ----------
    params : TrackParams
    path : Path
        The file (written atomically).
    seconds : float
    sample_rate, channels : int

    Raises
    ------
    AudioError
        When libsndfile cannot encode MP3.
    """
    loop = _loop_seconds(params)
    whole = seconds <= loop + 2 * _MARGIN_SECONDS
    audio = render_track(params, seconds if whole else loop + 2 * _MARGIN_SECONDS, sample_rate, channels)
    start, stop = round(_MARGIN_SECONDS * sample_rate), round((_MARGIN_SECONDS + loop) * sample_rate)
    n_samples = len(audio) if whole else round(seconds * sample_rate)
    try:
        with artifacts.atomic_path(path) as tmp, sf.SoundFile(tmp, "w", sample_rate, channels, format="MP3") as out:
            out.write(audio[:n_samples if whole else stop])
            for offset in range(stop, n_samples, stop - start):
                out.write(audio[start:start + min(stop - start, n_samples - offset)])
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: cannot write MP3: {error}") from None


def _written(path: Path, n_frames: int) -> bool:
    """Whether ``path`` already holds a float32 mel of ``n_frames`` frames (a resumed run)."""
    try:
        mel = np.load(path, mmap_mode="r")  # reads the header only
    except (OSError, ValueError):
        return False
    return mel.shape == (MEL_N_BANDS, n_frames) and mel.dtype == np.float32


def _write_job(job: _Job, sample_rate: int, channels: int, resume: bool) -> None:
    """Write one job's files, but those a resumed run finds whole; top-level so that worker processes can run it."""
    if job.mel_path is not None and not (resume and _written(job.mel_path, _n_frames(job.seconds))):
        artifacts.write_array(job.mel_path, track_mel(job.params, job.seconds))
    if job.mp3_path is not None and not (resume and job.mp3_path.is_file()):
        write_track_mp3(job.params, job.mp3_path, job.seconds, sample_rate, channels)


def _run_jobs(jobs: list[_Job], settings: dict[str, Any], stamp: Path, workers: int,
              progress: Callable[[int, int], None] | None) -> None:
    """Run the jobs on ``workers`` processes (in this one when 1), reporting each one done.

    Files already there are kept only when ``stamp`` records the same ``settings`` (every
    file is written atomically, so one that is there is whole). Each process runs one
    BLAS thread: the jobs' matrix products are small, and threads waiting on busy cores
    made them half as fast.
    """
    try:
        resume = json.loads(stamp.read_text()) == settings
    except (OSError, ValueError):
        resume = False
    artifacts.write_json(stamp, settings)
    rates = [settings["sample_rate"]] * len(jobs), [settings["channels"]] * len(jobs), [resume] * len(jobs)
    if workers == 1:
        with threadpoolctl.threadpool_limits(1):
            _count(map(_write_job, jobs, *rates), len(jobs), progress)
        return
    with ProcessPoolExecutor(max_workers=workers, initializer=threadpoolctl.threadpool_limits, initargs=(1,)) as pool:
        _count(pool.map(_write_job, jobs, *rates, chunksize=max(1, min(16, len(jobs) // (8 * workers)))),
               len(jobs), progress)


def _count(results: Iterator, total: int, progress: Callable[[int, int], None] | None) -> None:
    if progress:
        progress(0, total)
    for done, _ in enumerate(results, start=1):
        if progress:
            progress(done, total)


def _read_metadata(metadata: Path) -> tuple[list[dict], dict[str, list[dict]], list[str], list[str]]:
    """The main rows, each split file's rows, the tag vocabulary and the skipped rows."""
    tracks, problems = read_tracks_tsv(metadata / TRACKS_TSV)
    splits = {}
    for name in SPLITS:
        members, split_problems = read_tracks_tsv(metadata / SPLIT_TSV.format(split=SPLIT, name=name))
        splits[name], problems = members.to_dict("records"), problems + split_problems
    return tracks.to_dict("records"), splits, read_tag_vocabulary(metadata / VOCABULARY_TXT), problems


def _write_tables(root: Path, rows: list[dict], splits: dict[str, list[dict]], vocabulary: list[str],
                  kept: set[str], durations: dict[str, float]) -> None:
    """The metadata's three files, restricted to ``kept`` tracks, with the written durations (CRLF, as the real ones)."""
    def write(path: Path, records: list[dict]) -> None:
        with artifacts.atomic_path(path) as tmp:
            tmp.write_bytes(tracks_tsv_bytes((r["track_id"], r["artist_id"], r["album_id"], r["path"],
                                              durations[r["track_id"]], r["tags"]) for r in records if r["track_id"] in kept))

    with artifacts.atomic_path(root / VOCABULARY_TXT) as tmp:
        tmp.write_text(vocabulary_text(vocabulary))
    for name, members in splits.items():
        write(root / SPLIT_TSV.format(split=SPLIT, name=name), members)
    write(root / TRACKS_TSV, rows)


def _check(limit, mp3_sample, n_musav, max_seconds, workers) -> None:
    for name, value, least in (("limit", limit, 1), ("mp3_sample", mp3_sample, 0), ("n_musav", n_musav, 3),
                               ("workers", workers, 1)):
        if value is not None and value < least:
            raise ConfigError(f"{name} must be at least {least}, got {value}")
    if max_seconds is not None and not max_seconds >= 2:
        raise ConfigError(f"max_seconds must be at least 2, got {max_seconds}")


def write_like_jamendo(
    metadata: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    max_seconds: float | None = None,
    limit: int | None = None,
    mp3_sample: int = 0,
    full_length_mp3: bool = False,
    n_musav: int = MUSAV_PREVIEWS,
    seed: int = 0,
    sample_rate: int = 22050,
    channels: int = 1,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> LikeJamendoCorpus:
    """Write a rehearsal corpus from the real MTG-Jamendo metadata (module docstring).

    Parameters
    ----------
    metadata : str or os.PathLike
        Folder holding ``autotagging_moodtheme.tsv``, ``moodtheme_split.txt`` and
        ``splits/split-0/``.
    out_dir : str or os.PathLike
        Folder to write into (created if needed).
    max_seconds : float, optional
        Cap on each track's length; None keeps the real durations (219 s on average:
        about 4 MB of mel a track).
    limit : int, optional
        Keep this many tracks, the first in a seeded order of their ids (smaller limits
        give subsets); None keeps all.
    mp3_sample : int
        Tracks (the first kept) also written as MP3 at ``sample_rate`` with ``channels``.
    full_length_mp3 : bool
        Write the MP3 sample at the tracks' real durations, not capped (the sample's
        metadata says so), to measure analysis from audio as users' files cost.
    n_musav : int
        MusAV-style previews of :data:`PREVIEW_SECONDS` (capped by ``max_seconds``).
    seed : int
        Seed of the content, the order of ``limit`` and the MusAV part.
    sample_rate, channels : int
        Of the MP3 files.
    workers : int, optional
        Processes writing files (default: one per core; 1 writes in this process).
    progress : callable, optional
        Called as ``progress(n_done, n_total)`` as files are written.

    Returns
    -------
    LikeJamendoCorpus

    Raises
    ------
    DataError
        When a metadata file is missing or unreadable as a whole.
    ConfigError
        When a setting is out of range.
    """
    _check(limit, mp3_sample, n_musav, max_seconds, workers)
    metadata, root = Path(metadata), Path(out_dir)
    jamendo_root = root / "mtg-jamendo"
    corpus = LikeJamendoCorpus(
        root=root, jamendo_root=jamendo_root, melspec_root=jamendo_root / "melspec",
        jamendo_audio_root=jamendo_root / "audio", sample_root=root / "mp3-sample", musav_root=root / "musav",
        musav_audio_root=root / "musav" / "audio", musav_metadata_root=root / "musav" / "metadata",
        truth_path=root / "truth.json", config=root / "moodscape.toml", sample_config=root / "moodscape-mp3-sample.toml",
        n_tracks=0, n_mp3=0, n_musav=n_musav,
        seconds=0.0, problems=(),
    )
    rows, splits, vocabulary, problems = _read_metadata(metadata)
    kept = sorted(rows, key=lambda row: _digest(seed, row["track_id"]))[:limit]
    sample = {row["track_id"] for row in kept[:mp3_sample]}
    durations = {row["track_id"]: min(row["duration"], max_seconds or math.inf) for row in kept}
    mp3_durations = {row["track_id"]: row["duration"] if full_length_mp3 else durations[row["track_id"]]
                     for row in kept if row["track_id"] in sample}
    planted = [_Planted(row["track_id"], track_params(row["track_id"], row["tags"], seed)) for row in kept]
    jobs = []
    for track, row in zip(planted, kept):
        mel, mp3 = corpus.melspec_root / Path(row["path"]).with_suffix(".npy"), corpus.jamendo_audio_root / row["path"]
        seconds, mp3_seconds = durations[track.track_id], mp3_durations.get(track.track_id)
        if mp3_seconds in (None, seconds):  # the mel and its MP3 (if any) from one render
            jobs.append(_Job(track.params, seconds, mel, None if mp3_seconds is None else mp3))
        else:
            jobs += [_Job(track.params, seconds, mel, None), _Job(track.params, mp3_seconds, None, mp3)]
    preview_seconds = min(PREVIEW_SECONDS, max_seconds or math.inf)
    songs = draw_musav_songs(np.sort(np.arange(n_musav) % len(ARCHETYPES)), np.random.default_rng([seed, 1]))
    jobs += [_Job(song.params, preview_seconds, None, corpus.musav_audio_root / f"{song.path}.mp3") for song in songs]
    settings = {"format": _FORMAT, "seed": seed, "max_seconds": max_seconds, "sample_rate": sample_rate,
                "channels": channels, "loop_seconds": LOOP_SECONDS, "full_length_mp3": full_length_mp3}
    _run_jobs(jobs, settings, root / SETTINGS_JSON, workers or os.cpu_count() or 1, progress)

    write_musav(corpus.musav_root, corpus.musav_metadata_root, songs, preview_seconds, np.random.default_rng([seed, 2]))
    write_truth(corpus.truth_path, planted, songs, len(ARCHETYPES))
    kept_ids = set(durations)
    _write_tables(corpus.sample_root, rows, splits, vocabulary, sample, mp3_durations)
    _write_tables(jamendo_root, rows, splits, vocabulary, kept_ids, durations)
    _write_configs(corpus, seed)
    return dataclasses.replace(corpus, n_tracks=len(kept), n_mp3=len(sample), seconds=sum(durations.values()),
                               problems=tuple(problems))


def _write_configs(corpus: LikeJamendoCorpus, seed: int) -> None:
    """Write the corpus's config (the mels) and its MP3 sample's, paths relative to them.

    The training settings are the product's defaults: the rehearsal runs what a user of
    the real dataset runs.
    """
    def rel(path: Path) -> str:
        return path.resolve().relative_to(corpus.root.resolve()).as_posix()

    musav = ["[musav]", f'root = "{rel(corpus.musav_root)}"', f'audio_root = "{rel(corpus.musav_audio_root)}"',
             f'metadata_root = "{rel(corpus.musav_metadata_root)}"', f'planted_truth = "{rel(corpus.truth_path)}"']
    head = ["# Written by `moodscape demo-data --like-jamendo`; paths are relative to this file.", f"seed = {seed}",
            "", "[data]", 'source = "jamendo"', "", "[jamendo]"]
    texts = {
        corpus.config: [*head, f'root = "{rel(corpus.jamendo_root)}"', f'melspec_root = "{rel(corpus.melspec_root)}"',
                        f"split = {SPLIT}", "", *musav],
        corpus.sample_config: [*head, f'root = "{rel(corpus.sample_root)}"', f'audio_root = "{rel(corpus.jamendo_audio_root)}"',
                               f"split = {SPLIT}", "", *musav],
    }
    for path, lines in texts.items():
        with artifacts.atomic_path(path) as tmp:
            tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
