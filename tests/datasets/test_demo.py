"""The demo corpus: real formats, determinism, and the planted structure."""

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import yaml

from moodscape.datasets.demo import (
    MOODTHEME_TAGS,
    TAG_PREFIX,
    generate_demo_corpus,
    pair_agreement,
    triplet_consistency,
)
from moodscape.datasets.demo_synth import ARCHETYPES, draw_track_params, render_track, valence_arousal
from moodscape.errors import ConfigError
from moodscape.features import features_from_signal

TINY = {"n_tracks": 24, "n_musav": 12, "seconds": 4.0, "seed": 3}
REAL_MUSAV = Path(__file__).resolve().parents[3] / "shared" / "data" / "musav" / "annotations"
SPLIT_NAMES = ("train", "validation", "test")
ANNOTATION_SUFFIXES = ("", ".agreement", ".agreement.gt", ".agreement.gt.fa", ".agreement.gt.ct",
                       ".agreement.gt.ct.fa", ".agreement.gt.songids")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return generate_demo_corpus(tmp_path_factory.mktemp("demo"), **TINY)


@pytest.fixture(scope="module")
def truth(corpus):
    return json.loads(corpus.truth_path.read_text())


def read_rows(path: Path) -> list[list[str]]:
    lines = path.read_bytes().decode().split("\r\n")
    assert lines[-1] == "", "rows end with CRLF, as in the real files"
    return [line.split("\t") for line in lines[:-1]]


def read_json_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def table_and_annotation_bytes(root: Path) -> dict[str, bytes]:
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix != ".mp3"]
    return {str(p.relative_to(root)): p.read_bytes() for p in files}


def test_same_seed_writes_identical_tables_annotations_and_truth(corpus, tmp_path):
    again = generate_demo_corpus(tmp_path / "again", **TINY)
    assert table_and_annotation_bytes(again.root) == table_and_annotation_bytes(corpus.root)


def test_another_seed_writes_another_corpus(corpus, tmp_path):
    other = generate_demo_corpus(tmp_path / "other", **{**TINY, "seed": 4})
    assert other.truth_path.read_bytes() != corpus.truth_path.read_bytes()


def test_the_musav_size_leaves_the_collection_and_its_splits_unchanged(corpus, tmp_path):
    """The MusAV songs were drawn from the collection's stream: 240 or 600 previews gave other splits."""
    other = generate_demo_corpus(tmp_path / "more", **{**TINY, "n_musav": 30})
    jamendo = {name: data for name, data in table_and_annotation_bytes(corpus.root).items() if name.startswith("mtg-jamendo")}
    assert jamendo == {name: data for name, data in table_and_annotation_bytes(other.root).items() if name.startswith("mtg-jamendo")}
    again, first = (json.loads(c.truth_path.read_text())["tracks"] for c in (other, corpus))
    assert {k: v for k, v in again.items() if v["dataset"] == "jamendo"} == {k: v for k, v in first.items() if v["dataset"] == "jamendo"}


def test_jamendo_rows_have_the_real_layout(corpus):
    header, *rows = read_rows(corpus.jamendo_root / "autotagging_moodtheme.tsv")
    assert header == ["TRACK_ID", "ARTIST_ID", "ALBUM_ID", "PATH", "DURATION", "TAGS"]
    assert len(rows) == TINY["n_tracks"]
    assert {len(row) for row in rows} != {6}, "one TAGS column per tag, so row lengths vary"
    for track_id, artist_id, album_id, path, duration, *tags in rows:
        number = int(track_id.removeprefix("track_"))
        assert track_id == f"track_{number:07d}" and artist_id.startswith("artist_") and album_id.startswith("album_")
        assert path == f"{number % 100:02d}/{number}.mp3"
        assert float(duration) == pytest.approx(TINY["seconds"], abs=0.05)
        assert tags and all(tag.startswith(TAG_PREFIX) and tag[len(TAG_PREFIX):] in MOODTHEME_TAGS for tag in tags)
        assert (corpus.jamendo_audio_root / path).is_file()
    assert [row[0] for row in rows] == sorted(row[0] for row in rows)


def test_tag_list_is_the_56_real_tags(corpus):
    lines = (corpus.jamendo_root / "moodtheme_split.txt").read_text().splitlines()
    assert lines == [TAG_PREFIX + tag for tag in MOODTHEME_TAGS] and len(lines) == 56


def test_splits_partition_the_tracks_by_artist_and_hold_every_archetype(corpus, truth):
    all_rows = {row[0]: row for row in read_rows(corpus.jamendo_root / "autotagging_moodtheme.tsv")[1:]}
    split_of, artists = {}, defaultdict(set)
    for name in SPLIT_NAMES:
        for row in read_rows(corpus.jamendo_root / "splits" / "split-0" / f"autotagging_moodtheme-{name}.tsv")[1:]:
            assert row == all_rows[row[0]]
            split_of[row[0]] = name
            artists[row[1]].add(name)
    assert set(split_of) == set(all_rows)
    assert all(len(splits) == 1 for splits in artists.values())
    for name in SPLIT_NAMES:
        held = {truth["tracks"][t]["archetype"] for t, s in split_of.items() if s == name}
        assert held == set(range(corpus.n_archetypes))


def test_audio_is_mp3_at_the_requested_rate_and_channels(corpus, tmp_path):
    path = next(corpus.jamendo_audio_root.rglob("*.mp3"))
    info = sf.info(path)
    assert (info.format, info.samplerate, info.channels) == ("MP3", 22050, 1)
    assert info.duration == pytest.approx(TINY["seconds"], abs=0.05)
    stereo = generate_demo_corpus(tmp_path / "stereo", **{**TINY, "sample_rate": 16000, "channels": 2})
    audio, rate = sf.read(next(stereo.musav_audio_root.rglob("*.mp3")))
    assert rate == 16000 and audio.shape[1] == 2 and np.abs(audio).max() > 0.01


def test_musav_songs_have_audio_metadata_and_genres(corpus, truth):
    songids = (corpus.musav_root / "audio.chunk_000-006.songids").read_text().split()
    assert len(songids) == len(set(songids)) == TINY["n_musav"]
    genres = read_json_lines(corpus.musav_root / "genres.chunk_000-006.jsonl")
    assert [g["id"] for g in genres] == songids and all(g["genres"] for g in genres)
    for songid in songids:
        assert len(songid) == 22 and songid.isalnum()
        assert (corpus.musav_audio_root / songid[:2] / f"{songid}.mp3").is_file()
        metadata = yaml.safe_load((corpus.musav_metadata_root / songid[:2] / f"{songid}.yaml").read_text())
        assert metadata["id"] == songid and metadata["name"] and metadata["artists"]
        features = metadata["audio_features"]
        assert 0 <= features["valence"] <= 1 and 0 <= features["energy"] <= 1 and features["tempo"] > 0


@pytest.mark.parametrize("av_type", ["arousal", "valence"])
def test_annotation_files_have_the_real_keys_and_vocabulary(corpus, av_type):
    base = corpus.musav_root / "annotations" / f"annotations.{av_type}.all"
    assert all(Path(f"{base}{suffix}").is_file() for suffix in ANNOTATION_SUFFIXES)
    for record in read_json_lines(base):
        assert list(record) == ["tripletid", "songid_a", "songid_b", "annotator", "type", "higher_value"]
        assert record["type"] == av_type and record["songid_a"] < record["songid_b"]
        assert record["higher_value"] in {"a", "b", "ab", "not_selected"}
    for record in read_json_lines(Path(f"{base}.agreement")):
        assert list(record) == ["tripletid", "triplet_type", "pairid", "agreement", "higher_value"]
        assert record["agreement"] in {"full-agreement", "majority-agreement", "disagreement"}
        assert record["higher_value"] in {"a", "b", "ab", "undefined"}
        assert record["triplet_type"] == "global_triplet" or record["triplet_type"].startswith("genre_triplet--")
    ground_truth = read_json_lines(Path(f"{base}.agreement.gt"))
    assert ground_truth and all(r["agreement"] != "disagreement" for r in ground_truth)
    assert {r["triplet_consistency"] for r in ground_truth} <= {"consistent", "inconsistent", "incomplete"}
    full = [r for r in ground_truth if r["agreement"] == "full-agreement"]
    assert read_json_lines(Path(f"{base}.agreement.gt.fa")) == full
    assert read_json_lines(Path(f"{base}.agreement.gt.ct.fa")) == [
        r for r in full if r["triplet_consistency"] == "consistent"]
    songids = Path(f"{base}.agreement.gt.songids").read_text().split()
    assert songids == sorted({s for r in ground_truth for s in r["pairid"].split("-")}, key=str.lower)


def test_truth_covers_every_track_of_both_sets(corpus, truth):
    jamendo = {row[0] for row in read_rows(corpus.jamendo_root / "autotagging_moodtheme.tsv")[1:]}
    musav = set((corpus.musav_root / "audio.chunk_000-006.songids").read_text().split())
    assert set(truth["tracks"]) == jamendo | musav
    assert {t["dataset"] for k, t in truth["tracks"].items() if k in jamendo} == {"jamendo"}
    assert all(0 <= t["valence"] <= 1 and 0 <= t["arousal"] <= 1 for t in truth["tracks"].values())
    assert len(truth["archetypes"]) == corpus.n_archetypes


def test_signature_tags_are_disjoint_and_never_the_frequent_tags():
    signatures = [tag for archetype in ARCHETYPES for tag in archetype.signature_tags]
    assert len(signatures) == len(set(signatures)) and set(signatures) <= set(MOODTHEME_TAGS)
    assert not set(signatures) & {"film", "happy", "background", "melodic"}


def test_signature_tags_are_more_frequent_in_their_archetype(tmp_path):
    corpus = generate_demo_corpus(tmp_path, n_tracks=120, n_musav=3, seconds=2.0, seed=1)
    truth = json.loads(corpus.truth_path.read_text())["tracks"]
    rows = read_rows(corpus.jamendo_root / "autotagging_moodtheme.tsv")[1:]
    for index, archetype in enumerate(ARCHETYPES[:corpus.n_archetypes]):
        inside = [row for row in rows if truth[row[0]]["archetype"] == index]
        outside = [row for row in rows if truth[row[0]]["archetype"] != index]
        for tag in archetype.signature_tags:
            rate_in = np.mean([TAG_PREFIX + tag in row[5:] for row in inside])
            rate_out = np.mean([TAG_PREFIX + tag in row[5:] for row in outside])
            assert rate_in > 3 * rate_out, tag


def test_archetypes_span_the_valence_arousal_plane(truth):
    points = np.array([[t["valence"], t["arousal"]] for t in truth["tracks"].values()])
    assert np.ptp(points[:, 0]) > 0.6 and np.ptp(points[:, 1]) > 0.6


def test_judgments_follow_the_true_values(tmp_path):
    corpus = generate_demo_corpus(tmp_path, n_tracks=18, n_musav=60, seconds=2.0, seed=2, n_archetypes=6)
    truth = json.loads(corpus.truth_path.read_text())["tracks"]
    for av_type in ("arousal", "valence"):
        base = corpus.musav_root / "annotations" / f"annotations.{av_type}.all.agreement.gt"
        decided = [r for r in read_json_lines(base) if r["higher_value"] in ("a", "b")]
        right = [(truth[a][av_type] > truth[b][av_type]) == (r["higher_value"] == "a")
                 for r in decided for a, b in [r["pairid"].split("-")]]
        assert len(decided) > 20 and np.mean(right) > 0.9
        # pairs that differ audibly get an agreed a/b, rarely "equal"
        clear = [r["higher_value"] for r in read_json_lines(base)
                 for a, b in [r["pairid"].split("-")] if abs(truth[a][av_type] - truth[b][av_type]) > 0.05]
        assert len(clear) > 20 and np.mean([value in ("a", "b") for value in clear]) > 0.85


def draws(archetype: int, n: int = 300, seed: int = 0, **kwargs) -> tuple[list, np.ndarray]:
    rng = np.random.default_rng(seed)
    params = [draw_track_params(archetype, rng, **kwargs) for _ in range(n)]
    return params, np.array([valence_arousal(p) for p in params])


def r(x, y) -> float:
    return float(np.corrcoef(np.asarray(x, dtype=float), np.asarray(y, dtype=float))[0, 1])


@pytest.mark.parametrize("archetype", range(6))
def test_valence_and_arousal_vary_within_an_archetype(archetype):
    params, va = draws(archetype)
    assert va[:, 1].std() >= 0.025, "arousal"
    assert va[:, 0].std() >= 0.05, "valence"
    mode = ARCHETYPES[archetype].major_probability > 0.5
    _, same_mode = draws(archetype, major=mode)
    # as much as the simulated listeners' own noise (demo_musav), so some within-archetype pairs are heard apart
    assert same_mode[:, 0].std() >= 0.03, "valence varies by more than the mode"


def test_valence_and_arousal_follow_several_musical_factors_and_no_nuisance():
    params = [p for archetype in range(len(ARCHETYPES)) for p in draws(archetype, n=300, seed=archetype)[0]]
    valence, arousal = np.array([valence_arousal(p) for p in params]).T
    for name in ("tempo_bpm", "note_density", "attack", "roughness"):
        assert r([getattr(p, name) for p in params], arousal) > 0.3, name
    for name in ("major", "register"):
        assert r([getattr(p, name) for p in params], valence) > 0.3, name
    assert r([p.dissonance for p in params], valence) < -0.3
    archetype = np.array([p.archetype for p in params])

    def within(values):  # deviations from the archetype's mean
        values = np.asarray(values, dtype=float)
        return values - pd.Series(values).groupby(archetype).transform("mean").to_numpy()

    for name in ("level_db", "formant_hz", "cutoff_hz", "key"):
        values = within([getattr(p, name) for p in params])
        assert abs(r(values, within(arousal))) < 0.1 and abs(r(values, within(valence))) < 0.1, f"{name} is a nuisance"
    # no factor alone orders the tracks: all factors together explain far more than the best one
    factors = np.array([[float(getattr(p, name)) for name in
                         ("tempo_bpm", "note_density", "attack", "roughness", "major", "dissonance", "register")]
                        for p in params])
    design = np.column_stack([factors, np.ones(len(params))])
    for target in (arousal, valence):
        best = max(r(column, target) ** 2 for column in factors.T)
        residual = target - design @ np.linalg.lstsq(design, target, rcond=None)[0]
        together = 1 - residual.var() / target.var()
        assert best < 0.75 and together - best > 0.2, (best, together)


def test_mastering_level_is_a_nuisance_independent_of_the_archetype():
    levels = {archetype: [p.level_db for p in draws(archetype, n=400, seed=archetype)[0]] for archetype in range(len(ARCHETYPES))}
    for values in levels.values():
        assert np.ptp(values) > 20, "a wide range of mastering levels in every archetype"
    means = [np.mean(values) for values in levels.values()]
    assert np.ptp(means) < 2.0


@pytest.mark.parametrize("archetype", range(6))
def test_mode_changes_valence_only(archetype):
    _, major = draws(archetype, major=True)
    _, minor = draws(archetype, major=False)
    assert np.allclose(major[:, 1], minor[:, 1]), "the mode changes valence only"
    assert 0.15 <= major[:, 0].mean() - minor[:, 0].mean() <= 0.3


def test_spotify_targets_are_a_noisy_biased_view_of_the_listeners(tmp_path):
    corpus = generate_demo_corpus(tmp_path, n_tracks=18, n_musav=90, seconds=2.0, seed=5, n_archetypes=6)
    truth = json.loads(corpus.truth_path.read_text())["tracks"]
    features = {}
    for path in (corpus.musav_root / "metadata").rglob("*.yaml"):
        features[path.stem] = yaml.safe_load(path.read_text())["audio_features"]
    songs = sorted(features)
    level = [truth[s]["nuisance"]["level_db"] for s in songs]
    assert r(level, [features[s]["energy"] for s in songs]) > 0.3, "Spotify-style energy follows the mastering level"
    for av_type, column in (("arousal", "energy"), ("valence", "valence")):
        assert 0.5 < r([truth[s][av_type] for s in songs], [features[s][column] for s in songs]) < 0.95
        gt = read_json_lines(corpus.musav_root / "annotations" / f"annotations.{av_type}.all.agreement.gt")
        decided = [(rec, *rec["pairid"].split("-")) for rec in gt if rec["higher_value"] in ("a", "b")]
        spotify = np.mean([(features[a][column] > features[b][column]) == (rec["higher_value"] == "a")
                           for rec, a, b in decided])
        listeners = np.mean([(truth[a][av_type] > truth[b][av_type]) == (rec["higher_value"] == "a")
                             for rec, a, b in decided])
        assert spotify < listeners - 0.08 and spotify < 0.9, av_type


def test_planted_mode_is_heard_in_a_short_clip():
    """In consonant music; chords that carry a minor second and a tritone blur the key, as in real music."""
    rng = np.random.default_rng(0)
    heard = []
    for archetype in (a for a in range(6) if ARCHETYPES[a].dissonance < 0.5):
        for major in (True, False):
            y = render_track(draw_track_params(archetype, rng, major=major), 4.0, 22050, 1)[:, 0]
            heard.append((features_from_signal(y, 22050)["mode_major"] == 1.0) == major)
    assert sum(heard) >= len(heard) - 1, heard


@pytest.mark.parametrize("votes, expected", [
    (["a", "a", "a"], ("full-agreement", "a")),
    (["a", "a", "ab"], ("majority-agreement", "a")),
    (["ab", "b", "ab"], ("majority-agreement", "ab")),
    (["a", "b", "a"], ("disagreement", "a")),
    (["b", "b", "not_selected"], ("disagreement", "b")),
    (["a", "ab", "b"], ("disagreement", "undefined")),
    (["b", "not_selected", "not_selected"], ("disagreement", "undefined")),
])
def test_pair_agreement(votes, expected):
    assert pair_agreement(votes) == expected


@pytest.mark.parametrize("pairs, expected", [
    ([("x", "y", "a"), ("y", "z", "a"), ("x", "z", "a")], "consistent"),
    ([("x", "y", "a"), ("y", "z", "a"), ("x", "z", "b")], "inconsistent"),
    ([("x", "y", "ab"), ("y", "z", "ab"), ("x", "z", "b")], "inconsistent"),
    ([("x", "y", "ab"), ("x", "z", "a"), ("y", "z", "a")], "consistent"),
    ([("x", "y", "a"), ("y", "z", "a")], "incomplete"),
])
def test_triplet_consistency(pairs, expected):
    assert triplet_consistency(pairs) == expected


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_MUSAV.is_dir(), reason="real MusAV annotations not available")
@pytest.mark.parametrize("av_type", ["arousal", "valence"])
def test_agreement_and_consistency_rules_reproduce_the_real_files(av_type):
    votes = defaultdict(list)
    for r in read_json_lines(REAL_MUSAV / f"annotations.{av_type}.all"):
        votes[(r["tripletid"], f"{r['songid_a']}-{r['songid_b']}")].append(r["higher_value"])
    for r in read_json_lines(REAL_MUSAV / f"annotations.{av_type}.all.agreement"):
        assert pair_agreement(votes[(r["tripletid"], r["pairid"])]) == (r["agreement"], r["higher_value"])
    triplets = defaultdict(list)
    for r in read_json_lines(REAL_MUSAV / f"annotations.{av_type}.all.agreement.gt"):
        triplets[r["tripletid"]].append(r)
    for records in triplets.values():
        pairs = [(*r["pairid"].split("-"), r["higher_value"]) for r in records]
        assert triplet_consistency(pairs) == records[0]["triplet_consistency"]


@pytest.mark.parametrize("setting", [{"n_archetypes": 4}, {"n_archetypes": 9}, {"n_tracks": 10},
                                     {"n_musav": 2}, {"channels": 3}, {"sample_rate": 20000}])
def test_bad_settings_raise_config_error(tmp_path, setting):
    with pytest.raises(ConfigError):
        generate_demo_corpus(tmp_path, **{**TINY, **setting})


def test_progress_reports_every_audio_file(tmp_path):
    calls = []
    generate_demo_corpus(tmp_path, n_tracks=15, n_musav=3, seconds=2.0, n_archetypes=5,
                         progress=lambda done, total: calls.append((done, total)))
    assert calls[0] == (0, 18) and calls[-1] == (18, 18) and len(calls) == 19
