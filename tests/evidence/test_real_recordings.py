"""bench/real_recordings.py: its statistics always; its track list on the real soundtracks
only where the Debian packages' files are present (``realdata``, skipped otherwise).

``MOODSCAPE_REAL_MUSIC`` (folders separated by ``:``) says where the unpacked packages are;
default ``/usr/share/games:/usr/share/freedroidrpg:/usr/share/hyperrogue``, where ``apt-get install`` puts them.
``MOODSCAPE_REAL_RUN`` names a trained run's work directory to score as well (slow: minutes).
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "real_recordings.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_real_recordings", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


rr = _script()


def _audio_dirs() -> list[Path]:
    return [Path(d) for d in os.environ.get("MOODSCAPE_REAL_MUSIC", ":".join(rr.DEFAULT_AUDIO_DIRS)).split(":") if d]


def test_auc_counts_pairs_and_ties():
    assert rr.auc(np.array([3.0, 2.0]), np.array([1.0])) == 1.0
    assert rr.auc(np.array([1.0]), np.array([1.0, 2.0])) == pytest.approx(0.25)  # one tie, one loss
    assert np.isnan(rr.auc(np.array([]), np.array([1.0])))


def test_bootstrap_interval_contains_the_auc_and_separated_sides_are_significant():
    rng = np.random.default_rng(0)
    energetic, calm = rng.normal(1.5, 1.0, 30), rng.normal(0.0, 1.0, 30)
    value = rr.auc(energetic, calm)
    low, high = rr.bootstrap_ci(energetic, calm, n=500)
    assert low < value < high
    assert rr.mann_whitney_p(energetic, calm) < 0.01 < rr.mann_whitney_p(calm, energetic)


def test_within_package_auc_ignores_pairs_across_packages():
    def track(package, side, value):
        return rr.Track(package, "*", side, "battle" if side == "energetic" else "ambient", "x", Path("x"), {"v": value})

    # across packages the energetic tracks are all lower; within each package they are higher
    tracks = [track("a", "energetic", 1.0), track("a", "calm", 0.0), track("b", "energetic", 11.0), track("b", "calm", 10.0)]
    assert rr.auc(np.array([1.0, 11.0]), np.array([0.0, 10.0])) == 0.75
    assert rr.within_package_auc(tracks, "v") == (1.0, 2)


def test_every_label_is_a_side_and_every_weak_cue_is_used():
    sides = {side for patterns in rr.LABELS.values() for side, _cue in patterns.values()}
    cues = {cue for patterns in rr.LABELS.values() for _side, cue in patterns.values()}
    assert sides == set(rr.SIDES)
    assert rr.WEAK_CUES <= cues


@pytest.mark.realdata
def test_the_soundtracks_give_at_least_twenty_tracks_a_side(tmp_path):
    tracks, _missing = rr.find_tracks(_audio_dirs(), tmp_path)
    if not tracks:
        pytest.skip("no Debian soundtrack files (see bench/real_recordings.py for the packages)")
    counts = {side: sum(t.side == side for t in tracks) for side in rr.SIDES}
    assert min(counts.values()) >= 20, counts
    assert all(t.path.is_file() for t in tracks)


@pytest.mark.realdata
@pytest.mark.slow
def test_a_trained_run_scores_the_soundtracks(tmp_path):
    workdir = os.environ.get("MOODSCAPE_REAL_RUN")
    if not workdir or not (Path(workdir) / "models" / "inference_bundle.pt").is_file():
        pytest.skip("MOODSCAPE_REAL_RUN does not name a trained run")
    if not rr.find_tracks(_audio_dirs(), tmp_path)[0]:
        pytest.skip("no Debian soundtrack files")
    out = tmp_path / "real.json"
    dirs = [str(d) for d in _audio_dirs()]
    assert rr.main(["--workdir", workdir, "--audio-dirs", *dirs, "--cache", str(tmp_path), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    for key, _label in rr.READOUTS:
        assert 0.0 <= result["readouts"][key]["auc"] <= 1.0
