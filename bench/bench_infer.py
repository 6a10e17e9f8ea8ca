"""Benchmark of stage 5 (``moodscape infer``): the whole per-track map against the network alone.

N synthetic tracks (``moodscape.datasets.demo_synth``, 44.1 kHz stereo MP3, written once
into ``bench/out/infer/``) go through the same inference bundle: a random ResNet-18
(BatchNorm statistics set from the tracks' mels) with LoRA r=8 adapters merged and a head
of 7 labels, and the real stage-4 ``AVEnsemble`` (5 members) when ``moodscape.models.av``
exists, else a small stand-in. Every side uses the same crops (``n_eval_crops`` of
``crop_frames`` frames per track) and the same chunks of tracks (``tracks_per_chunk``),
all crops of a chunk batched, ``batch_size`` crops per forward pass.

(a) **network only**, on mels computed beforehand, every core busy, two ways; the faster
    is the reference:
    - one process, torch threads = cores;
    - one process per core, one thread each (the Dask local cluster's workers), each
      running an equal share of the tracks, all started at the same instant; the rate is
      N ÷ (last end − start).
(b) **infer**: ``map_tracks(infer_chunk, batched=True)`` from the MP3s (decode of the
    crops' audio only, resample, log-mel, network, AV regressor, Parquet chunks) on a Dask local cluster of one
    single-threaded worker per core, the cluster started and warmed beforehand (each
    worker imported torch and loaded the bundle): start-up is left out of (a) and (b).
(c) the same map with ``scheduler="local"`` from nothing, cluster start-up, imports and
    bundle loading included, once, as a user's first run pays it.

(a) and (b) alternate ``--repeats`` times, so machine load hits both; each reports its
best repeat; the ratio of the bests is the headline, the median of the per-repeat ratios
is printed beside it. Target: (b) / (a) ≥ 0.70.

On CPU the workers' cores are all busy, so decoding cannot hide behind the network: (b)
costs the network's CPU time plus the decode's, and (b) / (a) can reach at most
network ÷ (network + decode) per track, which the bench prints as the ceiling.

Run: ``PYTHONPATH=src python bench/bench_infer.py [--tracks 64]``.
"""

from __future__ import annotations

import os

# Set before torch loads OpenMP (as the CLI does): with spinning waits, threads of
# processes that share busy cores wait out scheduler time slices.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from torch import nn  # noqa: E402

from moodscape.audio import mel_crops_from_audio, mel_from_audio  # noqa: E402
from moodscape.inference import cached_bundle, export_bundle, infer_chunk, load_bundle, predict_mels  # noqa: E402
from moodscape.models.backbone import build_backbone  # noqa: E402
from moodscape.models.lora import add_lora  # noqa: E402
from moodscape.pipeline.parallel import clear_chunks, map_tracks, start_local_cluster, tracks_per_chunk  # noqa: E402
from moodscape.models.checkpoint import save_checkpoint  # noqa: E402

from bench_network import cpu_model  # noqa: E402  (bench/ is on sys.path when run as a script)

SAMPLE_RATE = 44100
N_LABELS = 7
TARGET = 0.70


# ---------------------------------------------------------------- corpus and bundle


def _render(index: int, seconds: float, path: Path) -> None:
    from moodscape.datasets.demo_synth import ARCHETYPES, draw_track_params, render_track

    rng = np.random.default_rng([7, index])
    params = draw_track_params(index % len(ARCHETYPES), rng)
    sf.write(path, render_track(params, seconds, SAMPLE_RATE, 2), SAMPLE_RATE, format="MP3")


def make_tracks(out_dir: Path, n_tracks: int, seconds: float) -> list[Path]:
    """The corpus: 44.1 kHz stereo MP3s of the demo synth, rendered once and kept."""
    folder = out_dir / f"tracks-{seconds:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"track_{index:03d}.mp3" for index in range(n_tracks)]
    todo = [(index, path) for index, path in enumerate(paths) if not path.exists()]
    with ProcessPoolExecutor(max_workers=os.cpu_count()) as pool:
        list(pool.map(_render, [i for i, _ in todo], [seconds] * len(todo), [p for _, p in todo]))
    return paths


def standin_av(**model_args) -> nn.Module:
    """Stand-in for the stage-4 regressor when ``moodscape.models.av`` is missing."""
    return nn.Sequential(nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 2))


def av_checkpoint_and_builder() -> tuple[dict, object, str]:
    try:
        from moodscape.models.av import av_checkpoint, build_av_ensemble
    except ImportError:
        torch.manual_seed(1)
        return {"state_dict": standin_av().state_dict(), "model_args": {}}, standin_av, "stand-in MLP 512-64-2"
    ensemble = build_av_ensemble(n_members=5)
    return av_checkpoint(ensemble), None, f"AVEnsemble {ensemble.model_args}"


def make_bundle(out_dir: Path, mels: list[np.ndarray], args) -> tuple[Path, object, str]:
    """A random LoRA r=8 classifier of 7 labels (adapters non-zero) + AV regressor, as a bundle file."""
    torch.manual_seed(0)
    backbone = build_backbone(None)
    batchnorms = [m for m in backbone.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in batchnorms:
        module.momentum = None  # one train-mode pass sets realistic running statistics
    crops = torch.from_numpy(np.stack([mel[:, : args.crop_frames] for mel in mels[:16]]))[:, None]
    with torch.no_grad():
        backbone.train()(crops)
    backbone.replace_head(N_LABELS)
    classifier = add_lora(backbone, r=8, alpha=16)
    with torch.no_grad():
        for name, parameter in classifier.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 1e-2)
    checkpoint, builder, av_name = av_checkpoint_and_builder()
    bundle = export_bundle(
        classifier.eval(), [f"label {i}" for i in range(N_LABELS)], checkpoint,
        crop_frames=args.crop_frames, n_eval_crops=args.n_eval_crops, batch_size=args.batch_size, device="cpu",
    )
    path = out_dir / "bundle.pt"
    save_checkpoint(bundle, path)
    return path, builder, av_name


# ---------------------------------------------------------------- the sides


def chunks_of(items: list, size: int) -> list[list]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def network_in_process(bundle, mels: list[np.ndarray], chunk: int) -> float:
    """Seconds of the network over every track, chunk by chunk, in this process."""
    start = time.perf_counter()
    for part in chunks_of(mels, chunk):
        predict_mels(bundle, part)
    return time.perf_counter() - start


def network_share(bundle_path: str, av_builder, mel_paths: list[str], chunk: int, start_at: float) -> tuple[float, float]:
    """On a Dask worker: load a share of the mels, wait for ``start_at``, run the network over them.

    Returns the (start, end) wall-clock times of the network part.
    """
    torch.set_num_threads(1)
    bundle = cached_bundle(bundle_path, av_builder)
    mels = [np.load(path) for path in mel_paths]
    time.sleep(max(0.0, start_at - time.time()))
    start = time.time()
    for part in chunks_of(mels, chunk):
        predict_mels(bundle, part)
    return start, time.time()


def warm_worker(bundle_path: str, av_builder, mel_path: str) -> int:
    """On a Dask worker: import torch, load the bundle, run one forward (what start-up pays)."""
    torch.set_num_threads(1)
    predict_mels(cached_bundle(bundle_path, av_builder), [np.load(mel_path)])
    return torch.get_num_threads()


def network_procs(client, workers: list[str], bundle_path: Path, av_builder, mel_paths: list[Path], chunk: int) -> float:
    """Wall seconds of the network over every track, one share per single-threaded worker."""
    per_worker = np.array_split(np.arange(len(mel_paths)), len(workers))
    start_at = time.time() + 2.0  # every worker has its mels loaded by then
    futures = [
        client.submit(network_share, str(bundle_path), av_builder, [str(mel_paths[i]) for i in share], chunk, start_at,
                      workers=[worker], pure=False)
        for worker, share in zip(workers, per_worker)
    ]
    spans = client.gather(futures)
    if min(start for start, _ in spans) < start_at - 0.05:
        raise SystemExit("a worker started before the common start time")
    return max(end for _, end in spans) - start_at


def infer_map(bundle_path: Path, av_builder, mp3s: list[Path], chunk_dir: Path, scheduler: str, workers: int, chunk_size: int):
    """Seconds of the stage-5 map over the MP3s, and its outcome."""
    clear_chunks(chunk_dir)
    tasks = {path.stem: ("audio", str(path)) for path in mp3s}
    start = time.perf_counter()
    outcome = map_tracks(
        functools.partial(infer_chunk, str(bundle_path), av_builder=av_builder), tasks,
        chunk_dir=chunk_dir, fingerprint={"bench": "infer"}, scheduler=scheduler, n_workers=workers,
        chunk_size=chunk_size, description="infer", show_progress=False, batched=True,
    )
    seconds = time.perf_counter() - start
    clear_chunks(chunk_dir)
    if outcome.failures or len(outcome.rows) != len(mp3s):
        raise SystemExit(f"infer failed on {outcome.failures[:3]}")
    return seconds, outcome


# ---------------------------------------------------------------- report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracks", type=int, default=64, help="number of tracks")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each track")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).parent / "out" / "infer")
    parser.add_argument("--crop-frames", type=int, default=256)
    parser.add_argument("--n-eval-crops", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32, help="crops per forward pass")
    parser.add_argument("--chunk-size", type=int, default=8, help="map_tracks chunk_size (largest chunk)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(), help="Dask workers (one thread each)")
    parser.add_argument("--repeats", type=int, default=5, help="alternating runs of (a) and (b)")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.ERROR)
    cores = os.cpu_count() or 1

    # -- corpus, mels (decode + mel timed on one thread), bundle
    torch.set_num_threads(1)
    mp3s = make_tracks(args.out_dir, args.tracks, args.seconds)
    mel_dir = args.out_dir / "mels"
    mel_dir.mkdir(exist_ok=True)
    mels, mel_paths, decode_seconds = [], [], []
    for path in mp3s:
        start = time.perf_counter()
        mel_crops_from_audio(path, args.crop_frames, args.n_eval_crops)  # what infer decodes: the crops' audio
        decode_seconds.append(time.perf_counter() - start)
        mel = mel_from_audio(path)
        mels.append(mel)
        mel_paths.append(mel_dir / f"{path.stem}.npy")
        np.save(mel_paths[-1], mel)
    bundle_path, av_builder, av_name = make_bundle(args.out_dir, mels, args)
    chunk = tracks_per_chunk(len(mp3s), args.chunk_size, args.workers)

    # -- a warm cluster for (a, procs) and (b); its start-up is timed but left out of both
    from dask.distributed import Client

    started = time.perf_counter()
    cluster = start_local_cluster(args.workers)  # the cluster of scheduler="local"
    client = Client(cluster)
    workers = sorted(client.scheduler_info()["workers"])
    worker_threads = client.gather([client.submit(warm_worker, str(bundle_path), av_builder, str(mel_paths[0]),
                                                  workers=[w], pure=False) for w in workers])
    startup = time.perf_counter() - started

    torch.set_num_threads(cores)
    bundle = load_bundle(bundle_path, av_builder)
    network_in_process(bundle, mels[:chunk], chunk)  # warm-up: oneDNN primitives
    times = {"threads": [], "procs": [], "infer": []}
    for _ in range(args.repeats):
        times["threads"].append(network_in_process(bundle, mels, chunk))
        times["procs"].append(network_procs(client, workers, bundle_path, av_builder, mel_paths, chunk))
        seconds, outcome = infer_map(bundle_path, av_builder, mp3s, args.out_dir / "chunks", cluster.scheduler_address,
                                     args.workers, args.chunk_size)
        times["infer"].append(seconds)
    client.close()
    cluster.close()
    cold, _ = infer_map(bundle_path, av_builder, mp3s, args.out_dir / "chunks", "local", args.workers, args.chunk_size)

    # -- report
    n = len(mp3s)
    rate = {side: n / min(values) for side, values in times.items()}
    reference = max(("threads", "procs"), key=rate.get)
    ratio = rate["infer"] / rate[reference]
    per_repeat = [min(a, b) / c for a, b, c in zip(times["threads"], times["procs"], times["infer"])]
    # With every core busy, (b) adds the decode's CPU time to the network's: its best possible ratio.
    network_core_s = cores / rate[reference]
    ceiling = network_core_s / (network_core_s + float(np.median(decode_seconds)))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    machine = (f"{cpu_model()}, {cores} cores, torch {torch.__version__}, OMP_WAIT_POLICY="
               f"{os.environ.get('OMP_WAIT_POLICY')}, load average at the end {load}, {datetime.date.today().isoformat()}")
    table = Table(title=f"stage 5 on {n} tracks of {args.seconds:g} s (44.1 kHz stereo MP3)")
    for column in ("side", "what runs", "tracks/s", "s (best)", "all repeats (s)"):
        table.add_column(column, justify="left" if column in ("side", "what runs") else "right")
    rows = [
        ("(a) network, 1 proc", f"1 process × {cores} threads, mels in memory", times["threads"]),
        ("(a) network, procs", f"{args.workers} Dask workers × 1 thread, equal shares, common start", times["procs"]),
        ("(b) infer", f"map_tracks(batched) on a warm local cluster of {args.workers} × 1 thread", times["infer"]),
    ]
    for side, what, values in rows:
        key = {"(a) network, 1 proc": "threads", "(a) network, procs": "procs", "(b) infer": "infer"}[side]
        mark = " (reference)" if key == reference else ""
        table.add_row(side + mark, what, f"{rate[key]:.2f}", f"{min(values):.2f}", ", ".join(f"{v:.2f}" for v in values))
    table.add_row("(c) infer, cold", "scheduler='local': cluster start-up, imports, bundle load included",
                  f"{n / cold:.2f}", f"{cold:.2f}", f"{cold:.2f}")
    console = Console(width=200)
    console.print(f"machine: {machine}")
    console.print(f"bundle: ResNet-18, LoRA r=8 merged, {N_LABELS} labels, AV: {av_name}; crops: {args.n_eval_crops} × "
                  f"{args.crop_frames} frames; {chunk} tracks per chunk ({chunk * args.n_eval_crops} crops per chunk, "
                  f"forward passes of ≤ {args.batch_size} crops); worker torch threads {worker_threads}")
    console.print(f"decode + log-mel of the crops alone (1 thread): {1e3 * float(np.median(decode_seconds)):.0f} ms per track (median); "
                  f"warm cluster start-up (left out of a and b): {startup:.1f} s")
    console.print(table)
    met = "met" if ratio >= TARGET else "NOT met"
    console.print(f"(b) / (a) = {rate['infer']:.2f} / {rate[reference]:.2f} = [bold]{ratio:.2f}[/bold] "
                  f"(target ≥ {TARGET:.2f}: {met}); median over repeats of (b) / faster (a) of the same repeat: "
                  f"{float(np.median(per_repeat)):.2f} ({', '.join(f'{r:.2f}' for r in per_repeat)}); "
                  f"(c) / (a) = {n / cold / rate[reference]:.2f}")
    console.print(f"CPU-bound ceiling of (b) / (a): network {1e3 * network_core_s:.0f} core-ms per track ÷ (network + "
                  f"decode {1e3 * float(np.median(decode_seconds)):.0f} core-ms) = {ceiling:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "machine": machine,
                                         "times": times, "cold": cold, "startup": startup, "ratio": ratio, "per_repeat": per_repeat, "ceiling": ceiling,
                                         "decode_ms": [1e3 * s for s in decode_seconds]}, indent=2))
    shutil.rmtree(args.out_dir / "chunks", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
