"""Request bodies are bounded as they arrive (too large is a 413 at the limit, too slow a 408), analyses in number (503).

The size limit used to check only a declared ``Content-Length``: a chunked upload was
spooled to disk whole before its 413, and a body trickling in held a request forever.
The app is driven directly over ASGI (bytes counted as the app reads them) and, for the
slow body, through a uvicorn server on the loopback interface. Uploads beyond the
analyses a process runs at once used to be decoded all together.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import soundfile as sf
import uvicorn
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

import moodscape.api.routes.analyze as analyze_route
from moodscape.api import create_app
from moodscape.errors import AudioError

LIMIT = 1 << 20
CHUNK = 64 << 10
TIMEOUT = 1.0
BOUNDARY = "moodscapeboundary"


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory):
    return copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def app(bundle):
    """The app with a 1 MiB upload limit and one second for a body to arrive."""
    return create_app(bundle, max_upload_bytes=LIMIT, upload_timeout=TIMEOUT)


def multipart_chunks(total: int) -> Iterator[bytes]:
    """A multipart upload of ``total`` zero bytes named ``big.wav``, in 64 KiB chunks."""
    yield (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.wav\"\r\n"
           "Content-Type: audio/wav\r\n\r\n").encode()
    for start in range(0, total, CHUNK):
        yield bytes(min(CHUNK, total - start))
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


def http_scope(method: str, path: str, headers: dict[str, str]) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(key.lower().encode(), value.encode()) for key, value in headers.items()],
            "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80)}


async def send_chunked(app, path: str, chunks: Iterator[bytes], content_type: str) -> tuple[int, bytes, int]:
    """Drive one request without Content-Length; returns the status, the body and the bytes the app read."""
    read, answer, upcoming = 0, {"status": None, "body": b""}, next(chunks, None)

    async def receive():
        nonlocal read, upcoming
        if upcoming is None:
            return {"type": "http.disconnect"}
        chunk, upcoming = upcoming, next(chunks, None)
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": upcoming is not None}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    await asyncio.wait_for(app(http_scope("POST", path, {"content-type": content_type}), receive, send), 60)
    return answer["status"], answer["body"], read


def test_a_chunked_upload_is_refused_as_soon_as_it_passes_the_limit(app):
    status, body, read = asyncio.run(send_chunked(
        app, "/api/v1/analyze", multipart_chunks(8 * LIMIT), f"multipart/form-data; boundary={BOUNDARY}"))
    assert status == 413, body
    assert b"1 MiB" in body
    assert read <= LIMIT + 2 * CHUNK, f"the app read {read} bytes of a body over a {LIMIT}-byte limit"


def test_a_chunked_json_body_is_bounded_too(app):
    chunks = iter([b'{"track_ids": ['] + [b'"' + b"x" * (CHUNK - 3) + b'",'] * 64)
    status, _, read = asyncio.run(send_chunked(app, "/api/v1/tracks/lookup", chunks, "application/json"))
    assert status == 413 and read <= LIMIT + 2 * CHUNK


@contextmanager
def serving(app) -> Iterator[int]:
    """Serve ``app`` with uvicorn on a free loopback port for the ``with`` block; yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def stalled_upload(port: int, wait: float) -> tuple[bytes, float]:
    """Send a chunked upload's first chunk, then nothing; returns what the server answered within ``wait`` s."""
    head = (f"POST /api/v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
            f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n\r\n")
    first = next(multipart_chunks(0)) + bytes(1000)
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        started = time.monotonic()
        connection.sendall(head.encode() + f"{len(first):x}\r\n".encode() + first + b"\r\n")
        try:
            answer = connection.recv(4096)
        except TimeoutError:
            answer = b""
        return answer, time.monotonic() - started


def test_a_stalled_upload_gets_a_408_within_the_time_bound(app):
    with serving(app) as port:
        answer, seconds = stalled_upload(port, wait=10 * TIMEOUT)
        assert answer.startswith(b"HTTP/1.1 408"), f"after {seconds:.1f} s: {answer[:200]!r}"
        assert b"did not arrive" in answer
        assert seconds < 5 * TIMEOUT
        health = socket.create_connection(("127.0.0.1", port), timeout=5)
        with health:
            health.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert health.recv(4096).startswith(b"HTTP/1.1 200")


def test_a_declared_length_over_the_limit_is_refused_before_reading(app):
    chunks = iter([b"never read"])
    scope_headers = {"content-type": "application/json", "content-length": str(LIMIT * 4)}

    async def call():
        sent = []

        async def receive():
            return {"type": "http.request", "body": next(chunks), "more_body": False}

        async def send(message):
            sent.append(message)

        await app(http_scope("POST", "/api/v1/tracks/lookup", scope_headers), receive, send)
        return sent[0]["status"]

    assert asyncio.run(call()) == 413
    assert next(chunks, None) == b"never read"


def upload(client, name: str, data: bytes):
    return client.post("/api/v1/analyze", files={"file": (name, io.BytesIO(data), "audio/wav")})


def test_an_analysis_beyond_the_concurrency_bound_gets_a_503(bundle, monkeypatch):
    started, release = threading.Event(), threading.Event()

    def slow(bundle, path, **options):
        started.set()
        release.wait(30)
        raise AudioError(f"{path}: stand-in analysis")

    monkeypatch.setattr(analyze_route, "analyze_file", slow)
    wav = io.BytesIO()
    sf.write(wav, np.sin(np.arange(3 * 22050) / 10).astype(np.float32) * 0.3, 22050, format="WAV")
    song = wav.getvalue()
    with TestClient(create_app(bundle, max_analyses=1), raise_server_exceptions=False) as client:
        first = {}
        worker = threading.Thread(target=lambda: first.update(response=upload(client, "first.wav", song)))
        worker.start()
        try:
            assert started.wait(30)
            busy = upload(client, "second.wav", song)
        finally:
            release.set()
            worker.join(30)
        assert busy.status_code == 503, busy.text
        assert int(busy.headers["Retry-After"]) > 0
        assert first["response"].status_code == 422
        assert upload(client, "third.wav", song).status_code == 422, "the slot is free again"
