"""JSON bodies that Python's json reads but JSON and Unicode do not allow get a 422, never a 500.

``NaN``, ``Infinity``, ``1e309`` and a lone surrogate (``"\\ud800"``) used to reach the
validation error handler, or an answer, that echoed them and could not encode them.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

from moodscape.api import create_app

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e309", "-1e309"]
SURROGATES = ['"\\ud800"', '"\\udfff"', '"\\uDC00x"', '"a\\ud83d"']


@pytest.fixture(scope="module")
def client(demo_run, tmp_path_factory):
    """A client over a private copy of the demo bundle (renames write to it); server errors are answers."""
    bundle = copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))
    with TestClient(create_app(bundle), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def track_id(client) -> str:
    return client.get("/api/v1/tracks", params={"limit": 1}).json()["items"][0]["track_id"]


@pytest.fixture(scope="module")
def label(client) -> str:
    return client.get("/api/v1/labels").json()["items"][0]["label"]


def bodies_with(value: str, track_id: str, label: str) -> list[tuple[str, str, str]]:
    """(method, path, raw JSON body) of every JSON route with ``value`` (raw JSON text) in a field."""
    track = json.dumps(track_id)
    return [
        ("POST", "/api/v1/recommend/mood", f'{{"target_valence": {value}, "target_arousal": 0.5}}'),
        ("POST", "/api/v1/recommend/mood", f'{{"target_valence": 0.5, "labels": [{value}]}}'),
        ("POST", "/api/v1/recommend/seeds", f'{{"seeds": [{track}], "va_weight": {value}}}'),
        ("POST", "/api/v1/recommend/seeds", f'{{"seeds": [{value}]}}'),
        ("POST", "/api/v1/recommend/label", f'{{"label": {json.dumps(label)}, "diversity": {value}}}'),
        ("POST", "/api/v1/path", f'{{"start": {{"valence": {value}, "arousal": 0.1}}, "end": {{"valence": 0.9, "arousal": 0.9}}}}'),
        ("POST", "/api/v1/path", f'{{"start": {{"track_id": {value}}}, "end": {{"track_id": {track}}}}}'),
        ("POST", "/api/v1/tracks/lookup", f'{{"track_ids": [{value}]}}'),
        ("POST", "/api/v1/tracks/lookup", f'{{"track_ids": [{track}], "extra": {value}}}'),
        ("POST", "/api/v1/playlists/export?format=json", f'{{"name": {value}, "track_ids": [{track}]}}'),
        ("POST", "/api/v1/playlists/export", f'{{"track_ids": [{track}, {value}]}}'),
        ("PUT", f"/api/v1/labels/{quote(label, safe='')}/name", f'{{"name": {value}}}'),
    ]


def strict_json(response) -> object:
    """The answer's JSON, refusing what JSON cannot say (NaN, infinities)."""
    def refuse(literal):
        raise AssertionError(f"the answer holds {literal}")

    return json.loads(response.content.decode("utf-8"), parse_constant=refuse)


def assert_refused(client, method: str, path: str, body: str) -> None:
    response = client.request(method, path, content=body.encode("utf-8", "surrogatepass"),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 422, f"{method} {path} {body!r} -> {response.status_code}: {response.text[:300]}"
    assert strict_json(response)["detail"], "a 422 must say what was wrong"


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_in_a_body_get_a_422(client, track_id, label, value):
    for method, path, body in bodies_with(value, track_id, label):
        assert_refused(client, method, path, body)


@pytest.mark.parametrize("value", SURROGATES)
def test_lone_surrogates_in_a_body_get_a_422(client, track_id, label, value):
    for method, path, body in bodies_with(value, track_id, label):
        assert_refused(client, method, path, body)


def test_a_lone_surrogate_as_a_key_or_raw_bytes_gets_a_422(client):
    assert_refused(client, "POST", "/api/v1/tracks/lookup", '{"track_ids": ["a"], "\\ud800": 1}')
    raw = b'{"track_ids": ["\xed\xa0\x80"]}'
    response = client.post("/api/v1/tracks/lookup", content=raw, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text


def test_the_422_says_where_and_what(client):
    response = client.post("/api/v1/recommend/mood", content=b'{"target_valence": NaN}',
                           headers={"Content-Type": "application/json"})
    error = strict_json(response)["detail"][0]
    assert error["type"] == "json_invalid" and "NaN" in error["ctx"]["error"]
    assert error["loc"] == ["body", len('{"target_valence": ')]


def test_surrogate_pairs_and_other_unicode_still_work(client, track_id):
    response = client.post("/api/v1/tracks/lookup", content=b'{"track_ids": ["\\ud83c\\udfb5 \xc3\xbc", "%s"]}' % track_id.encode(),
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.json()["missing"] == ["🎵 ü"]


def test_a_refused_rename_leaves_the_label_names_intact(client, label):
    client.put(f"/api/v1/labels/{quote(label, safe='')}/name", content=b'{"name": "\\ud800"}',
               headers={"Content-Type": "application/json"})
    response = client.get("/api/v1/labels")
    assert response.status_code == 200 and response.json()["items"][0]["label_name"] == label


def test_validation_errors_quote_undecodable_and_huge_input_safely(client):
    response = client.post("/api/v1/recommend/mood", content=b"\xff\xfe\x00garbage", headers={"Content-Type": "text/plain"})
    assert response.status_code == 422, response.text
    huge = client.post("/api/v1/tracks/lookup", json={"track_ids": ["x" * 10_000]})
    assert huge.status_code == 422 and len(huge.content) < 5_000
