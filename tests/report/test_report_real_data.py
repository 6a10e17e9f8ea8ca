"""The report's data section on the real MTG-Jamendo annotation files, when present (no audio needed)."""

import os
from pathlib import Path

import pytest

from moodscape.datasets.jamendo import load_jamendo, read_tag_vocabulary
from moodscape.report.document import build_report
from moodscape.report.record import RunRecord
from moodscape.report.html import render_html

SHARED_DATA = Path(os.environ.get("MOODSCAPE_SHARED_DATA") or Path(__file__).resolve().parents[2].parent / "shared" / "data")
JAMENDO = SHARED_DATA / "mtg-jamendo"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not JAMENDO.is_dir(), reason=f"real annotation files not found in {JAMENDO}"),
]


def test_a_report_before_any_stage_shows_the_real_splits_and_vocabulary():
    tracks, _ = load_jamendo(JAMENDO)
    vocabulary = read_tag_vocabulary(JAMENDO / "moodtheme_split.txt")
    run = RunRecord(workdir="data", settings={"data": {"source": "jamendo"}, "jamendo": {"root": str(JAMENDO)}},
                    manifest={"stages": {}}, tracks=tracks, vocabulary=vocabulary)
    document = build_report(run)
    markdown = document.markdown()
    assert "18,486 tracks with 56 tags" in markdown
    for split, count in {"train": "9,949", "validation": "3,802", "test": "4,231", "(in no split)": "504"}.items():
        assert f"| {split} | {count} | 0 | 0 | 0 |" in markdown
    assert markdown.count("*Not in this run:") == 5  # clusters, names, network, valence/arousal, lookup
    assert document.figures == {}
    render_html(markdown, document.figures, title="real data, no stage run")
