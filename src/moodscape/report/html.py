"""Markdown report → one self-contained HTML file that renders offline.

The Markdown keeps its equations as TeX between ``$…$`` and ``$$…$$`` (as GitHub and
most Markdown viewers render them). For the HTML each equation is converted to MathML on
the server by ``latex2mathml``: browsers lay MathML out natively (MathML Core, Chromium
≥ 109, Firefox, Safari), so the page needs no script, no font download and no network,
and the equations stay selectable text. Figures are inlined as ``data:`` URIs, so the
one file can be mailed or opened from anywhere.
"""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from latex2mathml.converter import convert as latex_to_mathml
from markdown_it import MarkdownIt
from mdit_py_plugins.anchors import anchors_plugin
from mdit_py_plugins.dollarmath import dollarmath_plugin

from moodscape.errors import MoodscapeError

MATHML_NS = "{http://www.w3.org/1998/Math/MathML}"
_COMMAND = re.compile(r"\\[A-Za-z]+")


class EquationError(MoodscapeError):
    """A TeX equation of the report that is not well formed."""


def equation_mathml(tex: str, *, display: bool) -> str:
    """Convert one TeX equation to a MathML ``<math>`` element, checking it is well formed.

    Parameters
    ----------
    tex : str
        The equation, without its ``$`` delimiters.
    display : bool
        A displayed (block) equation rather than one inline in the text.

    Returns
    -------
    str
        The ``<math>`` element.

    Raises
    ------
    EquationError
        When the braces or ``\\left``/``\\right`` pairs do not balance, the converter
        fails, its output is not well-formed XML, or a TeX command survived unconverted
        (the converter passes unknown commands through as text).
    """
    _check_balanced(tex)
    try:
        mathml = latex_to_mathml(tex, display="block" if display else "inline")
        root = ET.fromstring(mathml)
    except Exception as error:  # the converter raises many unrelated types on bad input
        raise EquationError(f"cannot convert equation {tex!r}: {error}") from None
    if root.tag != f"{MATHML_NS}math":
        raise EquationError(f"equation {tex!r} did not give a <math> element")
    leftover = [node.text for node in root.iter() if node.text and _COMMAND.search(node.text)]
    if leftover:
        raise EquationError(f"equation {tex!r}: unconverted TeX {leftover[0]!r}")
    return mathml


def _check_balanced(tex: str) -> None:
    depth = 0
    for position, char in enumerate(re.sub(r"\\[{}]", "", tex)):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            raise EquationError(f"equation {tex!r}: unmatched '}}' at {position}")
    if depth:
        raise EquationError(f"equation {tex!r}: {depth} unclosed '{{'")
    lefts, rights = len(re.findall(r"\\left\b", tex)), len(re.findall(r"\\right\b", tex))
    if lefts != rights:
        raise EquationError(f"equation {tex!r}: {lefts} \\left against {rights} \\right")


def markdown_parser() -> MarkdownIt:
    """The parser the report is written for: CommonMark, tables, ``$`` math, heading ids."""
    parser = MarkdownIt("commonmark", {"html": False}).enable("table")
    dollarmath_plugin(parser, allow_space=True, double_inline=True)
    anchors_plugin(parser, min_level=2, max_level=3)
    return parser


def render_html(markdown: str, figures: Mapping[str, bytes], *, title: str) -> str:
    """Render the report's Markdown as one HTML page with figures and MathML inlined.

    Parameters
    ----------
    markdown : str
        The report, whose images refer to PNG files by the relative paths in ``figures``.
    figures : mapping of str to bytes
        PNG bytes by the path the Markdown uses (e.g. ``"figures/k_selection.png"``).
    title : str
        The page title.

    Returns
    -------
    str
        The HTML document.

    Raises
    ------
    EquationError
        When an equation is not well formed.
    KeyError
        When the Markdown shows an image that ``figures`` lacks.
    """
    parser = markdown_parser()

    def math(display: bool):
        def rule(self, tokens, index, options, env):
            mathml = equation_mathml(tokens[index].content.strip(), display=display)
            return f'<div class="equation">{mathml}</div>\n' if display else mathml
        return rule

    def image(self, tokens, index, options, env):
        token = tokens[index]
        source = token.attrGet("src")
        if source not in figures:
            raise KeyError(f"the report shows {source!r}, which is not among its figures")
        encoded = base64.b64encode(figures[source]).decode("ascii")
        alt = html.escape(self.renderInlineAsText(token.children or [], options, env))
        return f'<img src="data:image/png;base64,{encoded}" alt="{alt}" data-figure="{html.escape(source)}">'

    for name, display in (("math_inline", False), ("math_inline_double", True), ("math_block", True)):
        parser.add_render_rule(name, math(display))
    parser.add_render_rule("image", image)
    body = parser.render(markdown)
    return _PAGE.format(title=html.escape(title), body=body, css=_CSS)


_CSS = """
body { font: 16px/1.55 Georgia, 'DejaVu Serif', serif; color: #1d1d1f; margin: 0; background: #fafafa; }
main { max-width: 58rem; margin: 0 auto; padding: 2rem 1.5rem 4rem; background: #fff; }
h1, h2, h3 { font-family: 'Helvetica Neue', Arial, 'DejaVu Sans', sans-serif; line-height: 1.25; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: .3rem; margin-top: 2.5rem; }
code, pre { font: 13px/1.45 'DejaVu Sans Mono', Menlo, monospace; background: #f3f3f3; }
code { padding: 0 .2em; }
pre { padding: .8rem; overflow-x: auto; }
pre code { padding: 0; background: none; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 14px; display: block; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: .25rem .55rem; }
th { background: #f0f0f0; }
td { font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 1rem auto; }
.equation { overflow-x: auto; margin: 1rem 0; }
math { font-family: 'Latin Modern Math', 'STIX Two Math', 'Cambria Math', 'DejaVu Math TeX Gyre', math; }
math[display="block"] { font-size: 1.15em; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""
