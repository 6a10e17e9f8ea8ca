"""Who is calling: the credentials Subsonic clients send, checked against ``[subsonic]`` users.

Three mechanisms, as the OpenSubsonic API reference describes them:

- ``u`` + ``t`` + ``s``: the token ``t`` = md5(password + salt ``s``), lower-case hex. The
  server must know the plain password to check it, so a password is stored as given.
- ``u`` + ``p``: the password in clear or hex-encoded with an ``enc:`` prefix.
- ``apiKey`` alone (the ``apiKeyAuthentication`` extension): the config stores only its
  SHA-256, so the key itself is never at rest.

Errors: 10 when ``u`` (or ``t`` without ``s``, or any secret) is missing, 40 for a wrong
user or password, 43 when ``apiKey`` comes with ``u``/``p``/``t``/``s`` or ``p`` with
``t``, 44 for an unknown API key. Secrets are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence

from moodscape.config import SubsonicUser

from .envelope import CONFLICTING_MECHANISMS, INVALID_API_KEY, MISSING_PARAMETER, WRONG_CREDENTIALS, SubsonicError
from .params import Params

NO_USERS = ("no Subsonic users are configured: add [[subsonic.users]] (name, password or api_key_sha256) "
            "to the file given to `moodscape serve --config`")


def authenticate(params: Params, users: Sequence[SubsonicUser]) -> str:
    """The name of the user whose credentials the call carries.

    Parameters
    ----------
    params : Params
        The call's parameters (``u``, ``p``, ``t``, ``s``, ``apiKey``).
    users : sequence of SubsonicUser
        The accounts of ``[subsonic]``.

    Raises
    ------
    SubsonicError
        With code 10, 40, 43 or 44 (see the module docstring).
    """
    api_key = params.get("apiKey")
    if api_key is not None:
        if any(name in params for name in ("u", "p", "t", "s")):
            raise SubsonicError(CONFLICTING_MECHANISMS, "Multiple conflicting authentication mechanisms provided: "
                                                        "apiKey goes without u, p, t and s")
        digest = hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest().encode()
        for user in users:
            if user.api_key_sha256 and hmac.compare_digest(user.api_key_sha256.lower().encode(), digest):
                return user.name
        raise SubsonicError(INVALID_API_KEY, "Invalid API key" + ("" if users else f"; {NO_USERS}"))
    name = params.get("u")
    if not name:
        raise SubsonicError(MISSING_PARAMETER, "Required parameter is missing: u (with t and s, or p), or apiKey")
    password, token, salt = params.get("p"), params.get("t"), params.get("s")
    if password is not None and token is not None:
        raise SubsonicError(CONFLICTING_MECHANISMS, "Multiple conflicting authentication mechanisms provided: p and t")
    user = next((user for user in users if user.name == name), None)
    secret = user.password.get_secret_value() if user is not None and user.password is not None else None
    if token is not None:
        if not salt:
            raise SubsonicError(MISSING_PARAMETER, "Required parameter is missing: s (the salt of the token t)")
        expected = hashlib.md5((secret or "").encode("utf-8", "surrogatepass") + salt.encode("utf-8", "surrogatepass")).hexdigest()
        valid = secret is not None and hmac.compare_digest(expected.encode(), token.lower().encode("utf-8", "surrogatepass"))
    elif password is not None:
        given = _decoded(password)
        valid = secret is not None and given is not None and hmac.compare_digest(given.encode("utf-8", "surrogatepass"),
                                                                                 secret.encode("utf-8", "surrogatepass"))
    else:
        raise SubsonicError(MISSING_PARAMETER, "Required parameter is missing: t and s (or p)")
    if not valid:
        raise SubsonicError(WRONG_CREDENTIALS, "Wrong username or password" + ("" if users else f"; {NO_USERS}"))
    return name


def _decoded(password: str) -> str | None:
    """A ``p`` value in clear: ``enc:<hex of the UTF-8 bytes>`` decoded; ``None`` when that hex is bad."""
    if not password.startswith("enc:"):
        return password
    try:
        return bytes.fromhex(password[4:]).decode("utf-8")
    except ValueError:
        return None
