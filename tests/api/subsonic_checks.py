"""Helpers of the Subsonic tests: call the live server, check answers against the OpenSubsonic
schemas (JSON) and against their JSON twin (XML)."""

from __future__ import annotations

import functools
import hashlib
import json
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import jsonschema_rs

from api.subsonic_server import PASSWORD

NAMESPACE = "{http://subsonic.org/restapi}"
SCHEMAS = Path(__file__).with_name("opensubsonic") / "responses.json"


def token_auth(user: str = "ana", password: str = PASSWORD) -> dict[str, str]:
    """``u``, ``t`` = md5(password + salt) and ``s``, as most players send them."""
    salt = secrets.token_hex(4)
    return {"u": user, "t": hashlib.md5((password + salt).encode()).hexdigest(), "s": salt, "v": "1.16.1", "c": "tests"}


def call(base: str, method: str, params: dict | None = None, *, auth: dict | None = None, fmt: str = "json",
         post: bool = False, headers: dict | None = None) -> httpx.Response:
    """One Subsonic call (GET, or POST with a form body), ``ana``'s token credentials by default."""
    query = {**(token_auth() if auth is None else auth), **({"f": fmt} if fmt else {}), **(params or {})}
    url = f"{base}/rest/{method}"
    if post:
        return httpx.post(url, data=query, headers=headers, timeout=30)
    return httpx.get(url, params=query, headers=headers, timeout=30)


def answer(response: httpx.Response) -> dict:
    """The ``subsonic-response`` of a JSON answer (HTTP 200 checked)."""
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    return response.json()["subsonic-response"]


def ok(response: httpx.Response) -> dict:
    body = answer(response)
    assert body["status"] == "ok", body
    return body


def error_code(response: httpx.Response) -> int:
    """The Subsonic error code of a failed answer, JSON or XML (HTTP 200 checked)."""
    assert response.status_code == 200, response.text[:500]
    if response.headers["content-type"].startswith("application/json"):
        body = response.json()["subsonic-response"]
        assert body["status"] == "failed", body
        return body["error"]["code"]
    root = ET.fromstring(response.content)
    assert root.tag == f"{NAMESPACE}subsonic-response" and root.get("status") == "failed", response.text
    return int(root.find(f"{NAMESPACE}error").get("code"))


@functools.cache
def _schemas() -> dict:
    return json.loads(SCHEMAS.read_text())


@functools.cache
def validator(method: str):
    """A validator of ``method``'s answers by the OpenSubsonic specification's JSON schema."""
    schemas = _schemas()
    return jsonschema_rs.validator_for({"$ref": f"#/$defs/{schemas['methods'][method]}", "$defs": schemas["$defs"]})


def schema_methods() -> list[str]:
    return sorted(_schemas()["methods"])


def xml_matches_json(element: ET.Element, value, name: str = "subsonic-response") -> None:
    """Assert that an XML element carries exactly the JSON ``value``, by the Subsonic mapping:
    scalars are attributes (``value`` the text), objects child elements, lists repeated children."""
    assert element.tag == f"{NAMESPACE}{name}", (element.tag, name)
    if not isinstance(value, dict):
        assert element.text == _text(value) and not len(element) and not element.attrib, (name, element.text, value)
        return
    scalars = {key: _text(item) for key, item in value.items() if not isinstance(item, (dict, list)) and key != "value"}
    attributes = {key: item for key, item in element.attrib.items() if key != "xmlns"}
    assert attributes == scalars, (name, attributes, scalars)
    assert (element.text or None) == (_text(value["value"]) if "value" in value else None), (name, element.text)
    children = [(key, item) for key, item in value.items() if isinstance(item, dict)]
    children += [(key, member) for key, items in value.items() if isinstance(items, list) for member in items]
    found = list(element)
    assert sorted(child.tag for child in found) == sorted(f"{NAMESPACE}{key}" for key, _ in children), name
    for key in {key for key, _ in children}:
        for child, member in zip(element.findall(f"{NAMESPACE}{key}"), [item for k, item in children if k == key], strict=True):
            xml_matches_json(child, member, key)


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
