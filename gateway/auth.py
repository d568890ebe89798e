"""API keys: off unless API_KEYS is set; then a job belongs to the key that created it, and
the operators' views (/metrics, /health's details) need a key of ADMIN_API_KEYS."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from pipeline.errors import Unauthorized
from stages.settings import Settings

#: Route handlers with this opt flag are reachable without a key (the health check).
PUBLIC = "public"
#: Route handlers with this opt flag need an operator key once API keys are on (/metrics).
ADMIN = "admin"


def fingerprint(key: str) -> str:
    """What the store keeps as a job's owner: never the key itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_owner(stored: str | None, owner: str) -> bool:
    """Whether a job's stored owner is ``owner``, in the same time whether the job exists
    (``stored`` None), belongs to another key, or to this one: ids are not disclosed."""
    # A missing owner is compared against a stand-in of the same length, so that both
    # refusals do the same work.
    candidate = "\0" * len(owner) if stored is None else stored
    return hmac.compare_digest(candidate.encode(), owner.encode()) and stored is not None


def _bearer(authorization: str | None) -> str | None:
    scheme, _, given = (authorization or "").partition(" ")
    given = given.strip()
    return given if scheme.lower() == "bearer" and given else None


def _known(given: str, keys: Iterable[str]) -> bool:
    # Compare against every key, without stopping early, so timing tells nothing.
    match = False
    for key in keys:
        match |= hmac.compare_digest(given.encode(), key.encode())
    return match


def authenticate(settings: Settings, authorization: str | None) -> str | None:
    """The owner fingerprint of the request's key; None when auth is off.

    Raises Unauthorized when auth is on and the key is missing or unknown.
    """
    if not settings.api_key_set:
        return None
    given = _bearer(authorization)
    if given is None:
        raise Unauthorized("missing API key: send `Authorization: Bearer <api key>`")
    if not _known(given, settings.api_key_set):
        raise Unauthorized("unknown API key: send a valid `Authorization: Bearer <api key>`")
    return fingerprint(given)


def is_admin(settings: Settings, authorization: str | None) -> bool:
    """Whether the request may see the operators' views: always when auth is off (one user),
    else only with a key of ADMIN_API_KEYS."""
    if not settings.api_key_set:
        return True
    given = _bearer(authorization)
    return given is not None and _known(given, settings.admin_key_set)


def require_key(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """App-wide guard: stores the caller's owner fingerprint in the request state."""
    settings: Settings = connection.app.state.settings
    authorization = connection.headers.get("authorization")
    if handler.opt.get(PUBLIC):
        connection.state.owner = None
        return
    if handler.opt.get(ADMIN):
        connection.state.owner = None
        if not is_admin(settings, authorization):
            raise Unauthorized("this endpoint needs an operator key: send "
                               "`Authorization: Bearer <key>` with a key of ADMIN_API_KEYS")
        return
    connection.state.owner = authenticate(settings, authorization)
