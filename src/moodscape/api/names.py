"""Display names a user gives the labels, kept in SQLite, and their export as config.

A label's *canonical* name is the one stage 2 gave its cluster; the classifier, the
tables and the API's ``label`` field keep it. A *display* name only changes what people
read (``label_name``). :class:`NameStore` keeps the display names in one SQLite table,
safe to share between the threads of a server and its worker processes (WAL journal,
one write transaction per change). :func:`manual_names_toml` turns them into the
``[label.manual_names]`` section of ``moodscape.toml``, so a re-run of the label stage
makes them canonical.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from moodscape.errors import ArtifactError

MAX_NAME_LENGTH = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS label_names (
    label TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    updated TEXT NOT NULL
)
"""


class NameStore:
    """The display names of the labels, in a SQLite file.

    Parameters
    ----------
    path : path
        The database file; created, with its folder, when missing.

    Raises
    ------
    moodscape.errors.ArtifactError
        When the file is not a sound SQLite database; the message names it and what to do.

    Examples
    --------
    >>> store = NameStore(workdir.names_db)  # doctest: +SKIP
    >>> store.set("Calm / Relaxing", "Sunday morning", reserved=labels)  # doctest: +SKIP
    'Sunday morning'
    >>> store.all()  # doctest: +SKIP
    {'Calm / Relaxing': 'Sunday morning'}
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._connection = open_database(self.path, [_SCHEMA])
        self._lock = threading.Lock()

    def all(self) -> dict[str, str]:
        """Display name of every renamed label, by canonical name."""
        with self._lock:
            rows = self._connection.execute("SELECT label, display_name FROM label_names ORDER BY label").fetchall()
        return dict(rows)

    def get(self, label: str) -> str | None:
        """Display name of ``label``, ``None`` when it was not renamed."""
        with self._lock:
            row = self._connection.execute("SELECT display_name FROM label_names WHERE label = ?", (label,)).fetchone()
        return None if row is None else row[0]

    def set(self, label: str, name: str, *, reserved: Iterable[str] = ()) -> str:
        """Give ``label`` the display name ``name``; its own canonical name resets it.

        Parameters
        ----------
        label : str
            Canonical label name.
        name : str
            Wanted display name; surrounding white space is dropped.
        reserved : iterable of str
            Canonical names of all labels, which no other label may display (the labels
            stored here are always reserved).

        Returns
        -------
        str
            The display name stored (``label`` after a reset).

        Raises
        ------
        ValueError
            The name is empty, longer than 60 characters, not printable, or already the
            display or canonical name of another label (compared ignoring case).
        """
        name = clean_display_name(name)
        with self._lock, write_transaction(self._connection):
            if name == label:
                self._connection.execute("DELETE FROM label_names WHERE label = ?", (label,))
                return label
            stored = dict(self._connection.execute("SELECT label, display_name FROM label_names").fetchall())
            _check_unused(label, name, stored, {*reserved, *stored})
            self._connection.execute(
                "INSERT INTO label_names (label, display_name, updated) VALUES (?, ?, ?) "
                "ON CONFLICT(label) DO UPDATE SET display_name = excluded.display_name, updated = excluded.updated",
                (label, name, _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")),
            )
        return name

    def reset(self, label: str) -> bool:
        """Go back to the canonical name of ``label``; ``True`` when it had a display name."""
        with self._lock:
            cursor = self._connection.execute("DELETE FROM label_names WHERE label = ?", (label,))
        return cursor.rowcount > 0

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._connection.close()

def open_database(path: str | os.PathLike, schema: Iterable[str]) -> sqlite3.Connection:
    """The bundle's SQLite file (label names, Subsonic playlists), opened for all threads of a process.

    One connection, to be used under the caller's lock, in autocommit mode outside explicit
    transactions (:func:`write_transaction`); WAL journal, so several server processes share
    the file. The file is checked (``quick_check``) and the ``schema`` statements run.

    Raises
    ------
    moodscape.errors.ArtifactError
        When the file is not a sound SQLite database; the message names it and what to do.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=10.0)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        problems = [row[0] for row in connection.execute("PRAGMA quick_check").fetchall()]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError(f"damaged: {problems[0]}")
        for statement in schema:
            connection.execute(statement)
    except sqlite3.DatabaseError as error:
        connection.close()
        raise ArtifactError(f"{path} is not a usable database ({error}); it holds only the label names given in the web app "
                            "and the Subsonic playlists: move it away (or restore it from a backup) and start again, "
                            "with the stage 2 names") from None
    return connection


@contextlib.contextmanager
def write_transaction(connection: sqlite3.Connection) -> Iterator[None]:
    """A write transaction that locks the file at once, so two processes cannot both pass a check and write."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def clean_display_name(name: str) -> str:
    """``name`` without surrounding white space, checked: 1–60 printable characters.

    Raises
    ------
    ValueError
        With a message for the user.
    """
    if not isinstance(name, str):
        raise ValueError(f"a display name must be text, got {type(name).__name__}")
    name = name.strip()
    if not name:
        raise ValueError("a display name cannot be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"a display name has at most {MAX_NAME_LENGTH} characters, got {len(name)}")
    if not name.isprintable():
        raise ValueError("a display name cannot hold line breaks, tabs or other control characters")
    return name


def _check_unused(label: str, name: str, display: Mapping[str, str], canonical: Iterable[str]) -> None:
    """Raise ValueError when another label already shows ``name`` or is canonically called so."""
    wanted = name.casefold()
    for other, other_name in display.items():
        if other != label and other_name.casefold() == wanted:
            raise ValueError(f"{name!r} is already the display name of label {other!r}")
    for other in canonical:
        if other != label and other.casefold() == wanted:
            raise ValueError(f"{name!r} is already the name of label {other!r}")


def display_names(labels: Iterable[str], store: NameStore) -> dict[str, str]:
    """Display name of every label in ``labels``: its stored name, else its canonical name."""
    renamed = store.all()
    return {label: renamed.get(label, label) for label in labels}


def manual_names_toml(profiles: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """The ``[label.manual_names]`` section of ``moodscape.toml`` that makes display names canonical.

    Keys are cluster ids (of ``cluster_profiles.json``, which the names of the label
    stage refer to). The section also holds the manual names the run already had, so it
    can replace the config's section whole.

    Parameters
    ----------
    profiles : mapping
        ``cluster_profiles.json``: ``clusters``, each with ``cluster_id``, ``name``,
        ``named_by`` and ``dropped`` (dropped clusters have no label).
    names : mapping of {str: str}
        Display name by canonical label (:meth:`NameStore.all`).

    Returns
    -------
    str
        TOML text with a comment header; ``tomllib`` reads it as
        ``{"label": {"manual_names": {"<cluster id>": "<name>"}}}``.
    """
    clusters = {cluster["name"]: cluster for cluster in profiles.get("clusters", []) if cluster.get("name") and not cluster.get("dropped")}
    entries: list[tuple[int, str, str]] = []
    for label, cluster in clusters.items():
        if label in names:
            entries.append((int(cluster["cluster_id"]), names[label], f"was {_toml_string(label)}"))
        elif cluster.get("named_by") == "manual":
            entries.append((int(cluster["cluster_id"]), label, "already a manual name"))
    lines = [
        "# Label names chosen in the moodscape web app, by cluster id.",
        "# Paste this section into moodscape.toml (replacing any [label.manual_names] there),",
        "# then run the label stage again: the clusters stay the same, only their names change.",
        *(f"# label {_toml_string(label)} has no cluster in cluster_profiles.json; left out" for label in names if label not in clusters),
        "[label.manual_names]",
        *(f"{cluster_id} = {_toml_string(name)}  # {note}" for cluster_id, name, note in sorted(entries)),
    ]
    return "\n".join(lines) + "\n"


def _toml_string(text: str) -> str:
    """``text`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(f"\\u{ord(char):04X}" if ord(char) < 0x20 or ord(char) == 0x7F else char for char in escaped) + '"'
