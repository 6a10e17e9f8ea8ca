"""The ``moodscape`` command line: one command per pipeline stage.

Each command parses its options, loads the settings (``--config`` TOML plus overrides),
runs one stage of the registry :mod:`moodscape.pipeline.stages` and prints a short summary. Expected
failures (bad config, bad data, missing artifacts, a disk that refuses a write) end with a
one-line message and exit status 2, never a traceback. A command that writes a work
directory holds its lock (:func:`moodscape.artifacts.workdir_lock`) while it runs.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: on cores shared with Dask workers or other
# jobs, spinning made every small LoRA op wait for descheduled threads (bench/RESULTS.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import contextlib
import errno
import functools
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from . import artifacts
from .artifacts import Workdir
from .config import Settings
from .errors import ConfigError, DamagedArtifactError, MissingArtifactError, MoodscapeError
from .launch import under_torchrun

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Acoustically coherent mood labels for a music collection. One command per pipeline stage.",
)
console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="TOML settings file (dataset locations and stage settings).")]
WorkdirOption = Annotated[Path, typer.Option("--workdir", "-w", help="Directory of this run's artifacts.")]
SetOption = Annotated[list[str] | None, typer.Option("--set", help="Override a setting, e.g. --set cluster.k=6 (repeatable).")]
DEFAULT_WORKDIR = Path("data")


def _fail_cleanly(command: F) -> F:
    """Turn a :class:`MoodscapeError`, or an ``OSError`` no stage turned into one, into a red one-line message and exit status 2.

    With ``MOODSCAPE_DEBUG=1`` in the environment the error propagates with its traceback.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (MoodscapeError, OSError) as exc:
            if os.environ.get("MOODSCAPE_DEBUG", "") not in ("", "0"):
                raise
            console.print(f"[bold red]error:[/] {escape(_message(exc))}", soft_wrap=True, highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _message(error: MoodscapeError | OSError) -> str:
    """The one-line message of an error; a missing artifact names the command that writes it."""
    if isinstance(error, OSError):
        return _os_message(error)
    if isinstance(error, (MissingArtifactError, DamagedArtifactError)):
        from .pipeline.stages import producer_of

        if stage := producer_of(error.path):
            if isinstance(error, MissingArtifactError):
                return f"missing artifact {error.path}: run `moodscape {stage}` first"
            return " ".join(f"{error.problem}; run `moodscape {stage}` again to write it anew".split())
    return " ".join(str(error).split())


def _os_message(error: OSError) -> str:
    """``file: reason`` of an operating system error, with the advice of a failed write where it is one."""
    if error.filename is None:
        return f"{error.strerror or error} ({type(error).__name__}; set MOODSCAPE_DEBUG=1 to see where)"
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
        return artifacts.write_failure(Path(os.fsdecode(error.filename)), error)
    return f"{os.fsdecode(error.filename)}: {error.strerror or error}"


def _settings(config: Path | None, overrides: list[str] | None, **named: Any) -> Settings:
    # paths given on the command line are relative to the working directory, not the config file
    values: dict[str, Any] = {
        key.replace("__", "."): value.resolve() if isinstance(value, Path) else value
        for key, value in named.items() if value is not None
    }
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise MoodscapeError(f"--set expects key=value, e.g. --set cluster.k=6; got {item!r}")
        values[key.strip()] = _parse_value(raw.strip(), f"--set {item}")
    settings = Settings.load(config, values)
    settings.check_paths()
    return settings


def _workdir(path: Path) -> Workdir:
    """The work directory at ``path``, which may not exist yet but may not be a file."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--workdir {path} is a file, not a directory; give the run's directory (it is created when missing)")
    return Workdir(path)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Workdir]:
    """The work directory at ``path``, held against other moodscape commands while the block runs.

    Processes started by ``torchrun`` do not take it: the command that started them
    holds it (or, under a ``torchrun`` a user started, rank 0 and its peers share it).
    """
    workdir = _workdir(path)
    if under_torchrun():
        yield workdir
        return
    with artifacts.workdir_lock(workdir):
        yield workdir


def _run_stage(name: str, settings: Settings, path: Path) -> dict[str, Any]:
    """Run the stage ``name`` of the registry on the work directory at ``path``, holding its lock."""
    from .pipeline.stages import BY_NAME

    with _locked(path) as workdir:
        return BY_NAME[name].run(settings, workdir)


def _parse_value(raw: str, given: str = "") -> Any:
    """A value from the command line: JSON (6, 0.5, true, [5, 10]), else the text as it is."""
    try:
        return json.loads(raw)
    except json.JSONDecodeError as error:
        if raw.startswith(("[", "{")):  # meant as a list or table: taking the text would hide the typo
            raise ConfigError(f"{given or raw}: not valid JSON ({error.msg}); write a list as [5, 10] or [\"rms_mean\"], "
                              "a text that begins with [ or { in double quotes") from None
        return raw


def _print_summary(title: str, rows: dict[str, Any]) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    for key, value in rows.items():
        table.add_row(key, escape(str(value)))
    Console().print(table)


@app.command("demo-data")
@_fail_cleanly
def demo_data(
    out: Annotated[Path, typer.Option(help="Directory for the corpus.")] = Path("demo"),
    tracks: Annotated[int, typer.Option(min=15, help="MTG-Jamendo-style tracks.")] = 200,
    musav_tracks: Annotated[int | None, typer.Option(min=3, help="MusAV-style previews (default 600: about 500 judged pairs a "
                                                                 "dimension, so a pairwise accuracy is known to ~1.5 points; "
                                                                 "2,092, MusAV's, with --like-jamendo).")] = None,
    seconds: Annotated[float, typer.Option(min=2.0, help="Length of each track.")] = 20.0,
    seed: Annotated[int, typer.Option(help="Random seed; the corpus is deterministic for a seed.")] = 0,
    sample_rate: Annotated[int, typer.Option(help="Sample rate of the MP3 files.")] = 22050,
    channels: Annotated[int, typer.Option(min=1, max=2)] = 1,
    like_jamendo: Annotated[Path | None, typer.Option(help="A copy of the MTG-Jamendo metadata (autotagging_moodtheme.tsv, "
                                                           "splits/): its real tracks, tags and split 0, written as mels "
                                                           "(--tracks and --seconds do not apply).")] = None,
    max_seconds: Annotated[float | None, typer.Option(min=2.0, help="--like-jamendo: cap each track's length.")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="--like-jamendo: keep this many tracks (a seeded subset).")] = None,
    mp3_sample: Annotated[int, typer.Option(min=0, help="--like-jamendo: tracks also written as MP3.")] = 0,
    full_length_mp3: Annotated[bool, typer.Option(help="--like-jamendo: the MP3 sample at the real durations, "
                                                       "not capped by --max-seconds.")] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="--like-jamendo: processes (default: one per core).")] = None,
) -> None:
    """Stage 0: synthesise a demo corpus with planted structure, in the real dataset formats."""
    from .datasets.demo import generate_demo_corpus

    if like_jamendo is not None:
        return _like_jamendo_data(like_jamendo, out, max_seconds=max_seconds, limit=limit, mp3_sample=mp3_sample,
                                  full_length_mp3=full_length_mp3, n_musav=musav_tracks, seed=seed,
                                  sample_rate=sample_rate, channels=channels, workers=workers)
    musav_tracks = 600 if musav_tracks is None else musav_tracks
    with _progress("demo corpus") as progress:
        corpus = generate_demo_corpus(
            out, n_tracks=tracks, n_musav=musav_tracks, seconds=seconds, seed=seed,
            sample_rate=sample_rate, channels=channels, progress=progress,
        )
    config_path = Path(out) / "moodscape.toml"
    with artifacts.atomic_path(config_path) as tmp:
        tmp.write_text(_demo_config(corpus, Path(out), seed), encoding="utf-8")
    _print_summary("demo corpus", {"tracks": tracks, "musav previews": musav_tracks, "archetypes": corpus.n_archetypes, "config": config_path})


@contextlib.contextmanager
def _progress(what: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, shown from the first call ``progress(n_done, n_total)`` (an error before shows alone)."""
    bar = Progress(TextColumn(what), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console)
    tasks = []

    def progress(done: int, total: int) -> None:
        if not tasks:
            bar.start()
            tasks.append(bar.add_task(what, total=total))
        bar.update(tasks[0], completed=done, total=total)

    try:
        yield progress
    finally:
        if tasks:
            bar.stop()


def _like_jamendo_data(metadata: Path, out: Path, *, n_musav: int | None, **options: Any) -> None:
    """``demo-data --like-jamendo``: the rehearsal corpus (with its config files)."""
    from .datasets.like_jamendo import MUSAV_PREVIEWS, write_like_jamendo

    with _progress("rehearsal corpus") as progress:
        corpus = write_like_jamendo(metadata, out, n_musav=MUSAV_PREVIEWS if n_musav is None else n_musav,
                                    progress=progress, **options)
    _print_summary("rehearsal corpus", {"tracks": corpus.n_tracks, "hours": f"{corpus.seconds / 3600:.1f}",
                                        "mp3 sample": corpus.n_mp3, "musav previews": corpus.n_musav,
                                        "skipped metadata rows": len(corpus.problems), "config": corpus.config,
                                        "mp3 sample config": corpus.sample_config})


def _demo_config(corpus: Any, out: Path, seed: int) -> str:
    def rel(path: Path) -> str:
        return Path(path).resolve().relative_to(out.resolve()).as_posix()

    return "\n".join([
        "# Written by `moodscape demo-data`; paths are relative to this file.",
        f"seed = {seed}",
        "",
        "[data]",
        'source = "jamendo"',
        "",
        "[jamendo]",
        f'root = "{rel(corpus.jamendo_root)}"',
        f'audio_root = "{rel(corpus.jamendo_audio_root)}"',
        "split = 0",
        "",
        "[musav]",
        f'root = "{rel(corpus.musav_root)}"',
        f'audio_root = "{rel(corpus.musav_audio_root)}"',
        f'metadata_root = "{rel(corpus.musav_metadata_root)}"',
        f'planted_truth = "{rel(corpus.truth_path)}"',
        "",
        "# A CPU-sized training budget for the demo: short crops, few epochs.",
        "[pretrain]",
        "epochs = 12",
        "batch_size = 16",
        "patience = 3",
        "crop_frames = 128",
        "",
        "[train]",
        "epochs = 20",
        "batch_size = 16",
        "patience = 6",
        "lr = 0.002",
        "crop_frames = 128",
        "",
        "# The web app's catalog is every demo track; the classifier is still scored on the test split only.",
        "[infer]",
        'split = "all"',
        "",
    ])


@app.command()
@_fail_cleanly
def features(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    scheduler: Annotated[str | None, typer.Option(help="'local' (default), 'synchronous', or a Dask scheduler address.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Workers of the local Dask cluster (default: one per core).")] = None,
    source: Annotated[str | None, typer.Option(help="auto, audio, mel or essentia.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 1a: low-level audio features per track → features.parquet."""
    settings = _settings(config, set_, features__scheduler=scheduler, features__n_workers=workers, features__source=source)
    summary = _run_stage("features", settings, workdir)
    _print_summary("features", {**summary, "output": Workdir(workdir).features})


@app.command()
@_fail_cleanly
def cluster(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    k: Annotated[str | None, typer.Option(help="Number of clusters, or 'auto' to scan k_range.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 1b: standardise features, K-Means fitted on the training split → clusters.csv."""
    k_value = None if k is None else (k if k == "auto" else _parse_value(k))
    settings = _settings(config, set_, cluster__k=k_value)
    summary = _run_stage("cluster", settings, workdir)
    _print_summary("cluster", {**summary, "output": Workdir(workdir).clusters})


@app.command()
@_fail_cleanly
def label(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    min_size: Annotated[int | None, typer.Option(min=1, help="Drop clusters with fewer training tracks.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 2: name each cluster from its most distinctive original tags."""
    settings = _settings(config, set_, label__min_size=min_size)
    summary = _run_stage("label", settings, workdir)
    names = Table("cluster", "new acoustic label", title="labels", title_justify="left")
    for cluster_id, name in summary["names"].items():
        names.add_row(str(cluster_id), escape(name))
    for cluster_id, reason in summary["dropped"].items():
        names.add_row(str(cluster_id), f"[dim]dropped: {escape(reason)}[/]")
    Console().print(names)
    _print_summary("label", {"labelled tracks": summary["labelled"], "unlabelled": summary["unlabelled"], "output": Workdir(workdir).track_labels})


@app.command()
@_fail_cleanly
def pretrain(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    backbone: Annotated[Path | None, typer.Option(help="Use this backbone checkpoint (a state_dict) instead of pretraining.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    objective: Annotated[str | None, typer.Option(help="auto (default: tags when enough tracks carry them), tags or contrastive.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 3a: ResNet-18 backbone pretrained on the original tags, or without labels → models/backbone.pt."""
    settings = _settings(config, set_, pretrain__epochs=epochs, pretrain__backbone=backbone, pretrain__objective=objective)
    summary = _run_stage("pretrain", settings, workdir)
    _print_summary("pretrain", {**summary, "output": Workdir(workdir).backbone})


@app.command()
@_fail_cleanly
def train(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    mode: Annotated[str | None, typer.Option(help="lora (default), full or probe.")] = None,
    rank: Annotated[int | None, typer.Option("--rank", "-r", min=1, help="LoRA rank r.")] = None,
    epochs: Annotated[int | None, typer.Option(min=1)] = None,
    nproc: Annotated[int | None, typer.Option(min=1, help="Processes for DDP training through torchrun.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 3b: LoRA adapters + head on the frozen backbone for the new labels → models/classifier.pt.

    With --nproc N (N > 1) it runs data-parallel as `torchrun --standalone --nproc_per_node N
    -m moodscape train …` would; that command also works as it stands.
    """
    settings = _settings(config, set_, train__mode=mode, train__r=rank, train__epochs=epochs, train__nproc=nproc)
    summary = _run_stage("train", settings, workdir)
    if summary:  # under torchrun only rank 0 has one
        _print_summary("train", {**summary, "metrics": Workdir(workdir).classifier_metrics})


@app.command()
@_fail_cleanly
def ablate(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    set_: SetOption = None,
) -> None:
    """Compare LoRA ranks, full fine-tuning, a linear probe and the tag-trained backbone."""
    summary = _run_stage("ablate", _settings(config, set_), workdir)
    _print_summary("ablation", {**summary, "metrics": Workdir(workdir).ablation_metrics})


@app.command("train-av")
@_fail_cleanly
def train_av(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    mode: Annotated[str | None, typer.Option(help="mse (absolute targets), rank (pairwise judgments) or combined.")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 4: valence/arousal regressor on MusAV embeddings → models/av_regressor.pth, metrics/av.json."""
    summary = _run_stage("train-av", _settings(config, set_, av__mode=mode), workdir)
    _print_summary("train-av", {**summary, "metrics": Workdir(workdir).av_metrics, "predictions": Workdir(workdir).musav_predictions})


@app.command("eval-musav")
@_fail_cleanly
def eval_musav(
    predictions: Annotated[Path, typer.Argument(help="JSON lines {songid, model, arousal_mean, valence_mean}.")],
    annotations: Annotated[Path, typer.Option(help="The MusAV annotations folder (with its ismir2022/ subsets).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON list instead of a table.")] = False,
) -> None:
    """Score predictions with the MusAV protocol: % of correctly ordered pairs per ground-truth file."""
    from .datasets.musav import read_predictions
    from .evaluation import evaluate_musav

    rows = evaluate_musav(read_predictions(predictions), annotations)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("file", "model", "correct pairs %", "correct", "incorrect", "skipped ab", "skipped equal",
                  title="MusAV pairwise accuracy", title_justify="left")
    for row in rows:
        accuracy = "n/a" if row["accuracy"] is None else f"{row['accuracy']:.2f}"
        table.add_row(escape(row["file"]), row["model"], accuracy, str(row["correct"]), str(row["incorrect"]),
                      str(row["skipped_ab"]), str(row["skipped_equal"]))
    Console().print(table)


@app.command()
@_fail_cleanly
def infer(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    split: Annotated[str | None, typer.Option(help="train, validation, test or all (default).")] = None,
    track_list: Annotated[Path | None, typer.Option(help="Text file of track ids to infer, one per line.")] = None,
    audio_folder: Annotated[Path | None, typer.Option(help="Add every audio file of this folder to the catalog.")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="Make the inferred tracks the whole catalog (drop the others).")] = False,
    scheduler: Annotated[str | None, typer.Option(help="'local' (default), 'synchronous', or a Dask scheduler address.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Workers of the local Dask cluster (default: one per core).")] = None,
    set_: SetOption = None,
) -> None:
    """Stage 5: labels, valence/arousal and embeddings per track → inference_lookup.csv, embeddings.parquet."""
    settings = _settings(config, set_, infer__split=split, infer__track_list=track_list, infer__folder=audio_folder,
                         infer__replace=replace or None, features__scheduler=scheduler, features__n_workers=workers)
    summary = _run_stage("infer", settings, workdir)
    _print_summary("infer", {**summary, "lookup": Workdir(workdir).inference_lookup, "embeddings": Workdir(workdir).embeddings})


@app.command("report")
@_fail_cleanly
def report_command(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    set_: SetOption = None,
) -> None:
    """The run report: report/report.md and a self-contained report/report.html, from the run's artifacts."""
    summary = _run_stage("report", _settings(config, set_), workdir)
    _print_summary("report", summary)


@app.command()
@_fail_cleanly
def run(
    config: ConfigOption = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    force: Annotated[bool, typer.Option(help="Run every stage even when it is current.")] = False,
    set_: SetOption = None,
) -> None:
    """Every stage in order, skipping stages whose inputs and settings did not change."""
    from .pipeline.run import run_pipeline
    from .pipeline.summary import run_summary

    def report(outcome: Any) -> None:
        style = {"ran": "green", "current": "dim", "not configured": "yellow"}[outcome.status]
        seconds = f" in {outcome.seconds:.1f} s" if outcome.status == "ran" else ""
        console.print(f"[{style}]{outcome.stage:>9}: {outcome.status}{seconds}[/] — {escape(outcome.reason)}", highlight=False, soft_wrap=True)

    settings = _settings(config, set_)
    with _locked(workdir) as work:
        outcomes = run_pipeline(settings, work, force=force, on_stage=report)
    table = Table("stage", "status", "seconds", "why", title="run", title_justify="left")
    for outcome in outcomes:
        table.add_row(outcome.stage, outcome.status, f"{outcome.seconds:.1f}", escape(outcome.reason))
    Console().print(table)
    _print_summary("results", run_summary(Workdir(workdir)))


@app.command()
@_fail_cleanly
def serve(
    bundle: Annotated[Path, typer.Option(help="Work directory of a run after `moodscape infer` (the serving bundle).")] = Path("data"),
    host: Annotated[str, typer.Option(help="Interface to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes sharing the bundle.")] = 1,
    mpd_host: Annotated[list[str] | None, typer.Option(help="An MPD host the page may push to besides this machine "
                                                            "(repeat for several).")] = None,
    config: Annotated[Path | None, typer.Option(help="A config file whose [subsonic] users may use the Subsonic API at /rest.")] = None,
) -> None:
    """Serve the web app, the JSON API and the OpenSubsonic API (/rest) over a run's bundle (Ctrl-C stops it)."""
    import time

    import uvicorn

    from .api.app import create_app
    from .api.catalog import check_bundle
    from .api.deps import LOOPBACK_HOSTS
    from .api.names import NameStore
    from .config import SubsonicSettings

    bundle = bundle.resolve()
    subsonic = SubsonicSettings.load(config) if config is not None else None
    artifacts.tidy_if_free(Workdir(bundle))  # a killed stage's commit completed before the bundle is read
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    started = time.perf_counter()
    if workers == 1:
        # loads and checks the bundle: a bad one stops here with one line
        target = create_app(bundle, mpd_hosts=LOOPBACK_HOSTS | set(mpd_host or []), subsonic=subsonic)
        tracks = f"{len(target.state.services.catalog)} tracks"
    else:
        check_bundle(bundle)  # the cheap checks here; each worker process loads the bundle itself
        NameStore(Workdir(bundle).names_db).close()
        os.environ["MOODSCAPE_BUNDLE"] = str(bundle)
        os.environ["MOODSCAPE_MPD_HOSTS"] = ",".join(mpd_host or [])
        if config is not None:
            os.environ["MOODSCAPE_CONFIG"] = str(config.resolve())
        target, tracks = "moodscape.api.app:create_app_from_env", f"{workers} processes"
    Console().print(f"[bold]moodscape[/bold] serving {escape(str(bundle))} ({tracks}, loaded and checked in {time.perf_counter() - started:.1f} s) "
                    f"at [link]http://{shown}:{port}/[/link]  (API docs: /docs; Subsonic API: /rest; Ctrl-C stops)")
    uvicorn.run(target, host=host, port=port, workers=workers, factory=workers > 1, log_level="warning")


@app.command("write-tags")
@_fail_cleanly
def write_tags(
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    apply: Annotated[bool, typer.Option("--apply", help="Write the tags (default: only show what would change).")] = False,
    remove: Annotated[bool, typer.Option("--remove", help="Take these tags out of the files again (nothing else).")] = False,
    fields: Annotated[str, typer.Option(help="Comma-separated fields among label,valence,arousal,bpm.")] = "label,valence,arousal,bpm",
) -> None:
    """Write each catalog track's mood label, valence, arousal and BPM into its audio file's tags."""
    from .api import tag_writer

    chosen = tag_writer.parse_fields(fields)
    plan = tag_writer.plan(tag_writer.catalog_values(Workdir(workdir), chosen), chosen, remove=remove)
    table = Table("file", "field", "old", "new", title=("changes" if apply else "would change (dry run; --apply writes)"))
    for change in plan.changes:
        table.add_row(escape(change.path), change.field, escape(change.old) or "-", escape(change.new) or "-")
    Console().print(table)
    failed = tag_writer.apply(plan) if apply else []
    for path, reason in plan.problems + failed:
        console.print(f"[yellow]not tagged:[/] {escape(reason)}", soft_wrap=True, highlight=False)
    written = len(plan.files) - len(failed) if apply else 0
    _print_summary("write-tags", {"files to change": len(plan.files), "written": written, "unchanged": plan.unchanged,
                                  "not tagged": len(plan.problems) + len(failed)})
    if plan.problems or failed:
        raise typer.Exit(1)


mpd_app = typer.Typer(no_args_is_help=True, help="Send catalog tracks to a running MPD (Music Player Daemon).")
app.add_typer(mpd_app, name="mpd")


@mpd_app.command("push")
@_fail_cleanly
def mpd_push(
    track_ids: Annotated[list[str] | None, typer.Argument(help="Catalog track ids, in queue order.")] = None,
    workdir: WorkdirOption = DEFAULT_WORKDIR,
    music_directory: Annotated[Path, typer.Option(help="MPD's music_directory (mpd.conf): the catalog's files must lie under it.")] = ...,
    path: Annotated[str | None, typer.Option("--path", help="A mood path instead: start and end valence,arousal, e.g. 0.2,0.2:0.8,0.9.")] = None,
    steps: Annotated[int, typer.Option(min=2, max=500, help="Tracks on the mood path.")] = 10,
    playlist: Annotated[Path | None, typer.Option(help="A JSON playlist exported from the web page instead.")] = None,
    host: Annotated[str, typer.Option(help="MPD's address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="MPD's port.")] = 6600,
    clear: Annotated[bool, typer.Option("--clear/--append", help="Replace MPD's queue, or add after it.")] = False,
    play: Annotated[bool, typer.Option("--play", help="Start playing the first pushed track.")] = False,
) -> None:
    """Queue catalog tracks, a mood path or a playlist in MPD, in order."""
    from .api import mpd_push as pusher
    from .api.catalog import load_catalog

    files = pusher.select_files(load_catalog(workdir), track_ids or [], mood_path=path, steps=steps, playlist=playlist)
    result = pusher.push(pusher.mpd_uris(files, music_directory), host=host, port=port, clear=clear, play=play)
    _print_summary("mpd push", {"queued": len(result.uris), "queue length": result.queue_length,
                                "playing": "yes" if result.playing else "no"})


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
