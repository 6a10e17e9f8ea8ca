"""The Markdown the report is written in: headings, tables, equations, figures.

:class:`Document` collects the report's Markdown and its figures (PNG bytes) while the
sections write into it, so a section is a plain function ``section(document, run)``.
Numbers go through :func:`number` and :func:`integer`, which show a missing value as
"—" instead of failing, because a run may lack a stage.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

MISSING = "—"
FIGURE_DIR = "figures"


def number(value: Any, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, or "—" when it is missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    return f"{value:.{digits}f}"


def integer(value: Any) -> str:
    """``value`` with thousands separators, or "—" when it is missing."""
    return MISSING if value is None else f"{int(value):,}"


def percent(value: Any, digits: int = 1) -> str:
    """A fraction (0–1) as a percentage, or "—"."""
    return MISSING if value is None else f"{100 * value:.{digits}f} %"


def escape_cell(text: Any) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, no line breaks)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


@dataclass
class Document:
    """The report being written: Markdown blocks and the figures they show.

    Attributes
    ----------
    blocks : list of str
        Markdown blocks, joined by blank lines.
    figures : dict of str to bytes
        PNG bytes by the relative path the Markdown refers to (``figures/<name>.png``).
    """

    blocks: list[str] = field(default_factory=list)
    figures: dict[str, bytes] = field(default_factory=dict)

    def heading(self, level: int, text: str) -> None:
        self.blocks.append(f"{'#' * level} {text}")

    def text(self, *paragraphs: str) -> None:
        """Add paragraphs of Markdown text."""
        self.blocks.extend(paragraphs)

    def bullets(self, items: Iterable[str]) -> None:
        self.blocks.append("\n".join(f"- {item}" for item in items))

    def equation(self, tex: str) -> None:
        """A displayed equation (TeX between ``$$`` lines)."""
        self.blocks.append(f"$$\n{tex.strip()}\n$$")

    def table(self, header: Sequence[str], rows: Iterable[Sequence[Any]], *, numeric: Sequence[bool] | None = None) -> None:
        """A Markdown table; ``numeric`` columns are right-aligned."""
        numeric = numeric or [False] * len(header)
        lines = ["| " + " | ".join(escape_cell(cell) for cell in header) + " |",
                 "|" + "|".join("---:" if right else "---" for right in numeric) + "|"]
        lines += ["| " + " | ".join(escape_cell(cell) for cell in row) + " |" for row in rows]
        self.blocks.append("\n".join(lines))

    def code(self, text: str, language: str = "") -> None:
        self.blocks.append(f"```{language}\n{text.rstrip()}\n```")

    def figure(self, name: str, png: bytes, caption: str) -> None:
        """Show a figure (saved as ``figures/<name>.png``) with its caption."""
        path = f"{FIGURE_DIR}/{name}.png"
        self.figures[path] = png
        self.blocks.append(f"![{caption}]({path})\n\n*Figure {len(self.figures)}: {caption}*")

    def markdown(self) -> str:
        return "\n\n".join(self.blocks) + "\n"
