"""The application factory: load and check the bundle, mount the routers and the page.

``create_app(bundle_dir)`` loads everything once, before the first request, so a bundle
whose files disagree refuses to start (:class:`~moodscape.api.catalog.BundleError`). The
OpenSubsonic API (:mod:`moodscape.api.subsonic`) answers at ``/rest``.
``moodscape serve`` calls it; ``create_app_from_env`` lets ``uvicorn --factory --workers N``
start several processes over the same bundle (``MOODSCAPE_BUNDLE``).
"""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Iterable
from pathlib import Path

import threadpoolctl

from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from moodscape.artifacts import Workdir
from moodscape.config import SubsonicSettings

from .analyze import MAX_CONCURRENT_ANALYSES, MAX_UPLOAD_BYTES
from .ann import EXACT_BELOW
from .catalog import load_catalog
from .deps import LOOPBACK_HOSTS, Services
from .limits import BODY_TIMEOUT_SECONDS, AnalysisSlots, BodyLimit
from .names import NameStore
from .projections import ProjectionCache
from .ranges import IgnoreInvalidRange
from .recommender import Recommender
from .routes import analyze, health, labels, maps, mpd, playlists, recommend, tracks
from .strict_json import validation_error_handler
from .subsonic import SubsonicState
from .subsonic import router as subsonic_router

STATIC = Path(__file__).parent / "static"
API_PREFIX = "/api/v1"


def create_app(bundle_dir: str | os.PathLike, *, exact_below: int = EXACT_BELOW,
               max_upload_bytes: int = MAX_UPLOAD_BYTES, upload_timeout: float = BODY_TIMEOUT_SECONDS,
               max_analyses: int = MAX_CONCURRENT_ANALYSES, mpd_hosts: Iterable[str] = LOOPBACK_HOSTS,
               subsonic: SubsonicSettings | None = None) -> FastAPI:
    """Build the web app over the serving bundle in ``bundle_dir``.

    Parameters
    ----------
    bundle_dir : path
        A work directory after ``moodscape infer`` (its lookup, embeddings, labels, models).
    exact_below : int
        Catalog size from which similarity search uses the approximate index.
    max_upload_bytes : int
        Largest audio file ``/analyze`` accepts: a request body beyond it (multipart
        framing aside) is refused with a 413 as soon as its bytes pass the limit.
    upload_timeout : float
        Seconds within which a request body must have arrived (408 after).
    max_analyses : int
        Uploads analysed at once by this process; one more gets a 503 with ``Retry-After``.
    mpd_hosts : iterable of str
        MPD hosts the page may push to (this machine only by default).
    subsonic : SubsonicSettings, optional
        The users of the OpenSubsonic API at ``/rest`` (none: every call is refused).

    Raises
    ------
    moodscape.api.catalog.BundleError
        When a bundle file is missing or the files disagree on the labels or tracks.
    """
    # numpy's BLAS threads would spin against each other across concurrent requests (a
    # seed query cost 60x more CPU with them); one request, one thread.
    threadpoolctl.threadpool_limits(1)
    workdir = Workdir(Path(bundle_dir))
    catalog = load_catalog(workdir.root)
    services = Services(
        catalog=catalog,
        recommender=Recommender(catalog.embeddings, catalog.valence, catalog.arousal, catalog.probabilities,
                                catalog.label_of, exact_below=exact_below, cache_dir=workdir.root / "cache"),
        names=NameStore(workdir.names_db),
        projections=ProjectionCache(workdir.projections),
        bundle_path=workdir.serving_model,
        max_upload_bytes=max_upload_bytes,
        analysis_slots=AnalysisSlots(max_analyses),
        mpd_hosts=frozenset(mpd_hosts),
    )
    app = FastAPI(
        title="moodscape",
        version="1",
        summary="Recommend and explore music in its new acoustic label space, with predicted valence and arousal.",
        docs_url="/docs",
        exception_handlers={RequestValidationError: validation_error_handler},
    )
    app.state.services = services
    app.state.subsonic = SubsonicState(subsonic or SubsonicSettings(), workdir.names_db)
    api = APIRouter(prefix=API_PREFIX)
    for module in (health, tracks, labels, recommend, maps, analyze, playlists, mpd):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(health.router)
    app.include_router(subsonic_router)
    _add_page_routes(app, workdir)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(BodyLimit, limit=max_upload_bytes, timeout=upload_timeout)
    app.add_middleware(IgnoreInvalidRange)
    return app


def create_app_from_env() -> FastAPI:
    """:func:`create_app` over ``$MOODSCAPE_BUNDLE`` (default ``data``), for ``uvicorn --factory``.

    ``$MOODSCAPE_CONFIG``, when set, gives the Subsonic users; ``$MOODSCAPE_MPD_HOSTS``
    (comma-separated) adds MPD hosts the page may push to.
    """
    config = os.environ.get("MOODSCAPE_CONFIG")
    extra = [host for host in os.environ.get("MOODSCAPE_MPD_HOSTS", "").split(",") if host]
    return create_app(os.environ.get("MOODSCAPE_BUNDLE", "data"), mpd_hosts=LOOPBACK_HOSTS | set(extra),
                      subsonic=SubsonicSettings.load(config) if config else None)


def _add_page_routes(app: FastAPI, workdir: Workdir) -> None:
    @app.get("/", include_in_schema=False)
    def read_page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/report", include_in_schema=False)
    def read_report() -> Response:
        """The run report (``moodscape report``), or a page saying how to write it."""
        if workdir.report_html.is_file():
            return FileResponse(workdir.report_html, media_type="text/html")
        message = ("<!DOCTYPE html><title>No report yet</title><p>This bundle has no report yet. "
                   f"<code>moodscape report --workdir {html.escape(str(workdir.root))}</code> writes it "
                   "(<code>moodscape run</code> does too, as its last stage).</p>")
        return HTMLResponse(message, status_code=404)

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def read_plotly() -> Response:
        return Response(_plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})


@functools.cache
def _plotly_js() -> bytes:
    """The plotly.js bundled with the ``plotly`` package (no CDN: the page works offline)."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs().encode()
