"""Range requests held to RFC 9110: a ``Range`` header the server cannot use is ignored, not refused.

Starlette's file responses answer a ``Range`` they cannot parse (``items=0-5``,
``bytes=10-5``, ``bytes=abc``) with a 400, where RFC 9110 (section 14.2) says a server
MUST ignore a range unit it does not understand and may ignore an invalid range set:
the client then gets the whole file (200), as from any server that does not do ranges.
:class:`IgnoreInvalidRange` removes such a header before any route sees it; a valid one
goes through to Starlette, which answers 206 or, when no range lies in the file, 416.
"""

from __future__ import annotations

import re

MAX_RANGE_DIGITS = 1000
"""Longest position a valid range may hold; Python's ``int`` refuses numbers of 4300 digits and more."""

_RANGE_SPEC = re.compile(rf"([0-9]{{1,{MAX_RANGE_DIGITS}}})-([0-9]{{0,{MAX_RANGE_DIGITS}}})|-[0-9]{{1,{MAX_RANGE_DIGITS}}}")
_READS = frozenset({"GET", "HEAD"})


def is_valid_range(value: str) -> bool:
    """Whether a ``Range`` header value is a valid byte-range set (RFC 9110 section 14.1.1).

    ``bytes=`` then a comma-separated list (empty elements allowed) of ``first-last``,
    ``first-`` and ``-suffix``, at least one of them, none with ``last < first``. Whether a
    range lies in the file is not judged here (an unsatisfiable range is valid: 416).

    Parameters
    ----------
    value : str
        The header, as Starlette decodes it (latin-1).

    Returns
    -------
    bool
    """
    unit, equals, specs = value.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return False
    parts = [part.strip() for part in specs.split(",")]
    for part in parts:
        match = _RANGE_SPEC.fullmatch(part) if part else None
        if part and (match is None or (match[2] and int(match[2]) < int(match[1]))):
            return False
    return any(parts)


class IgnoreInvalidRange:
    """ASGI middleware: a GET or HEAD whose ``Range`` header is not valid (:func:`is_valid_range`) loses it.

    The request then gets the whole file (200) from a file route instead of Starlette's
    400. Other requests pass untouched, after a look at their header names.

    Parameters
    ----------
    app : ASGI application
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["method"] in _READS:
            headers = scope["headers"]
            ranges = [value for name, value in headers if name == b"range"]
            if ranges and not is_valid_range(ranges[0].decode("latin-1")):
                scope = {**scope, "headers": [(name, value) for name, value in headers if name != b"range"]}
        await self.app(scope, receive, send)
