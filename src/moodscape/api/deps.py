"""What a request handler needs, loaded once per process: the catalog, the ranking, the names.

:class:`Services` holds the read-only catalog and everything derived from it; handlers get
it through the ``ServicesDep`` annotation. The helpers here turn the catalog's rows into
response records and turn unknown ids and labels into 404 and 422 answers.
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    from moodscape.inference import InferenceBundle

from .catalog import Catalog
from .limits import AnalysisSlots
from .names import NameStore
from .projections import ProjectionCache
from .recommender import Recommender

NAMES_TTL_SECONDS = 1.0
"""How long a process trusts its copy of the display names (other processes may rename)."""
TRACK_JSON_CACHE = 200_000
"""Serialised track records kept per process (about 100 MB at most)."""


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
"""The MPD hosts the web app may push to unless ``moodscape serve --mpd-host`` adds others."""


@dataclass
class Services:
    """The loaded bundle of one server process.

    Attributes
    ----------
    catalog : Catalog
    recommender : Recommender
    names : NameStore
        Display names a user gave the labels (SQLite in the bundle directory).
    projections : ProjectionCache
    bundle_path : Path
        The stage-5 inference bundle, to analyse uploads the way ``moodscape infer`` does
        (loaded on first use, :meth:`inference_bundle`).
    max_upload_bytes : int
    analysis_slots : AnalysisSlots
        How many uploads may be analysed at once (503 beyond).
    mpd_hosts : frozenset of str
        The MPD hosts ``/mpd/push`` may connect to (the server's own machine by default), so
        that a page visitor cannot make the server open connections elsewhere.
    """

    catalog: Catalog
    recommender: Recommender
    names: NameStore
    projections: ProjectionCache
    bundle_path: Path
    max_upload_bytes: int
    analysis_slots: AnalysisSlots
    mpd_hosts: frozenset[str] = LOOPBACK_HOSTS
    _bundle: InferenceBundle | None = None
    _bundle_lock: threading.Lock = field(default_factory=threading.Lock)
    _display: dict[str, str] = field(default_factory=dict)
    _display_time: float = -math.inf
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _search_text: list[str] | None = None
    _track_json: dict[int, str] = field(default_factory=dict)

    def search_text(self) -> list[str]:
        """Lower-case ``"<track id> <title> <artist> <album> <tags>"`` of every track, for the catalog's text search (built once)."""
        if self._search_text is None:
            catalog = self.catalog
            self._search_text = [" ".join([track_id, title, artist, album, *tags]).lower() for track_id, title, artist, album, tags
                                 in zip(catalog.track_ids, catalog.title, catalog.artist, catalog.album, catalog.tags)]
        return self._search_text

    def inference_bundle(self) -> InferenceBundle:
        """The stage-5 networks, loaded once (``weights_only``) by whichever caller comes first."""
        with self._bundle_lock:
            if self._bundle is None:
                from moodscape.inference import load_bundle

                self._bundle = load_bundle(self.bundle_path)
            return self._bundle

    def display_names(self, refresh: bool = False) -> dict[str, str]:
        """Display name of every label (the canonical name unless renamed), re-read after a second."""
        now = time.monotonic()
        if refresh or now - self._display_time > NAMES_TTL_SECONDS:
            renamed = self.names.all()
            display = {label: renamed.get(label, label) for label in self.catalog.labels}
            with self._lock:
                if display != self._display:
                    self._display = display
                    self._track_json = {}  # the cached records carry the old names
                self._display_time = now
        return self._display

    def track_json(self, row: int) -> str:
        """The ``TrackPublic`` JSON of a row, cached: the hot recommendation routes splice these."""
        text = self._track_json.get(row)
        if text is None:
            text = json.dumps(self.track_record(row, self.display_names()), allow_nan=False, separators=(",", ":"))
            if len(self._track_json) >= TRACK_JSON_CACHE:
                self._track_json = {}
            self._track_json[row] = text
        return text

    def hits_json(self, hits) -> bytes:
        """``{"items": [RecommendationPublic, ...]}`` of recommender hits, serialised by splicing :meth:`track_json`."""
        self.display_names()
        items = []
        for hit in hits:
            distance = "null" if hit.distance is None else repr(float(hit.distance))
            items.append(f'{self.track_json(hit.index)[:-1]},"score":{float(hit.score)!r},"distance":{distance}}}')
        return ('{"items":[' + ",".join(items) + "]}").encode()

    def track_record(self, row: int, display: dict[str, str] | None = None) -> dict[str, Any]:
        """The ``TrackPublic`` fields of catalog row ``row``."""
        catalog = self.catalog
        display = display if display is not None else self.display_names()
        label = catalog.labels[catalog.label_of[row]]
        probabilities = catalog.probabilities[row]
        track_id = catalog.track_ids[row]
        return {
            "track_id": track_id,
            "title": catalog.title[row] or None,
            "artist": catalog.artist[row] or None,
            "album": catalog.album[row] or None,
            "label": label,
            "label_name": display[label],
            "probability": float(probabilities[catalog.label_of[row]]),
            "probabilities": dict(zip(catalog.labels, probabilities.tolist())),
            "valence": finite_or_none(catalog.valence[row]),
            "arousal": finite_or_none(catalog.arousal[row]),
            "tags": catalog.tags[row],
            "duration": float(catalog.duration[row]),
            "audio_url": f"/api/v1/tracks/{quote(track_id, safe='')}/audio" if catalog.audio_path[row] else None,
        }

    def hit_records(self, hits) -> list[dict[str, Any]]:
        """``RecommendationPublic`` records of recommender hits, in their order."""
        display = self.display_names()
        records = []
        for hit in hits:
            record = self.track_record(hit.index, display)
            record["score"] = float(hit.score)
            record["distance"] = None if hit.distance is None else float(hit.distance)
            records.append(record)
        return records

    def row(self, track_id: str) -> int:
        """Catalog row of ``track_id``; 404 when unknown."""
        row = self.catalog.index.get(track_id)
        if row is None:
            raise HTTPException(404, f"unknown track id {track_id!r}")
        return row

    def rows(self, track_ids: list[str], what: str) -> list[int]:
        """Catalog rows of ``track_ids`` (seeds and the like); 404 naming the first unknown id."""
        unknown = [track_id for track_id in track_ids if track_id not in self.catalog.index]
        if unknown:
            raise HTTPException(404, f"unknown track id {unknown[0]!r} in {what}")
        return [self.catalog.index[track_id] for track_id in track_ids]

    def excluded_rows(self, track_ids: list[str]) -> set[int]:
        """Rows of the ids to exclude; ids not in the catalog exclude nothing."""
        index = self.catalog.index
        return {index[track_id] for track_id in track_ids if track_id in index}

    def label_index(self, label: str, status: int = 422) -> int:
        """Index of a canonical label name; ``status`` (422 in a query, 404 in a path) when unknown."""
        try:
            return self.catalog.labels.index(label)
        except ValueError:
            raise HTTPException(status, f"unknown label {label!r}; the labels are {self.catalog.labels}") from None

    def label_indices(self, labels: list[str] | None) -> list[int] | None:
        return None if labels is None else [self.label_index(label) for label in labels]


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The OpenAPI query parameters of a model's fields (for routes that parse with :func:`parse_query`)."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    return [{"name": name, "in": "query", "required": name in required, "schema": field,
             **({"description": field["description"]} if "description" in field else {})}
            for name, field in schema["properties"].items()]


# Kept hand-written: bench/bench_query.py measured FastAPI's query model 2.1–2.3× slower per request (bench/RESULTS.md).
def parse_query(model: type[BaseModel], request: Request):
    """Validate a URL query against ``model`` directly (repeated keys become lists).

    The same validation and 422 answer as a FastAPI query-parameter model
    (``Annotated[model, Query()]``; ``bench/bench_query.py`` checks both on the same URLs),
    at less than half its cost per request: FastAPI re-derives each field's kind (sequence
    or not) and aliases on every request, 100–125 µs more per mood query than this
    (``bench/RESULTS.md``), while the hot recommendation routes answer thousands a second.
    """
    lists = _list_fields(model)
    data: dict[str, Any] = {}
    for key, value in request.query_params.multi_items():
        if key in lists:
            data.setdefault(key, []).append(value)
        else:
            data[key] = value
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])} for e in error.errors(include_url=False)]) from None


@functools.cache
def _list_fields(model: type[BaseModel]) -> frozenset[str]:
    def is_list(field: dict) -> bool:
        return field.get("type") == "array" or any(is_list(option) for option in field.get("anyOf", ()))

    return frozenset(name for name, field in model.model_json_schema()["properties"].items() if is_list(field))


def finite_or_none(value: float) -> float | None:
    """``value`` as a float, or ``None`` (JSON null) when it is NaN or infinite."""
    return float(value) if math.isfinite(value) else None


async def get_services(request: Request) -> Services:
    """The :class:`Services` the app factory loaded (``async``: no thread hop just to fetch it)."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]
