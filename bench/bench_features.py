"""Benchmark of stage 1a feature extraction against a naive librosa chain and decoding alone.

Generates N realistic test tracks (44.1 kHz stereo MP3: drums, bass, chords; or the demo
corpus when ``moodscape.datasets.demo`` is available), then times on the same tracks, on
one core, after a warm-up:

(a) naive librosa: ``librosa.load(sr=22050)`` then ``beat_track``, ``spectral_centroid``,
    ``spectral_rolloff``, ``spectral_bandwidth``, ``zero_crossing_rate``, ``rms``,
    ``mfcc`` and ``chroma_stft``, each on the signal ``y``;
(b) decoding alone: ``soundfile.read``;
(c) ``moodscape.features.extract_features``: soxr to the 8 kHz analysis rate, analysis there;
(d) the chain it replaced (issue 15), which made features depend on the file's rate: decode,
    decimate by an integer factor (block means) towards 22.05 kHz, analysis at that rate
    with ~93 ms (2048-point) frames, by the same feature code (:func:`features_at_rate`).

Targets: a/c >= 3 and c/b <= 2; c/d is the cost (or gain) of the one analysis rate.
Run: ``PYTHONPATH=src python bench/bench_features.py [--sample-rate 48000]``.
"""

import os

for _variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                  "NUMBA_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402

SAMPLE_RATE = 44100


def synth_track(seconds: float, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """A stereo drums + bass + chords loop with a random tempo, key, mode and brightness."""
    n = int(seconds * sr)
    t = np.arange(n) / sr
    bpm = rng.uniform(70, 160)
    beat = 60.0 / bpm
    tonic = rng.integers(45, 57)
    third = 4 if rng.random() < 0.5 else 3
    mix = np.zeros(n)
    for bar, degree in enumerate(np.resize([0, 5, 7, 0], int(seconds / (4 * beat)) + 1)):
        start, stop = int(bar * 4 * beat * sr), min(n, int((bar + 1) * 4 * beat * sr))
        if start >= n:
            break
        segment = t[start:stop] - t[start]
        for interval in (0, third, 7, 12):
            f = 440.0 * 2 ** ((tonic + degree + interval - 57) / 12)
            harmonics = sum(np.sin(2 * np.pi * k * f * segment) / k ** rng.uniform(1, 2)
                            for k in range(1, 5))
            mix[start:stop] += 0.08 * harmonics * np.exp(-segment / (4 * beat))
    for hit in np.arange(0, seconds - 0.3, beat):
        i = int(hit * sr)
        k = np.arange(min(int(0.25 * sr), n - i)) / sr
        mix[i : i + k.size] += 0.6 * np.sin(2 * np.pi * 55 * k * (1 + 2 * np.exp(-k * 30))) * np.exp(-k * 12)
        j = int((hit + beat / 2) * sr)
        if j + 2000 < n:
            mix[j : j + 2000] += 0.15 * rng.standard_normal(2000) * np.exp(-np.arange(2000) / 300)
    mix /= np.max(np.abs(mix)) * 1.2
    pan = rng.uniform(0.8, 1.0)
    return np.stack([mix * pan, mix * (2 - pan)], axis=1).astype(np.float32) / 2


def make_tracks(out_dir: Path, n_tracks: int, seconds: float, sr: int = SAMPLE_RATE) -> tuple[list[Path], str]:
    """The benchmark corpus and its name: the demo generator's MP3s if it accepts the
    settings, else our own synth."""
    from moodscape.errors import MoodscapeError

    try:
        from moodscape.datasets.demo import generate_demo_corpus

        generate_demo_corpus(out_dir / "demo", n_tracks=n_tracks, n_musav=3, seconds=seconds,
                             sample_rate=sr, channels=2)
        paths = sorted((out_dir / "demo").rglob("*.mp3"))
        paths = [p for p in paths if "musav" not in str(p).lower()][:n_tracks]
        if paths:
            return paths, "moodscape demo corpus"
    except (ImportError, MoodscapeError, TypeError) as error:
        print(f"demo corpus unavailable ({error}); using the benchmark's own synth")
    rng = np.random.default_rng(2)
    paths = []
    for index in range(n_tracks):
        path = out_dir / f"track_{index:03d}.mp3"
        sf.write(path, synth_track(seconds, rng, sr), sr, format="MP3")
        paths.append(path)
    return paths, "drums + bass + chords synth"


def naive_librosa(path: Path) -> None:
    """Every feature from the signal separately, as a first librosa script would."""
    import librosa

    y, sr = librosa.load(path, sr=22050)
    librosa.beat.beat_track(y=y, sr=sr)
    librosa.feature.spectral_centroid(y=y, sr=sr)
    librosa.feature.spectral_rolloff(y=y, sr=sr)
    librosa.feature.spectral_bandwidth(y=y, sr=sr)
    librosa.feature.zero_crossing_rate(y)
    librosa.feature.rms(y=y)
    librosa.feature.mfcc(y=y, sr=sr)
    librosa.feature.chroma_stft(y=y, sr=sr)


def decode_only(path: Path) -> None:
    sf.read(path, dtype="float32")


def ours(path: Path) -> None:
    from moodscape.features import extract_features

    extract_features(path)


def decimate_by_mean(y: np.ndarray, factor: int) -> np.ndarray:
    """Downsample by an integer factor, averaging each block of ``factor`` samples (the old chain's low-pass)."""
    if factor <= 1:
        return y
    n_blocks = y.shape[-1] // factor
    blocks = y[: n_blocks * factor].reshape(n_blocks, factor)
    if factor == 2:
        return (blocks[:, 0] + blocks[:, 1]) * np.float32(0.5)
    return blocks.mean(axis=1, dtype=np.float32)


def previous_chain(path: Path) -> None:
    """Features as computed before one analysis rate: at the file's rate decimated towards 22.05 kHz."""
    from moodscape.audio import load_audio
    from moodscape.features import features_at_rate

    y, sr = load_audio(path)
    factor = max(1, int(sr / 22050 + 0.5))
    rate = sr / factor
    features_at_rate(decimate_by_mean(y, factor), rate, n_fft=int(2 ** round(np.log2(2048 * rate / 22050))))


def time_per_track(functions, paths: list[Path], repeats: int) -> list[float]:
    """Median over tracks of each function's best of ``repeats`` runs, in milliseconds.

    The functions alternate on each track, so a load change on the machine hits all alike.
    """
    best = [[] for _ in functions]
    for path in paths:
        runs = [[] for _ in functions]
        for _ in range(repeats):
            for function, times in zip(functions, runs):
                start = time.perf_counter()
                function(path)
                times.append(time.perf_counter() - start)
        for times, per_track in zip(runs, best):
            per_track.append(min(times))
    return [1e3 * statistics.median(per_track) for per_track in best]


def machine_description() -> str:
    import librosa

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"numpy {np.__version__}, librosa {librosa.__version__}, "
            f"soundfile {sf.__version__} (libsndfile {sf.__libsndfile_version__}), "
            f"{datetime.date.today().isoformat()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20, help="number of test tracks")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each track")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where to write the tracks (default: a temporary folder)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="runs per track of (b), (c) and (d); (a) runs once")
    parser.add_argument("--sample-rate", type=int, default=SAMPLE_RATE,
                        help="rate of the MP3 test tracks (an MPEG rate: 32000, 44100, 48000, ...)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        out_dir = args.out_dir or Path(scratch)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths, corpus = make_tracks(out_dir, args.tracks, args.seconds, args.sample_rate)
        for function in (naive_librosa, decode_only, ours, previous_chain):  # warm-up: imports, JIT, caches
            function(paths[0])
        (naive,) = time_per_track([naive_librosa], paths, 1)
        decode, extraction, previous = time_per_track([decode_only, ours, previous_chain], paths, args.repeats)

    print(f"machine: {machine_description()}")
    print(f"{len(paths)} tracks of {args.seconds:g} s ({corpus}), {args.sample_rate / 1000:g} kHz stereo MP3, "
          "one thread\n")
    print("| step | ms per track |")
    print("|---|---:|")
    print(f"| (a) naive librosa chain | {naive:.1f} |")
    print(f"| (b) decode only (soundfile.read) | {decode:.1f} |")
    print(f"| (c) moodscape extract_features (soxr to 8 kHz, one analysis rate) | {extraction:.1f} |")
    print(f"| (d) previous chain (decimate towards 22.05 kHz, analysis at that rate) | {previous:.1f} |")
    print(f"| **c/d** (new / old) | **{extraction / previous:.2f}** |")
    print(f"\na/c = {naive / extraction:.1f} (target >= 3), "
          f"c/b = {extraction / decode:.2f} (target <= 2), c/d = {extraction / previous:.2f}")


if __name__ == "__main__":
    main()
