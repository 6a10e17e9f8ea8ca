"""Loaders for the datasets moodscape reads, in their real formats.

Every loader returns a *track table*: a :class:`pandas.DataFrame` with one row per track
and exactly these columns, so the stages never care where the tracks came from.

============  ==========================================================================
track_id      str, unique (``track_0000948`` for MTG-Jamendo, the file stem for a folder)
audio_path    str, absolute path of the audio file, or ``""`` when there is none
mel_path      str, absolute path of a precomputed mel ``.npy`` file, or ``""``
duration      float, seconds (NaN when unknown)
tags          list[str], short tag names without the ``mood/theme---`` prefix
split         ``"train"``, ``"validation"``, ``"test"`` or ``""`` (in no split)
============  ==========================================================================

A folder's table (:func:`moodscape.datasets.folder.load_folder`) adds the files' embedded
title, artist, album, genre, mood, style and bpm
(:data:`moodscape.datasets.embedded_tags.FIELDS`).
"""

TRACK_COLUMNS = ["track_id", "audio_path", "mel_path", "duration", "tags", "split"]
SPLITS = ("train", "validation", "test")
