"""The mood parameters moodscape adds to ``getRandomSongs`` and ``getSimilarSongs2``.

``minValence``, ``maxValence``, ``minArousal``, ``maxArousal`` (inclusive, 0–1) and
``label`` (a label's canonical or display name; repeat it for several) keep only the songs
in that part of the mood space, so a client can build "calm → energetic" radio by raising
``minArousal`` from call to call. A song without a valence/arousal prediction fails any
valence/arousal bound.
"""

from __future__ import annotations

from ..recommender import TrackFilter
from .calls import Call
from .envelope import GENERIC, NOT_FOUND, SubsonicError

PARAMETERS = ("minValence", "maxValence", "minArousal", "maxArousal", "label")


def mood_filter(call: Call) -> TrackFilter:
    """The :class:`TrackFilter` of the call's mood parameters (every track passes without any).

    Raises
    ------
    SubsonicError
        Code 0 for a bound outside [0, 1] or a minimum above its maximum, 70 for an unknown label.
    """
    params = call.params
    bounds = {name: params.unit(name) for name in PARAMETERS[:4]}
    for dimension in ("Valence", "Arousal"):
        low, high = bounds[f"min{dimension}"], bounds[f"max{dimension}"]
        if low is not None and high is not None and low > high:
            raise SubsonicError(GENERIC, f"min{dimension} ({low}) is above max{dimension} ({high})")
    labels = params.all("label")
    return TrackFilter(min_valence=bounds["minValence"], max_valence=bounds["maxValence"],
                       min_arousal=bounds["minArousal"], max_arousal=bounds["maxArousal"],
                       labels=[label_index(call, label) for label in labels] if labels else None)


def label_index(call: Call, name: str) -> int:
    """Index of the label with this canonical or display name; error 70 when there is none."""
    display = call.services.display_names()
    for index, label in enumerate(call.services.catalog.labels):
        if name in (label, display[label]):
            return index
    raise SubsonicError(NOT_FOUND, f"Label not found: {name[:100]!r}; the labels are {list(display.values())}")
