"""The MusAV side of the demo corpus: songs, Spotify-style metadata and a simulated listening test.

A MusAV song carries Spotify-style metadata whose ``valence`` and ``energy`` are its true
valence and arousal plus estimation noise. Songs are grouped into triplets (some of one
genre, the rest random); three annotators of a small pool judge every pair of a triplet
on arousal and on valence, hearing the true difference plus their own noise. From the
raw judgments follow, with the rules of the real dataset, each pair's agreement and
ground truth and each triplet's consistency, written as the real annotation files::

    audio.chunk_000-006.songids               Spotify-style ids, one per line
    genres.chunk_000-006.jsonl                {"id": ..., "genres": [...]}
    metadata/<2 chars>/<songid>.yaml          Spotify track metadata with audio_features
    annotations/annotations.{arousal,valence}.all[.agreement[.gt[.fa|.ct|.ct.fa|.songids]]]
"""

import itertools
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from moodscape.datasets.demo_synth import (
    ARCHETYPES,
    CUTOFF_HZ_RANGE,
    LEVEL_DB_RANGE,
    TrackParams,
    draw_track_params,
    valence_arousal,
)

AV_TYPES = ("arousal", "valence")

_GENRES = (
    ("dance pop", "electropop", "europop"), ("doom metal", "sludge metal", "stoner rock"),
    ("sad indie", "singer-songwriter", "chamber pop"), ("neoclassical", "harp", "new age piano"),
    ("dark techno", "trip hop", "darkwave"), ("hard rock", "punk", "garage rock"),
    ("ambient", "drone", "new age"), ("chiptune", "synthwave", "video game music"),
)
_WORDS = ("neon", "harbor", "velvet", "echo", "paper", "river", "ember", "glass", "midnight", "orbit",
          "silver", "garden", "static", "lantern", "wild", "hollow", "golden", "signal", "drift", "cedar")
_BASE62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# the simulated listening test: an annotator hears the true difference plus Gaussian noise
# of their own standard deviation, and calls differences within the margin equal ("ab");
# wide enough that annotators disagree on close pairs, as MusAV's do
_N_ANNOTATORS = 6
_ANNOTATOR_NOISE = (0.03, 0.08)
_TIE_MARGIN = 0.03
_NOT_SELECTED_PROBABILITY = 0.005
_GENRE_TRIPLET_PROBABILITY = 0.5  # that a genre with three songs or more gets a genre triplet


@dataclass(frozen=True)
class MusavSong:
    """One MusAV-style song: its Spotify id, genres, title, artist and musical parameters."""

    songid: str
    genres: tuple[str, ...]
    name: str
    artist: str
    params: TrackParams

    @property
    def path(self) -> str:
        return f"{self.songid[:2]}/{self.songid}"


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


def draw_musav_songs(archetypes: np.ndarray, rng: np.random.Generator) -> list[MusavSong]:
    """One song per entry of ``archetypes`` (in a random order), with genres of its archetype."""
    songs = []
    for archetype in rng.permutation(archetypes):
        genres = _GENRES[archetype]
        chosen = rng.choice(len(genres), 1 + (rng.random() < 0.1), replace=False)
        songs.append(MusavSong(_spotify_id(rng), tuple(genres[i] for i in chosen), _title(rng, 2),
                               _title(rng, 1 + rng.integers(2)), draw_track_params(int(archetype), rng)))
    return songs


def _spotify_metadata(song: MusavSong, seconds: float, rng: np.random.Generator) -> dict:
    """Spotify-style track metadata: a noisy and biased view of the truth, as the real API's is.

    ``energy`` leans on the mastering level and the tone (as Spotify's energy follows
    loudness and brightness) besides the true arousal; ``valence`` on danceability (attack
    and drums) besides the true valence; both with estimation noise. They agree with the
    simulated listeners about as well as the real API agrees with MusAV's annotators.
    """
    params = song.params
    valence, arousal = valence_arousal(params)
    level = (params.level_db - LEVEL_DB_RANGE[0]) / (LEVEL_DB_RANGE[1] - LEVEL_DB_RANGE[0])
    tone = np.log(params.cutoff_hz / CUTOFF_HZ_RANGE[0]) / np.log(CUTOFF_HZ_RANGE[1] / CUTOFF_HZ_RANGE[0])
    drummed = ARCHETYPES[params.archetype].drums != "none"
    danceability = 0.25 + 0.5 * params.attack * drummed + 0.2 * (params.tempo_bpm > 100)

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
            "danceability": noisy(danceability, 0.05),
            "energy": noisy(0.55 * arousal + 0.3 * level + 0.15 * tone, 0.07),
            "key": params.key,
            "loudness": round(params.level_db + 5 + rng.normal(0, 0.5), 3),
            "mode": int(params.major),
            "speechiness": noisy(0.04, 0.01),
            "acousticness": noisy(1 - params.roughness, 0.1),
            "instrumentalness": noisy(0.88, 0.05),
            "liveness": noisy(0.12, 0.05),
            "valence": noisy(0.6 * valence + 0.4 * danceability, 0.1),
            "tempo": round(params.tempo_bpm + rng.normal(0, 0.5), 3),
            "type": "audio_features",
            "id": song.songid,
            "duration_ms": duration_ms,
            "time_signature": 4,
        },
    }


def write_musav(root: Path, metadata_root: Path, songs: list[MusavSong], seconds: float,
                rng: np.random.Generator) -> None:
    """Write the song ids, genres, per-song Spotify metadata and the simulated annotations.

    The audio previews are rendered elsewhere (:mod:`moodscape.datasets.demo`).
    """
    (root / "audio.chunk_000-006.songids").write_text("".join(f"{s.songid}\n" for s in songs))
    (root / "genres.chunk_000-006.jsonl").write_text(
        "".join(json.dumps({"id": s.songid, "genres": list(s.genres)}) + "\n" for s in songs))
    for song in songs:
        path = metadata_root / f"{song.path}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(_spotify_metadata(song, seconds, rng), sort_keys=False, allow_unicode=True))
    triplets = _draw_triplets(songs, rng)
    judgments = _simulate_judgments(songs, triplets, rng)
    triplet_types = {tripletid: kind for tripletid, kind, _ in triplets}
    for av_type in AV_TYPES:
        _write_annotations(root / "annotations", av_type, judgments[av_type], triplet_types)


def _draw_triplets(songs: list[MusavSong], rng: np.random.Generator) -> list[tuple[str, str, list[str]]]:
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


def _simulate_judgments(songs: list[MusavSong], triplets, rng: np.random.Generator) -> dict[str, list[dict]]:
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


