"""Issue 14: a track whose work never returns (a stalled mount) is skipped and listed, and the run ends.

The track function opens a FIFO that nobody writes for one track, as a read from a stalled
network mount blocks. The map runs on the local Dask cluster in a child process, whose
timeout is the hang guard: a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import json
import os

import pytest
from fresh_python import run_python

@pytest.mark.slow  # a local cluster whose workers are restarted twice
def test_a_hung_track_is_skipped_its_chunk_mates_kept_and_a_rerun_resumes(tmp_path):
    os.mkfifo(tmp_path / "stalled")
    result = run_python("""
        import json, sys
        from pathlib import Path
        from moodscape.pipeline.parallel import map_tracks

        def track(path):
            if path.endswith("stalled"):
                with open(path) as never:  # blocks until a writer comes: never
                    never.read()
            return {"length": len(path)}

        folder = Path(sys.argv[1])
        tasks = {f"t{i}": str(folder / ("stalled" if i == 4 else f"song{i}")) for i in range(10)}
        options = {"chunk_dir": folder / "chunks", "fingerprint": {"v": 1}, "chunk_size": 3, "show_progress": False}
        hung = map_tracks(track, tasks, scheduler="local", n_workers=2, track_timeout_s=1.0, **options)
        del tasks["t4"]
        rerun = map_tracks(track, tasks, scheduler="synchronous", **options)
        print(json.dumps({"rows": hung.rows["track_id"].tolist(), "failures": hung.failures,
                          "rerun_resumed": rerun.resumed, "rerun_rows": rerun.rows["track_id"].tolist()}))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["rows"] == [f"t{i}" for i in range(10) if i != 4]
    assert outcome["failures"] == [["t4", "took longer than 1 s; skipped"]]
    assert outcome["rerun_resumed"] == 9 and len(outcome["rerun_rows"]) == 9


def test_the_time_limit_is_a_setting_of_the_maps():
    from pydantic import ValidationError

    from moodscape.config import FeatureSettings

    assert FeatureSettings().track_timeout_s == 120.0
    for bad in (0, -1, float("inf")):
        with pytest.raises(ValidationError, match="track_timeout_s"):
            FeatureSettings(track_timeout_s=bad)
