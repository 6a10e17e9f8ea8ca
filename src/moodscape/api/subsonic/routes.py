"""The ``/rest/<method>`` route: read the parameters, check the credentials, run the method.

Every Subsonic method answers at ``/rest/<name>`` and ``/rest/<name>.view``, to GET (query
string) and to POST (query string and ``application/x-www-form-urlencoded`` body). The
routes stay out of the app's OpenAPI schema: the OpenSubsonic specification documents
them, and the JSON API's schema keeps describing the JSON API alone.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ..deps import ServicesDep
from . import browsing, lists, media, playlists, sonic, system
from .auth import authenticate
from .calls import METHODS, Call
from .envelope import GENERIC, SubsonicError, render, render_error
from .params import Params
from .store import MAX_TRACKS

router = APIRouter(prefix="/rest", include_in_schema=False)
METHOD_MODULES = (system, browsing, lists, sonic, playlists, media)
"""The modules whose ``@method`` functions fill :data:`~.calls.METHODS` when imported."""
MAX_FIELDS = MAX_TRACKS + 100
"""Most fields a form body may hold: a full playlist's ``songId``s and the usual parameters."""


@router.api_route("/{name}", methods=["GET", "POST"])
async def answer_subsonic(name: str, request: Request, services: ServicesDep) -> Response:
    """Run the Subsonic method ``name`` (``ping``, ``getSong.view``, ...)."""
    pairs = list(request.query_params.multi_items())
    form_error = None
    if request.method == "POST":
        try:
            async with request.form(max_fields=MAX_FIELDS) as form:
                pairs += [(key, value) for key, value in form.multi_items() if isinstance(value, str)]
        except Exception as error:  # noqa: BLE001  (any unreadable body is the client's mistake)
            form_error = SubsonicError(GENERIC, f"the request body is not a readable form ({type(error).__name__})")
    params = Params(pairs)
    fmt, callback = _format(params)
    found = METHODS.get(name.removesuffix(".view"))
    if found is None:
        error = SubsonicError(GENERIC, f"moodscape does not implement {name[:60]!r}; it answers {', '.join(sorted(METHODS))}")
        response = render_error(error, fmt, callback)
        response.status_code = 404
        return response
    state = request.app.state.subsonic
    try:
        if form_error is not None:
            raise form_error
        user = None if found.public else authenticate(params, state.settings.users)
        result = await run_in_threadpool(found.function, Call(services, state, params, user, request.method))
    except SubsonicError as error:
        return render_error(error, fmt, callback)
    return result if isinstance(result, Response) else render(result, fmt, callback)


def _format(params: Params) -> tuple[str | None, str | None]:
    """The ``f`` and ``callback`` parameters; XML when they cannot be read."""
    try:
        return params.get("f"), params.get("callback")
    except SubsonicError:
        return None, None
