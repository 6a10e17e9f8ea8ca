"""A catalogue of hostile values in every parameter and body field the app's OpenAPI schema lists.

Each kind of value (wrong types, huge and negative numbers, NaN and infinities, unicode,
10,000-character strings, 10,000-item lists, path traversal) goes, one field at a time,
into every path parameter, query parameter (and one undeclared) and JSON body field of
every operation, the other fields keeping valid values. No answer may be a 5xx or show a
filesystem path.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from loopback import free_port
from serving_bundle import copy_bundle

from moodscape.api import create_app

TRAVERSAL = ["../../../../etc/passwd", "..\\..\\..\\windows\\win.ini", "....//....//etc/passwd", "/etc/passwd",
             "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "file:///etc/passwd", "..", ".", "nul\x00byte"]
MANY_IDS = [f"no-such-track-{index}" for index in range(10_000)]
MAX_QUERY_ITEMS = 1_000
UNDECLARED = "unexpected"
"""A query parameter no operation declares, sent to every one."""

KINDS: dict[str, list] = {
    "wrong_type": [{"a": 1}, [1, 2], "text", True, None, 0],
    "huge_number": [1e308, 10**30, -(10**30), 2**63, 1.7976931348623157e308],
    "negative": [-1, -0.5, -(2**31), -1e-300],
    "non_finite": ["NaN", "Infinity", "-Infinity", "1e309"],
    "unicode": ["ünïcödé 🎵", "\u202egnp.exe", "\ufeff", "\u0000", "Ω≈ç√∫˜µ≤≥÷", "𝕸𝖔𝖔𝖉", "\ud800", "a\udfff"],
    "long_string": ["x" * 10_000, "é" * 10_000],
    "many_items": [MANY_IDS],
    "traversal": TRAVERSAL,
}
"""Values of each kind; the ``non_finite`` ones are raw JSON text (and query text)."""

LEAK_MARKERS = ["Traceback", "site-packages", "root:x:0:0", "moodscape-upload"]


@dataclass
class Operation:
    """One method and path of the schema, with the names of its parameters and JSON body fields."""

    method: str
    path: str
    path_parameters: list[str]
    query_parameters: list[str]
    body_fields: list[str]
    json_body: bool


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory) -> Path:
    """A private copy of the demo bundle (the catalogue renames labels)."""
    return copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def client(bundle):
    """A client that answers server errors as responses, to list them all."""
    with TestClient(create_app(bundle), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def valid(client) -> dict:
    """Valid values of the schema's path parameters and a valid body per JSON operation."""
    track = client.get("/api/v1/tracks", params={"limit": 1}).json()["items"][0]["track_id"]
    label = client.get("/api/v1/labels").json()["items"][0]["label"]
    return {
        "track_id": track, "label": label,
        "bodies": {
            "/api/v1/recommend/mood": {"target_valence": 0.5, "target_arousal": 0.5},
            "/api/v1/recommend/seeds": {"seeds": [track]},
            "/api/v1/recommend/label": {"label": label},
            "/api/v1/path": {"start": {"valence": 0.1, "arousal": 0.1}, "end": {"track_id": track}},
            "/api/v1/tracks/lookup": {"track_ids": [track]},
            "/api/v1/playlists/export": {"track_ids": [track]},
            "/api/v1/labels/{label}/name": {"name": "catalogue"},
            "/api/v1/mpd/push": {"track_ids": [track], "music_directory": "/", "host": "127.0.0.1", "port": free_port()},
        },
    }


@pytest.fixture(scope="module")
def operations(client) -> list[Operation]:
    """Every operation of the app's OpenAPI schema."""
    schema = client.app.openapi()
    found = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            parameters = operation.get("parameters", [])
            content = operation.get("requestBody", {}).get("content", {})
            body = resolve(schema, content.get("application/json", {}).get("schema", {}))
            found.append(Operation(
                method.upper(), path,
                [p["name"] for p in parameters if p["in"] == "path"],
                [p["name"] for p in parameters if p["in"] == "query"],
                sorted(body_fields(schema, body)), "application/json" in content))
    return found


def resolve(schema: dict, node: dict) -> dict:
    """A schema node with its ``$ref`` followed."""
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def body_fields(schema: dict, body: dict, prefix: str = "") -> list[str]:
    """Dotted names of a body schema's fields, nested objects included (``start.valence``)."""
    names = []
    for name, node in body.get("properties", {}).items():
        names.append(prefix + name)
        nested = [resolve(schema, option) for option in [node, *node.get("anyOf", [])]]
        for option in nested:
            if "properties" in option:
                names += body_fields(schema, option, f"{prefix}{name}.")
    return names


def leak_markers(bundle: Path) -> list[str]:
    """Text that shows a server path or a traceback: the bundle, working, home, temporary and Python folders."""
    paths = {str(bundle), str(bundle.resolve()), os.getcwd(), sys.prefix, str(Path.home()), tempfile.gettempdir() + os.sep}
    return LEAK_MARKERS + sorted(path for path in paths if len(path) > 1)


def json_text(value) -> str:
    """A value as JSON text; strings of :data:`KINDS` ``non_finite`` stay raw."""
    return value if value in KINDS["non_finite"] else json.dumps(value)


def body_with(body: dict, dotted: str, value) -> bytes:
    """``body`` with the field at ``dotted`` set to ``value`` (raw JSON for non-finite), as bytes."""
    body = json.loads(json.dumps(body))
    *parents, name = dotted.split(".")
    node = body
    for parent in parents:
        if not isinstance(node.get(parent), dict):
            node[parent] = {}
        node = node[parent]
    node[name] = "__CATALOGUE__"
    return json.dumps(body).replace('"__CATALOGUE__"', json_text(value)).encode("utf-8", "surrogatepass")


def query_text(value) -> list[str]:
    """A value as query text; a list repeats the key, for as many items as a URL holds (HTTP clients stop at 64 KiB)."""
    if isinstance(value, list):
        return [str(item) for item in value[:MAX_QUERY_ITEMS]]
    return ["" if value is None else json.dumps(value) if isinstance(value, (dict, bool)) else str(value)]


def quoted(text: str, safe: str = "") -> str:
    """Percent-encoded UTF-8 of ``text``, lone surrogates included (as a careless client would send them)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe=safe)


def url(operation: Operation, valid: dict, overrides: dict[str, str] | None = None, query: list | None = None) -> str:
    """The operation's URL: valid path parameters unless overridden (already quoted), and a query of (name, text) pairs."""
    path = operation.path
    for name in operation.path_parameters:
        value = (overrides or {}).get(name)
        path = path.replace(f"{{{name}}}", value if value is not None else quoted(valid[name]))
    return path + ("?" + "&".join(f"{name}={quoted(item)}" for name, item in query) if query else "")


def requests_for(operation: Operation, valid: dict, values: list):
    """(description, method, url, body) of every field of ``operation`` set to each value."""
    body = valid["bodies"].get(operation.path, {})
    encoded_body = json.dumps(body).encode() if operation.json_body else None
    for value in values:
        text = query_text(value)
        for name in operation.path_parameters:
            for form in {quoted(text[0]), quoted(text[0], safe="/")}:
                yield f"path {name}={form[:40]!r}", operation.method, url(operation, valid, {name: form}), encoded_body
        for name in [*operation.query_parameters, UNDECLARED]:
            query = [(name, item) for item in text]
            yield f"query {name}={text[0][:40]!r}", operation.method, url(operation, valid, query=query), encoded_body
        for dotted in operation.body_fields:
            yield f"body {dotted}={json_text(value)[:40]!r}", operation.method, url(operation, valid), body_with(body, dotted, value)


def no_mpd_listening(target: str, response) -> bool:
    """Whether ``response`` is the push's documented 503 for an MPD that is not running (the body's port is closed)."""
    return (target.startswith("/api/v1/mpd/push") and response.status_code == 503
            and "is mpd running there?" in response.json().get("detail", ""))


def check(client, markers: list[str], request) -> str | None:
    """What is wrong with the answer to one request, or ``None``."""
    description, method, target, body = request
    headers = {"Content-Type": "application/json"} if body is not None else {}
    response = client.request(method, target, content=body, headers=headers)
    text = response.content.decode("utf-8", "replace")
    problem = None
    if response.status_code >= 500 and not no_mpd_listening(target, response):
        problem = f"status {response.status_code}"
    elif leaked := [marker for marker in markers if marker in text]:
        problem = f"shows {leaked}"
    return None if problem is None else f"{method} {target[:80]} {description}: {problem}: {text[:200]}"


def test_the_catalogue_covers_every_operation(operations, valid):
    paths = {operation.path for operation in operations}
    assert {"/api/v1/recommend/mood", "/api/v1/recommend/seeds", "/api/v1/tracks/{track_id}", "/api/v1/tracks",
            "/api/v1/labels/{label}/name", "/api/v1/projection"} <= paths
    json_paths = {operation.path for operation in operations if operation.json_body}
    assert json_paths == set(valid["bodies"]), "every JSON operation needs a valid body here"
    assert all(operation.body_fields for operation in operations if operation.json_body)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_no_hostile_value_gives_a_server_error_or_shows_a_path(client, bundle, operations, valid, kind):
    markers = leak_markers(bundle)
    problems = [problem for operation in operations
                for request in requests_for(operation, valid, KINDS[kind])
                if (problem := check(client, markers, request))]
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:30])


@pytest.mark.parametrize("target", ["/", "/static/app.js", "/static/..%2F..%2Fapp.py", "/static/%2e%2e/%2e%2e/app.py",
                                    "/static/../../../../etc/passwd", "/static/%00", "/docs", "/openapi.json", "/health", "/ready"])
def test_pages_answer_without_server_errors_or_paths(client, bundle, target):
    response = client.get(target)
    assert response.status_code < 500, response.text
    text = response.content.decode("utf-8", "replace")
    assert not [marker for marker in leak_markers(bundle) if marker in text]
