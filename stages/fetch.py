"""Audio URLs: a job submitted with ``url`` instead of a file is downloaded by the decode
stage (the gateway never downloads), streamed into the job's input file.

The address policy of :mod:`pipeline.addresses` holds at every hop: the host is resolved
once and the connection goes to the checked address (no DNS rebinding; over https the
certificate is still checked against the host name), and each redirect (at most
:data:`MAX_REDIRECTS`) is checked again before it is followed. A URL carrying a user name
or password is refused, and neither a URL's query (a signed URL's token) nor its
credentials appear in messages or logs (:func:`pipeline.addresses.shown_url`).
"""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

from pipeline.addresses import Target, connection, plain_url, resolve, shown_url
from pipeline.errors import AddressRefused, PermanentError, TransientError

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: Statuses worth another attempt later; any other non-2xx answer fails the job.
_RETRIED = frozenset({408, 425, 429, 500, 502, 503, 504})
_CHUNK = 1024 * 1024
USER_AGENT = "stt-pipeline-fetch/1"

#: Checks a URL against the address policy and says where to connect.
Resolver = Callable[[str], Target]
#: Told the bytes downloaded so far and how many the origin announced (None: unknown) after
#: every piece; may raise to stop the download (a cancelled job's JobGone).
Progress = Callable[[int, int | None], None]


def _quiet(done: int, total: int | None) -> None:
    pass


def is_url(name: str | None) -> bool:
    """Whether a job's ``input_name`` is an audio URL: an upload's name never holds a
    slash (:func:`gateway.uploads.display_name`), so never ``://``."""
    return name is not None and name.startswith(("http://", "https://"))


def policy(allow_private: bool) -> Resolver:
    """The address policy as ALLOW_PRIVATE_URLS sets it."""
    return lambda url: resolve(url, allow_private=allow_private)


def download(url: str, path: Path, *, max_bytes: int, timeout: float,
             resolver: Resolver, progress: Progress = _quiet) -> int:
    """Download ``url`` into ``path``; the number of bytes.

    ``resolver`` checks every hop (the URL, then each redirect) and says where to connect:
    :func:`policy` in service; a test passes one that trusts a single origin on 127.0.0.1,
    the only way to make a first hop allowed and its redirect refused while every server
    of a test is on loopback. The bytes go to a ``.part`` file renamed over ``path`` once
    complete, so ``path`` only ever holds a whole download; a failed one leaves nothing.

    Raises AddressRefused (a PermanentError) for a refused hop, PermanentError for a
    download larger than ``max_bytes``, too many redirects or an origin's answer a retry
    will not change (404, 403, ...), TransientError for a timeout, a lost connection or an
    answer worth retrying (503, 429, ...).
    """
    partial = path.with_name(path.name + ".part")
    try:
        size = _follow(url, partial, max_bytes, timeout, resolver, progress)
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return size


def _follow(url: str, partial: Path, max_bytes: int, timeout: float,
            resolver: Resolver, progress: Progress) -> int:
    for hop in range(MAX_REDIRECTS + 1):
        try:
            plain_url(url)
            target = resolver(url)
        except AddressRefused as exc:
            if hop == 0:
                raise
            raise AddressRefused(f"the origin redirected to {shown_url(url)}: {exc}"
                                 ) from None
        where = shown_url(url)
        conn = connection(target, timeout)
        try:
            conn.request("GET", target.path, headers={"User-Agent": USER_AGENT,
                                                      "Accept": "audio/*, video/*, */*"})
            response = conn.getresponse()
            if response.status in _REDIRECTS:
                location = response.getheader("location")
                if not location:
                    raise PermanentError(f"{where}: the origin answered HTTP "
                                         f"{response.status} without a Location")
                url = urljoin(url, location.strip())
                continue
            _check_status(response.status, response.reason, where)
            return _save(response, partial, max_bytes, where, progress)
        except TimeoutError:
            raise TransientError(f"{where}: the origin sent nothing for {timeout:g} s "
                                 "(FETCH_TIMEOUT_SECONDS)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise TransientError(f"{where}: the download failed: "
                                 f"{exc or type(exc).__name__}") from None
        finally:
            conn.close()
    raise PermanentError(f"{shown_url(url)}: more than {MAX_REDIRECTS} redirects")


def _check_status(status: int, reason: str, where: str) -> None:
    if 200 <= status < 300:
        return
    message = f"{where}: the origin answered HTTP {status}" + (f" ({reason})" if reason else "")
    if status in _RETRIED:
        raise TransientError(message)
    raise PermanentError(message + "; check the URL")


def too_large(max_bytes: int) -> PermanentError:
    return PermanentError(f"download larger than the limit of {max_bytes} bytes "
                          "(MAX_UPLOAD_BYTES); link a smaller or compressed file")


def _save(response: http.client.HTTPResponse, partial: Path, max_bytes: int,
          where: str, progress: Progress) -> int:
    declared = response.getheader("content-length")
    expected = int(declared) if declared and declared.strip().isdigit() else None
    if expected is not None and expected > max_bytes:
        raise too_large(max_bytes)
    written = 0
    with partial.open("wb") as out:
        while chunk := response.read(_CHUNK):
            written += len(chunk)
            if written > max_bytes:
                raise too_large(max_bytes)
            out.write(chunk)
            progress(written, expected)
    if expected is not None and written < expected:
        raise TransientError(f"{where}: the download ended after {written} of {expected} "
                             "bytes")
    return written
