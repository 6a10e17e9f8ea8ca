"""JSON bodies held to what JSON and Unicode allow, and 422 answers that always encode.

Python's ``json`` reads ``NaN``, ``Infinity``, ``1e309`` (as infinity) and ``"\\ud800"``
(a lone surrogate), none of which is valid JSON or valid Unicode; echoed back in an
answer, each made the answer unencodable and the client got a 500.
:class:`StrictJsonRoute` parses request bodies with :func:`strict_loads`, so such a body
is refused as malformed JSON (422), and :func:`validation_error_handler` renders the
details of every 422 as printable JSON whatever input they quote.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any, NoReturn

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

MAX_ECHO_CHARS = 200
"""Longest input string a 422 quotes (longer ones end in an ellipsis)."""
MAX_ECHO_ITEMS = 20
"""Most items of an input list or object a 422 quotes."""

_SURROGATE = re.compile("[\ud800-\udfff]")
_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def strict_loads(body: bytes | str) -> Any:
    """Parse a JSON document, refusing non-finite numbers and lone surrogates.

    Parameters
    ----------
    body : bytes or str
        The request body (UTF-8, -16 or -32, as :func:`json.loads` detects).

    Returns
    -------
    Any
        The parsed document.

    Raises
    ------
    json.JSONDecodeError
        On malformed JSON, on ``NaN``, ``Infinity`` or a number beyond the float range,
        and on a string holding a surrogate code point that is not half of a pair.
    """
    text = body if isinstance(body, str) else body.decode(json.detect_encoding(body), "surrogatepass")

    def refuse(literal: str) -> NoReturn:
        raise json.JSONDecodeError(f"{literal} is not a finite number", text, max(text.find(literal), 0))

    def finite(literal: str) -> float:
        value = float(literal)
        return value if math.isfinite(value) else refuse(literal)

    document = json.loads(text, parse_constant=refuse, parse_float=finite)
    if _SURROGATE.search(text) or "\\u" in text:
        _refuse_surrogates(document, text)
    return document


def _refuse_surrogates(document: Any, text: str) -> None:
    """Raise :class:`json.JSONDecodeError` at the first string of ``document`` with a surrogate."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and (found := _SURROGATE.search(value)):
            escape = f"\\u{ord(found.group()):04x}"
            position = text.lower().find(escape)
            raise json.JSONDecodeError(f"lone surrogate {escape} in a string (not Unicode text)", text,
                                       position if position >= 0 else max(text.find(found.group()), 0))


class StrictJsonRequest(Request):
    """A request whose :meth:`json` is :func:`strict_loads`."""

    async def json(self) -> Any:
        """The body parsed by :func:`strict_loads` (once)."""
        if not hasattr(self, "_json"):
            self._json = strict_loads(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """An API route that reads its JSON body with :func:`strict_loads` (a bad body is a 422)."""

    def get_route_handler(self) -> Callable[[Request], Any]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_handler


async def validation_error_handler(request: Request, error: RequestValidationError) -> JSONResponse:
    """The 422 answer to a request that failed validation, its quoted input made printable."""
    return JSONResponse({"detail": printable(error.errors())}, status_code=422)


def printable(value: Any) -> Any:
    """``value`` as JSON that always encodes: the shape of a validation error's input, shortened.

    Non-finite floats become the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``;
    surrogates and undecodable bytes become backslash escapes; strings longer than
    :data:`MAX_ECHO_CHARS` and containers longer than :data:`MAX_ECHO_ITEMS` are cut,
    and any other object is quoted by its ``str``.
    """
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _NON_FINITE.get(value, "NaN")
    if isinstance(value, bytes):
        return printable(value.decode("utf-8", "backslashreplace"))
    if isinstance(value, str):
        return _printable_text(value)
    if isinstance(value, dict):
        return {_printable_text(str(key)): printable(item) for key, item in list(value.items())[:MAX_ECHO_ITEMS]}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [printable(item) for item in list(value)[:MAX_ECHO_ITEMS]]
    return _printable_text(str(value))


def _printable_text(text: str) -> str:
    if len(text) > MAX_ECHO_CHARS:
        text = text[:MAX_ECHO_CHARS] + "…"
    if _SURROGATE.search(text):
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text
