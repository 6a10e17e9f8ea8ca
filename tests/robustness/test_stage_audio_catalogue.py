"""Issue 14: the audio catalogue, every odd file a music folder may hold, through the stages that read audio.

One folder holds every case beside good tracks of each format. ``moodscape features`` and
``moodscape infer --audio-folder`` run once over it, and so does the mel cache that
pretraining fills; each in a child process with a timeout, so that a file that blocks a
read fails the test instead of hanging it. Then each case asserts its outcome in each
stage: audio that is odd but valid is processed; anything else is skipped and listed in
``reports/`` with one clear line that names the file (no traceback, no libsndfile noise
such as "possibly a pipe?"), and the other tracks go on.

A WAV, MP3 or Ogg file whose body is cut is processed: libsndfile reads the audio that is
there, as a player plays it, and nothing tells a cut WAV from a shorter one. A FLAC cut
short, or an Ogg cut inside its headers, cannot be decoded and is listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from fresh_python import run_python

from moodscape import audio
from moodscape.artifacts import Workdir

RATE = 22050
SECONDS = 3.0
NOISE = re.compile(r"possibly a pipe|Traceback|Error opening|Errno|psf_|Error :")
"""What a clear message never shows: a traceback or libsndfile's own words."""


def tone(seconds: float = SECONDS, rate: int = RATE, channels: int = 1, frequency: float = 440.0) -> np.ndarray:
    """``(n, channels)`` float32: a 0.3-peak sine with a little noise, so that every feature is defined."""
    time = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(int(frequency))
    signal = 0.3 * np.sin(2 * np.pi * frequency * time) + 0.01 * rng.standard_normal(time.size)
    return np.repeat(signal[:, None], channels, axis=1).astype(np.float32)


def write(format_: str, **options) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        sf.write(path, tone(**options), options.get("rate", RATE), format=format_)
    return build


def truncated(format_: str, keep_bytes: int | None = None) -> Callable[[Path], None]:
    """A 6 s file of ``format_`` cut after ``keep_bytes``, by default in the middle of its body."""
    def build(path: Path) -> None:
        sf.write(path, tone(seconds=6.0), RATE, format=format_)
        data = path.read_bytes()
        path.write_bytes(data[: keep_bytes or len(data) // 2])
    return build


def float_wav(value: float | None = None, peak: float | None = None) -> Callable[[Path], None]:
    """A float WAV with every 100th sample set to ``value``, or scaled to ``peak``.

    Inference reads only the samples of its crops: a lone NaN elsewhere would not change
    its result, and is not what a broken file holds."""
    def build(path: Path) -> None:
        signal = tone()
        if value is not None:
            signal[::100] = value
        if peak is not None:
            signal *= np.float32(peak / np.abs(signal).max())
        sf.write(path, signal, RATE, subtype="FLOAT")
    return build


def very_long(path: Path) -> None:
    """A FLAC longer than one decode reads (:data:`moodscape.audio.MAX_DECODED_SAMPLES`): 192 kHz,
    8 channels, a tone then 80 s of digital silence, which FLAC stores in a few bytes per block."""
    rate, channels = 192000, 8
    with sf.SoundFile(path, "w", rate, channels, format="FLAC", subtype="PCM_16") as file:
        file.write((tone(rate=rate, channels=channels) * 32767).astype(np.int16))
        silence = np.zeros((10 * rate, channels), dtype=np.int16)
        for _ in range(8):
            file.write(silence)
    assert sf.info(str(path)).frames * channels > audio.MAX_DECODED_SAMPLES


def header_claims_days(path: Path) -> None:
    """A 3 s FLAC whose STREAMINFO claims 2**36 - 1 frames (18 days at 44.1 kHz): decoding it
    whole would allocate 512 GiB."""
    sf.write(path, tone(rate=44100, channels=2), 44100, format="FLAC")
    data = bytearray(path.read_bytes())
    at = 18  # "fLaC", the block header, then 10 bytes before rate, channels, bits and total frames
    packed = int.from_bytes(data[at : at + 8], "big") | ((1 << 36) - 1)
    data[at : at + 8] = packed.to_bytes(8, "big")
    path.write_bytes(bytes(data))


def duplicate_of(name: str) -> Callable[[Path], None]:
    def build(path: Path) -> None:
        shutil.copyfile(path.with_name(name), path)
    return build


@dataclass(frozen=True)
class Case:
    """A file (or entry) of the catalogue, and what each stage must do with it.

    ``reason`` is None for a file every stage processes, else words its skip line must hold.
    """

    name: str
    build: Callable[[Path], None]
    reason: str | None = None

    @property
    def track_id(self) -> str:
        return self.name.rsplit(".", 1)[0]


CASES = [
    Case("good_wav.wav", write("WAV")),
    Case("good_flac.flac", write("FLAC", frequency=330.0)),
    Case("good_ogg.ogg", write("OGG", frequency=550.0)),
    Case("good_mp3.mp3", write("MP3", frequency=660.0)),
    Case("narrowband_8k_mono.wav", write("WAV", rate=8000, frequency=300.0)),
    Case("surround_96k_6ch.flac", write("FLAC", rate=96000, channels=6, frequency=880.0)),
    Case("chanson d'été — 曲.flac", write("FLAC", frequency=990.0)),
    Case("name with  spaces.mp3", write("MP3", frequency=770.0)),
    Case("very_long.flac", very_long),
    Case("duplicate_a.wav", write("WAV", frequency=1100.0)),
    Case("duplicate_b.wav", duplicate_of("duplicate_a.wav"), "identical to"),  # one recording is one track
    Case("truncated_wav.wav", truncated("WAV")),
    Case("truncated_mp3.mp3", truncated("MP3")),
    Case("truncated_flac.flac", truncated("FLAC"), "damaged or truncated"),
    Case("truncated_ogg.ogg", truncated("OGG")),
    Case("header_only_ogg.ogg", truncated("OGG", keep_bytes=2000), "damaged or truncated"),
    Case("empty_wav.wav", lambda path: path.write_bytes(b""), "the file is empty (0 bytes)"),
    Case("empty_mp3.mp3", lambda path: path.write_bytes(b""), "the file is empty (0 bytes)"),
    Case("random_bytes.mp3", lambda path: path.write_bytes(np.random.default_rng(0).bytes(20000)), "no audio stream"),
    Case("text.wav", lambda path: path.write_text("not audio\n" * 100), "not in an audio format"),
    Case("silence.wav", lambda path: sf.write(path, np.zeros(int(SECONDS * RATE), np.float32), RATE), "silent"),
    Case("short_200ms.wav", write("WAV", seconds=0.2), "s long, shorter than 1 s"),
    Case("one_hertz.wav", lambda path: sf.write(path, np.full(5, 0.3, np.float32), 1), "1 Hz is below 8000 Hz"),
    Case("nan_samples.wav", float_wav(value=np.nan), "NaN or infinite"),
    Case("inf_samples.wav", float_wav(value=np.inf), "NaN or infinite"),
    Case("huge_samples.wav", float_wav(peak=1e20), "NaN or infinite"),
    Case("header_claims_days.flac", header_claims_days, "ends before the length its header gives"),
    Case("folder.mp3", lambda path: path.mkdir(), "a folder named like an audio file"),
    Case("pipe.wav", os.mkfifo, "FIFO"),
    Case("loop.flac", lambda path: path.symlink_to(path.name), "symbolic link loop"),
    Case("dangling.ogg", lambda path: path.symlink_to("nowhere.ogg"), "broken symbolic link"),
]
PROCESSED = {case.track_id for case in CASES if case.reason is None}
IDS = [case.track_id for case in CASES]


def write_untrained_network(workdir: Path, labels: dict[str, int]) -> None:
    """What ``infer`` reads of a run: a backbone, a head-only classifier on it and its labels, untrained."""
    import torch

    from moodscape.artifacts import write_json
    from moodscape.models.backbone import AudioResNet, backbone_checkpoint, state_fingerprint
    from moodscape.models.checkpoint import save_checkpoint
    from moodscape.training.classify import ClassifierConfig, build_classifier, trained_state

    files = Workdir(workdir)
    files.backbone.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    backbone = AudioResNet()
    save_checkpoint(backbone_checkpoint(backbone), files.backbone)
    config = ClassifierConfig(mode="probe")
    fingerprint = state_fingerprint(backbone)
    classifier = build_classifier(backbone, len(labels), config)
    save_checkpoint({"mode": "probe", "state_dict": trained_state(classifier, "probe"), "model_args": {"n_outputs": len(labels)},
                     "backbone_fingerprint": fingerprint, "label_to_idx": labels, "config": config.model_dump()},
                    files.classifier)
    write_json(files.label_to_idx, labels)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory) -> dict:
    """Every case in one folder, and the outcome of each stage over it."""
    root = tmp_path_factory.mktemp("catalogue")
    music = (root / "music").resolve()
    music.mkdir()
    for case in CASES:
        case.build(music / case.name)
    config = root / "folder.toml"
    config.write_text(
        f'[data]\nsource = "folder"\n[folder]\nroot = "{music}"\n[features]\nscheduler = "synchronous"\n'
        '[train]\ncrop_frames = 32\nn_eval_crops = 2\n[infer]\nbatch_size = 8\ndevice = "cpu"\n', encoding="utf-8")
    return {"music": music, "features": features_outcome(root, config), **infer_and_mels_outcome(root, config, music)}


def skipped_report(workdir: Path, stage: str) -> dict[str, str]:
    table = pd.read_csv(Workdir(workdir).skipped_report(stage), dtype=str, keep_default_na=False)
    return dict(zip(table["track_id"], table["reason"]))


def features_outcome(root: Path, config: Path) -> dict:
    """``moodscape features`` over the folder: the tracks with features (all finite?), the skipped ones, the scan's lines."""
    workdir = root / "features"
    result = run_python("from moodscape.cli import app; app()", "features", "--config", config, "--workdir", workdir)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    table = pd.read_parquet(Workdir(workdir).features)
    finite = np.isfinite(table.drop(columns="track_id").to_numpy(float)).all(axis=1)
    return {"processed": dict(zip(table["track_id"], map(bool, finite))), "skipped": skipped_report(workdir, "features"),
            "problems": Workdir(workdir).dataset_problems.read_text(encoding="utf-8").splitlines()}


def infer_and_mels_outcome(root: Path, config: Path, music: Path) -> dict:
    """``moodscape infer --audio-folder`` over the folder, then the mel cache that ``pretrain`` and
    ``train`` fill (:func:`moodscape.pipeline.network.prepare_mels`), in one process (one torch import)."""
    workdir = root / "infer"
    write_untrained_network(workdir, {"calm": 0, "bright": 1})
    result = run_python("""
        import json, sys
        from pathlib import Path
        import numpy as np
        from moodscape.artifacts import Workdir
        from moodscape.cli import app
        from moodscape.config import Settings
        from moodscape.pipeline.collection import load_collection
        from moodscape.pipeline.network import prepare_mels
        config, workdir, music = sys.argv[1:]
        try:
            app(["infer", "--config", config, "--workdir", workdir, "--audio-folder", music])
        except SystemExit as done:
            assert not done.code, done.code
        settings = Settings.load(config)
        collection = load_collection(settings)
        mels, skipped = prepare_mels(settings, Workdir(Path(workdir) / "mels"), collection.tracks, show_progress=False)
        print(json.dumps({"processed": {track_id: bool(np.isfinite(np.load(path)).all()) for track_id, path in mels.items()},
                          "skipped": dict(skipped), "problems": collection.problems}))
    """, config, workdir, music)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    lookup = pd.read_csv(Workdir(workdir).inference_lookup, dtype={"track_id": str}, keep_default_na=False)
    infer = {"processed": dict.fromkeys(lookup["track_id"], True), "skipped": skipped_report(workdir, "infer")}
    return {"infer": infer, "mels": json.loads(result.stdout.splitlines()[-1])}


def listed(outcome: dict, case: Case, music: Path) -> str:
    """The one report line of a case: a scan problem (``<path>: skipped: ...``) or a skipped track."""
    path = str(music / case.name)
    lines = [line for line in outcome.get("problems", []) if line.startswith(f"{path}: ")]
    if case.track_id in outcome["skipped"]:
        lines.append(f"{case.track_id}: {outcome['skipped'][case.track_id]}")
    assert len(lines) == 1, (case.name, lines)
    return lines[0]


@pytest.mark.slow  # the catalogue's three stages take a minute on 2 busy cores
@pytest.mark.parametrize("stage", ["features", "infer", "mels"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_each_file_is_processed_or_listed_with_a_clear_line(catalogue, case, stage):
    outcome, music = catalogue[stage], catalogue["music"]
    if case.reason is None:
        assert outcome["processed"].get(case.track_id) is True, (case.name, outcome["skipped"].get(case.track_id))
        return
    assert case.track_id not in outcome["processed"]
    line = listed(outcome, case, music)
    assert case.reason in line, line
    assert not NOISE.search(line), line
    assert str(music / case.name) in line, line


@pytest.mark.slow
def test_every_other_track_of_the_folder_is_processed(catalogue):
    for stage in ("features", "infer", "mels"):
        assert set(catalogue[stage]["processed"]) == PROCESSED, stage


def traced_peak(decode: Callable[[], object]) -> int:
    """The most memory (bytes) Python and numpy held while ``decode()`` ran, whatever it raised."""
    import tracemalloc

    tracemalloc.start()
    try:
        decode()
    except audio.AudioError:
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_long_track_is_decoded_up_to_the_bound(tmp_path, monkeypatch):
    path = tmp_path / "long.wav"
    sf.write(path, tone(seconds=10.0, channels=2), RATE)
    monkeypatch.setattr(audio, "MAX_DECODED_SAMPLES", 2 * 2 * RATE, raising=False)  # 2 s of stereo
    y, _ = audio.load_audio(path)
    assert y.shape == (2 * RATE,)
    bound = 4 * audio.MAX_DECODED_SAMPLES  # bytes of float32
    assert traced_peak(lambda: audio.load_audio(path)) < 2 * bound + (256 << 10)  # the samples read, the downmix: never 10 s


def test_a_header_claiming_days_allocates_at_most_the_bound_and_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "liar.flac"
    header_claims_days(path)
    message = rf"^{re.escape(str(path))}: cannot decode audio: the stream ends before the length its header gives"
    for decode in (audio.load_audio, audio.mel_from_audio, lambda p: audio.mel_crops_from_audio(p, 32, 2)):
        with pytest.raises(audio.AudioError, match=message):
            decode(path)
        assert traced_peak(lambda: decode(path)) < 4 * audio.MAX_DECODED_SAMPLES + (16 << 20)  # not 512 GiB
