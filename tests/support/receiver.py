"""A real webhook receiver on 127.0.0.1, for the webhook tests: it answers the first
requests with a failure, then accepts, and keeps every request it got."""

from __future__ import annotations

import base64
import os
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import standardwebhooks

#: A signing secret in the Standard Webhooks form.
SECRET = "whsec_" + base64.b64encode(os.urandom(24)).decode()


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def verified(self, secret: str = SECRET) -> dict[str, Any]:
        """The event, once standardwebhooks verified its signature (raises if not)."""
        event: dict[str, Any] = standardwebhooks.Webhook(secret).verify(self.body,
                                                                         self.headers)
        assert event == msgspec.json.decode(self.body)
        return event


@dataclass
class Receiver:
    port: int
    fail_first: int = 0  # answer this many requests with fail_status
    fail_status: int = 500
    location: str | None = None  # sent with the failures (a redirect's target)
    # Set: every request waits for it before being answered (a receiver that hangs).
    hold: threading.Event | None = None
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/stt?token=t0k3n"

    def got(self) -> list[Request]:
        with self.lock:
            return list(self.requests)

    def answer(self, request: Request) -> int:
        with self.lock:
            self.requests.append(request)
            return self.fail_status if len(self.requests) <= self.fail_first else 204


@contextmanager
def receiving(fail_first: int = 0, fail_status: int = 500, location: str | None = None,
              hold: threading.Event | None = None) -> Iterator[Receiver]:
    """A receiver served on a free port of 127.0.0.1 until the block ends."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = receiver.answer(Request(self.path, headers, body))
            if receiver.hold is not None:
                receiver.hold.wait(timeout=60)
            self.send_response(status)
            if receiver.location and status != 204:
                self.send_header("location", receiver.location)
            self.send_header("content-length", "0")
            self.end_headers()

        do_GET = do_POST

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    with local_server(Handler, hold) as port:
        receiver = Receiver(port, fail_first, fail_status, location, hold)
        yield receiver


@contextmanager
def local_server(handler: type[BaseHTTPRequestHandler],
                 hold: threading.Event | None = None) -> Iterator[int]:
    """``handler`` served in a thread on a free port of 127.0.0.1 (yielded) until the block
    ends; then ``hold`` is set, so that no request held by it keeps the server up."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        if hold is not None:
            hold.set()
        server.shutdown()
        server.server_close()


@contextmanager
def refusing() -> Iterator[str]:
    """The URL of a receiver that is down: a port of 127.0.0.1 held bound but never
    listening, so connections are refused, and no other server of the test run can take
    the port meanwhile (a port merely closed again could be)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{held.getsockname()[1]}/hook"
