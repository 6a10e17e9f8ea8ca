"""Property-based fuzzing of the whole OpenAPI schema (schemathesis): no input gives a 5xx.

Every operation of the app's own ``/openapi.json`` gets hypothesis-generated requests sent
straight to the ASGI app: requests that fit the schema, requests that break it
(schemathesis' negative mode: wrong types, out-of-range values, missing fields; strings
may hold NUL and any UTF-8, the generation defaults), and, for every JSON body, the valid
body made malformed as JSON: ``NaN``, infinities and numbers beyond the float range or
lone surrogates at a random place, cut short, with garbage, nested too deep, or random
text and bytes, under several content types.
"""

from __future__ import annotations

import json

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 40
NEGATIVE_EXAMPLES_PER_OPERATION = 20
MALFORMED_EXAMPLES_PER_OPERATION = 40

NON_FINITE = ["NaN", "-NaN", "Infinity", "-Infinity", "1e309", "-1e309", "1E400", "2.5e999999"]
"""Number literals Python's ``json`` reads as non-finite floats; none is valid JSON."""
LONE_SURROGATES = ['"\\ud800"', '"\\udfff"', '"a\\ud83d"', '"\\uDC00\\uD800"']
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "text/plain", "application/x-www-form-urlencoded",
                 "application/octet-stream"]
_MARK = "\x01moodscape-mark\x01"


def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def json_operations(app):
    return [operation for operation in operations(app)
            if any(body.media_type == "application/json" for body in operation.body)]


def test_every_operation_is_fuzzed(client):
    paths = {operation.path for operation in operations(client.app)}
    assert {"/api/v1/recommend/mood", "/api/v1/recommend/seeds", "/api/v1/path", "/api/v1/analyze",
            "/api/v1/tracks/{track_id}"} <= paths
    assert {"/api/v1/recommend/mood", "/api/v1/path", "/api/v1/tracks/lookup", "/api/v1/labels/{label}/name"} <= {
        operation.path for operation in json_operations(client.app)}


@pytest.fixture(scope="module")
def projections_computed(client):
    """The projections computed (and UMAP JIT-compiled) once, outside the fuzzer's per-call timeout."""
    for method in ("umap", "tsne"):
        assert client.get("/api/v1/projection", params={"method": method}).status_code == 200


def fuzz(strategies: dict[str, object], check, examples: int) -> list[str]:
    """Run ``check`` on ``examples`` draws of each strategy (by operation name); the first line of each failure."""
    failures = []
    for name, strategy in strategies.items():

        @given(drawn=strategy)
        @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def call(drawn):
            check(drawn)

        try:
            call()
        except AssertionError as error:
            failures.append(f"{name}: {str(error).splitlines()[0]}")
    return failures


def mpd_unreachable(case, response) -> bool:
    """Whether the answer is ``/mpd/push``'s documented 502/503 (no MPD at the fuzzed address), saying so."""
    if case.formatted_path == "/api/v1/mpd/push" and response.status_code in (502, 503):
        assert "MPD" in response.json()["detail"]
        return True
    return False


def assert_answered(case, response) -> None:
    """No 5xx (but :func:`mpd_unreachable`), and a 422 that says what was wrong."""
    if mpd_unreachable(case, response):
        return
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    if response.status_code == 422:
        assert response.json()["detail"], "a 422 must say what was wrong"


def test_no_input_gives_a_server_error(client, projections_computed):
    def check(case):
        assert_answered(case, case.call())

    strategies = {f"{operation.method} {operation.path}": operation.as_strategy() for operation in operations(client.app)}
    failures = fuzz(strategies, check, EXAMPLES_PER_OPERATION)
    assert not failures, "\n".join(failures)


def test_no_input_outside_the_schema_gives_a_server_error(client, projections_computed):
    def check(case):
        assert_answered(case, case.call())

    strategies = {f"{operation.method} {operation.path}": operation.as_strategy(GenerationMode.NEGATIVE)
                  for operation in operations(client.app)}
    failures, nothing_invalid = [], []
    for name, strategy in strategies.items():
        try:
            failures += fuzz({name: strategy}, check, NEGATIVE_EXAMPLES_PER_OPERATION)
        except Unsatisfiable:  # no parameter or body can be made invalid (e.g. GET /health)
            nothing_invalid.append(name)
    assert not failures, "\n".join(failures)
    assert len(nothing_invalid) < len(strategies) / 2, f"negative generation found nothing to break in {nothing_invalid}"


def with_literal(document, literal: str, path: list) -> str:
    """``document`` as JSON text with raw JSON ``literal`` at ``path`` (keys and indices; a new key when it ends past the document)."""
    if not path:
        return literal
    document = json.loads(json.dumps(document))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = _MARK
    return json.dumps(document).replace(json.dumps(_MARK), literal)


def places(document, path=()) -> list[list]:
    """Every place a value may go in ``document``: each value (containers included) and a new key in each object."""
    found = [list(path)]
    if isinstance(document, dict):
        found.append([*path, "moodscape-extra"])
        for key, value in document.items():
            found += places(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += places(value, (*path, index))
    return found


@st.composite
def malformed_body(draw, body) -> tuple[str, bytes, bool]:
    """(what was done, raw body, whether the body is certainly refused) for a valid JSON ``body``."""
    text = json.dumps(body)
    kind = draw(st.sampled_from(["non-finite", "surrogate", "cut", "garbage", "nested", "huge integer", "text", "bytes"]))
    if kind in ("non-finite", "surrogate"):
        literal = draw(st.sampled_from(NON_FINITE if kind == "non-finite" else LONE_SURROGATES))
        path = draw(st.sampled_from(places(body)))
        return f"{literal} at {path}", with_literal(body, literal, path).encode(), True
    if kind == "cut":
        end = draw(st.integers(0, len(text) - 1))
        return f"cut at {end}", text[:end].encode(), isinstance(body, (dict, list))
    if kind == "garbage":
        at = draw(st.integers(0, len(text)))
        junk = draw(st.binary(min_size=1, max_size=20))
        return f"{junk!r} at {at}", text.encode()[:at] + junk + text.encode()[at:], False
    if kind == "nested":
        depth = draw(st.sampled_from([1_000, 100_000]))
        return f"nested {depth} deep", ("[" * depth + "]" * depth).encode(), True
    if kind == "huge integer":
        digits = draw(st.sampled_from([400, 5_000, 50_000]))
        path = draw(st.sampled_from(places(body)))
        return f"{digits} digits at {path}", with_literal(body, "9" * digits, path).encode(), digits > 400
    if kind == "text":
        return "random text", draw(st.text(max_size=200)).encode("utf-8", "surrogatepass"), False
    return "random bytes", draw(st.binary(max_size=200)), False


def test_malformed_json_bodies_give_a_4xx(client):
    def check(drawn):
        case, (what, raw, refused), content_type = drawn
        response = case.call(data=raw, headers={"Content-Type": content_type})
        label = f"{case.method} {case.formatted_path} [{content_type}] {what}"
        if not refused and mpd_unreachable(case, response):
            return
        assert response.status_code < 500, f"{label} -> {response.status_code}: {response.text[:300]}"
        if refused:
            assert 400 <= response.status_code < 500, f"{label} -> {response.status_code}"
        if response.status_code >= 400:
            assert response.json()["detail"], f"{label}: a refusal must say what was wrong"

    strategies = {
        f"{operation.method} {operation.path}": operation.as_strategy().flatmap(
            lambda case: st.tuples(st.just(case), malformed_body(case.body if isinstance(case.body, (dict, list)) else {}),
                                   st.sampled_from(CONTENT_TYPES)))
        for operation in json_operations(client.app)
    }
    failures = fuzz(strategies, check, MALFORMED_EXAMPLES_PER_OPERATION)
    assert not failures, "\n".join(failures)
