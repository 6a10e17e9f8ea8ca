"""Issue 14, metadata: the MTG-Jamendo TSVs, the MusAV annotations and a folder's tags CSV, damaged as users' files are.

Every case starts from a valid file that the test writes, damages it one way and expects
one outcome, decided as the best loaders decide it:

- ``Read``: what only looks odd (a byte-order mark, UTF-16, CRLF or CR line ends, extra
  columns, blank lines) is read as if it were not there;
- ``Read`` with problems: a bad row, a repeated row, a track in two splits, tracks listed
  but absent, unknown tags or an empty split are skipped or mended and listed, one line
  each, which a run writes to ``reports/``;
- ``Refused``: a file that cannot be read as a whole (another encoding, binary, a missing
  column, no row) stops the run with one line naming the file, the line and what to do.
  MusAV's ground truth is never mended: any bad line of it is refused.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile

from cli_runner import invoke, one_line_error
from moodscape.config import Settings
from moodscape.datasets import SPLITS
from moodscape.datasets.folder import hash_split, load_folder
from moodscape.datasets.jamendo import TAG_PREFIX, load_jamendo
from moodscape.datasets.musav import ground_truth_files, load_musav, read_ground_truth
from moodscape.errors import DataError

Files = dict[str, bytes]
"""A dataset as ``{path below its folder: content}``; a case damages one of its files."""
Damage = Callable[[Files], None]


@dataclass(frozen=True)
class Read:
    """The files are read: ``changes`` to the valid outcome (``{track: value}``), and a problem line holding each of ``problems``."""

    changes: dict | None = None
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Refused:
    """The files are refused with one line beginning ``<file>:<line>: `` (``<file>: `` when ``line`` is 0) and holding ``words``."""

    file: str
    line: int
    words: tuple[str, ...]


def check(load: Callable[[Path], tuple[dict, list[str]]], root: Path, valid: dict, expected: Read | Refused) -> None:
    """Load the dataset at ``root`` and compare with the valid outcome changed as ``expected`` says."""
    if isinstance(expected, Refused):
        with pytest.raises(DataError) as raised:
            load(root)
        message = str(raised.value)
        prefix = f"{root / expected.file}:{expected.line}: " if expected.line else f"{root / expected.file}: "
        assert message.startswith(prefix) and "\n" not in message, message
        assert all(word in message for word in expected.words), message
        return
    outcome, problems = load(root)
    assert outcome == {**valid, **(expected.changes or {})}, problems
    for word in expected.problems:
        assert any(word in problem for problem in problems), (word, problems)
    if not expected.problems:
        assert problems == []


def write(root: Path, files: Files) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def crlf(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


def recode(name: str, encoding: str) -> Damage:
    """Save file ``name`` in another encoding (``"utf-8-sig"``: UTF-8 with a byte-order mark)."""
    def damage(files: Files) -> None:
        files[name] = files[name].decode().encode(encoding)
    return damage


def replace(name: str, old: str, new: str) -> Damage:
    def damage(files: Files) -> None:
        assert old.encode() in files[name]
        files[name] = files[name].replace(old.encode(), new.encode())
    return damage


def append(name: str, *lines: str) -> Damage:
    def damage(files: Files) -> None:
        files[name] += crlf(*lines)
    return damage


def put(name: str, content: bytes) -> Damage:
    def damage(files: Files) -> None:
        files[name] = content
    return damage


BINARY = np.random.default_rng(0).bytes(4096)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
UTF16_NO_BOM = "utf-16-le"


# --------------------------------------------------------------------------- MTG-Jamendo

MAIN = "autotagging_moodtheme.tsv"
VOCABULARY = "moodtheme_split.txt"
HEADER = "TRACK_ID\tARTIST_ID\tALBUM_ID\tPATH\tDURATION\tTAGS"
SPLIT_OF = {"track_1": "train", "track_2": "train", "track_3": "train", "track_4": "train",
            "track_5": "validation", "track_6": "test"}
TAGS_OF = {"track_1": ["happy"], "track_2": ["calm", "sad"], "track_3": ["sad"], "track_4": ["happy", "calm"],
           "track_5": ["calm"], "track_6": ["sad", "happy"]}


def split_file(name: str) -> str:
    return f"splits/split-0/autotagging_moodtheme-{name}.tsv"


def row(track_id: str, tags: list[str] | None = None, artist: str = "artist_000001") -> str:
    number = int(track_id.rpartition("_")[2])
    tags = TAGS_OF.get(track_id, ["calm"]) if tags is None else tags
    return "\t".join([track_id, artist, "album_000001", f"{number:02d}/{number}.wav", "3.0", *(TAG_PREFIX + t for t in tags)])


def jamendo_files() -> Files:
    """Six tracks in the real layout (CRLF, one TAGS column per tag): four in train, one in validation, one in test."""
    files = {MAIN: crlf(HEADER, *map(row, SPLIT_OF)), VOCABULARY: "".join(f"{TAG_PREFIX}{t}\n" for t in ("calm", "happy", "sad")).encode()}
    for name in SPLITS:
        files[split_file(name)] = crlf(HEADER, *(row(t) for t, split in SPLIT_OF.items() if split == name))
    return files


def jamendo_outcome(root: Path) -> tuple[dict, list[str]]:
    tracks, problems = load_jamendo(root)
    assert tracks["track_id"].is_unique  # one row per track: never in two splits
    return {t: (split, tags) for t, split, tags in zip(tracks["track_id"], tracks["split"], tracks["tags"])}, problems


JAMENDO_VALID = {t: (split, TAGS_OF[t]) for t, split in SPLIT_OF.items()}

JAMENDO_CASES = {
    # read as if nothing were odd
    "utf-8 with a byte-order mark": (recode(MAIN, "utf-8-sig"), Read()),
    "utf-16 with a byte-order mark": (recode(MAIN, "utf-16"), Read()),
    "utf-32 with a byte-order mark": (recode(MAIN, "utf-32"), Read()),
    "lf line ends": (replace(MAIN, "\r\n", "\n"), Read()),
    "cr line ends": (replace(MAIN, "\r\n", "\r"), Read()),
    "a split file in utf-16": (recode(split_file("test"), "utf-16"), Read()),
    "a vocabulary with a byte-order mark": (recode(VOCABULARY, "utf-8-sig"), Read()),
    "header in lower case with spaces": (replace(MAIN, HEADER, HEADER.lower().replace("\t", " \t ")), Read()),
    "an extra column before TAGS": (lambda files: (replace(MAIN, "PATH\tDURATION", "PATH\tGENRE\tDURATION")(files),
                                                   replace(MAIN, ".wav\t", ".wav\trock\t")(files)), Read()),
    "blank and whitespace lines": (replace(MAIN, "\r\ntrack_3", "\r\n\r\n   \r\n\t\t\r\ntrack_3"), Read()),
    "a trailing tab on a row": (replace(MAIN, row("track_1"), row("track_1") + "\t"), Read()),
    # mended or skipped, and listed
    "an unknown tag": (replace(MAIN, row("track_1"), row("track_1", ["happy", "bogus"])),
                       Read(problems=("dropped 1 tags outside the 3-tag vocabulary: bogus (1)",))),
    "a track in two splits": (append(split_file("test"), row("track_2")),
                              Read(problems=("track track_2 is already in train; kept there, left out of test",))),
    "a test track also in the train split file": (append(split_file("train"), row("track_6")),
                                                     Read({"track_6": ("train", TAGS_OF["track_6"])},
                                                          ("track track_6 is already in train; kept there, left out of test",))),
    "a track only in a split file": (append(split_file("test"), row("track_9", ["sad"])),
                                     Read({"track_9": ("test", ["sad"])}, ("1 tracks appear only in split files",))),
    "an empty split": (put(split_file("validation"), crlf(HEADER)),
                       Read({"track_5": ("", TAGS_OF["track_5"])}, ("no track: the validation split is empty",))),
    "a duplicate row": (append(MAIN, row("track_1")), Read(problems=(f"{MAIN}:8: row skipped: track id track_1 repeats line 2",))),
    "a row with a NUL byte": (append(MAIN, row("track_9", ["sad"], artist="art\0ist")),
                              Read(problems=(f"{MAIN}:8: row skipped: it holds a NUL byte",))),
    "a short row": (append(MAIN, "track_9\tartist_000001"), Read(problems=(f"{MAIN}:8: row skipped: expected at least 5 columns",))),
    "a tag without its prefix": (append(MAIN, row("track_9", []) + "\tsad"), Read(problems=(f"{MAIN}:8: row skipped: tag 'sad' lacks",))),
    # refused with one line
    "latin-1": (lambda files: (replace(MAIN, row("track_3"), row("track_3", artist="Müller"))(files), recode(MAIN, "latin-1")(files)),
                Refused(MAIN, 4, ("not UTF-8 text (byte 0xfc)", "save it as UTF-8"))),
    "utf-16 without a byte-order mark": (recode(MAIN, UTF16_NO_BOM), Refused(MAIN, 1, ("NUL bytes", "UTF-16", "UTF-8"))),
    "random bytes": (put(MAIN, BINARY), Refused(MAIN, 1, ("not UTF-8 text", "binary"))),
    "an image as the tracks TSV": (put(MAIN, PNG), Refused(MAIN, 1, ("not UTF-8 text (byte 0x89)", "binary"))),
    "a binary vocabulary": (put(VOCABULARY, BINARY), Refused(VOCABULARY, 1, ("binary",))),
    "a missing column": (lambda files: files.update({name: content.replace(b"\t3.0", b"").replace(b"\tDURATION", b"")
                                                     for name, content in files.items() if name.endswith(".tsv")}),
                         Refused(MAIN, 1, ("missing column(s) DURATION", "expected the header"))),
    "an extra column after TAGS": (replace(MAIN, "\tTAGS", "\tTAGS\tNOTES"), Refused(MAIN, 1, ("TAGS is not the last column",))),
    "comma-separated": (replace(MAIN, HEADER, HEADER.replace("\t", ",")), Refused(MAIN, 1, ("missing column(s)", "tab-separated"))),
    "a header and no row": (put(MAIN, crlf(HEADER)), Refused(MAIN, 0, ("no track row",))),
    "an empty file": (put(MAIN, b""), Refused(MAIN, 0, ("empty file", "expected the header"))),
    "no valid row": (put(MAIN, crlf(HEADER, "track_1", "track_2")), Refused(MAIN, 0, ("none of its 2 rows is valid",))),
    "a missing split file": (lambda files: files.pop(split_file("test")), Refused(split_file("test"), 0, ("no such file",))),
}


@pytest.mark.parametrize(("damage", "expected"), JAMENDO_CASES.values(), ids=JAMENDO_CASES)
def test_jamendo_metadata(tmp_path, damage, expected):
    files = jamendo_files()
    damage(files)
    check(jamendo_outcome, write(tmp_path, files), JAMENDO_VALID, expected)


# --------------------------------------------------------------------------- MusAV

SONGS = [f"song{i}" for i in range(1, 7)]
SONGIDS = "audio.chunk_000-006.songids"
GT = "annotations/annotations.arousal.all.agreement.gt"
PAIRS = [("song1", "song2", "a"), ("song2", "song3", "b"), ("song1", "song3", "ab"),
         ("song4", "song5", "a"), ("song5", "song6", "b"), ("song4", "song6", "a")]


def pair_line(song_a: str, song_b: str, higher: str, **extra: str) -> str:
    fields = {"tripletid": f"t{song_a[-1]}", "triplet_type": "global_triplet", "pairid": f"{song_a}-{song_b}",
              "agreement": "full-agreement", "higher_value": higher, "triplet_consistency": "consistent", **extra}
    return "{" + ", ".join(f'"{key}": "{value}"' for key, value in fields.items()) + "}"


def musav_files() -> Files:
    """Six songs, each with a preview and Spotify metadata, and the arousal ground truth of two triplets."""
    files = {SONGIDS: "".join(f"{song}\n" for song in SONGS).encode(), GT: crlf(*(pair_line(*pair) for pair in PAIRS))}
    for song in SONGS:
        files[f"audio/{song[:2]}/{song}.mp3"] = b"ID3"
        files[f"metadata/{song[:2]}/{song}.yaml"] = b"audio_features:\n  valence: 0.25\n  energy: 0.75\n"
    return files


def musav_outcome(root: Path) -> tuple[dict, list[str]]:
    songs, problems = load_musav(root, audio_root=root / "audio", metadata_root=root / "metadata")
    outcome = {song: (bool(audio), None if np.isnan(valence) else valence)
               for song, audio, valence in zip(songs["songid"], songs["audio_path"], songs["valence"])}
    for _, _, path in ground_truth_files(root / "annotations"):
        truth = read_ground_truth(path)
        outcome["pairs"] = list(zip(truth["songid_a"], truth["songid_b"], truth["higher_value"]))
    return outcome, problems


MUSAV_VALID = {**{song: (True, 0.25) for song in SONGS}, "pairs": PAIRS}

MUSAV_CASES = {
    "song ids in utf-8 with a byte-order mark": (recode(SONGIDS, "utf-8-sig"), Read()),
    "song ids in utf-16": (recode(SONGIDS, "utf-16"), Read()),
    "song ids with crlf and blank lines": (replace(SONGIDS, "\n", "\r\n\r\n"), Read()),
    "ground truth in utf-8 with a byte-order mark": (recode(GT, "utf-8-sig"), Read()),
    "ground truth in utf-16": (recode(GT, "utf-16"), Read()),
    "ground truth with lf and blank lines": (replace(GT, "\r\n", "\n\n"), Read()),
    "ground truth with an extra field": (replace(GT, '"agreement"', '"note": "x", "agreement"'), Read()),
    "an unknown higher_value (scored as neither)": (replace(GT, pair_line("song4", "song5", "a"), pair_line("song4", "song5", "c")),
                                                    Read({"pairs": [*PAIRS[:3], ("song4", "song5", "c"), *PAIRS[4:]]})),
    "an empty ground-truth file": (put(GT, b""), Read({"pairs": []})),
    "metadata with a byte-order mark": (recode("metadata/so/song2.yaml", "utf-8-sig"), Read()),
    "a repeated song id": (append(SONGIDS, "song1"), Read(problems=(f"{SONGIDS}:7: song song1 repeats line 1; listed once",))),
    "a song absent on disk": (lambda files: files.pop("audio/so/song2.mp3"),
                              Read({"song2": (False, 0.25)}, ("1 songs have no audio: song2",))),
    "a song without metadata": (lambda files: files.pop("metadata/so/song3.yaml"),
                                Read({"song3": (True, None)}, ("1 songs have no Spotify metadata: song3",))),
    "metadata in latin-1": (put("metadata/so/song4.yaml", "# é\naudio_features: {valence: 0.25, energy: 0.75}\n".encode("latin-1")),
                            Read({"song4": (True, None)}, ("song4.yaml:1: not UTF-8 text", "song song4 skipped"))),
    "no song id": (put(SONGIDS, b"\n\n"), Refused(SONGIDS, 0, ("no song id",))),
    "song ids in latin-1": (lambda files: (append(SONGIDS, "sóng7")(files), recode(SONGIDS, "latin-1")(files)),
                            Refused(SONGIDS, 7, ("not UTF-8 text",))),
    "a binary song ids file": (put(SONGIDS, BINARY), Refused(SONGIDS, 1, ("binary",))),
    "a ground-truth line without higher_value": (replace(GT, ', "higher_value": "b"', ""), Refused(GT, 2, ("higher_value",))),
    "a pair judged twice": (append(GT, pair_line("song1", "song2", "b")), Refused(GT, 7, ("already judged on line 1",))),
    "a pair judged again the other way round (scored as a line of its own, as MusAV's script does)":
        (append(GT, pair_line("song2", "song1", "b")), Read({"pairs": [*PAIRS, ("song2", "song1", "b")]})),
    "a ground-truth line with a NUL byte": (replace(GT, '"full-agreement", "higher_value": "b"', '"full\0", "higher_value": "b"'),
                                            Refused(GT, 2, ("not valid JSON",))),
    "ground truth in latin-1": (lambda files: (append(GT, pair_line("song1", "sóng7", "a"))(files), recode(GT, "latin-1")(files)),
                                Refused(GT, 7, ("not UTF-8 text",))),
    "a binary ground-truth file": (put(GT, BINARY), Refused(GT, 1, ("binary",))),
    "an image as ground truth": (put(GT, PNG), Refused(GT, 1, ("not UTF-8 text (byte 0x89)", "binary"))),
}


@pytest.mark.parametrize(("damage", "expected"), MUSAV_CASES.values(), ids=MUSAV_CASES)
def test_musav_metadata(tmp_path, damage, expected):
    files = musav_files()
    damage(files)
    check(musav_outcome, write(tmp_path, files), MUSAV_VALID, expected)


# --------------------------------------------------------------------------- a folder's tags CSV

TAGS_CSV = "tags.csv"
CSV_LINES = ("track_id,tags,split", "a,happy|sad,train", "b,calm,test", 'c,"happy,calm",', "d,sad,validation")


def wav(frequency: float, seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, 0.3 * np.sin(2 * np.pi * frequency * np.arange(int(seconds * rate)) / rate), rate, format="WAV")
    return buffer.getvalue()


def folder_files() -> Files:
    """Four short WAV files and their tags CSV (track c takes the hash split)."""
    return {TAGS_CSV: crlf(*CSV_LINES), **{f"music/{track}.wav": wav(220.0 * (i + 1)) for i, track in enumerate("abcd")}}


def folder_outcome(root: Path) -> tuple[dict, list[str]]:
    tracks, problems = load_folder(root / "music", tags_csv=root / TAGS_CSV)
    return {t: (tags, split) for t, tags, split in zip(tracks["track_id"], tracks["tags"], tracks["split"])}, problems


FOLDER_VALID = {"a": (["happy", "sad"], "train"), "b": (["calm"], "test"), "c": (["happy", "calm"], hash_split("c")),
                "d": (["sad"], "validation")}

FOLDER_CASES = {
    "utf-8 with a byte-order mark": (recode(TAGS_CSV, "utf-8-sig"), Read()),
    "utf-16 with a byte-order mark": (recode(TAGS_CSV, "utf-16"), Read()),
    "lf line ends": (replace(TAGS_CSV, "\r\n", "\n"), Read()),
    "header in upper case with spaces": (replace(TAGS_CSV, CSV_LINES[0], "TRACK_ID, Tags ,SPLIT"), Read()),
    "an extra column": (lambda files: files.update({TAGS_CSV: crlf(*(line + ",x" for line in CSV_LINES))}), Read()),
    "columns in another order": (put(TAGS_CSV, crlf("split,tags,track_id", "train,happy|sad,a", "test,calm,b",
                                                    ',"happy,calm",c', "validation,sad,d")), Read()),
    "blank and empty lines": (replace(TAGS_CSV, "\r\nb,", "\r\n\r\n,,\r\n  \r\nb,"), Read()),
    "prefixed tags": (replace(TAGS_CSV, "b,calm", "b,mood/theme---calm"), Read()),
    "a track in two splits": (append(TAGS_CSV, "a,calm,test"), Read(problems=(f"{TAGS_CSV}:6: line skipped: track id 'a' repeats line 2",))),
    "a duplicate row": (append(TAGS_CSV, "b,calm,test"), Read(problems=(f"{TAGS_CSV}:6: line skipped: track id 'b' repeats line 3",))),
    "a track listed but absent on disk": (append(TAGS_CSV, "ghost,happy,train"), Read(problems=("1 track ids have no audio", "ghost"))),
    "an unknown split": (replace(TAGS_CSV, "d,sad,validation", "d,sad,holdout"),
                         Read({"d": (["sad"], hash_split("d"))}, ("split 'holdout' is not one of train, validation, test",))),
    "unquoted commas": (replace(TAGS_CSV, "b,calm,test", "b,calm,sad,test"),
                        Read({"b": ([], hash_split("b"))}, (f"{TAGS_CSV}:3: line skipped: 4 fields where the header has 3", "quote"))),
    "a short row": (replace(TAGS_CSV, "b,calm,test", "b"), Read({"b": ([], hash_split("b"))}, (f"{TAGS_CSV}:3: line skipped: 1 field(s)",))),
    "a row with a NUL byte": (replace(TAGS_CSV, "b,calm,test", "b,ca\0lm,test"),
                              Read({"b": ([], hash_split("b"))}, (f"{TAGS_CSV}:3: line skipped: it holds a NUL byte",))),
    "latin-1": (lambda files: (append(TAGS_CSV, "é,happy,")(files), recode(TAGS_CSV, "latin-1")(files)),
                Refused(TAGS_CSV, 6, ("not UTF-8 text (byte 0xe9)", "save it as UTF-8"))),
    "utf-16 without a byte-order mark": (recode(TAGS_CSV, UTF16_NO_BOM), Refused(TAGS_CSV, 1, ("NUL bytes", "UTF-16"))),
    "random bytes": (put(TAGS_CSV, BINARY), Refused(TAGS_CSV, 1, ("binary",))),
    "an image as the tags CSV": (put(TAGS_CSV, PNG), Refused(TAGS_CSV, 1, ("not UTF-8 text (byte 0x89)", "binary"))),
    "a missing column": (replace(TAGS_CSV, "track_id,tags,split", "track_id,labels,split"),
                         Refused(TAGS_CSV, 1, ("missing column(s) tags", "expected the header track_id,tags[,split]"))),
    "a repeated column": (replace(TAGS_CSV, "track_id,tags,split", "track_id,tags,tags"), Refused(TAGS_CSV, 1, ("column tags appears twice",))),
    "semicolon-separated": (replace(TAGS_CSV, "track_id,tags,split", "track_id;tags;split"),
                            Refused(TAGS_CSV, 1, ("missing column(s)", "comma-separated"))),
    "an unclosed quote": (replace(TAGS_CSV, 'c,"happy,calm",', 'c,"happy,calm,'), Refused(TAGS_CSV, 4, ("not a valid CSV", "quotes"))),
    "a header and no row": (put(TAGS_CSV, crlf(CSV_LINES[0])), Refused(TAGS_CSV, 0, ("no track line", "folder.tags_csv"))),
    "an empty file": (put(TAGS_CSV, b""), Refused(TAGS_CSV, 1, ("missing column(s) tags, track_id",))),
}


@pytest.mark.parametrize(("damage", "expected"), FOLDER_CASES.values(), ids=FOLDER_CASES)
def test_folder_tags_csv(tmp_path, damage, expected):
    files = folder_files()
    damage(files)
    check(folder_outcome, write(tmp_path, files), FOLDER_VALID, expected)


# --------------------------------------------------------------------------- through the command line


def jamendo_run(tmp_path: Path, *damages: Damage, absent: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """A damaged MTG-Jamendo dataset with a WAV file per track (but ``absent``), and its config; returns (root, config)."""
    files = jamendo_files()
    for damage in damages:
        damage(files)
    root = write(tmp_path / "jamendo", files)
    for track in [*SPLIT_OF, "track_7", "track_9"]:
        number = int(track.rpartition("_")[2])
        if track not in absent:
            write(tmp_path / "audio", {f"{number:02d}/{number}.wav": wav(110.0 * number, seconds=2.0)})
    config = tmp_path / "jamendo.toml"
    config.write_text(f'[jamendo]\nroot = "{root}"\naudio_root = "{tmp_path / "audio"}"\n[features]\nscheduler = "synchronous"\n')
    return root, config


def test_the_features_stage_lists_every_skipped_row_and_track_in_reports(tmp_path):
    root, config = jamendo_run(
        tmp_path,
        append(MAIN, row("track_1"), row("track_9", artist="art\0ist"), row("track_7")),  # a duplicate, a NUL byte, no audio
        replace(MAIN, row("track_3"), row("track_3", ["sad", "bogus"])),
        append(split_file("test"), row("track_2")),
        absent=("track_7",),
    )
    workdir = tmp_path / "run"
    result = invoke("features", "--config", config, "--workdir", workdir)
    assert result.exit_code == 0, result.output
    assert sorted(pd.read_parquet(workdir / "features.parquet")["track_id"]) == sorted(SPLIT_OF)
    problems = (workdir / "reports" / "dataset_problems.txt").read_text(encoding="utf-8")
    for line in (f"{root / MAIN}:8: row skipped: track id track_1 repeats line 2", f"{root / MAIN}:9: row skipped: it holds a NUL byte",
                 f"{root / split_file('test')}: track track_2 is already in train; kept there, left out of test",
                 f"{root / MAIN}: dropped 1 tags outside the 3-tag vocabulary: bogus (1)"):
        assert line in problems.splitlines(), (line, problems)
    skipped = pd.read_csv(workdir / "reports" / "skipped_features.csv", dtype=str).set_index("track_id")["reason"]
    assert list(skipped.index) == ["track_7"] and str(tmp_path / "audio" / "07" / "7.wav") in skipped["track_7"]


def eval_musav_args(tmp_path: Path, damage: Damage) -> list:
    files = musav_files()
    damage(files)
    root = write(tmp_path / "musav", files)
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(f'{{"songid": "{song}", "model": "m", "arousal_mean": {i / 10}, "valence_mean": 0.5}}\n'
                                   for i, song in enumerate(SONGS)))
    return ["eval-musav", predictions, "--annotations", root / "annotations"]


def features_args(tmp_path: Path, *damages: Damage) -> list:
    _, config = jamendo_run(tmp_path, *damages)
    return ["features", "--config", config, "--workdir", tmp_path / "run"]


def folder_args(tmp_path: Path, damage: Damage) -> list:
    files = folder_files()
    damage(files)
    root = write(tmp_path / "folder", files)
    config = tmp_path / "folder.toml"
    config.write_text(f'[data]\nsource = "folder"\n[folder]\nroot = "{root / "music"}"\ntags_csv = "{root / TAGS_CSV}"\n'
                      '[features]\nscheduler = "synchronous"\n')
    return ["features", "--config", config, "--workdir", tmp_path / "run"]


CLI_REFUSALS = {
    "tracks TSV in latin-1": (lambda tmp_path: features_args(tmp_path, JAMENDO_CASES["latin-1"][0]), f"jamendo/{MAIN}:4: ", "UTF-8"),
    "tracks TSV without DURATION": (lambda tmp_path: features_args(tmp_path, JAMENDO_CASES["a missing column"][0]),
                                    f"jamendo/{MAIN}:1: ", "missing column(s) DURATION"),
    "a missing split file": (lambda tmp_path: features_args(tmp_path, JAMENDO_CASES["a missing split file"][0]),
                             f"jamendo/{split_file('test')}: ", "no such file"),
    "a binary tags CSV": (lambda tmp_path: folder_args(tmp_path, put(TAGS_CSV, BINARY)), f"folder/{TAGS_CSV}:1: ", "binary"),
    "a tags CSV with a header only": (lambda tmp_path: folder_args(tmp_path, put(TAGS_CSV, crlf(CSV_LINES[0]))),
                                      f"folder/{TAGS_CSV}: ", "no track line"),
    "MusAV ground truth judging a pair twice": (lambda tmp_path: eval_musav_args(tmp_path, MUSAV_CASES["a pair judged twice"][0]),
                                                f"musav/{GT}:7: ", "already judged"),
    "MusAV ground truth in utf-16 without a byte-order mark": (lambda tmp_path: eval_musav_args(tmp_path, recode(GT, UTF16_NO_BOM)),
                                                               f"musav/{GT}:1: ", "UTF-16"),
}


@pytest.mark.parametrize(("arguments", "where", "what"), CLI_REFUSALS.values(), ids=CLI_REFUSALS)
def test_a_refused_metadata_file_is_one_line_naming_file_and_line(tmp_path, arguments, where, what):
    line = one_line_error(invoke(*arguments(tmp_path)))
    assert f"error: {tmp_path / where}" in line and what in line, line


@pytest.mark.slow
def test_ablate_lists_the_musav_previews_it_cannot_read(demo_run, demo_corpus, tmp_path):
    """Unreadable and absent previews are left out of the transfer scores and listed, as stage 4 lists them."""
    previews = Settings.load(demo_corpus / "moodscape.toml").musav.audio_root
    damaged = tmp_path / "previews"
    files = sorted(previews.rglob("*.mp3"))
    for path in files[3:]:
        (damaged / path.relative_to(previews)).parent.mkdir(parents=True, exist_ok=True)
        (damaged / path.relative_to(previews)).symlink_to(path)
    garbage, empty, absent = (damaged / path.relative_to(previews) for path in files[:3])
    for path in (garbage, empty):
        path.parent.mkdir(parents=True, exist_ok=True)
    garbage.write_bytes(b"ID3" + np.random.default_rng(0).bytes(4000))
    empty.write_bytes(b"")
    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns("ablation"))
    rank = json.loads((workdir / "metrics" / "classifier.json").read_text())["config"]["r"]
    result = invoke("ablate", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir,
                    f"--set=musav.audio_root={damaged}", f"--set=ablate.ranks=[{rank}]", '--set=ablate.include=["lora"]',
                    "--set=av.epochs=5", "--set=av.patience=2")
    assert result.exit_code == 0, result.output
    skipped = pd.read_csv(workdir / "reports" / "skipped_ablate.csv", dtype=str).set_index("track_id")["reason"]
    assert sorted(skipped.index) == sorted(path.stem for path in (garbage, empty, absent))
    assert str(garbage) in skipped[garbage.stem] and str(empty) in skipped[empty.stem]
    assert skipped[absent.stem] == "no audio preview found"
    assert "skipped" in result.output and " 3 " in result.output
    transfer = json.loads((workdir / "metrics" / "ablation.json").read_text())["transfer"]
    assert transfer["n_songs"] == {"listed": len(files), "embedded": len(files) - 3, "skipped": 3}
