"""Load benchmark of the web app (issue 5): recommend by mood and by seed track against ``/health``.

One run starts ``moodscape serve`` on 127.0.0.1 and a free port (a subprocess, its own
process group), times its start-up (process start → ``/ready`` answers 200), checks that
each endpoint answers 200 (and counts the items per answer: a mood target with fewer than
``limit`` tracks within the tolerance gets fewer), then loads, in turn and ``--repeats``
times over:

- ``GET /health``: no work at all, the framework's own floor;
- ``GET /api/v1/recommend/mood?target_valence=…&target_arousal=…&limit=10``: the target
  rotating over 100,000 moods (``bench/wrk/mood.lua``): the (valence, arousal) of random
  catalog tracks plus Gaussian noise (σ = 0.05), so targets fall where the music is, as a
  user's clicks on the mood pad would, and no two requests in a row are the same;
- ``GET /api/v1/recommend/seeds?seeds=<id>&limit=10``: the seed rotating over a shuffled
  sample of up to 100,000 catalog ids (``bench/wrk/seeds.lua``), so no answer is cached.

The load generator is ``wrk -t2 -c32 -d<duration> --latency`` (closed loop: each of the 32
connections sends its next request when the last one is answered, so the latency includes
the queueing of 32 concurrent requests at the server). Without wrk (``apt-get install wrk``)
a bounded asyncio client in this process does the same (keep-alive HTTP/1.1, stops after
``--duration`` seconds or ``--max-requests`` requests); its own speed caps ``/health``.

Also measured, per endpoint: the server's CPU time per request (its processes' user + system
time over the load, ÷ requests) and the unloaded latency (median of 200 sequential requests
on one keep-alive connection). Each number in the table is the median over the repeats.

Targets: recommend req/s ≥ 50 % of ``/health``; p99 ≤ 25 ms at 32 connections on the demo
bundle, ≤ 100 ms on a synthetic 1,000,000-track bundle; start-up ≤ 5 s for 4,231 tracks.

``--env KEY=VALUE`` passes environment variables to the server (e.g. ``OPENBLAS_NUM_THREADS=1``),
``--workers N`` runs ``moodscape serve --workers N``, ``--startups N`` starts the server N
times and reports each start-up (the first start over a large synthetic bundle also builds
and caches its faiss index).

Run: ``PYTHONPATH=src python bench/bench_serve.py [--bundle data] [--synthetic 1000000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from http.client import HTTPConnection
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from synthetic_bundle import bundle_is_complete, write_synthetic_bundle  # noqa: E402

HOST = "127.0.0.1"
HEALTH = "/health"
MOOD = "/api/v1/recommend/mood"
SEEDS = "/api/v1/recommend/seeds"
ENDPOINTS = ("health", "mood", "seeds")
MIN_RATIO = 0.50
P99_DEMO_MS = 25.0
P99_MILLION_MS = 100.0
STARTUP_TARGET_S = 5.0
MAX_SEED_IDS = 100_000
N_TARGETS = 100_000
TARGET_NOISE = 0.05


# ---------------------------------------------------------------- the server


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def tree_total(pid: int, measure) -> float:
    """``measure(process)`` summed over a process and its live descendants (0 when it is gone)."""
    import psutil

    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for process in processes:
        try:
            total += measure(process)
        except psutil.NoSuchProcess:
            pass
    return total


def cpu_seconds(process) -> float:
    """User + system CPU seconds of one ``psutil.Process``."""
    times = process.cpu_times()
    return times.user + times.system


def server_command(bundle: Path, port: int, workers: int) -> list[str]:
    """``moodscape serve`` of this venv (``python -m moodscape serve`` when the script is not installed)."""
    script = Path(sys.executable).with_name("moodscape")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "moodscape"]
    return base + ["serve", "--bundle", str(bundle), "--host", HOST, "--port", str(port), "--workers", str(workers)]


def get(port: int, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
    connection = HTTPConnection(HOST, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


class Server:
    """``moodscape serve`` as a subprocess in its own process group; ``startup_s`` is process start → /ready 200."""

    def __init__(self, bundle: Path, workers: int, log_path: Path, timeout: float, extra_env: dict[str, str] | None = None):
        self.port = free_port()
        self.log_path = log_path
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
        env.update(extra_env or {})
        self.command = server_command(bundle, self.port, workers)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log_path, "w")
        started = time.perf_counter()
        self.process = subprocess.Popen(self.command, stdout=self._log, stderr=subprocess.STDOUT, env=env,
                                        start_new_session=True, cwd=REPO)
        deadline = started + timeout
        while True:
            if self.process.poll() is not None:
                raise SystemExit(f"the server exited with code {self.process.returncode} before /ready answered:\n"
                                 f"{' '.join(self.command)}\n{self.log_tail()}")
            try:
                status, body = get(self.port, "/ready", timeout=2.0)
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() > deadline:
                self.stop()
                raise SystemExit(f"the server did not answer /ready within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.02)
        self.startup_s = time.perf_counter() - started
        self.ready = json.loads(body)
        found = re.search(r"loaded\s+in\s+([\d.]+)\s*s", log_path.read_text())
        self.load_s = float(found.group(1)) if found else None

    def log_tail(self, lines: int = 30) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server's processes so far (uvicorn workers included)."""
        return tree_total(self.process.pid, cpu_seconds)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


# ---------------------------------------------------------------- load generators


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)([a-z]+)", text.strip()).groups()
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles (ms), requests, errors of ``wrk --latency`` output."""
    result = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))}
    for percent, value in re.findall(r"^\s+(50|75|90|99)%\s+(\S+)\s*$", output, re.M):
        result[f"p{percent}"] = _ms(value)
    latency = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", output)
    result["mean"], result["max"] = _ms(latency.group(1)), _ms(latency.group(3))
    result["requests"] = int(re.search(r"(\d+) requests in", output).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    result["socket_errors"] = sum(int(n) for n in errors.groups()) if errors else 0
    return result


def run_wrk(port: int, endpoint: str, args, duration: float, files: dict[str, Path]) -> dict:
    url = f"http://{HOST}:{port}"
    command = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{max(1, round(duration))}s", "--latency",
               "--timeout", "10s"]
    if endpoint == "health":
        command.append(url + HEALTH)
    elif endpoint == "mood":
        command += ["-s", str(BENCH / "wrk" / "mood.lua"), url, "--", str(files["mood"]), str(args.limit)]
    else:
        command += ["-s", str(BENCH / "wrk" / "seeds.lua"), url, "--", str(files["seeds"]), str(args.limit)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60)
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({' '.join(command)}):\n{done.stdout}\n{done.stderr}")
    result = parse_wrk(done.stdout)
    result["raw"] = done.stdout
    return result


def paths_of(endpoint: str, queries: dict[str, list[str]], limit: int, seed: int):
    """An endless stream of request paths for ``endpoint`` (what the wrk scripts send)."""
    rng = random.Random(seed)
    items = queries.get(endpoint, [])
    position = rng.randrange(len(items)) if items else 0
    while True:
        if endpoint == "health":
            yield HEALTH
            continue
        position = (position + 1) % len(items)
        if endpoint == "mood":
            valence, arousal = items[position].split()
            yield f"{MOOD}?target_valence={valence}&target_arousal={arousal}&limit={limit}"
        else:
            yield f"{SEEDS}?seeds={items[position]}&limit={limit}"


async def _connection_loop(port: int, paths, deadline: float, budget: list[int], latencies: list[float], counts: dict):
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while time.perf_counter() < deadline and budget[0] > 0:
            budget[0] -= 1
            path = next(paths)
            start = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError(f"{path}: response without Content-Length: {head[:200]!r}")
            await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - start)
            counts["non2xx"] += not 200 <= status < 400
    finally:
        writer.close()


async def _python_load(port: int, paths, duration: float, connections: int, max_requests: int) -> dict:
    latencies: list[float] = []
    counts = {"non2xx": 0}
    budget = [max_requests]
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(*[_connection_loop(port, paths, deadline, budget, latencies, counts) for _ in range(connections)])
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def percentile(q: float) -> float:
        return 1e3 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"rps": len(ordered) / elapsed, "p50": percentile(0.50), "p75": percentile(0.75), "p90": percentile(0.90),
            "p99": percentile(0.99), "mean": 1e3 * statistics.fmean(ordered), "max": 1e3 * ordered[-1],
            "requests": len(ordered), "non2xx": counts["non2xx"], "socket_errors": 0}


def run_python(port: int, endpoint: str, args, duration: float, queries: dict[str, list[str]]) -> dict:
    paths = paths_of(endpoint, queries, args.limit, args.seed)
    return asyncio.run(_python_load(port, paths, duration, args.connections, args.max_requests))


def unloaded(port: int, endpoint: str, queries: dict[str, list[str]], limit: int, n: int = 200) -> tuple[float, float]:
    """Median latency (ms) of ``n`` sequential requests on one keep-alive connection (no
    queueing), and the mean number of items per answer."""
    paths = paths_of(endpoint, queries, limit, seed=12345)
    connection = HTTPConnection(HOST, port, timeout=30)
    times, items = [], []
    try:
        for _ in range(n):
            path = next(paths)
            start = time.perf_counter()
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            times.append(time.perf_counter() - start)
            if response.status != 200:
                raise SystemExit(f"GET {path} answered {response.status}: {body[:500]!r}")
            items.append(len(json.loads(body).get("items", [])))
    finally:
        connection.close()
    return 1e3 * statistics.median(times), statistics.fmean(items)


# ---------------------------------------------------------------- bench


def catalog_queries(bundle: Path, seed: int) -> dict[str, list[str]]:
    """The load's queries, from the bundle's lookup: ``seeds``, a shuffled sample of up to
    100,000 track ids (URL-encoded); ``mood``, 100,000 "valence arousal" targets, each a
    random track's mood plus noise, clipped to [0, 1]."""
    import numpy as np
    import pyarrow.csv as pa_csv

    table = pa_csv.read_csv(bundle / "inference_lookup.csv", convert_options=pa_csv.ConvertOptions(
        include_columns=["track_id", "valence", "arousal"],
        column_types={"track_id": "string", "valence": "float64", "arousal": "float64"}))  # empty without train-av
    ids = table.column("track_id").to_pylist()
    rng = np.random.default_rng(seed)
    sample = rng.choice(len(ids), size=min(MAX_SEED_IDS, len(ids)), replace=False)
    moods = np.stack([table.column(name).to_numpy() for name in ("valence", "arousal")], axis=1)
    moods = moods[np.isfinite(moods).all(axis=1)]
    if not len(moods):  # a bundle without valence/arousal: uniform targets
        moods = rng.uniform(0, 1, (N_TARGETS, 2))
    targets = np.clip(moods[rng.integers(0, len(moods), N_TARGETS)] + rng.normal(0, TARGET_NOISE, (N_TARGETS, 2)), 0, 1)
    return {"seeds": [urllib.parse.quote(ids[i], safe="") for i in sample],
            "mood": [f"{valence:.3f} {arousal:.3f}" for valence, arousal in targets]}


def check_answers(port: int, queries: dict[str, list[str]], limit: int) -> dict:
    """One request per endpoint must answer 200, else stop (a benchmark of errors is worthless)."""
    samples = {}
    for endpoint in ENDPOINTS:
        path = next(paths_of(endpoint, queries, limit, seed=7))
        status, body = get(port, path, timeout=60)
        if status != 200:
            raise SystemExit(f"GET {path} answered {status}: {body[:500]!r}")
        items = json.loads(body).get("items")
        if endpoint != "health":
            samples[endpoint] = (path, items[0] if items else None)
    return samples


def median_of(results: list[dict], key: str) -> float:
    return statistics.median(result[key] for result in results)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", type=Path, default=REPO / "data", help="serving bundle (default: the demo run's data/)")
    parser.add_argument("--synthetic", type=int, metavar="N",
                        help="write a synthetic bundle of N tracks to bench/out/synthetic-N/ (kept and reused) and serve it")
    parser.add_argument("--labels", type=int, default=8, help="labels of the synthetic bundle")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint and repeat")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load per endpoint before the first repeat")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of health, mood, seeds")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--workers", type=int, default=1, help="server processes (moodscape serve --workers)")
    parser.add_argument("--limit", type=int, default=10, help="recommendations per request")
    parser.add_argument("--startups", type=int, default=1,
                        help="times to start the server (the start-up is reported for each; the load runs on the last)")
    parser.add_argument("--startup-timeout", type=float, default=900.0)
    parser.add_argument("--client", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--max-requests", type=int, default=2_000_000, help="python client: stop after this many requests")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment variable for the server (repeatable), e.g. OPENBLAS_NUM_THREADS=1")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    load_at_start = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    extra_env = dict(item.split("=", 1) for item in args.env)

    out = BENCH / "out"
    if args.synthetic:
        bundle = out / f"synthetic-{args.synthetic}"
        if bundle_is_complete(bundle, args.synthetic, args.labels):
            print(f"reusing the synthetic bundle {bundle}")
        else:
            (bundle / "synthetic.json").unlink(missing_ok=True)
            print(f"writing a synthetic bundle of {args.synthetic:,} tracks to {bundle} ...", flush=True)
            started = time.perf_counter()
            write_synthetic_bundle(bundle, args.synthetic, n_labels=args.labels)
            print(f"  written in {time.perf_counter() - started:.1f} s")
    else:
        bundle = args.bundle.resolve()
    name = bundle.name

    client = args.client
    if client == "auto":
        client = "wrk" if shutil.which("wrk") else "python"
    if client == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed: `sudo apt-get install wrk` (or run with --client python)")
    if client == "python" and args.client == "auto":
        print("wrk not found (install it with `sudo apt-get install wrk`); using the bounded asyncio client, "
              "whose own speed caps /health", file=sys.stderr)

    queries = catalog_queries(bundle, args.seed)
    out.mkdir(parents=True, exist_ok=True)
    files = {"seeds": out / f"seed-ids-{name}.txt", "mood": out / f"mood-targets-{name}.txt"}
    for endpoint, path in files.items():
        path.write_text("\n".join(queries[endpoint]) + "\n")

    startups, loads = [], []
    server = None
    try:
        for attempt in range(args.startups):
            server = Server(bundle, args.workers, out / f"serve-{name}.log", args.startup_timeout, extra_env)
            startups.append(server.startup_s)
            loads.append(server.load_s)
            print(f"start-up {attempt + 1}: {server.startup_s:.2f} s to /ready (bundle load {server.load_s} s), "
                  f"{server.ready}", flush=True)
            if attempt + 1 < args.startups:
                server.stop()
        samples = check_answers(server.port, queries, args.limit)
        single = {endpoint: unloaded(server.port, endpoint, queries, args.limit) for endpoint in ENDPOINTS}

        def load(endpoint: str, duration: float) -> dict:
            before = server.cpu_seconds()
            if client == "wrk":
                result = run_wrk(server.port, endpoint, args, duration, files)
            else:
                result = run_python(server.port, endpoint, args, duration, queries)
            result["server_cpu_ms"] = 1e3 * (server.cpu_seconds() - before) / max(result["requests"], 1)
            return result

        if args.warmup > 0:
            for endpoint in ENDPOINTS:
                load(endpoint, args.warmup)
        results = {endpoint: [] for endpoint in ENDPOINTS}
        for _ in range(args.repeats):
            for endpoint in ENDPOINTS:
                results[endpoint].append(load(endpoint, args.duration))
    finally:
        if server is not None:
            server.stop()

    # -- report
    from rich.console import Console
    from rich.table import Table

    tracks = int(server.ready.get("tracks", 0))
    p99_target = P99_MILLION_MS if tracks >= 1_000_000 else P99_DEMO_MS
    health_rps = median_of(results["health"], "rps")
    load_avg = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    import fastapi
    import uvicorn

    machine = (f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, fastapi {fastapi.__version__}, "
               f"uvicorn {uvicorn.__version__}, load average at the start {load_at_start}, at the end {load_avg}, "
               f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")
    client_text = (f"wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s --latency" if client == "wrk"
                   else f"asyncio client, {args.connections} keep-alive connections, {args.duration:g} s")
    table = Table(title=f"{name}: {tracks:,} tracks, {server.ready.get('labels')} labels; server: moodscape serve "
                        f"--workers {args.workers}; load: {client_text}, median of {args.repeats} repeats")
    for column in ("endpoint", "req/s", "p50 ms", "p99 ms", "max ms", "req/s ÷ /health", "server CPU ms/req",
                   "unloaded ms", "items/answer", "req/s of each repeat", "errors"):
        table.add_column(column, justify="left" if column == "endpoint" else "right")
    paths = {"health": "GET /health", "mood": "GET /recommend/mood (1 target)", "seeds": "GET /recommend/seeds (1 seed)"}
    summary = {}
    for endpoint in ENDPOINTS:
        runs = results[endpoint]
        row = {key: median_of(runs, key) for key in ("rps", "p50", "p99", "max", "server_cpu_ms")}
        row["ratio"] = row["rps"] / health_rps
        row["unloaded"], row["items"] = single[endpoint]
        row["errors"] = sum(run["non2xx"] + run["socket_errors"] for run in runs)
        summary[endpoint] = row
        table.add_row(paths[endpoint], f"{row['rps']:,.0f}", f"{row['p50']:.2f}", f"{row['p99']:.2f}", f"{row['max']:.1f}",
                      f"{row['ratio']:.2f}", f"{row['server_cpu_ms']:.2f}", f"{row['unloaded']:.2f}",
                      "" if endpoint == "health" else f"{row['items']:.1f}",
                      ", ".join(f"{run['rps']:,.0f}" for run in runs), str(row["errors"]))
    console = Console(width=220)
    console.print(f"machine: {machine}")
    console.print(f"bundle: {bundle}" + (f"; server environment: {args.env}" if args.env else ""))
    for endpoint, (path, item) in samples.items():
        if item is None:
            console.print(f"sample {endpoint}: {path} → no items")
            continue
        console.print(f"sample {endpoint}: {path} → first item {item.get('track_id')} {item.get('label')!r} "
                      f"valence {item.get('valence'):.2f} arousal {item.get('arousal'):.2f} score {item.get('score'):.3f}")
    console.print(table)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    for endpoint in ("mood", "seeds"):
        row = summary[endpoint]
        console.print(f"{endpoint}: req/s ÷ /health = [bold]{row['ratio']:.2f}[/bold] (target ≥ {MIN_RATIO:.2f}: "
                      f"{verdict(row['ratio'] >= MIN_RATIO)}); p99 at {args.connections} connections = [bold]{row['p99']:.1f} ms"
                      f"[/bold] (target ≤ {p99_target:g} ms {'at 1,000,000 tracks' if tracks >= 1_000_000 else 'on the demo bundle'}: "
                      f"{verdict(row['p99'] <= p99_target)})")
    console.print(f"(closed loop: with the server saturated, p50 ≈ {args.connections} connections ÷ req/s, so a p99 of "
                  f"{p99_target:g} ms needs roughly ≥ {1.5 * args.connections / (p99_target / 1e3):,.0f} req/s)")
    startup_text = ", ".join(f"{s:.2f} s" for s in startups)
    load_text = ", ".join("?" if s is None else f"{s:.1f} s" for s in loads)
    target = f"target ≤ {STARTUP_TARGET_S:g} s for 4,231 tracks"
    if tracks <= 10_000:
        target += f": {verdict(max(startups) <= STARTUP_TARGET_S)}"
    console.print(f"start-up (process start → /ready answered): [bold]{startup_text}[/bold] of which create_app "
                  f"(bundle load and check, as `serve` prints it): {load_text} ({target})")
    errors = sum(row["errors"] for row in summary.values())
    if errors:
        console.print(f"[red]{errors} requests failed (non-2xx or socket errors): the numbers above are not valid[/red]")
    if args.json:
        args.json.write_text(json.dumps({
            "args": {key: str(value) for key, value in vars(args).items()}, "machine": machine, "bundle": str(bundle),
            "tracks": tracks, "startup_s": startups, "load_s": loads, "summary": summary,
            "runs": {endpoint: [{k: v for k, v in run.items() if k != "raw"} for run in runs] for endpoint, runs in results.items()},
        }, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
