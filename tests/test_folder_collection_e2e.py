"""Issue 15, done when: a folder of real-format files with no tags CSV goes through ``moodscape run``
from audio to a served catalog with named labels, titles and artists and a backbone learned without
labels; with ``folder.tags_from = ["genre"]`` the labels are named after the genres and the backbone
learns them.

The folder holds demo music of a few archetypes in WAV, FLAC, Ogg Vorbis, MP3, m4a (AAC) and Opus at
several sample rates, mono and stereo, each file tagged with mutagen (title, artist, album and one
genre per archetype), as a user's collection would be.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from audio_formats import FFMPEG_FORMATS, write_audio, write_tags
from cli_runner import invoke
from sklearn.metrics import adjusted_rand_score

from moodscape.artifacts import Workdir
from moodscape.datasets.demo_synth import ARCHETYPES, draw_track_params, render_track

pytestmark = pytest.mark.slow



def missing_encoder(extension: str) -> str | None:
    """Why this FFmpeg cannot write files of ``extension``, or None when it can (libsndfile's formats always can)."""
    if extension not in FFMPEG_FORMATS:
        return None
    encoder = FFMPEG_FORMATS[extension][1]
    try:
        av.codec.Codec(encoder, "w")
    except Exception as error:  # PyAV raises its own error types for an encoder it was built without
        return f"this FFmpeg has no {encoder} encoder for .{extension} files ({error})"
    return None


ALL_FORMATS = {"wav": 44100, "flac": 48000, "ogg": 22050, "mp3": 32000, "m4a": 24000, "opus": 48000}
"""Extension: the sample rate its files are written at (Opus has only 48 kHz)."""
UNWRITABLE = {extension: why for extension in ALL_FORMATS if (why := missing_encoder(extension))}
FORMATS = {extension: sr for extension, sr in ALL_FORMATS.items() if extension not in UNWRITABLE}
GENRES = {0: "Dance", 1: "Doom Metal", 2: "Ballad", 3: "Ambient"}
"""Archetype index: the genre of its files."""
TRACKS_PER_ARCHETYPE = 12
N_TRACKS = len(GENRES) * TRACKS_PER_ARCHETYPE
SECONDS = 8.0
ARTISTS = ("Ana Ñandú", "The Low Hours", "Kōji Itō", "Mira")
SMALL_BUDGET = """
seed = 0

[data]
source = "folder"

[folder]
root = "music"

[features]
scheduler = "synchronous"

[cluster]
k = {k}

# a genre held by every track of its cluster and no other scores z = 2.9 with 9 training
# tracks in each of 4 clusters: the default 3.0 asks for a bigger collection
[label]
min_score = 2.0

[pretrain]
epochs = 3
batch_size = 16
patience = 2
crop_frames = 128

[train]
epochs = 4
batch_size = 16
patience = 3
crop_frames = 128
"""


def write_collection(root: Path) -> dict[str, dict]:
    """Render and tag the collection under ``root``; returns ``{track_id: what was planted}``.

    Every archetype has files of every format, and its files one genre and one album."""
    rng = np.random.default_rng(15)
    planted, extensions = {}, list(FORMATS)
    for archetype, genre in GENRES.items():
        for number in range(TRACKS_PER_ARCHETYPE):
            extension = extensions[(archetype + number) % len(extensions)]
            sr = FORMATS[extension]
            track_id = f"{genre.lower().replace(' ', '-')}/{number:02d} {ARCHETYPES[archetype].name}"
            tags = {"title": f"{ARCHETYPES[archetype].name.title()} n° {number + 1}", "artist": ARTISTS[number % len(ARTISTS)],
                    "album": f"{genre} Sessions", "genre": genre}
            signal = render_track(draw_track_params(archetype, rng), SECONDS, sr, 1 + number % 2)
            write_tags(write_audio(root / f"{track_id}.{extension}", signal, sr), tags)
            planted[track_id] = {**tags, "archetype": archetype, "extension": extension}
    return planted


@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The folder and its config (``moodscape.toml``, no tags CSV), and what each track holds."""
    folder = tmp_path_factory.mktemp("collection")
    planted = write_collection(folder / "music")
    (folder / "moodscape.toml").write_text(SMALL_BUDGET.format(k=len(GENRES)), encoding="utf-8")
    return folder, planted


@pytest.fixture(scope="module")
def untagged_run(collection) -> tuple[Path, str]:
    """``moodscape run`` on the folder as it is: the work directory and what the console showed."""
    folder, _ = collection
    workdir = folder / "run [untagged]"  # brackets, as in many music folders' names
    result = invoke("run", "--config", folder / "moodscape.toml", "--workdir", workdir)
    assert result.exit_code == 0, result.output
    (folder / "console.txt").write_text(result.output, encoding="utf-8")  # for a person reading the run
    return workdir, result.output


@pytest.fixture(scope="module")
def genre_run(collection, untagged_run) -> tuple[Path, str]:
    """The same folder run again on a copy of the first work directory, with the genres as original tags."""
    folder, _ = collection
    workdir = folder / "run-genres"
    shutil.copytree(untagged_run[0], workdir)
    result = invoke("run", "--config", folder / "moodscape.toml", "--workdir", workdir, '--set=folder.tags_from=["genre"]')
    assert result.exit_code == 0, result.output
    return workdir, result.output


def served(workdir: Path):
    """A TestClient over the app on the run's bundle."""
    from fastapi.testclient import TestClient

    from moodscape.api import create_app

    return TestClient(create_app(workdir))


def label_names(workdir: Path) -> list[str]:
    return sorted(json.loads(Workdir(workdir).label_to_idx.read_text()))


def cluster_profiles(workdir: Path) -> list[dict]:
    return json.loads(Workdir(workdir).cluster_profiles.read_text())["clusters"]


def pretrain_metrics(workdir: Path) -> dict:
    return json.loads(Workdir(workdir).pretrain_metrics.read_text())


def test_the_collection_has_every_format(collection):
    """m4a and Opus need FFmpeg's AAC and libopus encoders to be written; a build without one leaves its format out."""
    _, planted = collection
    assert {track["extension"] for track in planted.values()} == set(FORMATS)
    if UNWRITABLE:
        pytest.skip("; ".join(UNWRITABLE.values()))


def test_every_file_of_every_format_and_rate_is_a_track(collection, untagged_run):
    _, planted = collection
    workdir, _ = untagged_run
    run = Workdir(workdir)
    features = pd.read_parquet(run.features)
    assert sorted(features["track_id"]) == sorted(planted)
    assert np.isfinite(features.select_dtypes("number").to_numpy()).all()
    reports = sorted(run.dataset_problems.parent.iterdir())
    assert run.dataset_problems in reports and run.skipped_report("features") in reports
    for report in reports:  # nothing skipped, no problem, no duplicate
        assert report.read_text(encoding="utf-8").strip() in ("", "track_id,reason"), report
    clusters = pd.read_csv(run.clusters, dtype={"track_id": str})
    archetypes = [planted[track_id]["archetype"] for track_id in clusters["track_id"]]
    assert adjusted_rand_score(archetypes, clusters["cluster_id"]) >= 0.8  # the music, not the formats


def test_without_tags_the_labels_are_named_after_their_sound(untagged_run):
    workdir, _ = untagged_run
    profiles = cluster_profiles(workdir)
    names = label_names(workdir)
    assert len(names) == len(GENRES) and len(set(names)) == len(names)
    assert all(name.strip() and not name.isdigit() and "cluster" not in name.lower() for name in names)
    assert {cluster["named_by"] for cluster in profiles} == {"acoustic"}
    for cluster in profiles:  # the words of the features that set the cluster apart most
        assert cluster["name"].split(" / ") == [feature["word"] for feature in cluster["acoustic_features"] if feature["in_name"]]


def test_without_tags_the_backbone_is_learned_contrastively(untagged_run):
    workdir, output = untagged_run
    pretrain = pretrain_metrics(workdir)
    assert pretrain["objective"] == "contrastive"
    assert pretrain["reason"] == f"auto: none of the {N_TRACKS} tracks carries a tag"
    assert "pretrain (contrastive) 1/" in output and "contrastive, without tags" in output


def test_the_served_catalog_has_every_track_with_its_title_and_artist(collection, untagged_run):
    _, planted = collection
    workdir, _ = untagged_run
    with served(workdir) as client:
        tracks = client.get("/api/v1/tracks", params={"limit": 500}).json()
        assert tracks["total"] == len(planted)
        for item in tracks["items"]:
            track = planted[item["track_id"]]
            assert (item["title"], item["artist"], item["album"]) == (track["title"], track["artist"], track["album"])
        labels = client.get("/api/v1/labels").json()["items"]
        assert sorted(label["label"] for label in labels) == label_names(workdir)
        assert sum(label["size"] for label in labels) == len(planted)
        seed = sorted(planted)[0]
        similar = client.get(f"/api/v1/tracks/{seed}/similar", params={"limit": 5})
        assert similar.status_code == 200, similar.text
        found = [item["track_id"] for item in similar.json()["items"]]
        assert len(found) == 5 and seed not in found and set(found) <= set(planted)
        biggest = max(labels, key=lambda label: label["size"])
        by_label = client.post("/api/v1/recommend/label", json={"label": biggest["label"], "limit": 3})
        assert by_label.status_code == 200, by_label.text
        assert [item["label"] for item in by_label.json()["items"]] == [biggest["label"]] * 3


def test_the_run_table_says_why_a_stage_did_not_run(untagged_run):
    """Rich read "[musav]" in the table's reason and "[untagged]" in the work directory as markup, and left them out."""
    _, output = untagged_run
    row = next(line for line in output.splitlines() if line.startswith("│ train-av"))
    assert "no [musav] root in the settings" in row
    results = "".join(output.partition("results")[2].split()).replace("│", "")  # the table's cells, unwrapped
    assert "[untagged]/inference_lookup.csv" in results


def test_with_genres_as_tags_the_labels_are_named_after_them(genre_run):
    workdir, _ = genre_run
    profiles = cluster_profiles(workdir)
    assert label_names(workdir) == sorted(GENRES.values())
    assert {cluster["named_by"] for cluster in profiles} == {"tags"}
    with served(workdir) as client:
        for genre in GENRES.values():
            tagged = client.get("/api/v1/tracks", params={"tag": genre.lower(), "limit": 500}).json()
            assert tagged["total"] == TRACKS_PER_ARCHETYPE


def test_with_genres_as_tags_auto_pretrains_on_them(genre_run):
    workdir, _ = genre_run
    pretrain = pretrain_metrics(workdir)
    assert pretrain["objective"] == "tags"
    assert pretrain["reason"] == f"auto: {N_TRACKS} of {N_TRACKS} tracks carry tags"
    assert sorted(pretrain["tags"]) == sorted(genre.lower() for genre in GENRES.values())
