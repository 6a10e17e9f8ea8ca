"""Range requests on every route that serves a file: the bytes asked for, a 416, or the whole file.

The routes: a track's audio (``/api/v1/tracks/{id}/audio``), the page (``/``), the run
report (``/report``) and the static files (``/static/...``), plus an empty audio file.
Each gets single and multiple ranges, suffixes, ranges past the end, huge and malformed
numbers, other units and ``If-Range``. A 206 must say in ``Content-Range`` exactly which
bytes it holds and hold those bytes of the file; a 416 must give the file's size; a
header the server cannot use (Starlette answered those with a 400) gets the whole file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

from moodscape.api import create_app
from moodscape.api.ranges import MAX_RANGE_DIGITS, is_valid_range
from moodscape.artifacts import Workdir

HUGE = 10**30


@dataclass(frozen=True)
class Case:
    """A ``Range`` header (a function of the file's size ``n``) and what must come back.

    ``expect`` is ``"whole"`` (200 and the file), ``"416"``, or the (first, last) byte
    positions the 206 must cover, again a function of ``n``.
    """

    name: str
    header: object
    expect: object

    def value(self, n: int) -> str:
        return self.header(n) if callable(self.header) else self.header


SATISFIABLE = [
    Case("first byte", "bytes=0-0", lambda n: [(0, 0)]),
    Case("last byte", "bytes=-1", lambda n: [(n - 1, n - 1)]),
    Case("from the start", "bytes=0-", lambda n: [(0, n - 1)]),
    Case("middle", "bytes=5-9", lambda n: [(5, 9)]),
    Case("end past the file", lambda n: f"bytes={n - 2}-{n + 100}", lambda n: [(n - 2, n - 1)]),
    Case("huge end", f"bytes=0-{HUGE}", lambda n: [(0, n - 1)]),
    Case("huge suffix", f"bytes=-{HUGE}", lambda n: [(0, n - 1)]),
    Case("spaces", "Bytes = 1-2 ", lambda n: [(1, 2)]),
    Case("two ranges", "bytes=0-0,2-3", lambda n: [(0, 0), (2, 3)]),
    Case("overlapping", "bytes=0-2,1-4", lambda n: [(0, 4)]),
    Case("unordered with a suffix", "bytes=-2,0-1", lambda n: [(0, 1), (n - 2, n - 1)]),
    Case("empty list elements", "bytes=,0-0,,", lambda n: [(0, 0)]),
    Case("100 ranges", ",".join(f"{2 * i}-{2 * i}" for i in range(100)).join(["bytes=", ""]),
         lambda n: [(2 * i, 2 * i) for i in range(100)]),
]
UNSATISFIABLE = [
    Case("start at the end", lambda n: f"bytes={n}-", "416"),
    Case("start past the end", lambda n: f"bytes={n + 10}-{n + 20}", "416"),
    Case("huge start", f"bytes={HUGE}-", "416"),
    Case("empty suffix", "bytes=-0", "416"),
    Case("every range past the end", lambda n: f"bytes={n}-,{n + 5}-{n + 9}", "416"),
]
IGNORED = [
    Case("last before first", "bytes=10-5", "whole"),
    Case("other unit", "items=0-5", "whole"),
    Case("no ranges", "bytes=", "whole"),
    Case("only commas", "bytes=,,", "whole"),
    Case("no equals sign", "bytes", "whole"),
    Case("a dash", "bytes=-", "whole"),
    Case("no dash", "bytes=5", "whole"),
    Case("letters", "bytes=abc-def", "whole"),
    Case("three numbers", "bytes=1-2-3", "whole"),
    Case("hexadecimal", "bytes=0x10-", "whole"),
    Case("signed", "bytes=+1-2", "whole"),
    Case("underscored", "bytes=1_0-2_0", "whole"),
    Case("negative end", "bytes=0--5", "whole"),
    Case("superscript digit", "bytes=\u00b2-", "whole"),
    Case("trailing junk", "bytes=0-0;x", "whole"),
    Case("one bad of two", "bytes=0-0,x-y", "whole"),
    Case("too many digits", f"bytes={'9' * 5000}-", "whole"),
    Case("too many digits at the end", f"bytes=0-{'9' * 5000}", "whole"),
    Case("empty header", "", "whole"),
    Case("over 100 ranges", ",".join(["0-0"] * 101).join(["bytes=", ""]), "whole"),
    Case("very long header", "bytes=" + "0-0," * 20_000, "whole"),
]
CASES = SATISFIABLE + UNSATISFIABLE + IGNORED


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory) -> Path:
    bundle = copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))
    report = Workdir(bundle).report_html
    if not report.exists():
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text("<!DOCTYPE html><title>report</title>" + "<p>moodscape</p>" * 100)
    return bundle


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def files(client) -> dict[str, bytes]:
    """Every file-serving URL and the whole file it serves."""
    track = next(item for item in client.get("/api/v1/tracks", params={"limit": 50}).json()["items"] if item["audio_url"])
    urls = [track["audio_url"], "/", "/report", "/static/app.css", "/static/index.html"]
    whole = {url: client.get(url) for url in urls}
    for url, response in whole.items():
        assert response.status_code == 200 and response.headers["accept-ranges"] == "bytes", url
        assert len(response.content) > 200, f"{url} is too small for the cases"
    return {url: response.content for url, response in whole.items()}


@pytest.fixture(scope="module")
def empty_file_client(bundle, tmp_path_factory):
    """A client whose first track's audio file is empty; yields it and that track's audio URL."""
    empty = tmp_path_factory.mktemp("empty") / "empty.mp3"
    empty.write_bytes(b"")
    app = create_app(bundle)
    catalog = app.state.services.catalog
    catalog.audio_path[0] = str(empty)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, test_client.get(f"/api/v1/tracks/{catalog.track_ids[0]}").json()["audio_url"]


def get(client, url: str, **headers: str):
    """GET ``url`` with headers given as keywords (``If_Range`` is ``If-Range``), sent as latin-1 as HTTP allows."""
    return client.get(url, headers={name.replace("_", "-"): value.encode("latin-1") for name, value in headers.items()})


def served_ranges(response, whole: bytes) -> list[tuple[int, int]]:
    """The (first, last) byte positions a 206 holds, each checked against the file."""
    assert response.status_code == 206, response.text[:200]
    body, size = response.content, len(whole)
    assert int(response.headers["content-length"]) == len(body)
    media_type = response.headers["content-type"]
    if not media_type.startswith("multipart/byteranges"):
        return [checked_part(response.headers["content-range"], body, whole)]
    boundary = re.fullmatch(r"multipart/byteranges; boundary=(\S+)", media_type)[1].encode()
    parts, position = [], 0
    while body.startswith(b"--" + boundary + b"\r\n", position):
        head_end = body.index(b"\r\n\r\n", position)
        head = body[position:head_end].decode("latin-1")
        content_range = re.search(r"(?im)^content-range: (.+?)\r?$", head)[1]
        first, last = (int(x) for x in re.fullmatch(rf"bytes (\d+)-(\d+)/{size}", content_range).groups())
        start = head_end + 4
        parts.append(checked_part(content_range, body[start : start + last - first + 1], whole))
        assert body[start + last - first + 1 : start + last - first + 3] == b"\r\n"
        position = start + last - first + 3
    assert body[position:] == b"--" + boundary + b"--", "the multipart body must end after its parts"
    return parts


def checked_part(content_range: str, data: bytes, whole: bytes) -> tuple[int, int]:
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", content_range)
    assert match, content_range
    first, last, size = (int(x) for x in match.groups())
    assert size == len(whole) and 0 <= first <= last < size, content_range
    assert data == whole[first : last + 1], f"{content_range}: the bytes are not the file's"
    return first, last


def covered(ranges) -> set[int]:
    return {position for first, last in ranges for position in range(first, last + 1)}


def assert_answer(response, whole: bytes, case: Case, label: str) -> None:
    assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:200]}"
    size = len(whole)
    if case.expect == "whole":
        assert response.status_code == 200, f"{label}: {response.status_code} {response.text[:200]}"
        assert response.content == whole, f"{label}: not the whole file"
    elif case.expect == "416":
        assert response.status_code == 416, f"{label}: {response.status_code}"
        assert response.headers["content-range"] == f"bytes */{size}", label
    else:
        assert covered(served_ranges(response, whole)) == covered(case.expect(size)), label


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_file_route_answers_a_range_with_the_files_bytes(client, files, case):
    for url, whole in files.items():
        value = case.value(len(whole))
        assert_answer(get(client, url, Range=value), whole, case, f"{url} Range: {value[:60]!r}")


def test_partly_satisfiable_ranges_get_the_bytes_in_the_file_or_a_416(client, files):
    for url, whole in files.items():
        response = client.get(url, headers={"Range": f"bytes=0-0,{len(whole)}-"})
        assert response.status_code in (206, 416), f"{url}: {response.status_code}"
        if response.status_code == 206:
            assert covered(served_ranges(response, whole)) == {0}


def test_if_range_applies_the_range_only_while_the_file_is_unchanged(client, files):
    for url, whole in files.items():
        validators = client.get(url).headers
        first_byte = Case("first byte", "bytes=0-0", lambda n: [(0, 0)])
        for if_range in (validators["etag"], validators["last-modified"]):
            response = get(client, url, Range="bytes=0-0", If_Range=if_range)
            assert_answer(response, whole, first_byte, f"{url} If-Range: {if_range}")
        stale = formatdate(0, usegmt=True)
        for if_range in ('"not-the-etag"', "W/" + validators["etag"], stale, "garbage", "\u00e9t\u00e9", ""):
            response = get(client, url, Range="bytes=0-0", If_Range=if_range)
            assert_answer(response, whole, Case("stale", "", "whole"), f"{url} If-Range: {if_range!r}")


@pytest.mark.parametrize("value, expected", [
    ("bytes=0-", 416), ("bytes=0-0", 416), ("bytes=-1", 416), (f"bytes=-{HUGE}", 416), ("bytes=-0", 416),
    ("bytes=abc", 200), ("items=0-0", 200), ("bytes=3-1", 200),
])
def test_an_empty_file_has_no_satisfiable_range(empty_file_client, value, expected):
    client, url = empty_file_client
    plain = client.get(url)
    assert plain.status_code == 200 and plain.content == b""
    response = get(client, url, Range=value)
    assert response.status_code == expected, response.text
    if expected == 416:
        assert response.headers["content-range"] == "bytes */0"
    else:
        assert response.content == b""


def test_routes_that_serve_no_file_ignore_ranges(client):
    for value in ("bytes=0-0", "bytes=10-5", "items=1-2"):
        response = get(client, "/api/v1/labels", Range=value)
        assert response.status_code == 200 and response.json()["items"]


@pytest.mark.parametrize("value", [case.value(1000) for case in SATISFIABLE + UNSATISFIABLE])
def test_valid_range_sets_are_valid(value):
    assert is_valid_range(value)


@pytest.mark.parametrize("value", [case.value(1000) for case in IGNORED if case.name not in ("over 100 ranges", "very long header")])
def test_invalid_range_sets_are_invalid(value):
    assert not is_valid_range(value)


def test_positions_up_to_the_digit_bound_are_valid():
    assert is_valid_range(f"bytes={'9' * MAX_RANGE_DIGITS}-")
    assert not is_valid_range(f"bytes={'9' * (MAX_RANGE_DIGITS + 1)}-")
