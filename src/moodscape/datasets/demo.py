"""Generate the demo corpus: synthesised music in the real MTG-Jamendo and MusAV formats.

The corpus exercises the real loaders and plants a structure the pipeline must recover:
tracks belong to acoustic archetypes (:mod:`moodscape.datasets.demo_synth`), their
mood/theme tags are only loosely related to the archetype (as uploader tags are), and their
true valence and arousal follow from the rendered music. The planted truth goes to
``truth.json``, which only tests and benchmarks read.

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
    truth.json
"""

import itertools
import json
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import yaml

from moodscape.datasets.demo_synth import ARCHETYPES, TrackParams, draw_track_params, render_track, valence_arousal
from moodscape.errors import AudioError, ConfigError

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

TAG_PREFIX = "mood/theme---"
AV_TYPES = ("arousal", "valence")

_JAMENDO_HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
_SPLITS = {"train": 0.6, "validation": 0.2, "test": 0.2}
# uploader tags: signature tags of the track's archetype, rarely those of others,
# frequent tags on every kind of music, and now and then any tag at all
_SIGNATURE_PROBABILITY = 0.5
_FOREIGN_SIGNATURE_PROBABILITY = 0.03
_FREQUENT_TAGS = {"film": 0.3, "background": 0.25, "melodic": 0.25, "happy": 0.2}
_RANDOM_TAG_PROBABILITY = 0.15
_GENRES = (
    ("dance pop", "electropop", "europop"), ("metalcore", "hard rock", "nu metal"),
    ("sad indie", "singer-songwriter", "chamber pop"), ("chillhop", "lounge", "bossa nova"),
    ("dark techno", "trip hop", "darkwave"), ("orchestral soundtrack", "epicore", "trailer music"),
    ("ambient", "drone", "new age"), ("chiptune", "synthwave", "video game music"),
)
_WORDS = ("neon", "harbor", "velvet", "echo", "paper", "river", "ember", "glass", "midnight", "orbit",
          "silver", "garden", "static", "lantern", "wild", "hollow", "golden", "signal", "drift", "cedar")
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# simulated MusAV listening test
_N_ANNOTATORS = 6
_ANNOTATOR_NOISE = (0.04, 0.12)
_TIE_MARGIN = 0.04
_NOT_SELECTED_PROBABILITY = 0.005
_GENRE_TRIPLET_PROBABILITY = 0.5  # that a genre with three songs or more gets a genre triplet


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


@dataclass(frozen=True)
class _MusavSong:
    songid: str
    genres: tuple[str, ...]
    name: str
    artist: str
    params: TrackParams

    @property
    def path(self) -> str:
        return f"{self.songid[:2]}/{self.songid}"


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
    rng = np.random.default_rng(seed)
    tracks = _draw_jamendo_tracks(n_tracks, n_archetypes, rng)
    songs = _draw_musav_songs(n_musav, n_archetypes, rng)
    jobs = ([(t.params, corpus.jamendo_audio_root / t.path) for t in tracks]
            + [(s.params, corpus.musav_audio_root / f"{s.path}.mp3") for s in songs])
    durations = _render_all(jobs, seconds, sample_rate, channels, progress)
    _write_jamendo(corpus.jamendo_root, tracks, durations[:n_tracks], n_archetypes, rng)
    _write_musav(corpus, songs, seconds, rng)
    _write_truth(corpus.truth_path, tracks, songs, n_archetypes)
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


def _spotify_id(rng: np.random.Generator) -> str:
    """A 22-character base-62 id, like Spotify's (a random 128-bit number)."""
    value = int.from_bytes(rng.bytes(16), "big")
    digits = []
    for _ in range(22):
        value, digit = divmod(value, 62)
        digits.append(_BASE62[digit])
    return "".join(reversed(digits))


def _title(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(_WORDS[i].capitalize() for i in rng.choice(len(_WORDS), n_words, replace=False))


def _draw_musav_songs(n_musav: int, n_archetypes: int, rng: np.random.Generator) -> list[_MusavSong]:
    songs = []
    for archetype in rng.permutation(_balanced_archetypes(n_musav, n_archetypes)):
        genres = _GENRES[archetype]
        chosen = rng.choice(len(genres), 1 + (rng.random() < 0.1), replace=False)
        songs.append(_MusavSong(_spotify_id(rng), tuple(genres[i] for i in chosen), _title(rng, 2),
                                _title(rng, 1 + rng.integers(2)), draw_track_params(int(archetype), rng)))
    return songs


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
    """Render and encode ``(params, path)`` jobs on every CPU; return the durations in job order."""
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
    rows = [_JAMENDO_HEADER] + [
        "\t".join([t.track_id, f"artist_{t.artist:06d}", f"album_{t.album:06d}", t.path,
                   f"{durations[t.track_id]:.1f}", *(TAG_PREFIX + tag for tag in t.tags)])
        for t in tracks
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(("\r\n".join(rows) + "\r\n").encode())


def _write_jamendo(root: Path, tracks, durations, n_archetypes, rng) -> None:
    duration_of = {t.track_id: d for t, d in zip(tracks, durations)}
    _write_tsv(root / "autotagging_moodtheme.tsv", tracks, duration_of)
    (root / "moodtheme_split.txt").write_text("".join(f"{TAG_PREFIX}{tag}\n" for tag in MOODTHEME_TAGS))
    for name, members in _split_by_artist(tracks, n_archetypes, rng).items():
        _write_tsv(root / "splits" / "split-0" / f"autotagging_moodtheme-{name}.tsv", members, duration_of)


def _spotify_metadata(song: _MusavSong, seconds: float, rng: np.random.Generator) -> dict:
    """Spotify-style track metadata; valence and energy are the truth plus estimation noise."""
    params = song.params
    valence, arousal = valence_arousal(params)

    def noisy(value: float, sd: float) -> float:
        return round(float(np.clip(value + rng.normal(0, sd), 0, 1)), 3)

    duration_ms = int(seconds * 1000)
    return {
        "id": song.songid,
        "name": song.name,
        "artists": [{"id": _spotify_id(rng), "name": song.artist}],
        "album": {"id": _spotify_id(rng), "name": song.name, "release_date": f"{rng.integers(1995, 2022)}"},
        "duration_ms": duration_ms,
        "popularity": int(rng.integers(5, 80)),
        "audio_features": {
            "danceability": noisy(0.3 + 0.5 * params.percussiveness, 0.05),
            "energy": noisy(arousal, 0.05),
            "key": params.key,
            "loudness": round(params.loudness_db + 5 + rng.normal(0, 0.5), 3),
            "mode": int(params.major),
            "speechiness": noisy(0.04, 0.01),
            "acousticness": noisy(1 - params.percussiveness, 0.1),
            "instrumentalness": noisy(0.88, 0.05),
            "liveness": noisy(0.12, 0.05),
            "valence": noisy(valence, 0.05),
            "tempo": round(params.tempo_bpm + rng.normal(0, 0.5), 3),
            "type": "audio_features",
            "id": song.songid,
            "duration_ms": duration_ms,
            "time_signature": 4,
        },
    }


def _write_musav(corpus: DemoCorpus, songs: list[_MusavSong], seconds: float, rng: np.random.Generator) -> None:
    root = corpus.musav_root
    (root / "audio.chunk_000-006.songids").write_text("".join(f"{s.songid}\n" for s in songs))
    (root / "genres.chunk_000-006.jsonl").write_text(
        "".join(json.dumps({"id": s.songid, "genres": list(s.genres)}) + "\n" for s in songs))
    for song in songs:
        path = corpus.musav_metadata_root / f"{song.path}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(_spotify_metadata(song, seconds, rng), sort_keys=False, allow_unicode=True))
    triplets = _draw_triplets(songs, rng)
    judgments = _simulate_judgments(songs, triplets, rng)
    triplet_types = {tripletid: kind for tripletid, kind, _ in triplets}
    for av_type in AV_TYPES:
        _write_annotations(root / "annotations", av_type, judgments[av_type], triplet_types)


def _draw_triplets(songs: list[_MusavSong], rng: np.random.Generator) -> list[tuple[str, str, list[str]]]:
    """``(tripletid, triplet_type, songids)``: some triplets share a genre, the rest are random."""
    remaining = [s.songid for s in songs]
    genre_of = {s.songid: s.genres[0] for s in songs}
    triplets = []
    for genre in sorted(set(genre_of.values())):
        members = [i for i in remaining if genre_of[i] == genre]
        if len(members) >= 3 and rng.random() < _GENRE_TRIPLET_PROBABILITY:
            chosen = list(rng.choice(members, 3, replace=False))
            triplets.append((f"genre_triplet--{genre}", chosen))
            remaining = [i for i in remaining if i not in chosen]
    remaining = list(rng.permutation(remaining))
    triplets += [("global_triplet", remaining[i:i + 3]) for i in range(0, len(remaining) - 2, 3)]
    return [(rng.bytes(16).hex(), kind, [str(i) for i in ids]) for kind, ids in triplets]


def _simulate_judgments(songs: list[_MusavSong], triplets, rng: np.random.Generator) -> dict[str, list[dict]]:
    """Raw judgments of a listening test: three annotators of a pool judge every pair of a triplet.

    An annotator hears the true difference plus their own Gaussian noise; a difference
    within a small margin is judged ``ab`` (equal), and a few pairs are left ``not_selected``.
    """
    truth = dict(zip(AV_TYPES, ({s.songid: valence_arousal(s.params)[1] for s in songs},
                                {s.songid: valence_arousal(s.params)[0] for s in songs})))
    noise = rng.uniform(*_ANNOTATOR_NOISE, _N_ANNOTATORS)
    sessions = {annotator: [] for annotator in range(_N_ANNOTATORS)}
    for tripletid, _, songids in triplets:
        for annotator in rng.choice(_N_ANNOTATORS, 3, replace=False):
            sessions[annotator] += [(tripletid, *pair) for pair in itertools.combinations(sorted(songids), 2)]
    judgments = {av_type: [] for av_type in AV_TYPES}
    for annotator in rng.permutation(_N_ANNOTATORS):
        session = sessions[annotator]
        for tripletid, song_a, song_b in (session[i] for i in rng.permutation(len(session))):
            for av_type in AV_TYPES:
                heard = truth[av_type][song_a] - truth[av_type][song_b] + rng.normal(0, noise[annotator])
                judgments[av_type].append({
                    "tripletid": tripletid, "songid_a": song_a, "songid_b": song_b,
                    "annotator": f"annotations-annotator{annotator:03d}", "type": av_type,
                    "higher_value": _judge(heard, rng),
                })
    return judgments


def _judge(heard_difference: float, rng: np.random.Generator) -> str:
    if rng.random() < _NOT_SELECTED_PROBABILITY:
        return "not_selected"
    if abs(heard_difference) < _TIE_MARGIN:
        return "ab"
    return "a" if heard_difference > 0 else "b"


def pair_agreement(votes: list[str]) -> tuple[str, str]:
    """The agreement and ground-truth value of a pair from its three annotators' votes.

    The rule of the real MusAV files: all three equal is ``full-agreement``; two equal and
    the third "equal" (``ab``) where the two said ``a`` or ``b``, or the third ``a``/``b``
    where the two said ``ab``, is ``majority-agreement`` with the majority's value; two
    equal against an opposite or missing (``not_selected``) vote is ``disagreement`` with
    the majority's value; no majority is ``disagreement`` with value ``undefined``.

    Parameters
    ----------
    votes : list of str
        Three of ``a``, ``b``, ``ab``, ``not_selected``.

    Returns
    -------
    agreement, higher_value : str
    """
    value, count = Counter(votes).most_common(1)[0]
    if count == len(votes):
        return "full-agreement", value
    if count == 1 or value == "not_selected":
        return "disagreement", "undefined"
    minority = next(vote for vote in votes if vote != value)
    if "ab" in (value, minority) and minority != "not_selected":
        return "majority-agreement", value
    return "disagreement", value


def triplet_consistency(pairs: list[tuple[str, str, str]]) -> str:
    """Whether a triplet's ground-truth pairs can all hold at once.

    The rule of the real MusAV files: a triplet with fewer than three ground-truth pairs
    (a pair ended in disagreement) is ``incomplete``; otherwise it is ``consistent`` when
    some ranking of its three songs, ties allowed, reproduces every pair (``ab`` = tie),
    and ``inconsistent`` when none does (a cycle, or a tie contradicted by the third pair).

    Parameters
    ----------
    pairs : list of (songid_a, songid_b, higher_value)
        The triplet's pairs with full or majority agreement; values ``a``, ``b`` or ``ab``.

    Returns
    -------
    str
        ``consistent``, ``inconsistent`` or ``incomplete``.
    """
    if len(pairs) < 3:
        return "incomplete"
    songs = sorted({song for a, b, _ in pairs for song in (a, b)})
    expected = {1: "a", -1: "b", 0: "ab"}
    for ranks in itertools.product(range(3), repeat=len(songs)):
        rank = dict(zip(songs, ranks))
        if all(expected[int(np.sign(rank[a] - rank[b]))] == value for a, b, value in pairs):
            return "consistent"
    return "inconsistent"


def _json_lines(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def _write_annotations(folder: Path, av_type: str, judgments: list[dict], triplet_types: dict[str, str]) -> None:
    """The raw judgments and every ground-truth file derived from them, as in the real set."""
    votes = {}
    for j in judgments:
        votes.setdefault((j["tripletid"], j["songid_a"], j["songid_b"]), []).append(j["higher_value"])
    agreement = []
    for (tripletid, song_a, song_b), pair_votes in votes.items():
        level, value = pair_agreement(pair_votes)
        agreement.append({"tripletid": tripletid, "triplet_type": triplet_types[tripletid],
                          "pairid": f"{song_a}-{song_b}", "agreement": level, "higher_value": value})
    ground_truth = [dict(r) for r in agreement if r["agreement"] != "disagreement"]
    by_triplet = {}
    for record in ground_truth:
        by_triplet.setdefault(record["tripletid"], []).append(record)
    for records in by_triplet.values():
        consistency = triplet_consistency([(*r["pairid"].split("-"), r["higher_value"]) for r in records])
        for record in records:
            record["triplet_consistency"] = consistency
    ground_truth = [r for records in by_triplet.values() for r in records]
    base = folder / f"annotations.{av_type}.all"
    folder.mkdir(parents=True, exist_ok=True)
    base.write_text(_json_lines(judgments))
    Path(f"{base}.agreement").write_text(_json_lines(agreement))
    subsets = {
        "gt": lambda r: True,
        "gt.fa": lambda r: r["agreement"] == "full-agreement",
        "gt.ct": lambda r: r["triplet_consistency"] == "consistent",
        "gt.ct.fa": lambda r: r["agreement"] == "full-agreement" and r["triplet_consistency"] == "consistent",
    }
    for suffix, keep in subsets.items():
        Path(f"{base}.agreement.{suffix}").write_text(_json_lines([r for r in ground_truth if keep(r)]))
    songids = sorted({s for r in ground_truth for s in r["pairid"].split("-")}, key=str.lower)
    Path(f"{base}.agreement.gt.songids").write_text("".join(f"{s}\n" for s in songids))


def _write_truth(path: Path, tracks: list[_JamendoTrack], songs: list[_MusavSong], n_archetypes: int) -> None:
    """The planted truth: archetype, valence and arousal of every track, and the archetypes."""
    entries = {}
    for key, params, dataset in ([(t.track_id, t.params, "jamendo") for t in tracks]
                                 + [(s.songid, s.params, "musav") for s in songs]):
        valence, arousal = valence_arousal(params)
        entries[key] = {"archetype": params.archetype, "valence": valence, "arousal": arousal, "dataset": dataset}
    archetypes = [{**vars(a), "signature_tags": list(a.signature_tags)} for a in ARCHETYPES[:n_archetypes]]
    path.write_text(json.dumps({"tracks": entries, "archetypes": archetypes}, indent=1) + "\n")
