"""uvicorn's HTTP/1.1 protocol with a deadline for a request's headers.

uvicorn times out only an idle keep-alive connection, and only until its first byte: a
client that opens a connection and sends nothing, or sends a request's headers a byte at a
time (slowloris), holds the connection, and a place under MAX_CONNECTIONS, for ever. This
protocol closes a connection whose next request's headers are not all in within
HEADER_TIMEOUT_SECONDS of the connection opening or of the previous response ending. Bodies
are not timed: an upload over a slow link is legitimate (a reverse proxy bounds those).
"""

from __future__ import annotations

import array
import asyncio
import fcntl
import logging
import termios

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.compat import Patch

log = logging.getLogger("gateway.connections")

PATCHES = (Patch(
    distribution="uvicorn", supported=">=0.55,<0.56",
    touches="uvicorn.protocols.http.h11_impl.H11Protocol: its h11 connection (conn), "
    "transport and loop, and when it calls connection_made, data_received, "
    "on_response_complete, connection_lost and timeout_keep_alive_handler"),)

#: Once, a deadline that finds a request's bytes waiting unread in the socket waits this
#: much longer: the loop was busy, not the client slow.
GRACE_SECONDS = 1.0


class HeaderDeadline(H11Protocol):
    """Closes a connection that waits for a request's headers longer than
    ``header_timeout`` (a class attribute: uvicorn builds the protocol itself)."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    _graced: bool = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def timeout_keep_alive_handler(self) -> None:
        # uvicorn closes an idle keep-alive connection when its timer fires, even when the
        # client's next request has already arrived and waits for a busy loop to read it:
        # that client then sees its request answered by a reset.
        if not self._bytes_waiting():
            super().timeout_keep_alive_handler()

    def _bytes_waiting(self) -> bool:
        """Whether the kernel holds bytes of this connection that the loop has not read."""
        sock = self.transport.get_extra_info("socket")
        if sock is None or self.transport.is_closing():
            return False
        count = array.array("i", [0])
        try:
            fcntl.ioctl(sock.fileno(), termios.FIONREAD, count)
        except (OSError, ValueError):
            return False
        return count[0] > 0

    def _watch(self) -> None:
        # IDLE: h11 has not yet parsed a whole request line and headers. The deadline is
        # armed once per wait and never pushed back by the bytes that trickle in.
        if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
            self._disarm()
        elif self._deadline is None:
            self._graced = False
            self._deadline = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if not self._graced and self._bytes_waiting():
            self._graced = True
            self._deadline = self.loop.call_later(GRACE_SECONDS, self._expire)
            return
        if not self.transport.is_closing():
            log.info("closed a connection from %s: no complete request headers within "
                     "HEADER_TIMEOUT_SECONDS (%g s)", self.client, self.header_timeout)
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()


def header_deadline(seconds: float) -> type[HeaderDeadline]:
    """The protocol class to give uvicorn (``http=``), with a deadline of ``seconds``."""
    return type("HeaderDeadline", (HeaderDeadline,), {"header_timeout": seconds})
