"""A minimal HTTP/1.1 keep-alive load generator on asyncio streams.

Python HTTP clients (httpx) cost more CPU per request than a small server takes to answer
one, so on one core they would measure the client. This sends pre-built request bytes and
parses only the status line and Content-Length.
"""

from __future__ import annotations

import asyncio
import time

import msgspec

from benchmark.stats import percentile


class Load(msgspec.Struct):
    requests: int
    errors: int  # answers with an unexpected status
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def request_bytes(method: str, path: str, port: int, body: bytes = b"",
                  content_type: str | None = None) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if body or method == "POST":
        head += [f"Content-Length: {len(body)}"]
    if content_type:
        head.append(f"Content-Type: {content_type}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def _connection(port: int, request: bytes, status: int, until: float,
                      latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if int(head.split(b" ", 2)[1]) != status:
                errors.append(1)
    finally:
        writer.close()


async def run(port: int, request: bytes, status: int, seconds: float,
              connections: int) -> Load:
    """Closed loop: ``connections`` keep-alive connections, each sending its next request
    as soon as the previous answer is in, for ``seconds``."""
    latencies: list[float] = []
    errors: list[int] = []
    started = time.perf_counter()
    until = started + seconds
    await asyncio.gather(*(_connection(port, request, status, until, latencies, errors)
                           for _ in range(connections)))
    took = time.perf_counter() - started
    return Load(len(latencies), len(errors), took, 1000 * percentile(latencies, 50),
                1000 * percentile(latencies, 99))
