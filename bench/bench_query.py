"""Benchmark of GET query parsing: ``parse_query`` against FastAPI's query-parameter models.

``GET /recommend/mood`` and ``GET /recommend/seeds`` take a :class:`MoodQuery` /
:class:`SeedQuery` from the URL. Two ways of parsing it are compared, in one run, in one
FastAPI app over stub handlers that validate the query and answer a constant (no
recommender, no catalog), so that only the parsing differs:

- **parse_query**: ``request: Request`` and ``moodscape.api.deps.parse_query`` (the
  model validated once from the query's multi-items, repeated keys → lists), as the
  GET routes did;
- **query model**: ``query: Annotated[MoodQuery, Query()]``, FastAPI's query-parameter
  model (FastAPI ≥ 0.115);
- and a floor: a route with no parameters at all (FastAPI's own cost per request).

Requests go to the ASGI app in this process, called directly with an HTTP scope (no
sockets, no HTTP client: the numbers are the server's own work from scope to the last
body message, which is what a uvicorn worker spends after parsing the HTTP bytes).
Each query of :data:`QUERIES` is sent ``--requests`` times to each variant, the variants
alternating, ``--repeats`` rounds; the table shows the median requests/s of the rounds.

Before timing, both variants get the same URLs (:data:`SAME_ANSWER`: valid ones with
repeated keys for the list fields, and bad ones) and must accept the same (equal parsed
models) and reject the same with 422 (the error types and locations are compared); any
difference is printed.

Run: ``PYTHONPATH=src python bench/bench_query.py [--requests 2000] [--repeats 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO / "src"))

from fastapi import FastAPI, Query, Request  # noqa: E402
from fastapi.responses import Response  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from moodscape.api.deps import parse_query  # noqa: E402
from moodscape.api.schemas import MoodQuery, SeedQuery  # noqa: E402

QUERIES = {
    "mood": {
        "1 target (the load test's)": "target_valence=0.8123&target_arousal=0.3456&limit=10",
        "every field, repeated lists": ("target_valence=0.5&target_arousal=0.5&tolerance=0.2&min_valence=0.1"
                                        "&max_valence=0.9&min_arousal=0.2&max_arousal=0.8&min_probability=0.3"
                                        "&labels=Calm&labels=Dark&exclude=t1&exclude=t2&exclude=t3&limit=20&diversity=0.3"),
    },
    "seeds": {
        "1 seed (the load test's)": "seeds=track-000123&limit=10",
        "every field, repeated lists": ("seeds=t1&seeds=t2&seeds=t3&negative_seeds=t4&va_weight=0.2&min_valence=0.1"
                                        "&max_arousal=0.9&min_probability=0.2&labels=Calm&labels=Dark"
                                        "&exclude=t5&exclude=t6&limit=20&diversity=0.3"),
    },
}
"""Timed queries per route."""

SAME_ANSWER = {
    "mood": [
        "", "target_valence=0.5", "labels=Calm", "labels=Calm&labels=Dark&exclude=a&exclude=b",
        "limit=5&limit=7", "target_valence=0.50&target_arousal=.25&tolerance=1e-1", QUERIES["mood"]["every field, repeated lists"],
        # bad
        "target_valence=2", "target_valence=x", "target_valence=", "tolerance=0", "limit=101", "limit=1.5",
        "diversity=-0.1", "min_valence=0.8&max_valence=0.2", "labels=", "unknown_field=1", "seeds=a",
        "&".join(["exclude=t"] * 1001), "&".join(["labels=L"] * 101),
    ],
    "seeds": [
        "seeds=a", "seeds=a&seeds=b&negative_seeds=c&negative_seeds=d", "seeds=a&labels=Calm&exclude=b",
        "seeds=a&va_weight=1", QUERIES["seeds"]["every field, repeated lists"],
        # bad
        "", "seeds=", "seeds=a&va_weight=2", "seeds=a&limit=0", "seeds=a&min_arousal=0.9&max_arousal=0.1",
        "seeds=a&target_valence=0.5", "&".join(["seeds=t"] * 51), "seeds=" + "x" * 257,
    ],
}
"""URLs both variants must treat alike (accepted with equal models, or 422 with equal errors)."""

MODELS = {"mood": MoodQuery, "seeds": SeedQuery}
VARIANTS = ("parse_query", "query model")
OK = b'{"items":[]}'


def build_app(record: dict) -> FastAPI:
    """Stub routes: ``/parse/<route>`` (parse_query), ``/model/<route>`` (query model), ``/floor``.

    Each handler stores the parsed query in ``record`` (one dict assignment, the same for
    both) and answers a constant, like the real routes answer spliced JSON.
    """
    app = FastAPI()

    @app.get("/floor")
    async def floor() -> Response:
        return Response(OK, media_type="application/json")

    @app.get("/parse/mood")
    async def parse_mood(request: Request) -> Response:
        record["query"] = parse_query(MoodQuery, request)
        return Response(OK, media_type="application/json")

    @app.get("/model/mood")
    async def model_mood(query: Annotated[MoodQuery, Query()]) -> Response:
        record["query"] = query
        return Response(OK, media_type="application/json")

    @app.get("/parse/seeds")
    async def parse_seeds(request: Request) -> Response:
        record["query"] = parse_query(SeedQuery, request)
        return Response(OK, media_type="application/json")

    @app.get("/model/seeds")
    async def model_seeds(query: Annotated[SeedQuery, Query()]) -> Response:
        record["query"] = query
        return Response(OK, media_type="application/json")

    return app


def path_of(variant: str, route: str) -> str:
    return f"/{'parse' if variant == 'parse_query' else 'model'}/{route}"


# ---------------------------------------------------------------- same URLs, same answers


def compare_answers(app: FastAPI, record: dict) -> list[str]:
    """Differences between the variants over :data:`SAME_ANSWER` (empty when none)."""
    differences = []
    with TestClient(app) as client:
        for route, urls in SAME_ANSWER.items():
            for query in urls:
                answers = []
                for variant in VARIANTS:
                    record.clear()
                    response = client.get(f"{path_of(variant, route)}?{query}")
                    if response.status_code == 200:
                        answers.append((200, record["query"].model_dump()))
                    elif response.status_code == 422:
                        answers.append((422, sorted((e["type"], tuple(e["loc"])) for e in response.json()["detail"])))
                    else:
                        answers.append((response.status_code, response.text[:200]))
                shown = query if len(query) <= 60 else query[:57] + "..."
                if answers[0] != answers[1]:
                    differences.append(f"{route} ?{shown}: parse_query {answers[0]} / query model {answers[1]}")
    return differences


def expected_statuses() -> dict[str, list[int]]:
    """Which of :data:`SAME_ANSWER` are meant to be accepted (listed before the ``# bad`` ones)."""
    good = {"mood": 7, "seeds": 5}
    return {route: [200] * good[route] + [422] * (len(urls) - good[route]) for route, urls in SAME_ANSWER.items()}


def check_statuses(app: FastAPI) -> list[str]:
    """URLs of :data:`SAME_ANSWER` answered otherwise than :func:`expected_statuses` says."""
    wrong = []
    with TestClient(app) as client:
        for route, urls in SAME_ANSWER.items():
            for query, status in zip(urls, expected_statuses()[route], strict=True):
                for variant in VARIANTS:
                    got = client.get(f"{path_of(variant, route)}?{query}").status_code
                    if got != status:
                        wrong.append(f"{variant} {route} ?{query[:60]}: {got}, expected {status}")
    return wrong


# ---------------------------------------------------------------- timing


def scope_of(path: str, query: str) -> dict:
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"accept", b"*/*")], "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000), "state": {},
    }


async def call_many(app, path: str, query: str, n: int) -> float:
    """Seconds for ``n`` sequential GETs of ``path?query``, each a full ASGI call; checks they answer 200."""
    statuses = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.perf_counter()
    for _ in range(n):
        await app(scope_of(path, query), receive, send)
    elapsed = time.perf_counter() - started
    if set(statuses) != {200}:
        raise SystemExit(f"{path}?{query} answered {sorted(set(statuses))}, not only 200")
    return elapsed


async def time_all(app, requests: int, repeats: int) -> dict:
    """req/s per (route, query name, variant) and of the floor, each a list over the repeats."""
    cases = [("floor", "", "/floor", "")]
    for route, queries in QUERIES.items():
        for name, query in queries.items():
            cases += [(route, name, path_of(variant, route), query) for variant in VARIANTS]
    for _, _, path, query in cases:  # warm-up: routes' first calls, caches
        await call_many(app, path, query, max(50, requests // 20))
    rates: dict[tuple[str, str, str], list[float]] = {}
    for _ in range(repeats):
        for route, name, path, query in cases:
            rates.setdefault((route, name, path), []).append(requests / await call_many(app, path, query, requests))
    return rates


def machine_description() -> str:
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or platform.machine()
    import fastapi
    import pydantic
    import starlette

    return (f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, fastapi {fastapi.__version__}, "
            f"starlette {starlette.__version__}, pydantic {pydantic.__version__}, load average "
            f"{', '.join(f'{value:.1f}' for value in os.getloadavg())}, "
            f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per variant, query and round")
    parser.add_argument("--repeats", type=int, default=5, help="rounds (the variants alternate within each)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)

    record: dict = {}
    app = build_app(record)
    differences = compare_answers(app, record)
    wrong = check_statuses(app)
    started = time.perf_counter()
    rates = asyncio.run(time_all(app, args.requests, args.repeats))
    elapsed = time.perf_counter() - started

    print(f"machine: {machine_description()}")
    print(f"{args.requests} requests per variant and query, {args.repeats} rounds, median req/s of the rounds "
          f"(timing took {elapsed:.0f} s); direct ASGI calls in one process, stub handlers\n")
    floor = statistics.median(rates[("floor", "", "/floor")])
    print("| route | query | parse_query req/s | query model req/s | parse_query ÷ query model | "
          "µs/request parse_query | µs/request query model |")
    print("|---|---|---:|---:|---:|---:|---:|")
    summary = {"floor_rps": floor, "rows": []}
    for route, queries in QUERIES.items():
        for name in queries:
            parsed, model = (statistics.median(rates[(route, name, path_of(variant, route))]) for variant in VARIANTS)
            summary["rows"].append({"route": route, "query": name, "parse_query_rps": parsed, "query_model_rps": model,
                                    "ratio": parsed / model})
            print(f"| GET /recommend/{route} | {name} | {parsed:,.0f} | {model:,.0f} | **{parsed / model:.2f}** | "
                  f"{1e6 / parsed:.1f} | {1e6 / model:.1f} |")
    print(f"| floor: GET with no parameters | | {floor:,.0f} | | | {1e6 / floor:.1f} | |")
    ratios = [row["ratio"] for row in summary["rows"]]
    summary["max_ratio"] = max(ratios)
    print(f"\nparse_query ÷ query model: {min(ratios):.2f}–{max(ratios):.2f} "
          f"(the query model costs {min(ratios):.2f}–{max(ratios):.2f}× the time per request of parse_query)")
    print("\nsame URLs, same answers: " + ("yes, every URL of SAME_ANSWER" if not differences
                                            else f"{len(differences)} difference(s):"))
    for line in differences:
        print(f"  {line}")
    if wrong:
        print("unexpected statuses:")
        for line in wrong:
            print(f"  {line}")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine_description(), "args": vars(args) | {"json": str(args.json)},
                                         "summary": summary, "differences": differences, "unexpected": wrong,
                                         "rates": {" ".join(key): value for key, value in rates.items()}}, indent=2))
    return 1 if differences or wrong else 0


if __name__ == "__main__":
    sys.exit(main())
