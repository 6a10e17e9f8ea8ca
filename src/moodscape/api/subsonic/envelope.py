"""The ``subsonic-response`` envelope, as JSON, JSONP or XML, and the Subsonic error codes.

A method answers a *payload*: a dict of the elements under ``subsonic-response``
(``{"song": {...}}``). :func:`render` wraps it with ``status``, ``version``, ``type``,
``serverVersion`` and ``openSubsonic`` and writes it in the format the client asked for
(``f=json``, ``f=jsonp`` with ``callback``, else XML). Both forms follow the Subsonic
conventions: in XML a scalar field is an attribute, an object a child element, a list
repeated child elements of the field's name, and a field named ``value`` the element's
text (``<genre songCount="3">Rock</genre>``). ``None`` and non-finite numbers are left
out, and text that XML 1.0 cannot carry (control characters) is dropped from XML answers.

Errors are answered as the spec says most servers do: HTTP 200, ``status="failed"`` and an
``error`` element with the code (:class:`SubsonicError`).
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from typing import Any

from fastapi.responses import Response

from moodscape import __version__

API_VERSION = "1.16.1"
SERVER_TYPE = "moodscape"
NAMESPACE = "http://subsonic.org/restapi"

GENERIC = 0
MISSING_PARAMETER = 10
WRONG_CREDENTIALS = 40
TOKEN_NOT_SUPPORTED = 41
MECHANISM_NOT_SUPPORTED = 42
CONFLICTING_MECHANISMS = 43
INVALID_API_KEY = 44
NOT_AUTHORIZED = 50
NOT_FOUND = 70

_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$]{0,99}(\.[A-Za-z_$][\w$]{0,99}){0,4}$")


class SubsonicError(Exception):
    """A failed call: answered with ``status="failed"`` and ``error {code, message}``.

    Parameters
    ----------
    code : int
        One of the Subsonic error codes (:data:`MISSING_PARAMETER`, :data:`NOT_FOUND`, ...).
    message : str
        What went wrong and, where it helps, what to do.
    """

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def envelope(status: str = "ok") -> dict[str, Any]:
    """The attributes every ``subsonic-response`` carries."""
    return {"status": status, "version": API_VERSION, "type": SERVER_TYPE, "serverVersion": __version__, "openSubsonic": True}


def render(payload: dict[str, Any], fmt: str | None, callback: str | None = None, *, status: str = "ok") -> Response:
    """The HTTP answer of a method's payload in the format the client asked for.

    Parameters
    ----------
    payload : dict
        Elements under ``subsonic-response``.
    fmt : str or None
        The ``f`` parameter: ``"json"``, ``"jsonp"`` (with ``callback``), else XML.
    callback : str or None
        The JSONP function name; a name that is not a plain (dotted) identifier gives JSON.
    status : str
        ``"ok"`` or ``"failed"``.
    """
    document = {**envelope(status), **payload}
    if fmt in ("json", "jsonp"):
        text = json.dumps({"subsonic-response": _plain(document)}, separators=(",", ":"))
        if fmt == "jsonp" and callback and _CALLBACK.match(callback):
            return Response(f"{callback}({text});", media_type="application/javascript")
        return Response(text, media_type="application/json")
    root = _element("subsonic-response", document)
    root.set("xmlns", NAMESPACE)
    body = ET.tostring(root, encoding="unicode", xml_declaration=False)
    return Response('<?xml version="1.0" encoding="UTF-8"?>\n' + body, media_type="text/xml; charset=utf-8")


def render_error(error: SubsonicError, fmt: str | None, callback: str | None = None) -> Response:
    """The ``status="failed"`` answer of ``error`` (HTTP 200, as Subsonic clients expect)."""
    return render({"error": {"code": error.code, "message": error.message}}, fmt, callback, status="failed")


def _plain(value: Any) -> Any:
    """``value`` with ``None`` fields and non-finite numbers dropped (JSON cannot carry NaN)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items() if _present(item)}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value if _present(item)]
    return value


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and not math.isfinite(value))


def _element(name: str, value: Any) -> ET.Element:
    element = ET.Element(name)
    if not isinstance(value, dict):
        element.text = _text(value)
        return element
    for key, item in value.items():
        if not _present(item):
            continue
        if key == "value" and not isinstance(item, (dict, list, tuple)):
            element.text = _text(item)
        elif isinstance(item, dict):
            element.append(_element(key, item))
        elif isinstance(item, (list, tuple)):
            element.extend(_element(key, member) for member in item if _present(member))
        else:
            element.set(key, _text(item))
    return element


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _NOT_XML.sub("", str(value))
