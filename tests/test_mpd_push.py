"""``moodscape mpd push`` against a real MPD (Debian's ``mpd``) started by the test on loopback,
whose music directory holds audio files the test writes; the queue must hold exactly the
pushed files, in order."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import numpy as np
import pytest
from audio_formats import write_audio
from cli_runner import invoke
from serving_bundle import point_catalog_at, synthetic_bundle_module

from moodscape.api.catalog import load_catalog
from moodscape.api.recommender import Recommender
from loopback import free_port

MPD = shutil.which("mpd")
pytestmark = pytest.mark.skipif(MPD is None, reason="mpd is not installed (Debian: apt-get install mpd; `make test` does it as root)")
SR = 22050
NAMES = ["a/one.flac", "a/two.ogg", "b/three.mp3", "b/four four.flac", "five.ogg"]



def wait_for(condition, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def client(port: int):
    import mpd

    connection = mpd.MPDClient()
    connection.timeout = 10
    connection.connect("127.0.0.1", port)
    return connection


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """A music directory with five short files and a bundle of five tracks that are them; returns (bundle, music, files)."""
    root = tmp_path_factory.mktemp("mpd")
    music = root / "music"
    files = [write_audio(music / name, 0.2 * np.sin(2 * np.pi * (220 + 110 * k) * np.arange(SR) / SR), SR)
             for k, name in enumerate(NAMES)]
    bundle = synthetic_bundle_module().write_synthetic_bundle(root / "bundle", len(NAMES), n_labels=3)
    point_catalog_at(bundle, [str(path) for path in files])
    return bundle, music, files


@pytest.fixture(scope="module")
def mpd_port(music, tmp_path_factory):
    """A real ``mpd --no-daemon`` on a free loopback port over the music directory, its database updated."""
    _, folder, files = music
    state = tmp_path_factory.mktemp("mpd-state")
    port = free_port()
    conf = state / "mpd.conf"
    conf.write_text(f'music_directory "{folder}"\ndb_file "{state / "db"}"\nstate_file "{state / "state"}"\n'
                    f'log_file "{state / "log"}"\nbind_to_address "127.0.0.1"\nport "{port}"\nzeroconf_enabled "no"\n'
                    'audio_output {\n  type "null"\n  name "null"\n}\n')
    process = subprocess.Popen([MPD, "--no-daemon", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def answers():
            try:
                return client(port)
            except OSError:
                assert process.poll() is None, f"mpd exited: {process.stderr.read().decode(errors='replace')}"
                return None

        connection = wait_for(answers, "mpd to listen")
        connection.update()
        wait_for(lambda: "updating_db" not in connection.status() and sum("file" in entry for entry in connection.listall()) == len(files),
                 "mpd's database update")
        connection.close()
        connection.disconnect()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def queue(port: int) -> list[str]:
    connection = client(port)
    try:
        return [song["file"] for song in connection.playlistinfo()]
    finally:
        connection.close()
        connection.disconnect()


def push(music, port, *args):
    bundle, folder, _ = music
    return invoke("mpd", "push", "--workdir", bundle, "--music-directory", folder, "--port", port, *args)


def test_track_ids_are_queued_exactly_in_order_then_appended(music, mpd_port):
    ids = load_catalog(music[0]).track_ids
    order = [3, 0, 4, 1]
    result = push(music, mpd_port, "--clear", *[ids[k] for k in order])
    assert result.exit_code == 0, result.output
    assert queue(mpd_port) == [NAMES[k] for k in order]

    result = push(music, mpd_port, "--append", "--play", ids[2])
    assert result.exit_code == 0, result.output
    assert queue(mpd_port) == [NAMES[k] for k in order] + [NAMES[2]]
    connection = client(mpd_port)
    assert int(connection.status()["song"]) == len(order)  # the first pushed track plays
    connection.stop()
    connection.disconnect()


def test_a_playlist_and_a_mood_path_are_queued(music, mpd_port, tmp_path):
    catalog = load_catalog(music[0])
    ids = catalog.track_ids
    playlist = tmp_path / "list.json"
    playlist.write_text(json.dumps({"name": "x", "tracks": [{"track_id": ids[4]}, {"track_id": ids[2]}]}))
    assert push(music, mpd_port, "--clear", "--playlist", playlist).exit_code == 0
    assert queue(mpd_port) == [NAMES[4], NAMES[2]]

    recommender = Recommender(catalog.embeddings, catalog.valence, catalog.arousal, catalog.probabilities, catalog.label_of)
    path = recommender.mood_path((0.1, 0.1), (0.9, 0.9), 3)
    result = push(music, mpd_port, "--clear", "--path", "0.1,0.1:0.9,0.9", "--steps", "3")
    assert result.exit_code == 0, result.output
    assert queue(mpd_port) == [NAMES[hit.index] for hit in path] and len(path) == 3


def test_bad_requests_leave_the_queue_alone(music, mpd_port, tmp_path):
    ids = load_catalog(music[0]).track_ids
    assert push(music, mpd_port, "--clear", ids[0], ids[1]).exit_code == 0
    before = queue(mpd_port)

    outside = invoke("mpd", "push", "--workdir", music[0], "--music-directory", music[1] / "a", "--port", mpd_port, "--clear", ids[2])
    assert outside.exit_code == 2 and "outside MPD's music directory" in outside.output

    unknown = push(music, mpd_port, "--clear", "no-such-track")
    assert unknown.exit_code == 2 and "no-such-track" in unknown.output

    (music[1] / "new.flac").write_bytes((music[1] / "a" / "one.flac").read_bytes())  # on disk, not in MPD's database
    point_catalog_at(music[0], [str(path) for path in music[2][:4]] + [str(music[1] / "new.flac")])
    try:
        not_in_db = push(music, mpd_port, "--clear", ids[0], ids[4])
        assert not_in_db.exit_code == 2 and "new.flac" in not_in_db.output and "nothing was queued" in not_in_db.output
    finally:
        point_catalog_at(music[0], [str(path) for path in music[2]])

    unreachable = invoke("mpd", "push", "--workdir", music[0], "--music-directory", music[1], "--port", free_port(), ids[0])
    assert unreachable.exit_code == 2 and "cannot reach MPD" in unreachable.output
    assert push(music, mpd_port, ids[0], "--path", "0,0:1,1").exit_code == 2
    assert queue(mpd_port) == before


@pytest.fixture(scope="module")
def web(music):
    from fastapi.testclient import TestClient

    from moodscape.api import create_app

    with TestClient(create_app(music[0])) as test_client:
        yield test_client


def test_the_web_route_pushes_and_answers_bad_requests_without_a_5xx_of_its_own(music, mpd_port, web):
    bundle, folder, _ = music
    ids = list(load_catalog(bundle).track_ids)
    body = {"track_ids": [ids[1], ids[0]], "music_directory": str(folder), "port": mpd_port, "clear": True}
    response = web.post("/api/v1/mpd/push", json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {"queued": 2, "queue_length": 2, "playing": False}
    assert queue(mpd_port) == [NAMES[1], NAMES[0]]

    answers = {
        "unknown id": (web.post("/api/v1/mpd/push", json={**body, "track_ids": ["nope"]}), 404, "nope"),
        "outside": (web.post("/api/v1/mpd/push", json={**body, "music_directory": str(folder / "b")}), 422, "outside"),
        "bad port": (web.post("/api/v1/mpd/push", json={**body, "port": 0}), 422, "port"),
        "bad host": (web.post("/api/v1/mpd/push", json={**body, "host": "a b/c"}), 422, "host"),
        "no ids": (web.post("/api/v1/mpd/push", json={**body, "track_ids": []}), 422, "track_ids"),
        "unreachable": (web.post("/api/v1/mpd/push", json={**body, "port": free_port()}), 503, "cannot reach MPD"),
        "host not allowed": (web.post("/api/v1/mpd/push", json={**body, "host": "192.0.2.1"}), 403, "--mpd-host 192.0.2.1"),
    }
    for what, (response, status, words) in answers.items():
        assert response.status_code == status and words in response.text, (what, response.status_code, response.text)
    assert queue(mpd_port) == [NAMES[1], NAMES[0]]
