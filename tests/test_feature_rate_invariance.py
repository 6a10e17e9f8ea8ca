"""The same recording at 8 to 96 kHz gets the same stage-1 features.

One track per demo archetype is rendered at 96 kHz and written, resampled, at every rate
a collection may hold. Standardised with the scaler of the demo collection, each track's
feature vector must move across rates far less than the archetypes lie apart: before the
features were computed at one analysis rate, the rate moved a track farther than the
distance between two archetypes (tempo halved at 16 kHz, flatness and the top contrast
band followed the file's band).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from sklearn.preprocessing import StandardScaler

from moodscape import audio
from moodscape.datasets.demo_synth import draw_track_params, render_track
from moodscape.features import extract_features

pytestmark = pytest.mark.slow

RATES = (8000, 16000, 22050, 32000, 44100, 48000, 96000)
MASTER_RATE = 96000
SECONDS = 10.0
MAX_MOVE_SHARE = 0.25
"""A track may move at most this share of the smallest distance between two archetype means."""


def features_of(path: Path) -> np.ndarray:
    return np.array(list(extract_features(path).values()))


@pytest.fixture(scope="module")
def demo_scaler(demo_corpus):
    """The demo collection's scaler and its archetype means in standardised space."""
    truth = json.loads((demo_corpus / "truth.json").read_text())["tracks"]
    paths = sorted((demo_corpus / "mtg-jamendo" / "audio").glob("*/*.mp3"))
    archetypes = np.array([truth[f"track_{int(path.stem):07d}"]["archetype"] for path in paths])
    table = np.array([features_of(path) for path in paths])
    scaler = StandardScaler().fit(table)
    standardised = scaler.transform(table)
    means = {a: standardised[archetypes == a].mean(axis=0) for a in sorted(set(archetypes))}
    return scaler, means


def write_at_every_rate(master: np.ndarray, folder: Path) -> list[Path]:
    paths = []
    for rate in RATES:
        path = folder / f"{rate}.flac"
        sf.write(path, audio.resample(master, MASTER_RATE, rate), rate, subtype="PCM_24")
        paths.append(path)
    return paths


def test_a_tracks_features_move_far_less_across_rates_than_archetypes_lie_apart(demo_scaler, tmp_path):
    scaler, means = demo_scaler
    between = min(np.linalg.norm(means[a] - means[b]) for a, b in itertools.combinations(means, 2))
    rng = np.random.default_rng(15)
    moves = {}
    for archetype in means:
        master = render_track(draw_track_params(archetype, rng), SECONDS, MASTER_RATE, 1)[:, 0]
        folder = tmp_path / str(archetype)
        folder.mkdir()
        vectors = scaler.transform(np.array([features_of(path) for path in write_at_every_rate(master, folder)]))
        moves[archetype] = max(np.linalg.norm(u - v) for u, v in itertools.combinations(vectors, 2))
    worst = max(moves.values())
    assert worst < MAX_MOVE_SHARE * between, (
        f"largest move across {RATES} Hz: {worst:.2f} (per archetype: "
        + ", ".join(f"{a}: {m:.2f}" for a, m in moves.items())
        + f"); smallest distance between archetype means: {between:.2f}"
    )
