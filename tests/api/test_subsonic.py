"""Issue 16: the OpenSubsonic API at ``/rest`` — the envelope in JSON and XML against the
specification's schemas, ``.view`` and form POST, authentication and its error codes, the
``[subsonic]`` config and ``serve --config``."""

from __future__ import annotations

import hashlib
import os
import re
import xml.etree.ElementTree as ET

import pytest
import uvicorn
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

from api.browser import serve
from api.subsonic_checks import (NAMESPACE, answer, call, error_code, ok, schema_methods, token_auth, validator,
                                 xml_matches_json)
from api.subsonic_server import API_KEY, PASSWORD, USERS
from cli_runner import invoke
from moodscape.api import create_app
from moodscape.api.subsonic import METHODS
from moodscape.config import Settings, SubsonicSettings
from moodscape.errors import ConfigError


@pytest.fixture(scope="module")
def bundle(subsonic_source, tmp_path_factory):
    copy = copy_bundle(subsonic_source, tmp_path_factory.mktemp("subsonic"))
    return copy


@pytest.fixture(scope="module")
def base(bundle):
    with serve(create_app(bundle, subsonic=USERS)) as url:
        yield url


@pytest.fixture(scope="module")
def song_ids(base) -> list[str]:
    """Every song id, in catalog order (an empty search3 query pages through everything)."""
    return [song["id"] for song in ok(call(base, "search3", {"query": "", "songCount": 1000}))["searchResult3"]["song"]]


def valid_calls(base, song_ids) -> list[tuple[str, dict]]:
    """One valid call of every method of the specification's schemas, in an order that creates before it deletes."""
    album = ok(call(base, "getAlbumList2", {"type": "alphabeticalByArtist", "size": 1}))["albumList2"]["album"][0]
    playlist = ok(call(base, "createPlaylist", {"name": "schema", "songId": song_ids[:2]}))["playlist"]["id"]
    plan = {
        "getArtist": {"id": album["artistId"]}, "getAlbum": {"id": album["id"]}, "getSong": {"id": song_ids[0]},
        "getSongsByGenre": {"genre": "Sad"}, "getAlbumList2": {"type": "random"}, "search3": {"query": "a"},
        "getRandomSongs": {"size": 3}, "getSimilarSongs": {"id": song_ids[0]}, "getSimilarSongs2": {"id": album["artistId"]},
        "getSonicSimilarTracks": {"id": song_ids[0]}, "findSonicPath": {"startSongId": song_ids[0], "endSongId": song_ids[5]},
        "getPlaylist": {"id": playlist}, "createPlaylist": {"name": "another", "songId": song_ids[3]},
        "updatePlaylist": {"playlistId": playlist, "songIdToAdd": song_ids[4]}, "deletePlaylist": {"id": playlist},
    }
    order = sorted(schema_methods(), key=lambda method: method == "deletePlaylist")
    return [(method, plan.get(method, {})) for method in order]


def test_every_method_answers_by_the_opensubsonic_schema_in_json_and_the_same_in_xml(base, song_ids):
    checked = []
    for method, params in valid_calls(base, song_ids):
        as_json = call(base, method, params)
        body = ok(as_json)
        errors = [error.message for error in validator(method).iter_errors(as_json.json())]
        assert errors == [], (method, errors[:3])
        assert {"status": "ok", "version": "1.16.1", "type": "moodscape", "openSubsonic": True}.items() <= body.items()
        if method not in CHANGING:
            as_xml = call(base, method, params, fmt="")  # XML is the default
            assert as_xml.headers["content-type"].startswith("text/xml")
            xml_matches_json(ET.fromstring(as_xml.content), body)
        checked.append(method)
    assert len(checked) == len(schema_methods()) == 23


CHANGING = ("getRandomSongs", "getAlbumList2", "createPlaylist", "updatePlaylist", "deletePlaylist")
"""Methods whose second identical call answers differently (random lists, a new or deleted playlist)."""


def test_xml_answers_carry_every_json_field(base, song_ids):
    for method, params in [("getSong", {"id": song_ids[0]}), ("getGenres", {}), ("getOpenSubsonicExtensions", {}),
                           ("getSonicSimilarTracks", {"id": song_ids[0], "count": 3})]:
        root = ET.fromstring(call(base, method, params, fmt="xml").content)
        xml_matches_json(root, ok(call(base, method, params)))
    song = ET.fromstring(call(base, "getSong", {"id": song_ids[0]}, fmt="xml").content).find(f"{NAMESPACE}song")
    assert song.get("title") == "Été indien" and song.find(f"{NAMESPACE}moodscape").get("label")


def test_view_suffix_and_form_post_answer_like_get(base, song_ids):
    direct = ok(call(base, "getSong", {"id": song_ids[1]}))
    assert ok(call(base, "getSong.view", {"id": song_ids[1]})) == direct
    assert ok(call(base, "getSong.view", {"id": song_ids[1]}, post=True)) == direct
    assert error_code(call(base, "getSong", {"id": "so-bm8tc3VjaA"}, post=True)) == 70


def test_jsonp_wraps_the_json_in_the_callback(base):
    response = call(base, "ping", {"callback": "handle.answer"}, fmt="jsonp")
    assert response.text.startswith("handle.answer({\"subsonic-response\":") and response.text.endswith(");")
    assert answer(call(base, "ping", {"callback": "alert(1)//"}, fmt="jsonp"))["status"] == "ok"  # not a name: plain JSON


def test_an_unknown_method_is_a_404_with_a_subsonic_error(base):
    response = call(base, "getChatMessages")
    assert response.status_code == 404
    assert response.json()["subsonic-response"]["error"]["code"] == 0
    assert "getSonicSimilarTracks" in response.json()["subsonic-response"]["error"]["message"]


# --------------------------------------------------------------------------- authentication

def _plain(user="ana", password=PASSWORD):
    return {"u": user, "p": password}


AUTH_CASES = {
    "token": (token_auth(), None),
    "clear password": (_plain(), None),
    "hex password": ({"u": "ana", "p": "enc:" + PASSWORD.encode().hex()}, None),
    "api key": ({"apiKey": API_KEY}, None),
    "nothing": ({}, 10),
    "user alone": ({"u": "ana"}, 10),
    "token without salt": ({"u": "ana", "t": token_auth()["t"]}, 10),
    "wrong password": (_plain(password="open"), 40),
    "wrong token": ({**token_auth(), "t": "0" * 32}, 40),
    "unknown user": (_plain(user="eve"), 40),
    "bad hex password": ({"u": "ana", "p": "enc:zz"}, 40),
    "password of an api-key-only user": (_plain(user="bob", password="x"), 40),
    "token of an api-key-only user": (token_auth(user="bob", password="x"), 40),
    "api key with a user": ({"apiKey": API_KEY, "u": "bob"}, 43),
    "password and token": ({**token_auth(), "p": PASSWORD}, 43),
    "wrong api key": ({"apiKey": "not-a-key"}, 44),
}


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("case", list(AUTH_CASES))
def test_credentials_are_checked_with_the_subsonic_error_codes(base, case, fmt):
    credentials, code = AUTH_CASES[case]
    response = call(base, "ping", auth=credentials, fmt=fmt)
    if code is None:
        assert response.status_code == 200 and "failed" not in response.text, response.text
    else:
        assert error_code(response) == code, response.text


def test_every_method_refuses_a_call_without_credentials_except_the_extension_list(base):
    for method in METHODS:
        response = call(base, method, {"id": "so-eA"}, auth={})
        if method == "getOpenSubsonicExtensions":
            assert {"sonicSimilarity", "formPost", "apiKeyAuthentication"} <= {
                extension["name"] for extension in ok(response)["openSubsonicExtensions"]}
        else:
            assert error_code(response) == 10, method
            assert error_code(call(base, method, {"id": "so-eA"}, auth=_plain(password="open"), post=True)) == 40, method


def test_without_subsonic_users_every_call_is_refused_with_a_hint(bundle):
    with TestClient(create_app(bundle)) as client:
        body = client.get("/rest/ping", params={**_plain(), "f": "json"}).json()["subsonic-response"]
    assert body["error"]["code"] == 40 and "[[subsonic.users]]" in body["error"]["message"]


# --------------------------------------------------------------------------- config and serve --config

def test_the_subsonic_section_reads_users_and_keeps_secrets_out_of_dumps(tmp_path):
    config = tmp_path / "moodscape.toml"
    digest = hashlib.sha256(b"k").hexdigest()
    config.write_text(f'[data]\nsource = "folder"\n[folder]\nroot = "music"\n'
                      f'[[subsonic.users]]\nname = "ana"\npassword = "sesame"\n[[subsonic.users]]\nname = "bob"\napi_key_sha256 = "{digest}"\n')
    subsonic = SubsonicSettings.load(config)
    assert [user.name for user in subsonic.users] == ["ana", "bob"]
    assert subsonic.users[0].password.get_secret_value() == "sesame" and "sesame" not in repr(subsonic)
    settings = Settings.load(config)
    assert settings.subsonic == subsonic
    assert "subsonic" not in settings.model_dump(mode="json")  # never in the manifest or the report


@pytest.mark.parametrize("text, problem", [
    ('[[subsonic.users]]\nname = "ana"\n', "needs a password or an api_key_sha256"),
    ('[[subsonic.users]]\nname = "ana"\npassword = "a"\n[[subsonic.users]]\nname = "ana"\npassword = "b"\n', "unique"),
    ('[[subsonic.users]]\nname = "ana"\napi_key_sha256 = "abc"\n', "api_key_sha256"),
    ('subsonic = 3\n', "expected a table of settings"),
    ('[[subsonic.users]]\nname = "ana"\npasword = "hunter2"\n', "did you mean subsonic.users.0.password?"),
])
def test_a_bad_subsonic_section_is_one_error_naming_the_file_and_key(tmp_path, text, problem):
    config = tmp_path / "serve.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(problem)) as raised:
        SubsonicSettings.load(config)
    assert str(config) in str(raised.value) and "subsonic" in str(raised.value)
    assert "hunter2" not in str(raised.value)  # a mistyped password key does not print the password


@pytest.fixture()
def no_server(monkeypatch) -> list:
    """``uvicorn.run`` recorded instead of serving; the list of its calls."""
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    return calls


def test_serve_config_gives_the_app_its_users(bundle, tmp_path, no_server, monkeypatch):
    config = tmp_path / "serve.toml"
    config.write_text('[[subsonic.users]]\nname = "ana"\npassword = "sesame"\n')
    result = invoke("serve", "--bundle", bundle, "--port", "0", "--config", config)
    assert result.exit_code == 0, result.output
    (app,), _ = no_server[0]
    assert [user.name for user in app.state.subsonic.settings.users] == ["ana"]
    for name in ("MOODSCAPE_CONFIG", "MOODSCAPE_BUNDLE"):  # serve sets them for its workers: restored after the test
        monkeypatch.setenv(name, "")
    result = invoke("serve", "--bundle", bundle, "--port", "0", "--config", config, "--workers", "2")
    assert result.exit_code == 0, result.output
    assert os.environ["MOODSCAPE_CONFIG"] == str(config.resolve())


def test_serve_with_a_bad_config_stops_with_one_line(bundle, tmp_path, no_server):
    config = tmp_path / "serve.toml"
    config.write_text('[[subsonic.users]]\nname = ""\npassword = "x"\n')
    result = invoke("serve", "--bundle", bundle, "--port", "0", "--config", config)
    assert result.exit_code != 0 and not no_server
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "subsonic.users.0.name" in lines[0], result.output
