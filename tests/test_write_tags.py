"""``moodscape write-tags``: the lookup's label, valence, arousal and BPM written into MP3, Ogg,
FLAC and m4a files the test writes itself, over a small synthetic bundle."""

from __future__ import annotations

import math
import shutil

import mutagen
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from audio_formats import write_audio
from cli_runner import invoke
from serving_bundle import point_catalog_at, synthetic_bundle_module

from moodscape.api.catalog import load_catalog
from moodscape.api.names import NameStore
from moodscape.artifacts import Workdir
from moodscape.audio import sample_blocks

FORMATS = ["mp3", "ogg", "flac", "m4a"]
SR = 22050
KEYS = {  # field → key per format, read back with mutagen directly
    "mp3": {"label": "TMOO", "bpm": "TBPM", "valence": "TXXX:MOODSCAPE_VALENCE", "arousal": "TXXX:MOODSCAPE_AROUSAL"},
    "m4a": {"label": "----:com.apple.iTunes:MOOD", "bpm": "tmpo", "valence": "----:com.apple.iTunes:MOODSCAPE_VALENCE",
            "arousal": "----:com.apple.iTunes:MOODSCAPE_AROUSAL"},
}
VORBIS = {"label": "MOOD", "bpm": "BPM", "valence": "MOODSCAPE_VALENCE", "arousal": "MOODSCAPE_AROUSAL"}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A synthetic bundle of six tracks (the test gives four of them a file)."""
    root = tmp_path_factory.mktemp("bundle")
    synthetic_bundle_module().write_synthetic_bundle(root, 6, n_labels=3)
    return root


@pytest.fixture
def bundle(template, tmp_path, monkeypatch):
    """A copy of the bundle whose catalog points at fresh audio files in ``tmp_path/music``; returns (workdir, files)."""
    monkeypatch.setenv("COLUMNS", "400")  # the table's paths on one line each
    root = shutil.copytree(template, tmp_path / "run")
    workdir = Workdir(root)
    rng = np.random.default_rng(0)
    files = {}
    for extension in FORMATS:
        signal = 0.3 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR) + 0.01 * rng.standard_normal(SR)
        files[extension] = write_audio(tmp_path / "music" / f"song {extension}.{extension}", signal, SR)
    title = mutagen.File(files["flac"])
    title["TITLE"] = ["Keep me"]  # a tag of the user's that apply and remove leave alone
    title.save()
    write_audio(tmp_path / "music" / "not in catalog.flac", np.zeros(SR), SR)
    point_catalog_at(root, [str(files[extension]) for extension in FORMATS])
    ids = pq.read_table(workdir.catalog).column("track_id").to_pylist()
    pq.write_table(pa.table({"track_id": ids, "bpm": [120.4, 90.6, 0.0, 140.0, 100.0, 100.0][: len(ids)]}), workdir.features)
    return workdir, files


def expected_values(workdir: Workdir) -> dict[str, dict[str, str]]:
    catalog = load_catalog(workdir.root)
    store = NameStore(workdir.names_db)
    renamed = store.all()
    store.close()
    bpm = dict(zip(*pq.read_table(workdir.features).to_pydict().values()))
    expected = {}
    for row, path in enumerate(catalog.audio_path):
        if path:
            label = catalog.labels[catalog.label_of[row]]
            tempo = bpm[catalog.track_ids[row]]
            expected[path] = {"label": renamed.get(label, label), "valence": f"{catalog.valence[row]:.3f}",
                              "arousal": f"{catalog.arousal[row]:.3f}", **({"bpm": str(round(tempo))} if tempo > 0 else {})}
    return expected


def read_back(path) -> dict[str, str]:
    """The four fields as mutagen reads them from ``path``."""
    file = mutagen.File(path)
    extension = str(path).rpartition(".")[2]
    found = {}
    for field, key in KEYS.get(extension, VORBIS).items():
        if extension == "mp3":
            values = [str(text) for frame in file.tags.getall(key) for text in frame.text] if file.tags else []
        else:
            values = (file.tags or {}).get(key) or []
            values = [value.decode() if isinstance(value, bytes) else str(value) for value in values]
        if values:
            found[field] = values[0]
    return found


def tag_set(path) -> list[str]:
    tags = mutagen.File(path).tags
    return sorted(tags.pprint().splitlines()) if tags else []


def samples(path) -> np.ndarray:
    return np.concatenate(list(sample_blocks(path, 65536)))


def snapshot(files) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in files}


def test_dry_run_lists_the_changes_and_writes_nothing(bundle):
    workdir, files = bundle
    before = snapshot(files.values())
    result = invoke("write-tags", "--workdir", workdir.root)
    assert result.exit_code == 0, result.output
    assert "dry run" in result.output and "MOOD" not in result.output
    for extension in FORMATS:
        assert f"song {extension}" in result.output
    assert snapshot(files.values()) == before
    assert not workdir.names_db.exists()


def test_apply_round_trips_leaves_the_audio_and_remove_restores_the_tags(bundle):
    workdir, files = bundle
    store = NameStore(workdir.names_db)
    label = load_catalog(workdir.root).labels[0]
    store.set(label, "Sunday morning", reserved=[label])
    store.close()
    audio = {extension: samples(path) for extension, path in files.items()}
    tags_before = {extension: tag_set(path) for extension, path in files.items()}
    modes = {extension: path.stat().st_mode for extension, path in files.items()}
    stray = files["flac"].parent / "not in catalog.flac"
    stray_bytes = stray.read_bytes()

    result = invoke("write-tags", "--workdir", workdir.root, "--apply")
    assert result.exit_code == 0, result.output
    expected = expected_values(workdir)
    assert any(values["label"] == "Sunday morning" for values in expected.values())
    assert any("bpm" not in values for values in expected.values())  # a tempo of 0 is no tempo
    for extension, path in files.items():
        assert read_back(path) == expected[str(path)], extension
        assert np.array_equal(samples(path), audio[extension]), extension
        assert path.stat().st_mode == modes[extension]
    assert "TITLE=Keep me" in tag_set(files["flac"])
    assert stray.read_bytes() == stray_bytes

    again = invoke("write-tags", "--workdir", workdir.root, "--apply")
    assert again.exit_code == 0 and "written" in again.output
    assert all(read_back(path) == expected[str(path)] for path in files.values())

    result = invoke("write-tags", "--workdir", workdir.root, "--apply", "--remove")
    assert result.exit_code == 0, result.output
    for extension, path in files.items():
        assert tag_set(path) == tags_before[extension], extension
        assert np.array_equal(samples(path), audio[extension]), extension


def test_fields_choose_what_is_written(bundle):
    workdir, files = bundle
    assert invoke("write-tags", "--workdir", workdir.root, "--apply", "--fields", "valence,bpm").exit_code == 0
    for path in files.values():
        assert set(read_back(path)) <= {"valence", "bpm"} and "valence" in read_back(path)
    result = invoke("write-tags", "--workdir", workdir.root, "--fields", "valence,colour")
    assert result.exit_code == 2 and "error:" in result.output and "colour" in result.output


def test_a_file_that_cannot_be_written_is_listed_and_left_intact(bundle):
    workdir, files = bundle
    files["ogg"].chmod(0o444)
    before = files["ogg"].read_bytes()
    vanished = files["m4a"]
    vanished.unlink()
    result = invoke("write-tags", "--workdir", workdir.root, "--apply")
    assert result.exit_code == 1
    assert "read-only" in result.output and "song ogg.ogg" in result.output and "song m4a.m4a" in result.output
    assert files["ogg"].read_bytes() == before and files["ogg"].stat().st_mode & 0o777 == 0o444
    assert read_back(files["flac"])["valence"] and read_back(files["mp3"])["valence"]
    assert not list(files["ogg"].parent.glob(".*tagging"))


def test_a_damaged_file_is_listed_and_left_intact(bundle):
    workdir, files = bundle
    damaged = files["flac"].read_bytes()[:200]
    files["flac"].write_bytes(damaged)
    result = invoke("write-tags", "--workdir", workdir.root, "--apply")
    assert result.exit_code == 1 and "song flac.flac" in result.output
    assert files["flac"].read_bytes() == damaged
    assert not math.isnan(float(read_back(files["mp3"])["valence"]))


def test_a_symlinked_file_is_tagged_through_its_link(bundle, tmp_path):
    workdir, files = bundle
    target = tmp_path / "elsewhere" / "real.flac"
    target.parent.mkdir()
    files["flac"].rename(target)
    files["flac"].symlink_to(target)
    assert invoke("write-tags", "--workdir", workdir.root, "--apply").exit_code == 0
    assert files["flac"].is_symlink() and read_back(target)["valence"]
