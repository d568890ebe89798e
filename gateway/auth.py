"""API keys: off unless API_KEYS is set; then a job belongs to the key that created it."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from pipeline.errors import Unauthorized
from stages.settings import Settings

#: Route handlers with this opt flag are reachable without a key (the health check).
PUBLIC = "public"


def fingerprint(key: str) -> str:
    """What the store keeps as a job's owner: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def authenticate(settings: Settings, authorization: str | None) -> str | None:
    """The owner fingerprint of the request's key; None when auth is off.

    Raises Unauthorized when auth is on and the key is missing or unknown.
    """
    keys = settings.api_key_set
    if not keys:
        return None
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise Unauthorized("missing API key: send `Authorization: Bearer <api key>`")
    # Compare against every key, without stopping early, so timing tells nothing.
    match = False
    for key in keys:
        match |= hmac.compare_digest(given.encode(), key.encode())
    if not match:
        raise Unauthorized("unknown API key: send a valid `Authorization: Bearer <api key>`")
    return fingerprint(given)


def require_key(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard: stores the caller's owner fingerprint in the request state."""
    if handler.opt.get(PUBLIC):
        connection.state.owner = None
        return
    settings: Settings = connection.app.state.settings
    connection.state.owner = authenticate(settings, connection.headers.get("authorization"))
