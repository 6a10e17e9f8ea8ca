"""Bad settings and bad paths on the command line end in one line naming the file or key, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli_runner import invoke, one_line_error


@pytest.fixture()
def config(tmp_path) -> Path:
    path = tmp_path / "moodscape.toml"
    path.write_text('seed = 0\n[jamendo]\nroot = "corpus"\n', encoding="utf-8")
    return path


def test_a_config_file_that_is_not_utf8_names_the_file_and_the_encoding(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('[jamendo]\nroot = "Musique/Été"\n'.encode("latin-1"))
    line = one_line_error(invoke("cluster", "--config", path, "--workdir", tmp_path / "run"))
    assert str(path) in line
    assert "UTF-8" in line


def test_a_directory_given_as_config_says_a_file_is_expected(tmp_path):
    line = one_line_error(invoke("cluster", "--config", tmp_path, "--workdir", tmp_path / "run"))
    assert str(tmp_path) in line
    assert "directory" in line


def test_a_dotted_key_under_a_plain_value_names_the_key(config, tmp_path):
    line = one_line_error(invoke("cluster", "--config", config, "--workdir", tmp_path / "run", "--set", "seed.x=1"))
    assert "seed.x" in line
    assert "seed" in line.replace("seed.x", "")


def test_a_bad_value_given_with_set_is_not_blamed_on_the_config_file(config, tmp_path):
    line = one_line_error(invoke("cluster", "--config", config, "--workdir", tmp_path / "run", "--set", "train.lr=NaN"))
    assert "train.lr" in line
    assert "command line" in line
    assert str(config) not in line


def test_a_bad_value_in_the_config_file_names_the_file_the_key_and_the_value(tmp_path):
    path = tmp_path / "moodscape.toml"
    path.write_text('[jamendo]\nroot = "corpus"\n[train]\nlr = nan\n', encoding="utf-8")
    line = one_line_error(invoke("cluster", "--config", path, "--workdir", tmp_path / "run"))
    assert str(path) in line
    assert "train.lr = nan" in line



def test_a_file_given_as_workdir_says_a_directory_is_expected(demo_corpus, tmp_path):
    workdir = tmp_path / "not-a-directory"
    workdir.write_text("", encoding="utf-8")
    result = invoke("features", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir, "--scheduler", "synchronous")
    line = one_line_error(result)
    assert str(workdir) in line
    assert "directory" in line
