"""Generate the demo corpus: synthesised music in the real MTG-Jamendo and MusAV formats.

The corpus exercises the real loaders and plants a structure the pipeline must recover:
tracks belong to acoustic archetypes (:mod:`moodscape.datasets.demo_synth`), their
mood/theme tags are only loosely related to the archetype (as uploader tags are), and their
true valence and arousal follow from the rendered music. The planted truth goes to
``truth.json``, which only tests and benchmarks read. The MusAV songs, their metadata and
the simulated listening test live in :mod:`moodscape.datasets.demo_musav`.

Layout written under ``out_dir``::

    mtg-jamendo/autotagging_moodtheme.tsv           TRACK_ID ARTIST_ID ALBUM_ID PATH DURATION TAGS...
    mtg-jamendo/moodtheme_split.txt                 the 56 tags, "mood/theme---<tag>" per line
    mtg-jamendo/splits/split-0/autotagging_moodtheme-{train,validation,test}.tsv
    mtg-jamendo/audio/<NN>/<number>.mp3             NN = the number's last two digits
    musav/audio.chunk_000-006.songids               Spotify-style ids, one per line
    musav/genres.chunk_000-006.jsonl                {"id": ..., "genres": [...]}
    musav/audio/<2 chars>/<songid>.mp3
    musav/metadata/<2 chars>/<songid>.yaml          Spotify track metadata with audio_features
    musav/annotations/annotations.{arousal,valence}.all[.agreement[.gt[.fa|.ct|.ct.fa|.songids]]]
    truth.json                                      per track: archetype, valence, arousal, dataset, mode
                                                    ("major") and the audible parameters
"""

import json
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from moodscape.datasets.demo_musav import (
    AV_TYPES,
    MusavSong,
    draw_musav_songs,
    pair_agreement,
    triplet_consistency,
    write_musav,
)
from moodscape.datasets.demo_synth import ARCHETYPES, TrackParams, draw_track_params, render_track, valence_arousal
from moodscape.datasets.jamendo import SPLIT_TSV, TAG_PREFIX, TRACKS_TSV, VOCABULARY_TXT, tracks_tsv_bytes, vocabulary_text
from moodscape.errors import AudioError, ConfigError

__all__ = [
    "AV_TYPES", "MOODTHEME_TAGS", "TAG_PREFIX", "DemoCorpus", "generate_demo_corpus", "pair_agreement",
    "triplet_consistency",
]

MOODTHEME_TAGS = (
    "action", "adventure", "advertising", "background", "ballad", "calm", "children", "christmas",
    "commercial", "cool", "corporate", "dark", "deep", "documentary", "drama", "dramatic", "dream",
    "emotional", "energetic", "epic", "fast", "film", "fun", "funny", "game", "groovy", "happy",
    "heavy", "holiday", "hopeful", "inspiring", "love", "meditative", "melancholic", "melodic",
    "motivational", "movie", "nature", "party", "positive", "powerful", "relaxing", "retro",
    "romantic", "sad", "sexy", "slow", "soft", "soundscape", "space", "sport", "summer", "trailer",
    "travel", "upbeat", "uplifting",
)
"""The 56 mood/theme tags of the official MTG-Jamendo splits, without the prefix."""

_SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}
# uploader tags: signature tags of the track's archetype, rarely those of others,
# frequent tags on every kind of music, and now and then any tag at all
_SIGNATURE_PROBABILITY = 0.5
_FOREIGN_SIGNATURE_PROBABILITY = 0.03
_FREQUENT_TAGS = {"film": 0.3, "background": 0.25, "melodic": 0.25, "happy": 0.2}
_RANDOM_TAG_PROBABILITY = 0.15


@dataclass(frozen=True)
class DemoCorpus:
    """Where a generated demo corpus lives.

    ``jamendo_root`` holds the MTG-Jamendo TSV, tag list and ``splits/``; ``musav_root``
    holds the song ids, genres and ``annotations/``.
    """

    root: Path
    jamendo_root: Path
    jamendo_audio_root: Path
    musav_root: Path
    musav_audio_root: Path
    musav_metadata_root: Path
    truth_path: Path
    n_archetypes: int


@dataclass(frozen=True)
class _JamendoTrack:
    number: int
    artist: int
    album: int
    tags: tuple[str, ...]
    params: TrackParams

    @property
    def track_id(self) -> str:
        return f"track_{self.number:07d}"

    @property
    def path(self) -> str:
        return f"{self.number % 100:02d}/{self.number}.mp3"


def generate_demo_corpus(
    out_dir: str | Path,
    *,
    n_tracks: int = 300,
    n_musav: int = 200,
    seconds: float = 30.0,
    seed: int = 0,
    sample_rate: int = 22050,
    channels: int = 1,
    n_archetypes: int = 6,
    progress: Callable[[int, int], None] | None = None,
) -> DemoCorpus:
    """Write a demo corpus in the real MTG-Jamendo and MusAV formats.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write into (created if needed; existing files are overwritten).
    n_tracks : int
        MTG-Jamendo-style tracks, at least 3 per archetype.
    n_musav : int
        MusAV-style songs, at least 3; every full group of three forms an annotated triplet.
    seconds : float
        Length of every audio file.
    seed : int
        Seed of everything: the same seed writes byte-identical tables and annotations.
    sample_rate : int
        Sample rate of the MP3 files (an MPEG rate, e.g. 22050 or 44100).
    channels : int
        1 or 2.
    n_archetypes : int
        Number of planted acoustic archetypes, 5 to 8.
    progress : callable, optional
        Called as ``progress(n_done, n_total)`` as audio files are written.

    Returns
    -------
    DemoCorpus
        The paths of the written corpus.
    """
    _check_settings(n_tracks, n_musav, seconds, sample_rate, channels, n_archetypes)
    root = Path(out_dir)
    corpus = DemoCorpus(
        root=root, jamendo_root=root / "mtg-jamendo", jamendo_audio_root=root / "mtg-jamendo" / "audio",
        musav_root=root / "musav", musav_audio_root=root / "musav" / "audio",
        musav_metadata_root=root / "musav" / "metadata", truth_path=root / "truth.json",
        n_archetypes=n_archetypes,
    )
    # independent streams: the size of one part never changes the other (its tracks or splits)
    jamendo_rng, musav_rng = np.random.default_rng(seed).spawn(2)
    tracks = _draw_jamendo_tracks(n_tracks, n_archetypes, jamendo_rng)
    songs = draw_musav_songs(_balanced_archetypes(n_musav, n_archetypes), musav_rng)
    jobs = ([(t.params, corpus.jamendo_audio_root / t.path) for t in tracks]
            + [(s.params, corpus.musav_audio_root / f"{s.path}.mp3") for s in songs])
    durations = _render_all(jobs, seconds, sample_rate, channels, progress)
    _write_jamendo(corpus.jamendo_root, tracks, durations[:n_tracks], n_archetypes, jamendo_rng)
    write_musav(corpus.musav_root, corpus.musav_metadata_root, songs, seconds, musav_rng)
    write_truth(corpus.truth_path, tracks, songs, n_archetypes)
    return corpus


def _check_settings(n_tracks, n_musav, seconds, sample_rate, channels, n_archetypes) -> None:
    if not 5 <= n_archetypes <= len(ARCHETYPES):
        raise ConfigError(f"n_archetypes must be 5 to {len(ARCHETYPES)}, got {n_archetypes}")
    if n_tracks < 3 * n_archetypes:
        raise ConfigError(f"n_tracks must be at least 3 per archetype ({3 * n_archetypes}), got {n_tracks}")
    if n_musav < 3:
        raise ConfigError(f"n_musav must be at least 3 (one triplet), got {n_musav}")
    if seconds < 2:
        raise ConfigError(f"seconds must be at least 2, got {seconds}")
    if sample_rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000):
        raise ConfigError(f"sample_rate must be an MPEG sample rate such as 22050 or 44100, got {sample_rate}")
    if channels not in (1, 2):
        raise ConfigError(f"channels must be 1 or 2, got {channels}")


def _balanced_archetypes(n: int, n_archetypes: int) -> np.ndarray:
    return np.sort(np.arange(n) % n_archetypes)


def _group_sizes(total: int, mean_size: float, min_groups: int, rng: np.random.Generator) -> list[int]:
    """Split ``total`` items into groups of random sizes (at least one item each)."""
    n_groups = max(min(min_groups, total), round(total / mean_size), 1)
    return list(1 + rng.multinomial(total - n_groups, np.full(n_groups, 1 / n_groups)))


def _draw_jamendo_tracks(n_tracks: int, n_archetypes: int, rng: np.random.Generator) -> list[_JamendoTrack]:
    """Artists of one archetype each, with albums of consecutively numbered tracks."""
    artist_sizes = [(archetype, size)
                    for archetype, count in Counter(_balanced_archetypes(n_tracks, n_archetypes)).items()
                    for size in _group_sizes(count, 4, 3, rng)]
    artist_ids = rng.choice(999_999, len(artist_sizes), replace=False) + 1
    album_starts = iter(rng.choice(14_000, n_tracks, replace=False) * 100 + rng.integers(1, 50, n_tracks))
    album_ids = iter(rng.choice(999_999, n_tracks, replace=False) + 1)
    tracks = []
    for (archetype, size), artist in zip(artist_sizes, artist_ids):
        for album_size in _group_sizes(size, 2.5, 1, rng):
            album, start = int(next(album_ids)), int(next(album_starts))
            for number in range(start, start + album_size):
                tags = _draw_tags(int(archetype), n_archetypes, rng)
                tracks.append(_JamendoTrack(number, int(artist), album, tags, draw_track_params(int(archetype), rng)))
    return sorted(tracks, key=lambda track: track.number)


def _draw_tags(archetype: int, n_archetypes: int, rng: np.random.Generator) -> tuple[str, ...]:
    """Uploader-style tags: loosely tied to the archetype, at least one."""
    tags = set()
    for other in range(n_archetypes):
        chance = _SIGNATURE_PROBABILITY if other == archetype else _FOREIGN_SIGNATURE_PROBABILITY
        tags.update(tag for tag in ARCHETYPES[other].signature_tags if rng.random() < chance)
    tags.update(tag for tag, chance in _FREQUENT_TAGS.items() if rng.random() < chance)
    if rng.random() < _RANDOM_TAG_PROBABILITY or not tags:
        signatures = {tag for a in ARCHETYPES[:n_archetypes] for tag in a.signature_tags}
        others = [tag for tag in MOODTHEME_TAGS if tag not in signatures and tag not in _FREQUENT_TAGS]
        tags.add(others[rng.integers(len(others))])
    return tuple(sorted(tags))


def _render_to_mp3(params: TrackParams, path: Path, seconds: float, sample_rate: int, channels: int) -> float:
    """Render one track, write it as MP3 and return the duration of the written file."""
    audio = render_track(params, seconds, sample_rate, channels)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        sf.write(path, audio, sample_rate, format="MP3")
        return sf.info(path).duration
    except (sf.LibsndfileError, RuntimeError) as error:
        raise AudioError(f"{path}: cannot write MP3: {error}") from None


def _render_all(jobs, seconds, sample_rate, channels, progress) -> list[float]:
    """Render and encode ``(params, path)`` jobs on every CPU; return the durations in job order.

    MP3 encoding (LAME through libsndfile) takes about four fifths of the time; one task per
    file costs well under a millisecond of inter-process traffic (small parameters in, a
    float out), so tasks are not batched and the progress bar moves file by file.
    """
    durations = [0.0] * len(jobs)
    if progress:
        progress(0, len(jobs))
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        futures = {pool.submit(_render_to_mp3, params, path, seconds, sample_rate, channels): i
                   for i, (params, path) in enumerate(jobs)}
        for n_done, future in enumerate(as_completed(futures), start=1):
            durations[futures[future]] = future.result()
            if progress:
                progress(n_done, len(jobs))
    return durations


def _split_by_artist(tracks: list[_JamendoTrack], n_archetypes: int, rng: np.random.Generator) -> dict[str, list]:
    """Artist-disjoint ~60/20/20 split in which every split holds every archetype."""
    splits = {name: [] for name in _SPLITS}
    for archetype in range(n_archetypes):
        by_artist = {}
        for track in tracks:
            if track.params.archetype == archetype:
                by_artist.setdefault(track.artist, []).append(track)
        artists = [by_artist[a] for a in rng.permutation(sorted(by_artist))]
        total = sum(map(len, artists))
        counts = dict.fromkeys(_SPLITS, 0)
        for i, artist_tracks in enumerate(artists):
            name = (list(_SPLITS)[i] if i < len(_SPLITS)
                    else max(_SPLITS, key=lambda s: _SPLITS[s] * total - counts[s]))
            counts[name] += len(artist_tracks)
            splits[name].extend(artist_tracks)
    return {name: sorted(members, key=lambda t: t.number) for name, members in splits.items()}


def _write_tsv(path: Path, tracks: list[_JamendoTrack], durations: dict[str, float]) -> None:
    """One row per track, one TAGS column per tag, CRLF line ends as in the real files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tracks_tsv_bytes((t.track_id, f"artist_{t.artist:06d}", f"album_{t.album:06d}", t.path,
                                       durations[t.track_id], t.tags) for t in tracks))


def _write_jamendo(root: Path, tracks, durations, n_archetypes, rng) -> None:
    duration_of = {t.track_id: d for t, d in zip(tracks, durations)}
    _write_tsv(root / TRACKS_TSV, tracks, duration_of)
    (root / VOCABULARY_TXT).write_text(vocabulary_text(MOODTHEME_TAGS))
    for name, members in _split_by_artist(tracks, n_archetypes, rng).items():
        _write_tsv(root / SPLIT_TSV.format(split=0, name=name), members, duration_of)


def write_truth(path: Path, tracks: list[_JamendoTrack], songs: list[MusavSong], n_archetypes: int) -> None:
    """The planted truth: archetype, valence and arousal of every track, and the archetypes."""
    entries = {}
    for key, params, dataset in ([(t.track_id, t.params, "jamendo") for t in tracks]
                                 + [(s.songid, s.params, "musav") for s in songs]):
        valence, arousal = valence_arousal(params)
        entries[key] = {"archetype": params.archetype, "valence": valence, "arousal": arousal, "dataset": dataset,
                        "major": params.major, "tempo_bpm": params.tempo_bpm,
                        "note_density": round(params.note_density, 4), "attack": round(params.attack, 4),
                        "roughness": round(params.roughness, 4), "dissonance": round(params.dissonance, 4),
                        "register": round(params.register, 2), "legato": round(params.legato, 4),
                        "nuisance": {"level_db": params.level_db, "key": params.key, "waveform": params.waveform,
                                     "formant_hz": round(params.formant_hz, 1), "cutoff_hz": round(params.cutoff_hz, 1)}}
    archetypes = [{**vars(a), "signature_tags": list(a.signature_tags)} for a in ARCHETYPES[:n_archetypes]]
    path.write_text(json.dumps({"tracks": entries, "archetypes": archetypes}, indent=1) + "\n")
