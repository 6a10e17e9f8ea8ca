"""Report section 7: the settings, seeds, package versions and artifact hashes of the run."""

from __future__ import annotations

import json

from .record import SECTIONS, RunRecord
from .markdown import Document


def reproducibility_section(document: Document, run: RunRecord) -> None:
    """Section 7: enough to re-run this exact run and to check its files are the ones reported."""
    document.heading(2, SECTIONS[6])
    stages = run.manifest.get("stages", {})
    seeds = sorted({stage: entry["settings"]["seed"] for stage, entry in stages.items()
                    if isinstance(entry.get("settings"), dict) and "seed" in entry["settings"]}.items())
    document.text(f"Seed {run.settings.get('seed')} (NumPy, PyTorch and Python's `random` are seeded from it in every "
                  "stage that draws random numbers"
                  + (": " + ", ".join(f"{stage} {seed}" for stage, seed in seeds) if seeds else "") + ").")
    versions: dict[str, str] = {}
    for entry in stages.values():
        versions.update(entry.get("versions", {}))
    versions.update(run.versions)
    document.table(["package", "version"], sorted(versions.items()))
    document.text("Each artifact as the manifest recorded it when its stage finished (SHA-256 of the file):")
    rows = [[stage, entry.get("finished", "—"), f"`{name}`", f"`{digest}`"]
            for stage, entry in stages.items() for name, digest in entry.get("outputs", {}).items()]
    document.table(["stage", "finished (UTC)", "artifact", "SHA-256"], rows)
    document.text("The settings of the run (`moodscape run --config …` with these values reproduces it; paths as "
                  "resolved when the report was written):")
    document.code(json.dumps(run.settings, indent=2, sort_keys=False, default=str), "json")
