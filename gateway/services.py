"""What route handlers get injected: the store, the settings, job events and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request
from litestar.datastructures import State

from gateway.events import JobEvents
from pipeline.store import JobStore
from pipeline.voiceprints import VoiceprintStore
from stages.settings import Settings


@dataclass(frozen=True)
class Services:
    store: JobStore
    settings: Settings
    events: JobEvents

    @property
    def voiceprints(self) -> VoiceprintStore:
        return VoiceprintStore(self.store.redis, self.store.keys)


def provide_services(state: State) -> Services:
    services: Services = state.services
    return services


def provide_owner(request: Request[Any, Any, Any]) -> str | None:
    """The caller's owner fingerprint, set by the auth guard (None when auth is off)."""
    owner: str | None = request.state.get("owner")
    return owner
