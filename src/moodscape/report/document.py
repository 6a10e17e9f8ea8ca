"""Build the report of one run: :class:`~moodscape.report.record.RunRecord` in, Markdown and figures out.

:func:`moodscape.pipeline.report.load_run` reads a work directory into a
:class:`~moodscape.report.record.RunRecord`; :func:`build_report` turns it into the
report's Markdown and PNG figures, one section per pipeline step. Every number the report
shows is read from the record, never typed into the text, and a stage that has not run
gives a section that says so and which command produces it.
"""

from __future__ import annotations

from mdit_py_plugins.anchors.index import slugify

from . import clusters, network, provenance, valence_arousal
from .markdown import Document
from .record import SECTIONS, TITLE, RunRecord


def build_report(run: RunRecord) -> Document:
    """Write every section of the report for ``run``.

    Parameters
    ----------
    run : RunRecord

    Returns
    -------
    Document
        The Markdown and the figures it shows.
    """
    document = Document()
    document.heading(1, TITLE)
    document.text(f"Work directory `{run.workdir}`. Every number below is read from this run's artifacts "
                  "(`manifest.json` lists them with their hashes); equations are written as the code computes them.")
    document.bullets(f"[{title}](#{slugify(title)})" for title in SECTIONS)
    for section in (clusters.data_section, clusters.clustering_section, clusters.naming_section,
                    network.network_section, valence_arousal.regression_section, valence_arousal.lookup_section,
                    provenance.reproducibility_section):
        section(document, run)
    return document
