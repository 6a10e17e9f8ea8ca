"""The planted-archetype oracle comes only from a corpus whose config names its truth, never from a file that happens to lie nearby."""

from __future__ import annotations

import json

from moodscape.config import Settings
from moodscape.pipeline.train_av import _planted_archetypes, musav_set_name


def test_a_truth_json_beside_a_real_musav_folder_is_not_taken_for_planted_truth(tmp_path):
    (tmp_path / "musav").mkdir()
    (tmp_path / "truth.json").write_text(json.dumps({"tracks": {"s1": {"archetype": "calm"}}}), encoding="utf-8")
    settings = Settings.model_validate({"jamendo": {"root": tmp_path}, "musav": {"root": tmp_path / "musav"}})
    assert musav_set_name(settings).startswith("MusAV (Bogdanov et al., ISMIR 2022)")
    assert _planted_archetypes(settings.musav.planted_truth, ["s1"]) is None


def test_the_demo_config_names_its_truth_and_the_oracle_reads_it(tmp_path):
    truth = tmp_path / "truth.json"
    truth.write_text(json.dumps({"tracks": {"s1": {"archetype": "calm"}, "s2": {"archetype": "party"}}}), encoding="utf-8")
    config = tmp_path / "moodscape.toml"
    config.write_text('[jamendo]\nroot = "corpus"\n[musav]\nroot = "musav"\nplanted_truth = "truth.json"\n', encoding="utf-8")
    settings = Settings.load(config)
    assert settings.musav.planted_truth == truth.resolve()
    assert musav_set_name(settings).startswith("synthetic demo MusAV")
    assert _planted_archetypes(settings.musav.planted_truth, ["s2", "s1"]) == ["party", "calm"]
    assert _planted_archetypes(settings.musav.planted_truth, ["s1", "s3"]) is None
