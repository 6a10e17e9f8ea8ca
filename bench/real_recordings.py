"""Issue 12 §5: does a trained run's arousal order real recordings as a listener would?

Real game soundtracks shipped by Debian packages (recordings no one on this project made)
are split by what their FILE NAMES say: tracks named for battles, bosses, fights, wars,
sieges, raids, attacks and pursuits are *energetic*; tracks named ambient, sanctuary, safe
room, breeze, night, dawn, nature, and the strategic-map ("geoscape") music of UFO: Alien
Invasion are *calm*. The list (:data:`LABELS`) was written from the package file lists
(``dpkg -c``) before any model saw the audio, and must not be tuned to a model's output.
Cues a listener would trust less (menu, title, town, love, hunt) are marked in
:data:`WEAK_CUES`; every statistic is also given on the strong cues alone.

For every (energetic, calm) pair the script asks whether the energetic track gets the
higher value: the fraction of such pairs is the AUC (Mann–Whitney U / (n₁ n₂), ties count
half), 0.5 being chance. It reports, with a 95 % bootstrap CI (tracks resampled within each
side) and the one-sided Mann–Whitney p-value:

* model arousal as ``POST /analyze`` computes it (:func:`moodscape.inference.track_crops`
  then :func:`~moodscape.inference.predict_crops` on the run's ``models/inference_bundle.pt``);
* model arousal after every file is scaled to the same level (``--target-dbfs``, default
  −20 dBFS RMS) before the log-mel is computed: a model that learned the mastering level
  changes a lot under that, one that learned the music does not;
* the level sensitivity: mean change in arousal when the same normalised audio is played
  20 dB louder (−30 → −10 dBFS), against the spread of arousal over the tracks;
* model valence (for information: the labels say nothing about valence);
* simple readouts with no model: the track's RMS level (dBFS), and the stage-1 features
  ``bpm``, ``onset_rate``, ``spectral_flux_mean`` and ``spectral_centroid_mean``
  (:func:`moodscape.features.extract_features`).

"Within-package" AUC counts only pairs from the same package, so a package mastered
louder than another cannot help. Sides are AUC > 0.5 ⇔ energetic gets the higher value.

Getting the audio (about 1.4 GB unpacked; nothing is installed into the system this way)::

    mkdir -p /tmp/debs /tmp/realmusic && cd /tmp/debs
    apt-get download wesnoth-1.16-music flare-game ufoai-music supertux-data \\
        freedroidrpg-data hedgewars-data nexuiz-music warzone2100-music hyperrogue-music
    for f in *.deb; do dpkg -x "$f" /tmp/realmusic; done

(``apt-get install`` of the same packages puts the files under ``/usr/share/games``,
``/usr/share/freedroidrpg`` and ``/usr/share/hyperrogue``, the default ``--audio-dirs``.) ``.pk3`` archives (zip; UFO:AI,
Nexuiz) are searched too; the members used are extracted to ``--cache``.

Run::

    NUMBA_CPU_NAME=generic .venv/bin/python bench/real_recordings.py \\
        --workdir /tmp/h4run --audio-dirs /tmp/realmusic --out /tmp/h4run/real_recordings.json
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import fnmatch
import json
import math
import os
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".ogg", ".oga", ".opus", ".flac", ".mp3", ".wav")
DEFAULT_AUDIO_DIRS = ("/usr/share/games", "/usr/share/freedroidrpg", "/usr/share/hyperrogue")

# --------------------------------------------------------------------------- the labels
# Written from the packages' file lists (names only) before any model output was seen.
# glob (fnmatch, matched against the file's path, or "<archive.pk3>/<member>") -> (side, cue)
LABELS: dict[str, dict[str, tuple[str, str]]] = {
    "wesnoth-1.16-music": {
        "*/wesnoth/*/music/battle.ogg": ("energetic", "battle"),
        "*/wesnoth/*/music/battle-epic.ogg": ("energetic", "battle"),
        "*/wesnoth/*/music/frantic.ogg": ("energetic", "frantic"),
        "*/wesnoth/*/music/casualties_of_war.ogg": ("energetic", "war"),
        "*/wesnoth/*/music/siege_of_laurelmor.ogg": ("energetic", "siege"),
        "*/wesnoth/*/music/silvan_sanctuary.ogg": ("calm", "sanctuary"),
        "*/wesnoth/*/music/love_theme.ogg": ("calm", "love"),
        "*/wesnoth/*/music/main_menu.ogg": ("calm", "menu"),
    },
    "flare-game": {
        "*/flare/*/music/battle_theme.ogg": ("energetic", "battle"),
        "*/flare/*/music/boss_theme.ogg": ("energetic", "boss"),
        "*/flare/*/music/safe_room_theme.ogg": ("calm", "safe room"),
        "*/flare/*/music/wind_ambient.ogg": ("calm", "ambient"),
        "*/flare/*/music/town_theme.ogg": ("calm", "town"),
        "*/flare/*/music/title_theme.ogg": ("calm", "title"),
    },
    "ufoai-music": {  # 0music.pk3; battlescape = tactical combat, geoscape = the strategic globe
        "*/0music.pk3/music/AlexFightmare.ogg": ("energetic", "fight"),
        "*/0music.pk3/music/Crystan-Battlescape0[1-6].ogg": ("energetic", "battle"),
        "*/0music.pk3/music/MarineAlienRaid.ogg": ("energetic", "raid"),
        "*/0music.pk3/music/MarineBacktheAttack.ogg": ("energetic", "attack"),
        "*/0music.pk3/music/MarineFireFight.ogg": ("energetic", "fight"),
        "*/0music.pk3/music/MarineUrbanWarfare.ogg": ("energetic", "war"),
        "*/0music.pk3/music/Crystan-Geosphere0[2-4].ogg": ("calm", "geoscape"),
        "*/0music.pk3/music/karlmacklin_geoscape.ogg": ("calm", "geoscape"),
        "*/0music.pk3/music/van_geoscape.ogg": ("calm", "geoscape"),
        "*/0music.pk3/music/dawn.ogg": ("calm", "dawn"),
    },
    "supertux-data": {
        "*/supertux2/music/antarctic/bossattack.ogg": ("energetic", "boss"),
        "*/supertux2/music/forest/treeboss.ogg": ("energetic", "boss"),
        "*/supertux2/music/misc/battle_theme.ogg": ("energetic", "battle"),
        "*/supertux2/music/forest/wisphunt.ogg": ("energetic", "hunt"),
        "*/supertux2/music/antarctic/arctic_breeze.ogg": ("calm", "breeze"),
        "*/supertux2/music/tropical/tropicalbreeze.ogg": ("calm", "breeze"),
        "*/supertux2/music/antarctic/voc-night.ogg": ("calm", "night"),
    },
    "freedroidrpg-data": {
        "*/freedroidrpg/data/sound/music/Hyperbattle.ogg": ("energetic", "battle"),
        "*/freedroidrpg/data/sound/music/TechBattle.ogg": ("energetic", "battle"),
        "*/freedroidrpg/data/sound/music/Ambience.ogg": ("calm", "ambient"),
        "*/freedroidrpg/data/sound/music/menu.ogg": ("calm", "menu"),
        "*/freedroidrpg/data/sound/music/town.ogg": ("calm", "town"),
    },
    "hedgewars-data": {
        "*/hedgewars/Data/Music/Nature.ogg": ("calm", "nature"),
    },
    "nexuiz-music": {  # music.pk3
        "*/music.pk3/sound/cdtracks/infight.ogg": ("energetic", "fight"),
        "*/music.pk3/sound/cdtracks/digital-pursuit.ogg": ("energetic", "pursuit"),
    },
    "warzone2100-music": {
        "*/warzone2100/music/menu.opus": ("calm", "menu"),
        "*/warzone2100/music/albums/aftermath_soundtrack/menu_enhanced.opus": ("calm", "menu"),
    },
    "hyperrogue-music": {
        "*/hyperrogue/music/hr-domina-hunting.ogg": ("energetic", "hunt"),
    },
}
WEAK_CUES = frozenset({"menu", "title", "town", "love", "hunt"})
"""Cues a listener would trust less than battle/boss/ambient; reported separately."""

SIDES = ("energetic", "calm")
BOOTSTRAP = 2000
LEVEL_LOW_DBFS, LEVEL_HIGH_DBFS = -30.0, -10.0
LEVEL_CONTRASTS = ("arousal_level_against", "arousal_level_for")


@dataclass
class Track:
    package: str
    pattern: str
    side: str
    cue: str
    source: str  # the path as matched (a pk3 member as "<archive>/<member>")
    path: Path  # a file libsndfile reads
    values: dict[str, float] = field(default_factory=dict)

    @property
    def strong(self) -> bool:
        return self.cue not in WEAK_CUES

    @property
    def name(self) -> str:
        return self.source.rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- finding the files


def candidates(audio_dirs: list[Path]) -> list[tuple[str, Path | None, Path | None, str | None]]:
    """Every audio file under the folders: (matched path, file, archive, member)."""
    found = []
    for root in audio_dirs:
        if not root.is_dir():
            continue
        for dirpath, _dirnames, filenames in os.walk(root):
            for filename in sorted(filenames):
                path = Path(dirpath) / filename
                suffix = path.suffix.lower()
                if suffix in AUDIO_SUFFIXES:
                    found.append((path.as_posix(), path, None, None))
                elif suffix == ".pk3":
                    try:
                        with zipfile.ZipFile(path) as archive:
                            members = [m for m in archive.namelist() if m.lower().endswith(AUDIO_SUFFIXES)]
                    except zipfile.BadZipFile:
                        continue
                    found.extend((f"{path.as_posix()}/{member}", None, path, member) for member in members)
    return found


def find_tracks(audio_dirs: list[Path], cache: Path) -> tuple[list[Track], list[str]]:
    """The labelled tracks present under ``audio_dirs`` and the globs that matched nothing."""
    files = candidates(audio_dirs)
    tracks, missing, seen = [], [], set()
    for package, patterns in LABELS.items():
        for pattern, (side, cue) in patterns.items():
            matches = sorted((f for f in files if fnmatch.fnmatchcase(f[0], pattern)), key=lambda f: f[0])
            if not matches:
                missing.append(pattern)
            for source, path, archive, member in matches:
                key = (package, source.rsplit("/", 1)[-1])
                if key in seen:  # the same file under two of the folders
                    continue
                seen.add(key)
                if path is None:
                    path = cache / package / member
                    if not path.is_file():
                        path.parent.mkdir(parents=True, exist_ok=True)
                        with zipfile.ZipFile(archive) as zipped:
                            path.write_bytes(zipped.read(member))
                tracks.append(Track(package, pattern, side, cue, source, path))
    return tracks, missing


# --------------------------------------------------------------------------- statistics


def auc(energetic: np.ndarray, calm: np.ndarray) -> float:
    """Fraction of (energetic, calm) pairs where the energetic value is higher (ties 1/2)."""
    energetic, calm = np.asarray(energetic, float)[:, None], np.asarray(calm, float)[None, :]
    if energetic.size == 0 or calm.size == 0:
        return math.nan
    return float(np.mean((energetic > calm) + 0.5 * (energetic == calm)))


def bootstrap_ci(energetic: np.ndarray, calm: np.ndarray, n: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95 % percentile interval of the AUC, tracks resampled with replacement within each side."""
    rng = np.random.default_rng(seed)
    energetic, calm = np.asarray(energetic, float), np.asarray(calm, float)
    if energetic.size < 2 or calm.size < 2:
        return math.nan, math.nan
    draws = [
        auc(energetic[rng.integers(0, energetic.size, energetic.size)], calm[rng.integers(0, calm.size, calm.size)])
        for _ in range(n)
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def mann_whitney_p(energetic: np.ndarray, calm: np.ndarray) -> float:
    """One-sided p-value of "energetic is stochastically greater" (Mann–Whitney U)."""
    from scipy.stats import mannwhitneyu

    if len(energetic) == 0 or len(calm) == 0:
        return math.nan
    return float(mannwhitneyu(energetic, calm, alternative="greater").pvalue)


def within_package_auc(tracks: list[Track], key: str) -> tuple[float, int]:
    """AUC over the (energetic, calm) pairs that share a package, and the number of such pairs."""
    wins, pairs = 0.0, 0
    for package in sorted({t.package for t in tracks}):
        e = np.array([t.values[key] for t in tracks if t.package == package and t.side == "energetic"])
        c = np.array([t.values[key] for t in tracks if t.package == package and t.side == "calm"])
        if e.size and c.size:
            wins += auc(e, c) * e.size * c.size
            pairs += e.size * c.size
    return (wins / pairs if pairs else math.nan), pairs


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def readout_stats(tracks: list[Track], key: str) -> dict:
    values = {side: np.array([t.values[key] for t in tracks if t.side == side]) for side in SIDES}
    strong = {side: np.array([t.values[key] for t in tracks if t.side == side and t.strong]) for side in SIDES}
    low, high = bootstrap_ci(values["energetic"], values["calm"])
    within, within_pairs = within_package_auc(tracks, key)
    level = np.array([t.values["rms_dbfs"] for t in tracks])
    return {
        "auc": auc(values["energetic"], values["calm"]),
        "ci95": [low, high],
        "p_one_sided": mann_whitney_p(values["energetic"], values["calm"]),
        "auc_strong_cues": auc(strong["energetic"], strong["calm"]),
        "ci95_strong_cues": list(bootstrap_ci(strong["energetic"], strong["calm"])),
        "auc_within_package": within,
        "pairs_within_package": within_pairs,
        # the contrast rows play the files at other levels than their own
        "spearman_with_rms_dbfs": math.nan if key in LEVEL_CONTRASTS else spearman([t.values[key] for t in tracks], level),
        "median_energetic": float(np.median(values["energetic"])),
        "median_calm": float(np.median(values["calm"])),
    }


# --------------------------------------------------------------------------- measuring


def measure(tracks: list[Track], bundle_path: Path, target_dbfs: float, n_crops: int | None, feature_cache: Path, log) -> dict:
    """Fill ``track.values`` for every track; return facts about the bundle."""
    from moodscape.audio import MEL_SR, load_audio, log_mel_spectrogram, resample
    from moodscape.features import extract_features
    from moodscape.inference import load_bundle, mel_crops, predict_crops, track_crops

    bundle = load_bundle(bundle_path)
    if bundle.av_model is None:
        raise SystemExit(f"{bundle_path}: the bundle has no valence/arousal regressor")
    if n_crops is not None:
        bundle = dataclasses.replace(bundle, n_eval_crops=n_crops)
    gains_dbfs = {"norm": target_dbfs, "low": LEVEL_LOW_DBFS, "high": LEVEL_HIGH_DBFS}
    largest_path_difference = 0.0
    for index, track in enumerate(tracks, 1):
        started = time.perf_counter()
        # /analyze's whole-track prediction, unchanged audio
        crops, _n_frames = track_crops(("audio", str(track.path)), bundle.crop_frames, bundle.n_eval_crops)
        analyzed = predict_crops(bundle, [crops]).valence_arousal[0]
        # the same network on the whole log-mel, as is and at fixed levels
        y, sr = load_audio(track.path)
        rms_dbfs = 10.0 * math.log10(float(np.mean(np.square(y, dtype=np.float64))) + 1e-20)
        y12 = resample(y, sr, MEL_SR)
        signals = {"as_is": 1.0, **{name: 10.0 ** ((level - rms_dbfs) / 20.0) for name, level in gains_dbfs.items()}}
        all_crops = [mel_crops(log_mel_spectrogram(y12 * np.float32(g), MEL_SR), bundle.crop_frames, bundle.n_eval_crops) for g in signals.values()]
        va = dict(zip(signals, predict_crops(bundle, all_crops).valence_arousal))
        largest_path_difference = max(largest_path_difference, float(np.abs(va["as_is"] - analyzed).max()))
        features = cached_features(track.path, extract_features, feature_cache)
        track.values = {
            "arousal": float(analyzed[1]),
            "valence": float(analyzed[0]),
            "arousal_normalised": float(va["norm"][1]),
            "valence_normalised": float(va["norm"][0]),
            "arousal_low": float(va["low"][1]),
            "arousal_high": float(va["high"][1]),
            "rms_dbfs": rms_dbfs,
            "duration_s": y.size / sr,
            **{name: float(features[name]) for name in FEATURE_READOUTS},
        }
        log(f"[{index}/{len(tracks)}] {track.side:9s} {track.package:18s} {track.name:34s} "
            f"A={track.values['arousal']:.3f} A@{target_dbfs:g}={track.values['arousal_normalised']:.3f} "
            f"{rms_dbfs:6.1f} dBFS ({time.perf_counter() - started:.1f} s)")
    return {
        "crop_frames": bundle.crop_frames,
        "n_eval_crops": bundle.n_eval_crops,
        "max_abs_difference_analyze_vs_whole_mel": largest_path_difference,
    }


def cached_features(path: Path, extract, cache: Path) -> dict[str, float]:
    """Stage-1 features of a file, kept in ``<--cache>/features/`` (they do not depend on
    the model, so a second run skips them); keyed by the file's size and mtime."""
    stat = path.stat()
    key = [stat.st_size, stat.st_mtime_ns]
    store = cache / (path.as_posix().strip("/").replace("/", "__") + ".json")
    try:
        saved = json.loads(store.read_text())
        if saved["key"] == key:
            return saved["features"]
    except (OSError, ValueError, KeyError):
        pass
    features = extract(path)
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        store.write_text(json.dumps({"key": key, "features": features}))
    except OSError:
        pass
    return features

FEATURE_READOUTS = ("bpm", "onset_rate", "spectral_flux_mean", "spectral_centroid_mean", "loudness_db")

READOUTS = [  # key, label in the table
    ("arousal", "model arousal (as /analyze)"),
    ("arousal_normalised", "model arousal, every file at {target:g} dBFS"),
    ("arousal_level_against", f"model arousal, energetic at {LEVEL_LOW_DBFS:g}, calm at {LEVEL_HIGH_DBFS:g} dBFS"),
    ("arousal_level_for", f"model arousal, energetic at {LEVEL_HIGH_DBFS:g}, calm at {LEVEL_LOW_DBFS:g} dBFS"),
    ("valence", "model valence (no claim; information)"),
    ("rms_dbfs", "RMS level, dBFS (no model)"),
    ("bpm", "stage-1 bpm"),
    ("onset_rate", "stage-1 onset_rate"),
    ("spectral_flux_mean", "stage-1 spectral_flux_mean"),
    ("spectral_centroid_mean", "stage-1 spectral_centroid_mean"),
]


def add_level_contrasts(tracks: list[Track]) -> None:
    """Arousal with the level set against the labels (energetic tracks 20 dB quieter than
    calm ones) and for them: a model that reads level flips under the first, one that reads
    music holds."""
    for t in tracks:
        louder, quieter = t.values["arousal_high"], t.values["arousal_low"]
        t.values["arousal_level_against"] = quieter if t.side == "energetic" else louder
        t.values["arousal_level_for"] = louder if t.side == "energetic" else quieter


def level_sensitivity(tracks: list[Track]) -> dict:
    """How much arousal moves with level alone, against how much it varies between tracks."""
    delta = np.array([t.values["arousal_high"] - t.values["arousal_low"] for t in tracks])
    normalised = np.array([t.values["arousal_normalised"] for t in tracks])
    as_is = np.array([t.values["arousal"] for t in tracks])
    return {
        "mean_arousal_change_per_20db": float(delta.mean()),
        "arousal_std_between_tracks_as_is": float(as_is.std()),
        "arousal_std_between_tracks_normalised": float(normalised.std()),
        "ratio_level_change_to_spread": float(delta.mean() / max(normalised.std(), 1e-12)),
        "spearman_as_is_vs_normalised": spearman(as_is, normalised),
        "mean_abs_change_from_normalising": float(np.abs(as_is - normalised).mean()),
    }


# --------------------------------------------------------------------------- output


def print_report(result: dict, target_dbfs: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 170)
    counts = result["counts"]
    table = Table(title=(f"Energetic ({counts['energetic']}) vs calm ({counts['calm']}) real recordings — "
                         f"AUC = P(energetic > calm), chance 0.50; run {result['workdir']}"))
    for column in ("readout", "AUC", "95 % CI", "p (1-sided)", "AUC strong cues", "AUC within pkg", "ρ with RMS", "median E / C"):
        table.add_column(column, justify="left" if column == "readout" else "right")
    for key, label in READOUTS:
        s = result["readouts"][key]
        table.add_row(
            label.format(target=target_dbfs), f"{s['auc']:.3f}", f"{s['ci95'][0]:.2f}–{s['ci95'][1]:.2f}",
            f"{s['p_one_sided']:.2g}", f"{s['auc_strong_cues']:.3f}",
            f"{s['auc_within_package']:.3f} ({s['pairs_within_package']})", f"{s['spearman_with_rms_dbfs']:+.2f}",
            f"{s['median_energetic']:.3g} / {s['median_calm']:.3g}",
        )
    console.print(table)
    lv = result["level_sensitivity"]
    console.print(
        f"Level alone: the same audio 20 dB louder ({LEVEL_LOW_DBFS:g} → {LEVEL_HIGH_DBFS:g} dBFS) moves arousal by "
        f"{lv['mean_arousal_change_per_20db']:+.3f} on average; arousal's spread between tracks (std) is "
        f"{lv['arousal_std_between_tracks_as_is']:.3f} as is, {lv['arousal_std_between_tracks_normalised']:.3f} "
        f"normalised; Spearman(as is, normalised) = {lv['spearman_as_is_vs_normalised']:.2f}."
    )
    if result["missing_patterns"]:
        console.print(f"[yellow]Not found: {', '.join(result['missing_patterns'])}[/yellow]")


def rescore(args: argparse.Namespace) -> int:
    """The statistics again from an earlier JSON's per-track values."""
    earlier = json.loads(args.from_json.read_text())
    tracks = []
    for row in earlier["tracks"]:
        row = dict(row)
        meta = [row.pop(k) for k in ("package", "file", "side", "cue", "strong")]
        tracks.append(Track(meta[0], "", meta[2], meta[3], meta[1], Path(meta[1]), row))
    facts = {k: v for k, v in earlier.items() if k not in ("tracks", "readouts", "level_sensitivity", "counts", "counts_strong_cues", "packages", "date", "issue")}
    result = summarise(tracks, facts)
    print_report(result, result["target_dbfs"])
    write(result, args.out)
    return 0


def write(result: dict, out: Path | None) -> None:
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)


def summarise(tracks: list[Track], facts: dict) -> dict:
    add_level_contrasts(tracks)
    result = {
        "issue": "12 §5 real recordings",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **facts,
        "counts": {side: sum(t.side == side for t in tracks) for side in SIDES},
        "counts_strong_cues": {side: sum(t.side == side and t.strong for t in tracks) for side in SIDES},
        "packages": sorted({t.package for t in tracks}),
        "readouts": {key: readout_stats(tracks, key) for key, _label in READOUTS},
        "level_sensitivity": level_sensitivity(tracks),
        "tracks": [
            {"package": t.package, "file": t.source, "side": t.side, "cue": t.cue, "strong": t.strong, **t.values}
            for t in tracks
        ],
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, required=True, help="a moodscape run (models/inference_bundle.pt)")
    parser.add_argument("--bundle", type=Path, help="default WORKDIR/models/inference_bundle.pt")
    parser.add_argument("--audio-dirs", type=Path, nargs="+", default=[Path(d) for d in DEFAULT_AUDIO_DIRS])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/moodscape-real-recordings"), help="pk3 members go here")
    parser.add_argument("--target-dbfs", type=float, default=-20.0, help="RMS level every file is scaled to")
    parser.add_argument("--n-crops", type=int, help="crops averaged per track (default: the bundle's)")
    parser.add_argument("--out", type=Path, help="JSON with every number and the per-track values")
    parser.add_argument("--from-json", type=Path, help="recompute the statistics from the tracks of an earlier --out (no audio, no model)")
    parser.add_argument("--min-per-side", type=int, default=10, help="refuse to score with fewer tracks on a side")
    args = parser.parse_args(argv)

    bundle_path = args.bundle or args.workdir / "models" / "inference_bundle.pt"
    if args.from_json:
        return rescore(args)
    if not bundle_path.is_file():
        parser.error(f"{bundle_path} not found: run `moodscape run` (or `moodscape infer`) first")
    tracks, missing = find_tracks(args.audio_dirs, args.cache)
    counts = {side: sum(t.side == side for t in tracks) for side in SIDES}
    print(f"labelled tracks found: {counts} ({len(missing)} of the globs matched nothing)", file=sys.stderr)
    if min(counts.values()) < args.min_per_side:
        print(f"fewer than {args.min_per_side} tracks on a side under {[str(d) for d in args.audio_dirs]}; "
              "see the module docstring for how to get them", file=sys.stderr)
        return 2
    started = time.perf_counter()
    bundle_facts = measure(tracks, bundle_path, args.target_dbfs, args.n_crops, args.cache / "features", lambda line: print(line, file=sys.stderr))
    result = summarise(tracks, {
        "workdir": str(args.workdir),
        "bundle": str(bundle_path),
        "target_dbfs": args.target_dbfs,
        **bundle_facts,
        "missing_patterns": missing,
        "seconds": time.perf_counter() - started,
    })
    print_report(result, args.target_dbfs)
    write(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
