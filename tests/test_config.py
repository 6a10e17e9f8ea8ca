"""Settings: TOML loading, overrides, path resolution and messages naming the setting."""

from pathlib import Path

import pytest

from moodscape.config import Settings
from moodscape.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "moodscape.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_relative_paths_resolve_against_the_config_file(tmp_path):
    path = write(tmp_path, '[jamendo]\nroot = "corpus"\naudio_root = "corpus/audio"\n')
    settings = Settings.load(path)
    assert settings.jamendo.root == (tmp_path / "corpus").resolve()
    assert settings.jamendo.audio_root == (tmp_path / "corpus" / "audio").resolve()


def test_dotted_overrides_win_over_the_file(tmp_path):
    path = write(tmp_path, '[jamendo]\nroot = "c"\n[cluster]\nk = 4\n')
    assert Settings.load(path, {"cluster.k": 7}).cluster.k == 7
    assert Settings.load(path, {"cluster.k": None}).cluster.k == 4


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ('[jamendo]\nroot = "c"\n[cluster]\nk = 1\n', "cluster.k"),
        ('[jamendo]\nroot = "c"\n[cluster]\nk_range = [8, 3]\n', "cluster.k_range"),
        ('[jamendo]\nroot = "c"\n[cluster]\nbogus = 3\n', "cluster.bogus"),
        ('[data]\nsource = "folder"\n', "folder"),
        ('[jamendo]\nroot = "c"\n[folder]\nsplit_fractions = [0.5, 0.5, 0.5]\n', "folder.split_fractions"),
        # values that trained a NaN model or never finished instead of stopping here
        ('[jamendo]\nroot = "c"\n[train]\nlr = inf\n', "train.lr"),
        ('[jamendo]\nroot = "c"\n[av]\nlr = nan\n', "av.lr"),
        ('[jamendo]\nroot = "c"\n[train]\nlr = 1e6\n', "train.lr"),
        ('[jamendo]\nroot = "c"\n[label]\nmin_score = inf\n', "label.min_score"),
        ('[jamendo]\nroot = "c"\n[cluster]\nn_init = 1000000000\n', "cluster.n_init"),
        ('[jamendo]\nroot = "c"\n[pretrain]\nepochs = 1000000000\n', "pretrain.epochs"),
    ],
)
def test_invalid_settings_name_the_setting(tmp_path, text, named):
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        Settings.load(write(tmp_path, text))


def test_missing_and_malformed_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Settings.load(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="TOML"):
        Settings.load(write(tmp_path, "[jamendo\n"))
