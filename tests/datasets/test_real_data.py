"""The loaders against the real MTG-Jamendo and MusAV annotation files, when present.

The files live in ``shared/data`` beside the repository (``/work/shared/data`` for a checkout
at ``/work/main``) or wherever ``MOODSCAPE_SHARED_DATA`` points; without them every test here
is skipped.
"""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from moodscape.datasets.jamendo import load_jamendo, read_tag_vocabulary, read_tracks_tsv, tag_matrix
from moodscape.datasets.musav import ground_truth_files, load_musav, read_ground_truth, read_judgments

SHARED_DATA = Path(os.environ.get("MOODSCAPE_SHARED_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
JAMENDO = SHARED_DATA / "mtg-jamendo"
MUSAV = SHARED_DATA / "musav"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (JAMENDO.is_dir() and MUSAV.is_dir()), reason=f"real annotation files not found in {SHARED_DATA}"),
]


def count_lines(path: Path) -> int:
    """Number of newline characters, as ``wc -l`` counts."""
    return path.read_bytes().count(b"\n")


@pytest.fixture(scope="module")
def jamendo():
    return load_jamendo(JAMENDO)


def test_jamendo_has_18486_tracks_and_the_split_0_sizes(jamendo):
    tracks, _ = jamendo
    assert len(tracks) == 18_486 and tracks["track_id"].is_unique
    assert tracks["split"].value_counts().to_dict() == {"train": 9_949, "validation": 3_802, "test": 4_231, "": 504}


def test_jamendo_vocabulary_has_56_tags_and_the_tsv_59():
    vocabulary = read_tag_vocabulary(JAMENDO / "moodtheme_split.txt")
    tracks, problems = read_tracks_tsv(JAMENDO / "autotagging_moodtheme.tsv")
    assert len(vocabulary) == 56 and problems == []
    assert set(tag for tags in tracks["tags"] for tag in tags) - set(vocabulary) == {"ambiental", "horror", "mellow"}


def test_jamendo_only_the_three_extra_tags_are_dropped(jamendo):
    tracks, problems = jamendo
    assert problems == [f"{JAMENDO / 'autotagging_moodtheme.tsv'}: dropped 772 tags outside the 56-tag vocabulary: ambiental (460), horror (158), mellow (154)"]
    matrix, _ = tag_matrix(tracks, read_tag_vocabulary(JAMENDO / "moodtheme_split.txt"))
    tagless = ~matrix.any(axis=1)
    # The 504 tracks in no split are exactly those left without a vocabulary tag.
    assert tagless.sum() == 504 and (tracks["split"][tagless] == "").all()


def test_musav_ground_truth_files_all_parse_with_wc_row_counts():
    found = ground_truth_files(MUSAV / "annotations")
    assert len(found) == 16
    for _, _, path in found:
        assert len(read_ground_truth(path)) == count_lines(path), path
    arousal_gt = read_ground_truth(MUSAV / "annotations" / "annotations.arousal.all.agreement.gt")
    assert len(arousal_gt) == 1_448 and arousal_gt["triplet_consistency"].notna().all()


def test_musav_pair_ids_split_into_two_known_songs():
    songs, _ = load_musav(MUSAV)
    for _, _, path in ground_truth_files(MUSAV / "annotations"):
        pairs = read_ground_truth(path)
        assert (pairs["songid_a"] + "-" + pairs["songid_b"]).eq(pairs["pairid"]).all()
        assert pairs[["songid_a", "songid_b"]].stack().isin(songs["songid"]).all()


def test_musav_songids_file_lists_2100_songs_of_which_2092_are_annotated():
    # The README's 2,092 counts the annotated songs; the songids file lists 8 more.
    songs, problems = load_musav(MUSAV)
    assert count_lines(MUSAV / "audio.chunk_000-006.songids") == 2_100
    assert len(songs) == 2_100 and songs["songid"].is_unique and problems == []
    judgments = [read_judgments(MUSAV / "annotations" / f"annotations.{av_type}.all") for av_type in ("arousal", "valence")]
    annotated = {song for table in judgments for song in table[["songid_a", "songid_b"]].stack()}
    assert len(annotated) == 2_092 and annotated <= set(songs["songid"])


def test_musav_songs_fall_into_whole_triplet_folds():
    """Stage 4's folds on the real judgments: 699 disjoint triplets, no pair across folds."""
    from moodscape.training.av import song_folds

    songs, _ = load_musav(MUSAV)
    pairs = pd.concat([read_ground_truth(path) for subset, _, path in ground_truth_files(MUSAV / "annotations") if subset == "gt"])
    folds = song_folds(songs["songid"].tolist(), pairs, 5, 0)
    fold_of = dict(zip(songs["songid"], folds))
    assert all(fold_of[a] == fold_of[b] for a, b in zip(pairs["songid_a"], pairs["songid_b"]))
    sizes = np.bincount(folds)
    assert len(sizes) == 5 and sizes.max() - sizes.min() <= 3
