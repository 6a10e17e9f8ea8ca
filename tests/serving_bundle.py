"""The serving bundle of a run, copied for tests that let the app write beside it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from moodscape.artifacts import Workdir
from moodscape.pipeline.stages import serving_bundle, serving_extras


def copy_bundle(run: Path, destination: Path) -> Path:
    """Copy the files ``moodscape serve`` reads from a run (the app writes names and caches beside them)."""
    run_files, copies = Workdir(run), Workdir(destination)
    for source, target in zip(serving_bundle(run_files) + serving_extras(run_files),
                              serving_bundle(copies) + serving_extras(copies)):
        if source.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


SYNTHETIC = Path(__file__).resolve().parents[1] / "bench" / "synthetic_bundle.py"


def synthetic_bundle_module():
    """``bench/synthetic_bundle.py``, whose ``write_synthetic_bundle(root, n_tracks)`` writes a bundle without a demo run."""
    spec = importlib.util.spec_from_file_location("synthetic_bundle", SYNTHETIC)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def point_catalog_at(root: Path, paths: list[str]) -> None:
    """Give a bundle's first tracks the audio files ``paths`` (absolute) and the rest none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Workdir(root).catalog
    catalog = pq.read_table(path)
    column = list(paths) + [""] * (catalog.num_rows - len(paths))
    pq.write_table(catalog.set_column(catalog.column_names.index("audio_path"), "audio_path", pa.array(column, pa.large_string())), path)
