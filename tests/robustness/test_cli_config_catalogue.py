"""Issue 14, config: wrong types for every kind of setting, unknown keys, missing paths and garbage ``--set``.

Every case ends in one line ``error: ...`` naming the setting (and the config file, or "given
on the command line") and what to write instead, with exit status 2 and before any stage
starts: the work directory is never created. The cases of ``test_cli_config.py`` (a
non-UTF-8 or directory config, ``--set seed.x=1``, NaN, a file as ``--workdir``) are not
repeated here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_runner import invoke, one_line_error


@pytest.fixture()
def corpus(tmp_path) -> Path:
    """Existing folders for every path setting, so only the case's own setting is wrong."""
    for folder in ("jamendo", "audio", "musav", "previews", "metadata", "music"):
        (tmp_path / folder).mkdir()
    return tmp_path


BASE = {"jamendo": {"root": "jamendo", "audio_root": "audio"},
        "musav": {"root": "musav", "audio_root": "previews", "metadata_root": "metadata"}}


def toml(value) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(key)} = {toml(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def write_config(folder: Path, settings: dict, extra: str = "") -> Path:
    """A TOML file of ``{section: {key: value}}`` and top-level ``{key: value}``, then the text ``extra``."""
    top = [f"{key} = {toml(value)}" for key, value in settings.items() if not isinstance(value, dict)]
    tables = [f"[{name}]\n" + "".join(f"{key} = {toml(value)}\n" for key, value in table.items())
              for name, table in settings.items() if isinstance(table, dict)]
    path = folder / "moodscape.toml"
    path.write_text("\n".join([*top, *tables, extra]), encoding="utf-8")
    return path


def cluster(corpus: Path, config: Path, *sets: str):
    """``moodscape cluster`` on a new work directory; a valid config would fail later, on the missing features."""
    return invoke("cluster", "--config", config, "--workdir", corpus / "run", *(f"--set={item}" for item in sets))


def refused(corpus: Path, result, *words: str) -> str:
    line = one_line_error(result)
    assert all(word in line for word in words), (words, line)
    assert not (corpus / "run").exists(), "the command started before refusing its settings"
    return line


WRONG_TYPES = {
    # int
    "str for int": ("train.epochs", "ten", "valid integer"),
    "fraction for int": ("cluster.n_init", 2.5, "fractional part"),
    "bool for int": ("train.epochs", True, "expected a number, not true or false"),
    "list for int": ("train.batch_size", [16], "valid integer"),
    # float
    "bool for float": ("train.lr", True, "expected a number, not true or false"),
    "str for float": ("label.min_lift", "high", "valid number"),
    "list for float": ("av.lr", [0.1], "valid number"),
    "a number beyond float": ("train.weight_decay", "1e400", "finite number"),
    # bool
    "int for bool": ("train.amp", 1, "expected true or false"),
    "str for bool": ("ablate.transfer", "yes", "expected true or false"),
    # str and choices
    "list for str": ("features.scheduler", ["local"], "valid string"),
    "int for str": ("av.model_name", 5, "valid string"),
    "empty scheduler": ("features.scheduler", "", "expected 'local', 'synchronous' or a Dask scheduler address"),
    "unknown scheduler": ("features.scheduler", "cluster", "tcp://host:8786"),
    "unknown choice": ("data.source", "spotify", "'jamendo' or 'folder'"),
    "bool for a choice": ("train.device", True, "'auto', 'cpu' or 'cuda'"),
    # paths
    "int for a path": ("jamendo.audio_root", 5, "not a valid path"),
    "empty path": ("jamendo.audio_root", "", "empty path"),
    "blank path": ("musav.metadata_root", "  ", "empty path"),
    # lists, tuples, tables
    "str for a list": ("ablate.ranks", "8", "valid list"),
    "bool in a list of int": ("ablate.ranks", [8, True], "expected a number, not true or false"),
    "unknown member of a list of choices": ("ablate.include", ["lora", "adapter"], "'lora', 'full', 'probe' or 'tags'"),
    "str for a list of str": ("cluster.exclude_features", "rms_mean", "valid list"),
    "short tuple": ("folder.split_fractions", [0.5, 0.5], "split_fractions"),
    "bool in a tuple of float": ("folder.split_fractions", [True, 0.0, 0.0], "expected a number, not true or false"),
    "str for a tuple": ("cluster.k_range", "5-10", "valid tuple"),
    "str key for an int-keyed table": ("label.manual_names", {"calm": "quiet"}, "valid integer"),
    "int value in a table of str": ("label.manual_names", {"1": 5}, "valid string"),
    "str for int or 'auto'": ("cluster.k", "many", "cluster.k"),
    "bool for int or 'auto'": ("cluster.k", True, "expected a number, not true or false"),
    "int for str or list or none": ("train.target_modules", 5, "valid string"),
    "bool for int or none": ("features.n_workers", False, "expected a number, not true or false"),
    "str for a section": ("train", "fast", "expected a table of settings"),
    # ranges
    "negative epochs": ("train.epochs", -1, "greater than or equal to 1"),
    "zero batch size": ("infer.batch_size", 0, "greater than or equal to 1"),
    "negative chunk size": ("features.chunk_size", -5, "greater than or equal to 1"),
    "negative seed": ("seed", -1, "greater than or equal to 0"),
    "seed beyond 32 bits": ("seed", 2**40, "less than 4294967296"),
    "negative split": ("jamendo.split", -1, "greater than or equal to 0"),
    "zero prior": ("label.prior", 0, "greater than 0"),
    "negative dropout": ("train.dropout", -0.1, "greater than or equal to 0"),
    "two folds": ("av.folds", 2, "greater than or equal to 3"),
    "tiny crops": ("pretrain.crop_frames", 8, "greater than or equal to 16"),
    "reversed k range": ("cluster.k_range", [10, 5], "2 <= low <= high"),
}


def with_setting(key: str, value) -> dict:
    settings = json.loads(json.dumps(BASE))
    *section, leaf = key.split(".")
    (settings.setdefault(section[0], {}) if section else settings)[leaf] = value
    return settings


@pytest.mark.parametrize(("key", "value", "words"), WRONG_TYPES.values(), ids=WRONG_TYPES)
def test_a_wrong_value_in_the_config_file_names_the_file_the_key_and_the_fix(corpus, key, value, words):
    config = write_config(corpus, with_setting(key, value))
    line = refused(corpus, cluster(corpus, config), str(config), key, words)
    assert "(given on the command line)" not in line


@pytest.mark.parametrize(("key", "value", "words"), WRONG_TYPES.values(), ids=WRONG_TYPES)
def test_a_wrong_value_given_with_set_names_the_key_and_the_command_line(corpus, key, value, words):
    config = write_config(corpus, BASE)
    line = refused(corpus, cluster(corpus, config, f"{key}={json.dumps(value)}"), f"{key}", "(given on the command line)", words)
    assert str(config) not in line


UNKNOWN_KEYS = {
    "a misspelt section": ("[trian]\nlr = 0.1\n", "trian", "did you mean train?"),
    "a misspelt key": ("[train]\nlrr = 0.1\n", "train.lrr", "did you mean train.lr?"),
    "a key in the wrong case": ("[cluster]\nK = 6\n", "cluster.K", "did you mean cluster.k?"),
    "a misspelt key of [data]": ("[data]\nsorce = 'jamendo'\n", "data.sorce", "did you mean data.source?"),
    "a key like none of its table": ("[cluster]\nflavour = 1\n", "cluster.flavour", "[cluster] takes k, exclude_features, k_range"),
    "a top-level key like none": ("[logging]\nlevel = 1\n", "logging", "the top level takes seed, data, jamendo"),
}


@pytest.mark.parametrize(("text", "key", "hint"), UNKNOWN_KEYS.values(), ids=UNKNOWN_KEYS)
def test_an_unknown_key_in_the_config_file_suggests_the_nearest_valid_key(corpus, text, key, hint):
    config = write_config(corpus, BASE, text)
    line = refused(corpus, cluster(corpus, config), f"{config}: {key}", f"unknown setting; {hint}")
    assert "(given on the command line)" not in line


@pytest.mark.parametrize(("setting", "key", "hint"), [
    ("trian.lr=0.1", "trian", "did you mean train?"),
    ("train.lrr=0.1", "train.lrr = 0.1", "did you mean train.lr?"),
    ("cluster.K=6", "cluster.K = 6", "did you mean cluster.k?"),
    ("foo.bar=1", "foo", "the top level takes seed"),
], ids=["misspelt section", "misspelt key", "wrong case", "unknown section"])
def test_an_unknown_key_given_with_set_suggests_the_nearest_valid_key(corpus, setting, key, hint):
    refused(corpus, cluster(corpus, write_config(corpus, BASE), setting), f"{key} (given on the command line): unknown setting; {hint}")


JAMENDO_ONLY = {"jamendo": {"root": "jamendo"}}
MISSING_PATHS = {  # name: (settings, the setting named, what it says)
    "jamendo.root": ({"jamendo": {"root": "nowhere"}}, "jamendo.root", "no such folder"),
    "jamendo.root is a file": ({"jamendo": {"root": "moodscape.toml"}}, "jamendo.root", "not a folder"),
    "jamendo.audio_root": ({"jamendo": {"root": "jamendo", "audio_root": "mp3s"}}, "jamendo.audio_root", "no such folder"),
    "jamendo.melspec_root": ({"jamendo": {"root": "jamendo", "melspec_root": "mels"}}, "jamendo.melspec_root", "no such folder"),
    "musav.root": ({**JAMENDO_ONLY, "musav": {"root": "MusAV"}}, "musav.root", "no such folder"),
    "musav.audio_root": ({**JAMENDO_ONLY, "musav": {"root": "musav", "audio_root": "spotify"}}, "musav.audio_root", "no such folder"),
    "musav.metadata_root": ({**JAMENDO_ONLY, "musav": {"root": "musav", "metadata_root": "yaml"}}, "musav.metadata_root",
                            "no such folder"),
    "musav.planted_truth is a folder": ({**JAMENDO_ONLY, "musav": {"root": "musav", "planted_truth": "musav"}}, "musav.planted_truth",
                                        "not a file"),
    "folder.root": ({"data": {"source": "folder"}, "folder": {"root": "my music"}}, "folder.root", "no such folder"),
    "folder.tags_csv": ({"data": {"source": "folder"}, "folder": {"root": "music", "tags_csv": "tags.csv"}}, "folder.tags_csv",
                        "no such file"),
    "features.essentia_json_root": ({**JAMENDO_ONLY, "features": {"essentia_json_root": "essentia"}}, "features.essentia_json_root",
                                    "no such folder"),
    "pretrain.backbone": ({**JAMENDO_ONLY, "pretrain": {"backbone": "backbone.pt"}}, "pretrain.backbone", "no such file"),
    "infer.track_list is a folder": ({**JAMENDO_ONLY, "infer": {"track_list": "music"}}, "infer.track_list", "not a file"),
    "infer.folder": ({**JAMENDO_ONLY, "infer": {"folder": "new music"}}, "infer.folder", "no such folder"),
}


@pytest.mark.parametrize(("settings", "key", "what"), MISSING_PATHS.values(), ids=MISSING_PATHS)
def test_a_missing_path_is_named_before_any_stage_starts(corpus, settings, key, what):
    line = refused(corpus, cluster(corpus, write_config(corpus, settings)), f"{key} = ", what, "set each to an existing file or folder")
    assert line.count(" = ") == 1, line  # the other paths exist


def test_a_missing_path_given_with_set_is_resolved_and_named(corpus):
    config = write_config(corpus, BASE)
    refused(corpus, cluster(corpus, config, "musav.audio_root=spotify"), f"musav.audio_root = {corpus / 'spotify'}: no such folder")


def test_every_missing_path_is_named_in_the_one_line(corpus):
    config = write_config(corpus, {"jamendo": {"root": "gone"}, "musav": {"root": "also gone"}})
    refused(corpus, cluster(corpus, config), "jamendo.root = ", "musav.root = ")


def test_the_paths_of_the_collection_not_read_are_not_checked(corpus):
    config = write_config(corpus, {**BASE, "folder": {"root": "not this one"}})
    line = one_line_error(cluster(corpus, config))
    assert "folder.root" not in line and "not this one" not in line


GARBAGE_SETS = {
    "no '='": ("seed", "--set expects key=value, e.g. --set cluster.k=6"),
    "an empty key": ("=1", "setting '': every part of a dotted key must be a name"),
    "a blank key": ("  =1", "every part of a dotted key must be a name"),
    "an empty part": ("a..b=1", "setting 'a..b': every part of a dotted key must be a name"),
    "a leading dot": (".seed=1", "every part of a dotted key must be a name"),
    "a trailing dot": ("seed.=1", "every part of a dotted key must be a name"),
    "an unknown section": ("foo.bar=1", "foo (given on the command line): unknown setting"),
    "an unparseable number": ("train.lr=abc", "train.lr = 'abc' (given on the command line)"),
    "two '='": ("train.lr=0.1=2", "train.lr = '0.1=2'"),
    "an empty value": ("seed=", "seed = '' (given on the command line)"),
    "an infinite number": ("train.lr=1e400", "finite number"),
    "a broken list": ("cluster.k_range=[5,", "--set cluster.k_range=[5,: not valid JSON"),
    "a list of bare words": ("cluster.exclude_features=[rms_mean]", "not valid JSON"),
    "a broken table": ('label.manual_names={"1": calm}', "not valid JSON"),
    "a section set to a number": ("train=5", "train = 5 (given on the command line): expected a table of settings"),
}


@pytest.mark.parametrize(("setting", "words"), GARBAGE_SETS.values(), ids=GARBAGE_SETS)
def test_a_garbage_set_is_one_line_naming_it(corpus, setting, words):
    refused(corpus, cluster(corpus, write_config(corpus, BASE), setting), words)
