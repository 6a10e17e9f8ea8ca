"""The parameters of a Subsonic call, from the URL and a form body, read with Subsonic errors.

Subsonic clients send every parameter as text, in the query string (GET) or an
``application/x-www-form-urlencoded`` body (POST, the ``formPost`` extension); a name may
repeat (``songId``). A missing required parameter is error 10; a value that is not a number
where one is needed is error 0 naming the parameter; numbers out of range are clamped, as
Subsonic servers do with ``size`` ("max 500").
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from .envelope import GENERIC, MISSING_PARAMETER, SubsonicError

MAX_VALUE_LENGTH = 2048
"""Longest value read; longer ones are refused (an API key is under 2048 characters by the spec)."""


class Params:
    """The parameters of one call.

    Parameters
    ----------
    pairs : iterable of (str, str)
        Every (name, value) of the query string and the form body, in order.
    """

    def __init__(self, pairs: Iterable[tuple[str, str]]):
        self._values: dict[str, list[str]] = {}
        for name, value in pairs:
            if isinstance(value, str):
                self._values.setdefault(name, []).append(value)

    def __contains__(self, name: str) -> bool:
        return name in self._values

    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of ``name``, or ``default``."""
        values = self._values.get(name)
        if not values:
            return default
        if len(values[0]) > MAX_VALUE_LENGTH:
            raise SubsonicError(GENERIC, f"parameter {name!r} is longer than {MAX_VALUE_LENGTH} characters")
        return values[0]

    def all(self, name: str) -> list[str]:
        """Every value of ``name`` (``[]`` when absent)."""
        values = self._values.get(name, [])
        if any(len(value) > MAX_VALUE_LENGTH for value in values):
            raise SubsonicError(GENERIC, f"a value of parameter {name!r} is longer than {MAX_VALUE_LENGTH} characters")
        return values

    def required(self, name: str) -> str:
        """The value of ``name``; error 10 when it is missing or empty."""
        value = self.get(name)
        if value is None or value == "":
            raise SubsonicError(MISSING_PARAMETER, f"required parameter {name!r} is missing")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        """``name`` as an integer clamped to ``[low, high]``; ``default`` when absent."""
        value = self.get(name)
        if value is None or value.strip() == "":
            return default
        try:
            number = int(value.strip())
        except ValueError:
            raise SubsonicError(GENERIC, f"parameter {name!r} must be an integer, got {value[:40]!r}") from None
        return min(max(number, low), high)

    def unit(self, name: str) -> float | None:
        """``name`` as a number in [0, 1] (valence, arousal); ``None`` when absent."""
        value = self.get(name)
        if value is None or value.strip() == "":
            return None
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not 0.0 <= number <= 1.0:
            raise SubsonicError(GENERIC, f"parameter {name!r} must be a number from 0 to 1, got {value[:40]!r}")
        return number
