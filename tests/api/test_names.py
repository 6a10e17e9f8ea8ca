"""Label display names: stored in SQLite, validated, exported as manual names for the config."""

from __future__ import annotations

import sqlite3
import threading
import tomllib

import pytest

from moodscape.api.names import NameStore, display_names, manual_names_toml
from moodscape.config import LabelSettings

LABELS = ["Calm / Relaxing", "Energetic / Party", "Dark"]
PROFILES = {
    "fitted_on": "train",
    "n_tracks": 100,
    "clusters": [
        {"cluster_id": 0, "size": 40, "name": "Calm / Relaxing", "named_by": "tags", "dropped": None},
        {"cluster_id": 1, "size": 3, "name": None, "named_by": None, "dropped": "fewer than 5 tracks"},
        {"cluster_id": 2, "size": 30, "name": "Energetic / Party", "named_by": "tags", "dropped": None},
        {"cluster_id": 4, "size": 27, "name": "Dark", "named_by": "manual", "dropped": None},
    ],
}


@pytest.fixture
def store(tmp_path):
    store = NameStore(tmp_path / "names.sqlite")
    yield store
    store.close()


def test_set_get_reset_and_all(store):
    assert store.all() == {} and store.get("Dark") is None
    assert store.set("Dark", "  Brooding  ", reserved=LABELS) == "Brooding"
    store.set("Calm / Relaxing", "Sunday morning", reserved=LABELS)
    assert store.get("Dark") == "Brooding"
    assert store.all() == {"Calm / Relaxing": "Sunday morning", "Dark": "Brooding"}
    store.set("Dark", "Gloomy", reserved=LABELS)  # renaming again replaces the name
    assert store.get("Dark") == "Gloomy"
    assert store.reset("Dark") is True and store.reset("Dark") is False
    assert store.all() == {"Calm / Relaxing": "Sunday morning"}
    assert display_names(LABELS, store) == {"Calm / Relaxing": "Sunday morning", "Energetic / Party": "Energetic / Party", "Dark": "Dark"}


def test_own_canonical_name_resets(store):
    store.set("Dark", "Gloomy", reserved=LABELS)
    assert store.set("Dark", "Dark", reserved=LABELS) == "Dark"
    assert store.get("Dark") is None


def test_names_survive_reopening_and_the_table_has_the_documented_schema(tmp_path):
    path = tmp_path / "nested" / "names.sqlite"
    first = NameStore(path)
    first.set("Dark", "Brooding", reserved=LABELS)
    first.close()
    second = NameStore(path)
    assert second.all() == {"Dark": "Brooding"}
    second.close()
    with sqlite3.connect(path) as connection:
        columns = [row[1] for row in connection.execute("PRAGMA table_info(label_names)")]
        [(label, display_name, updated)] = connection.execute("SELECT * FROM label_names").fetchall()
        journal = connection.execute("PRAGMA journal_mode").fetchone()[0]
    assert columns == ["label", "display_name", "updated"] and journal == "wal"
    assert (label, display_name) == ("Dark", "Brooding") and updated.endswith("+00:00")


@pytest.mark.parametrize("name, message", [
    ("   ", "empty"),
    ("x" * 61, "at most 60"),
    ("two\nlines", "control characters"),
    ("tab\there", "control characters"),
    ("energetic / party", "already the name of label 'Energetic / Party'"),
    ("sunday MORNING", "already the display name of label 'Calm / Relaxing'"),
])
def test_invalid_or_taken_names_are_refused_with_a_clear_message(store, name, message):
    store.set("Calm / Relaxing", "Sunday morning", reserved=LABELS)
    with pytest.raises(ValueError, match=message):
        store.set("Dark", name, reserved=LABELS)
    assert store.get("Dark") is None


def test_canonical_names_of_renamed_labels_stay_reserved_without_the_list(store):
    store.set("Dark", "Brooding")
    with pytest.raises(ValueError, match="already the name of label 'Dark'"):
        store.set("Calm / Relaxing", "dark")


def test_sixty_characters_and_unicode_are_fine(store):
    assert store.set("Dark", "é" * 60, reserved=LABELS) == "é" * 60
    assert store.set("Calm / Relaxing", "Café « calme » 🌙", reserved=LABELS) == "Café « calme » 🌙"


def test_concurrent_renames_to_one_name_let_exactly_one_win(store):
    outcomes = []

    def rename(label):
        try:
            store.set(label, "Same name", reserved=LABELS)
            outcomes.append("ok")
        except ValueError:
            outcomes.append("refused")

    threads = [threading.Thread(target=rename, args=(label,)) for label in LABELS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["ok", "refused", "refused"]


def test_manual_names_toml_round_trips_into_the_label_settings(store):
    store.set("Calm / Relaxing", 'Sunday "slow" morning \\ café', reserved=LABELS)
    store.set("Energetic / Party", "Dance floor", reserved=LABELS)
    text = manual_names_toml(PROFILES, store.all())
    assert "moodscape.toml" in text.splitlines()[1]
    parsed = tomllib.loads(text)
    assert parsed == {"label": {"manual_names": {
        "0": 'Sunday "slow" morning \\ café',
        "2": "Dance floor",
        "4": "Dark",  # the run's own manual name is kept
    }}}
    settings = LabelSettings(**parsed["label"])
    assert settings.manual_names == {0: 'Sunday "slow" morning \\ café', 2: "Dance floor", 4: "Dark"}


def test_manual_names_toml_leaves_out_labels_without_a_cluster():
    text = manual_names_toml(PROFILES, {"Vanished": "Ghost", "Dark": "Brooding"})
    assert tomllib.loads(text)["label"]["manual_names"] == {"4": "Brooding"}
    assert "# label \"Vanished\" has no cluster" in text


def test_manual_names_toml_without_renames_is_an_empty_section():
    profiles = {"clusters": [cluster for cluster in PROFILES["clusters"] if cluster["named_by"] != "manual"]}
    assert tomllib.loads(manual_names_toml(profiles, {})) == {"label": {"manual_names": {}}}
