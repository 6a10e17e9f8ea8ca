"""Bounds on what one request may cost: its body's size and arrival time, concurrent analyses.

:class:`BodyLimit` counts a request body's bytes as they arrive, so a body sent without
a ``Content-Length`` (chunked) is refused as soon as it passes the limit rather than after
it was spooled to disk, and refuses a body that has not arrived within a time bound.
:class:`AnalysisSlots` lets a bounded number of uploads be decoded and analysed at once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException
from fastapi.responses import JSONResponse

BODY_SLACK = 1 << 16
"""Bytes a body may hold beyond the upload limit: multipart boundaries and part headers."""
BODY_TIMEOUT_SECONDS = 300.0
"""Default time for a whole request body to arrive (50 MiB at about 1.4 Mbit/s)."""
RETRY_AFTER_SECONDS = 10
"""What a 503 from a busy analysis server asks the client to wait."""

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _readable_size(size: int) -> str:
    return f"{size / (1 << 20):.4g} MiB" if size >= 1 << 20 else f"{size} bytes"


class BodyLimit:
    """ASGI middleware: 413 once a request body passes ``limit`` bytes, 408 when it comes too slowly.

    A declared ``Content-Length`` over the limit is refused before any byte is read;
    otherwise the bytes are counted as the application reads them. A plain ASGI class
    rather than ``@app.middleware("http")``, which would wrap every request (``/health``
    included) in a slower streaming layer.

    Parameters
    ----------
    app : ASGI application
    limit : int
        Largest body in bytes, :data:`BODY_SLACK` added for the multipart framing.
    timeout : float
        Seconds from the start of a request by which its whole body must have arrived.
    """

    def __init__(self, app, limit: int, timeout: float = BODY_TIMEOUT_SECONDS):
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in _WITH_BODY:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit + BODY_SLACK:
            await JSONResponse({"detail": self.too_large()}, status_code=413)(scope, receive, send)
            return
        await self.app(scope, _CountedBody(self, receive).receive, send)

    def too_large(self) -> str:
        """The 413 message."""
        return f"the request body is larger than the limit of {_readable_size(self.limit)}"

    def too_slow(self) -> str:
        """The 408 message."""
        return f"the request body did not arrive within {self.timeout:g} s"


class _CountedBody:
    """A ``receive`` that counts body bytes and gives up at the request's deadline."""

    def __init__(self, limit: BodyLimit, receive):
        self.limit = limit
        self.upstream = receive
        self.deadline = asyncio.get_running_loop().time() + limit.timeout
        self.size = 0
        self.complete = False

    async def receive(self):
        if self.complete:
            return await self.upstream()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self.upstream()
        except TimeoutError:
            raise HTTPException(408, self.limit.too_slow(), headers={"Connection": "close"}) from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            self.complete = not message.get("more_body", False)
            if self.size > self.limit.limit + BODY_SLACK:
                raise HTTPException(413, self.limit.too_large(), headers={"Connection": "close"})
        return message


class AnalysisSlots:
    """At most ``size`` analyses at once; one more is refused with 503 and ``Retry-After``.

    Parameters
    ----------
    size : int
        Concurrent analyses a process runs (each decodes a whole file and runs the networks).
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError(f"the number of concurrent analyses must be at least 1, got {size}")
        self.size = size
        self._slots = threading.BoundedSemaphore(size)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold a slot for the ``with`` block; :class:`HTTPException` 503 when none is free."""
        if not self._slots.acquire(blocking=False):
            raise HTTPException(503, f"the server is analysing {self.size} file(s) already; try again shortly",
                                headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
        try:
            yield
        finally:
            self._slots.release()
