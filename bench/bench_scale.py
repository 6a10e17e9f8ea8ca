"""Scale rehearsal (issue 17): every pipeline stage on a corpus of MTG-Jamendo's size, timed and measured.

For each ``--sizes`` N, writes a rehearsal corpus of N tracks with ``moodscape demo-data
--like-jamendo METADATA --limit N`` (the real ids, paths, durations capped at
``--max-seconds``, tags and split 0; mels in the released layout, ``--mp3-sample`` tracks
also as MP3, ``--musav-tracks`` MusAV previews), then runs the stages as a user would,
each a ``moodscape`` subprocess on one work directory:

==============  ==============================================================
demo-data       the corpus itself
features        stage 1a from the mels (``--workers`` Dask workers)
features-mp3    stage 1a from the MP3 sample (its own work directory); the time per
                track is projected to N tracks
cluster         stage 1b, K scanned (silhouette sampled)
label           stage 2, with the real tags
pretrain        stage 3a, ``--epochs`` epochs; projected to the configured epochs
train           stage 3b, ``--epochs`` epochs; projected likewise
train-av        stage 4 on the MusAV previews
infer-test      stage 5 on the test split
infer-all       stage 5 on every track (the serving catalog)
report          the run report
serve           ``moodscape serve`` start-up (process start → /ready) and recommend
                latency under ``--connections`` connections for ``--load-seconds``
features-dask   features again, on a real cluster: ``dask scheduler`` and
                ``--dask-workers`` ``dask worker`` processes on 127.0.0.1, as a user
                starts them on hosts (``--scheduler tcp://127.0.0.1:PORT``); its table is
                compared with the local run's, value for value
infer-dask      infer-all again on that cluster, in a copy of the work directory; the
                lookup and embeddings compared likewise
train-ddp       train again under ``torchrun`` (``--nproc`` processes, ``moodscape
                train --nproc``), in a copy; its epoch time against the one-process run's
==============  ==============================================================

Per stage: wall time; CPU time (user + system of the whole process tree, from ``wait4``,
Dask workers included); peak RSS of the tree (the sum over its live processes, sampled
every ``--sample-every`` s with psutil, at least the largest process's) and the largest
single process's (``wait4``: exact, however short its peak);
disk written (the growth of the stage's output folder: corpus or work directory). A table
per size, a table of growth exponents (the slope of log cost against log N between the
smallest and largest size), JSON (``--json``) and, with several sizes, a log-log plot of
wall time and peak RSS against N (``--plot``).

Without the metadata (``--metadata``, default ``../shared/data/mtg-jamendo`` beside the
repository) it prints why and exits 0.

Run: ``PYTHONPATH=src python bench/bench_scale.py --sizes 1000 5000 18486 [--max-seconds 30]``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

DEFAULT_METADATA = Path(os.environ.get("MOODSCAPE_SHARED_DATA") or REPO.parent / "shared" / "data") / "mtg-jamendo"
STAGES = ("demo-data", "features", "features-mp3", "cluster", "label", "pretrain", "train", "train-av",
          "infer-test", "infer-all", "infer-mp3", "report", "serve", "features-dask", "infer-dask", "train-ddp")
COPIES = {"infer-mp3": "mp3-infer", "infer-dask": "dask", "train-ddp": "ddp"}
"""The comparison stages that run in a copy of the run's work directory, and the copy's suffix."""
DASK_STAGES = ("features-dask", "infer-dask")
COMPARED = (*DASK_STAGES, "train-ddp")
"""The stages that repeat one of the run's on another cluster or launcher, compared with it."""
METADATA_FILE = "autotagging_moodtheme.tsv"
STAGE_TRACKS = {"features-mp3": "mp3", "pretrain": "train", "train": "train", "train-av": "musav", "infer-test": "test",
                "infer-mp3": "mp3", "train-ddp": "train"}
"""The tracks a stage works on, where not the whole corpus (the ``tracks`` column)."""
MB = 2 ** 20


@dataclass
class Measure:
    """What one stage cost: the row of the table and of the JSON."""

    stage: str
    size: int
    tracks: int
    rc: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    max_process_rss_mb: float
    disk_mb: float
    extra: dict = field(default_factory=dict)
    error: str = ""


def moodscape_command(*args) -> list[str]:
    """``python -m moodscape ARGS`` of this interpreter."""
    return [sys.executable, "-m", "moodscape", *map(str, args)]


def stage_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), env.get("PYTHONPATH")]))
    env.setdefault("NUMBA_CPU_NAME", "generic")
    return env


def folder_bytes(folder: Path) -> int:
    """Bytes of the regular files under ``folder`` (0 when it does not exist)."""
    total = 0
    for path, _, names in os.walk(folder):
        for name in names:
            try:
                total += os.lstat(os.path.join(path, name)).st_size
            except OSError:
                pass
    return total


def tree_rss(root_pid: int) -> int:
    """Resident bytes of a process and all its descendants now (0 when gone)."""
    from bench_serve import tree_total

    return tree_total(root_pid, lambda process: process.memory_info().rss)


def tree_cpu(pids: list[int]) -> float:
    """User + system seconds of the live processes of the trees rooted at ``pids``."""
    from bench_serve import cpu_seconds, tree_total

    return sum(tree_total(pid, cpu_seconds) for pid in pids)


def measured(command: list[str], log_path: Path, output: Path, sample_every: float,
             timeout: float, also: list[int] = ()) -> tuple[int, float, float, float, float, float]:
    """Run ``command``; return rc, wall s, CPU s, peak tree RSS MB, max process RSS MB, disk MB written.

    The child is reaped with ``wait4``, whose usage covers every descendant it reaped in
    turn (Dask's workers and nannies), so CPU time and the largest process's RSS are the
    whole tree's; the tree's summed RSS is sampled while it runs. The process trees of
    ``also`` (a Dask cluster's scheduler and workers) count too: their RSS in the samples,
    their CPU time over the run.
    """
    before = folder_bytes(output)
    also_cpu = tree_cpu(list(also))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=stage_env(), cwd=REPO,
                                   start_new_session=True)
        peak = 0
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                process.returncode = os.waitstatus_to_exitcode(status)
                break
            if time.perf_counter() - start > timeout:
                os.killpg(process.pid, 9)
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = 124
                break
            peak = max(peak, tree_rss(process.pid) + sum(map(tree_rss, also)))
            time.sleep(sample_every)
        wall = time.perf_counter() - start
    disk = (folder_bytes(output) - before) / MB
    max_process = usage.ru_maxrss / 1024  # KiB on Linux
    cpu = usage.ru_utime + usage.ru_stime + tree_cpu(list(also)) - also_cpu
    return process.returncode, wall, cpu, max(peak / MB, max_process), max_process, disk


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def epoch_projection(stage: str, config: Path, work: Path, wall: float, epochs_run: int) -> dict:
    """Seconds a training pass took and the stage's projected wall time at the configured epochs.

    The projection adds a training pass per further epoch to the measured run; it leaves
    out the validation after each epoch and stops no run early, so it is a rough upper
    bound on training, a lower one on validation.
    """
    from moodscape.artifacts import Workdir, read_json
    from moodscape.config import Settings

    settings = Settings.load(config, {})
    configured = settings.pretrain.epochs if stage == "pretrain" else settings.train.epochs
    metrics = read_json(Workdir(work).pretrain_metrics if stage == "pretrain" else Workdir(work).classifier_metrics)
    per_epoch = (metrics.get("history", metrics) if stage == "pretrain" else metrics)["train_seconds_per_epoch"]
    return {"train_seconds_per_epoch": round(per_epoch, 1), "configured_epochs": configured,
            "projected_s": round(wall + max(0, configured - epochs_run) * per_epoch, 1)}


def corpus_counts(args, corpus: Path) -> dict[str, int]:
    """Tracks of the corpus in all, in the train and test splits, of the MP3 sample and of MusAV."""
    from moodscape.config import Settings
    from moodscape.pipeline.collection import load_collection

    tracks = load_collection(Settings.load(corpus / "moodscape.toml", {})).tracks
    splits = tracks["split"].value_counts()
    return {"all": len(tracks), "train": int(splits.get("train", 0)), "test": int(splits.get("test", 0)),
            "mp3": args.mp3_sample, "musav": args.musav_tracks}


def stage_commands(args, size: int, corpus: Path, work: Path, scheduler: str = "") -> dict[str, tuple[list[str], Path]]:
    """Each stage's command and the folder whose growth is its disk written (``scheduler``: the Dask cluster's)."""
    config = corpus / "moodscape.toml"
    overrides = [f"--set={item}" for item in args.set]
    common = ["--config", config, "--workdir", work, *overrides]
    workers = ["--workers", args.workers] if args.workers else []
    generate = ["demo-data", "--like-jamendo", args.metadata, "--out", corpus, "--limit", size,
                "--mp3-sample", args.mp3_sample, "--musav-tracks", args.musav_tracks, "--seed", args.seed,
                "--sample-rate", args.sample_rate, "--channels", args.channels, *workers]
    if args.max_seconds:
        generate += ["--max-seconds", args.max_seconds]
    if args.full_length_mp3:
        generate += ["--full-length-mp3"]
    return {
        "demo-data": (moodscape_command(*generate), corpus),
        "features": (moodscape_command("features", *common, *workers), work),
        "features-mp3": (moodscape_command("features", "--config", corpus / "moodscape-mp3-sample.toml",
                                           "--workdir", sibling(work, "mp3"), *overrides, *workers),
                         sibling(work, "mp3")),
        "cluster": (moodscape_command("cluster", *common), work),
        "label": (moodscape_command("label", *common), work),
        "pretrain": (moodscape_command("pretrain", *common, "--epochs", args.epochs), work),
        "train": (moodscape_command("train", *common, "--epochs", args.epochs), work),
        "train-av": (moodscape_command("train-av", *common), work),
        "infer-test": (moodscape_command("infer", *common, "--split", "test", *workers), work),
        "infer-all": (moodscape_command("infer", *common, "--split", "all", *workers), work),
        "infer-mp3": (moodscape_command("infer", "--config", corpus / "moodscape-mp3-sample.toml", "--workdir",
                                        sibling(work, "mp3-infer"), *overrides, "--split", "all", "--replace", *workers),
                      sibling(work, "mp3-infer")),
        "report": (moodscape_command("report", *common), work),
        "features-dask": (moodscape_command("features", "--config", config, "--workdir", sibling(work, "dask"),
                                            *overrides, "--scheduler", scheduler), sibling(work, "dask")),
        "infer-dask": (moodscape_command("infer", "--config", config, "--workdir", sibling(work, "dask"), *overrides,
                                         "--split", "all", "--scheduler", scheduler), sibling(work, "dask")),
        "train-ddp": (moodscape_command("train", "--config", config, "--workdir", sibling(work, "ddp"), *overrides,
                                        "--epochs", args.epochs, "--nproc", args.nproc), sibling(work, "ddp")),
    }


def sibling(work: Path, name: str) -> Path:
    """Another work directory beside ``work`` (``work-dask``, ``work-ddp``, ``work-mp3``)."""
    return work.with_name(f"{work.name}-{name}")


def prepare(stage: str, work: Path) -> None:
    """Set up the work directory of a comparison stage before it is measured.

    features-dask starts from nothing; the others (:data:`COPIES`) from a copy of the
    run's work directory (its cached mels are links, so the copy is small).
    """
    target = sibling(work, COPIES.get(stage, "dask"))
    shutil.rmtree(target, ignore_errors=True)
    if stage in COPIES:
        shutil.copytree(work, target, symlinks=True, ignore=shutil.ignore_patterns(".chunks", "report"))


def compare(stage: str, work: Path) -> dict:
    """How a comparison stage's result compares with the run's: the same rows and values, or the epoch times."""
    from moodscape.artifacts import Workdir, read_json

    local = Workdir(work)
    if stage == "features-dask":
        return {"vs_local": same_tables(local.features, Workdir(sibling(work, "dask")).features)}
    if stage == "infer-dask":
        other = Workdir(sibling(work, "dask"))
        return {"vs_local": same_tables(local.inference_lookup, other.inference_lookup),
                "embeddings_vs_local": same_tables(local.embeddings, other.embeddings)}
    ddp = read_json(Workdir(sibling(work, "ddp")).classifier_metrics)
    single = read_json(local.classifier_metrics)
    return {"train_seconds_per_epoch": round(ddp["train_seconds_per_epoch"], 1),
            "one_process_s_per_epoch": round(single["train_seconds_per_epoch"], 1),
            "speed_up": round(single["train_seconds_per_epoch"] / ddp["train_seconds_per_epoch"], 2),
            "world_size": ddp.get("world_size")}


def serve_measure(args, size: int, work: Path, logs: Path) -> Measure:
    """Start-up of ``moodscape serve`` on the run's bundle, and recommend latency under load.

    ``--serve-workers`` server processes (``make serve`` starts one per core); the load
    comes from ``wrk`` when it is installed (it costs the shared cores little), else from
    bench_serve's asyncio client. Its RSS is the server's after the load; its CPU time
    the server's over start-up and load.
    """
    import asyncio

    import psutil
    from bench_serve import Server, _python_load, catalog_queries, paths_of, run_wrk

    started = time.perf_counter()
    try:
        server = Server(work, args.serve_workers, logs / "serve.log", args.stage_timeout)
    except SystemExit as error:
        return Measure("serve", size, size, 1, time.perf_counter() - started, 0.0, 0.0, 0.0, 0.0,
                       error=str(error).splitlines()[0])
    try:
        client = "wrk" if shutil.which("wrk") else "python"
        extra = {"startup_s": round(server.startup_s, 3), "catalog": server.ready.get("tracks"),
                 "server_processes": args.serve_workers, "client": client}
        queries = catalog_queries(work, args.seed)
        files = {endpoint: logs / f"serve-{endpoint}.txt" for endpoint in ("mood", "seeds")}
        for endpoint, path in files.items():
            path.write_text("\n".join(queries[endpoint]) + "\n")
        wrk_options = argparse.Namespace(threads=2, connections=args.connections, limit=10)
        for endpoint in ("mood", "seeds"):
            if client == "wrk":
                load = run_wrk(server.port, endpoint, wrk_options, args.load_seconds, files)
            else:
                load = asyncio.run(_python_load(server.port, paths_of(endpoint, queries, 10, args.seed),
                                                args.load_seconds, args.connections, 2_000_000))
            extra[endpoint] = {key: round(load[key], 2) for key in ("rps", "p50", "p99", "requests", "non2xx")}
        rss = tree_rss(server.process.pid) / MB
        cpu = server.cpu_seconds()
        process_rss = psutil.Process(server.process.pid).memory_info().rss / MB
    finally:
        server.stop()
    return Measure("serve", size, size, 0, time.perf_counter() - started, cpu, rss, process_rss, 0.0, extra)


DASK_CONFIG = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
  scheduler:
    worker-saturation: 1.0
"""
"""The Dask settings ``scheduler="local"`` uses (see ``moodscape.pipeline.parallel``), as a
user's cluster gets them: ``DASK_CONFIG`` names a folder with this file."""


class DaskCluster:
    """``dask scheduler`` and ``n_workers`` ``dask worker`` processes on 127.0.0.1, as a user starts them on hosts.

    Each worker is one single-threaded process (``--nthreads 1``, ``OMP_NUM_THREADS=1``
    and the like), as the local cluster's are. Use as a context manager; ``address`` is
    what ``--scheduler`` takes, ``pids`` the processes whose CPU time and RSS count.
    """

    def __init__(self, n_workers: int, logs: Path) -> None:
        from bench_serve import free_port

        from moodscape.pipeline.parallel import SINGLE_THREAD_ENV

        logs.mkdir(parents=True, exist_ok=True)
        (logs / "dask-config").mkdir(exist_ok=True)
        (logs / "dask-config" / "moodscape.yaml").write_text(DASK_CONFIG)
        self.env = {**stage_env(), **SINGLE_THREAD_ENV, "DASK_CONFIG": str(logs / "dask-config")}
        port = free_port()
        self.address = f"tcp://127.0.0.1:{port}"
        dask = [sys.executable, "-m", "dask"]
        self.processes = [self._start(dask + ["scheduler", "--host", "127.0.0.1", "--port", str(port),
                                              "--no-dashboard"], logs / "dask-scheduler.log")]
        self.processes += [self._start(dask + ["worker", self.address, "--nworkers", "1", "--nthreads", "1",
                                               "--no-dashboard", "--memory-limit", "0", "--name", f"worker-{i}",
                                               "--preload", "moodscape.pipeline.parallel"],
                                       logs / f"dask-worker-{i}.log") for i in range(n_workers)]
        self.pids = [process.pid for process in self.processes]
        try:
            self._wait_for_workers(n_workers)
        except BaseException:
            self.close()
            raise

    def _start(self, command: list[str], log: Path) -> subprocess.Popen:
        with open(log, "w") as stream:
            return subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=self.env, cwd=REPO,
                                    start_new_session=True)

    def _wait_for_workers(self, n_workers: int) -> None:
        from dask.distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n_workers, timeout=120)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()

    def __enter__(self) -> "DaskCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def same_tables(local: Path, other: Path, key: str = "track_id") -> dict:
    """Whether two stage tables hold the same rows (in any order) and the same values, exactly."""
    import numpy as np
    from moodscape.artifacts import read_table

    a, b = (read_table(path).sort_values(key).reset_index(drop=True) for path in (local, other))
    if list(a.columns) != list(b.columns) or len(a) != len(b) or not a[key].equals(b[key]):
        return {"identical": False, "rows": [len(a), len(b)]}
    numeric = [c for c in a.columns if a[c].dtype.kind in "fiu"]
    others = [c for c in a.columns if c not in numeric]
    largest = max((float(np.fmax.reduce(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float)), initial=0.0))
                   for c in numeric), default=0.0)  # fmax passes over NaN (a feature NaN in both runs)
    identical = a[numeric].equals(b[numeric]) and a[others].astype(str).equals(b[others].astype(str))
    return {"identical": bool(identical), "rows": len(a), "largest_difference": largest}


def reuse_files(args, corpus: Path) -> None:
    """Hard-link another size's MusAV previews and MP3 sample into ``corpus``: the same seed writes the same files.

    The previews (2,092 at every size) and the sample (the first tracks of one seeded
    order, so the same at every size) are then rendered once per bench run: demo-data
    keeps the whole files it finds when its settings file matches. Their bytes count as
    already there, not written.
    """
    from moodscape.datasets.like_jamendo import SETTINGS_JSON

    stamps = [path for path in args.out.glob(f"n*/corpus/{SETTINGS_JSON}") if path.parent != corpus]
    if not stamps:
        return
    latest = max(stamps, key=lambda path: path.stat().st_mtime).parent
    for folder in ("musav", "mtg-jamendo/audio"):
        if (latest / folder).is_dir():
            shutil.copytree(latest / folder, corpus / folder, copy_function=os.link)
    shutil.copy2(latest / SETTINGS_JSON, corpus / SETTINGS_JSON)


def run_size(args, size: int) -> list[Measure]:
    """Every chosen stage on a corpus of ``size`` tracks, in order; stops at the first failure."""
    base = args.out / f"n{size}"
    corpus, work, logs = base / "corpus", base / "work", base / "logs"
    if "demo-data" in args.stages:
        for folder in (corpus, work, *(sibling(work, name) for name in ("mp3", *COPIES.values()))):
            shutil.rmtree(folder, ignore_errors=True)
        reuse_files(args, corpus)
    elif not (corpus / "moodscape.toml").is_file():
        print(f"n={size}: no corpus at {corpus}; run the demo-data stage first")
        return []
    results, counts = [], None
    with contextlib.ExitStack() as stack:
        cluster = None
        for stage in (s for s in STAGES if s in args.stages):
            print(f"n={size}: {stage} ...", flush=True)
            if stage != "demo-data":
                counts = counts or corpus_counts(args, corpus)
            if stage in DASK_STAGES and cluster is None:  # started when first needed, stopped after the size
                cluster = stack.enter_context(DaskCluster(args.dask_workers, logs))
            command = stage_commands(args, size, corpus, work, cluster.address if cluster else "").get(stage)
            try:
                results.append(serve_measure(args, size, work, logs) if stage == "serve"
                               else stage_measure(args, stage, size, corpus, work, logs, command, counts,
                                                  cluster.pids if stage in DASK_STAGES else []))
            except Exception as error:  # the bench's own failure: recorded, and the measures so far are kept
                results.append(Measure(stage, size, 0, 1, 0.0, 0.0, 0.0, 0.0, 0.0,
                                       error=f"bench: {type(error).__name__}: {error}"))
            last = results[-1]
            print(f"  rc {last.rc}, {last.wall_s:.1f} s wall, {last.cpu_s:.1f} s CPU, peak {last.peak_rss_mb:.0f} MB"
                  + (f": {last.error}" if last.error else "")
                  + (f" {last.extra}" if last.extra else ""), flush=True)
            if last.rc != 0:
                break
    if not args.keep:
        for name in ("mp3", *COPIES.values()):
            shutil.rmtree(sibling(work, name), ignore_errors=True)
    mp3_throughput(results)
    return results


def stage_measure(args, stage: str, size: int, corpus: Path, work: Path, logs: Path,
                  command_output: tuple[list[str], Path], counts: dict | None, cluster_pids: list[int]) -> Measure:
    """Run one stage's command, measured, and what the bench learns from it besides."""
    command, output = command_output
    if stage == "features-dask" or stage in COPIES:  # the stages with a work directory of their own
        prepare(stage, work)
    rc, wall, cpu, peak, largest, disk = measured(command, logs / f"{stage}.log", output, args.sample_every,
                                                  args.stage_timeout, cluster_pids)
    tracks = counts[STAGE_TRACKS.get(stage, "all")] if counts else size
    measure = Measure(stage, size, tracks, rc, wall, cpu, peak, largest, disk,
                      error="" if rc == 0 else log_tail(logs / f"{stage}.log"))
    if rc != 0:
        return measure
    if stage == "features-mp3" and tracks:
        measure.extra["projected_s"] = round(wall / tracks * counts["all"], 1)
    if stage in ("pretrain", "train"):
        measure.extra.update(epoch_projection(stage, corpus / "moodscape.toml", work, wall, args.epochs))
    if stage in COMPARED:
        measure.extra.update(compare(stage, work))
    return measure


def mp3_throughput(measures: list[Measure]) -> None:
    """Tracks analysed from MP3 (features + infer) per core-minute, noted on the infer-mp3 row."""
    by_stage = {m.stage: m for m in measures if m.rc == 0}
    if "features-mp3" in by_stage and "infer-mp3" in by_stage and by_stage["infer-mp3"].tracks:
        cpu = by_stage["features-mp3"].cpu_s + by_stage["infer-mp3"].cpu_s
        by_stage["infer-mp3"].extra["tracks_per_core_minute"] = round(60 * by_stage["infer-mp3"].tracks / cpu, 1)


def growth(runs: dict[int, list[Measure]], key: str, last_two: bool = False) -> dict[str, float]:
    """Per stage, the slope of log ``key`` against log size between the smallest and largest
    size run (``last_two``: the two largest, where fixed start-up costs weigh least)."""
    sizes = sorted(runs)
    if len(sizes) < 2:
        return {}
    first, last = (sizes[-2], sizes[-1]) if last_two else (sizes[0], sizes[-1])
    small = {m.stage: getattr(m, key) for m in runs[first] if m.rc == 0}
    large = {m.stage: getattr(m, key) for m in runs[last] if m.rc == 0}
    ratio = math.log(last / first)
    return {stage: round(math.log(large[stage] / small[stage]) / ratio, 2)
            for stage in small if stage in large and small[stage] > 0 and large[stage] > 0}


def known(value: float, spec: str) -> str:
    """``value`` formatted, or a dash where it was not measured (NaN)."""
    return "—" if math.isnan(value) else format(value, spec)


def print_tables(runs: dict[int, list[Measure]]) -> None:
    for size, measures in runs.items():
        print(f"\n### {size} tracks\n")
        print("| stage | tracks | wall s | CPU s | peak RSS MB (tree) | largest process MB | disk MB | notes |")
        print("|---|---:|---:|---:|---:|---:|---:|---|")
        for m in measures:
            notes = ", ".join(f"{k} {v}" for k, v in m.extra.items()) if m.rc == 0 else f"rc {m.rc}: {m.error}"
            print(f"| {m.stage} | {m.tracks} | {m.wall_s:.1f} | {m.cpu_s:.1f} | {m.peak_rss_mb:.0f} | "
                  f"{known(m.max_process_rss_mb, '.0f')} | {known(m.disk_mb, '.2f')} | {notes} |")
    exponents = {key: growth(runs, key) for key in ("wall_s", "cpu_s", "peak_rss_mb")}
    if exponents["wall_s"]:
        sizes = sorted(runs)
        late = {key: growth(runs, key, last_two=True) for key in ("wall_s", "cpu_s")}
        print("\n### growth exponent (cost ∝ N^x)\n")
        print(f"| stage | wall {sizes[0]} → {sizes[-1]} | CPU {sizes[0]} → {sizes[-1]} | peak RSS | "
              f"wall {sizes[-2]} → {sizes[-1]} | CPU {sizes[-2]} → {sizes[-1]} |")
        print("|---|---:|---:|---:|---:|---:|")
        for stage in exponents["wall_s"]:
            print(f"| {stage} | {exponents['wall_s'][stage]} | {exponents['cpu_s'].get(stage, '')} | "
                  f"{exponents['peak_rss_mb'].get(stage, '')} | {late['wall_s'].get(stage, '')} | "
                  f"{late['cpu_s'].get(stage, '')} |")


def plot(runs: dict[int, list[Measure]], path: Path) -> None:
    """Wall time and peak RSS against size, log-log, one line per stage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(13, 5))
    colours = plt.cm.tab20(range(len(STAGES)))
    for key, axis, label in (("wall_s", axes[0], "wall time (s)"), ("peak_rss_mb", axes[1], "peak RSS of the tree (MB)")):
        for colour, marker, stage in zip(colours, "osD^v<>pP*Xhd" * 2, STAGES):
            points = sorted((m.size, getattr(m, key)) for ms in runs.values() for m in ms
                            if m.stage == stage and m.rc == 0 and getattr(m, key) > 0)
            if len(points) > 1:
                axis.plot(*zip(*points), marker=marker, color=colour, label=stage)
        if key == "wall_s":  # a line of slope 1: linear growth
            sizes = sorted(runs)
            axis.plot([sizes[0], sizes[-1]], [10, 10 * sizes[-1] / sizes[0]], color="grey", linestyle="--", label="∝ N")
        else:
            axis.axhline(8 * 1024, color="red", linestyle=":", label="8 GB target")
        axis.set(xscale="log", yscale="log", xlabel="tracks", ylabel=label)
        axis.grid(True, which="both", alpha=0.3)
    axes[1].legend(handles=[*axes[0].get_lines(), axes[1].get_lines()[-1]], fontsize=7, loc="upper left",
                   bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")


def machine() -> str:
    from bench_serve import cpu_model

    import psutil

    return (f"{cpu_model()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {platform.python_version()}, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC")


def write_json(args, runs: dict[int, list[Measure]], path: Path) -> None:
    result = {
        "machine": machine(), "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "runs": {str(size): [asdict(m) for m in measures] for size, measures in runs.items()},
        "growth_exponent": {key: growth(runs, key) for key in ("wall_s", "cpu_s", "peak_rss_mb")},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def merged_tables(args) -> int:
    """The tables, growth exponents and plot of the runs recorded in ``args.from_json`` (a later file's stage wins)."""
    stages, machines = {}, []
    for path in args.from_json:
        result = json.loads(path.read_text())
        machines.append(result["machine"])
        for size, measures in result["runs"].items():
            for measure in measures:
                stages.setdefault(int(size), {})[measure["stage"]] = Measure(**measure)
    runs = {size: sorted(by_stage.values(), key=lambda m: STAGES.index(m.stage))
            for size, by_stage in sorted(stages.items())}
    for line in dict.fromkeys(machines):
        print(f"machine: {line}")
    print_tables(runs)
    if len(runs) > 1 or args.plot:
        plot_path = args.plot or args.out / "bench_scale.png"
        plot(runs, plot_path)
        print(f"plot: {plot_path}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metadata", type=Path, default=DEFAULT_METADATA, help="the MTG-Jamendo metadata folder")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 18486])
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES))
    parser.add_argument("--out", type=Path, default=BENCH / "out" / "scale", help="corpora, work directories and logs")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="cap on track length (0: the real durations)")
    parser.add_argument("--mp3-sample", type=int, default=100)
    parser.add_argument("--full-length-mp3", action=argparse.BooleanOptionalAction, default=True,
                        help="the MP3 sample at the tracks' real durations (219 s on average), not capped")
    parser.add_argument("--musav-tracks", type=int, default=2092)
    parser.add_argument("--sample-rate", type=int, default=44100, help="of the MP3 sample and previews")
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--workers", type=int, default=None, help="generator processes and Dask workers (default: cores)")
    parser.add_argument("--epochs", type=int, default=1, help="pretrain and train epochs (timed, then projected)")
    parser.add_argument("--dask-workers", type=int, default=2, help="dask worker processes of the cluster stages")
    parser.add_argument("--nproc", type=int, default=2, help="train-ddp: torchrun processes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting for every stage after demo-data (repeatable), e.g. label.min_size=1")
    parser.add_argument("--connections", type=int, default=32, help="serve: concurrent connections")
    parser.add_argument("--serve-workers", type=int, default=2, help="serve: server processes (moodscape serve --workers)")
    parser.add_argument("--load-seconds", type=float, default=10.0, help="serve: seconds of load per endpoint")
    parser.add_argument("--sample-every", type=float, default=0.2, help="seconds between RSS samples")
    parser.add_argument("--stage-timeout", type=float, default=6 * 3600.0)
    parser.add_argument("--json", type=Path, default=None, help="default: OUT/bench_scale.json")
    parser.add_argument("--plot", type=Path, default=None, help="default: OUT/bench_scale.png (with several sizes)")
    parser.add_argument("--keep", action="store_true", help="keep the MP3 sample's work directory")
    parser.add_argument("--from-json", type=Path, nargs="+", default=None, metavar="JSON",
                        help="run nothing: print the tables (and plot) of earlier runs' JSON files, merged")
    args = parser.parse_args(argv)

    if args.from_json:
        return merged_tables(args)
    if not (args.metadata / METADATA_FILE).is_file():
        print(f"skipped: no MTG-Jamendo metadata at {args.metadata} ({METADATA_FILE} missing); "
              "give --metadata PATH, the mtg-jamendo-dataset repository's data folder")
        return 0
    args.metadata = args.metadata.resolve()
    args.out = args.out.resolve()
    if not args.max_seconds:
        args.max_seconds = None
    json_path = args.json or args.out / "bench_scale.json"
    runs = {}
    for size in sorted(set(args.sizes)):
        runs[size] = run_size(args, size)
        write_json(args, runs, json_path)  # after each size, so that a later failure keeps it
    print(f"\nmachine: {machine()}")
    print_tables(runs)
    print(f"\nJSON: {json_path}")
    if len(runs) > 1 or args.plot:
        plot_path = args.plot or args.out / "bench_scale.png"
        plot(runs, plot_path)
        print(f"plot: {plot_path}")
    return 0 if all(m.rc == 0 for ms in runs.values() for m in ms) else 1


if __name__ == "__main__":
    sys.exit(main())
