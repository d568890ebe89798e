"""Issue 25 item 10: a client that sends nothing, or its headers a byte at a time, is
disconnected after HEADER_TIMEOUT_SECONDS; past MAX_CONNECTIONS a request gets 503."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import pytest

from tests.support.workers import until
from tests.system.conftest import Service, submit

pytestmark = pytest.mark.system

#: Generous: the server closes a silent connection after HEADER_TIMEOUT_SECONDS (1 s here).
CLOSE_WITHIN = 30.0


async def _closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """What the server sent until it closed the connection (fails if it never does)."""
    return await asyncio.wait_for(reader.read(), CLOSE_WITHIN)


async def test_silent_and_slow_clients_are_disconnected(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(workers=0, header_timeout_seconds=1.0,
                                    keep_alive_timeout_seconds=1)
    port = service.settings.port

    # Connects and sends nothing.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await _closed_by_server(reader) == b""
    writer.close()

    # Sends a request's headers a byte at a time: the deadline is not pushed back by them.
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    trickle = b"GET /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 300
    closed = False
    for byte in trickle:  # bounded: 300 bytes at most 0.2 s apart
        try:
            writer.write(bytes([byte]))
            await writer.drain()
            if await asyncio.wait_for(reader.read(1), 0.2) == b"":
                closed = True
                break
        except TimeoutError:
            continue
        except ConnectionError:
            closed = True
            break
    assert closed, "the gateway kept a connection whose headers never ended"
    writer.close()

    # A whole request is answered; the connection is then closed once idle (keep-alive).
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    assert (await _closed_by_server(reader)).startswith(b"HTTP/1.1 200 ")
    writer.close()
    # Other clients were served all along.
    assert (await service.http.get("/jobs")).status_code == 200


async def test_connections_beyond_the_limit_get_503(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(workers=0, max_connections=2)
    job_id = (await submit(service)).json()["job_id"]  # stays queued: no workers
    # The fixture's client would hold a keep-alive connection of its own.
    await service.http.aclose()
    service.http = httpx.AsyncClient(base_url=str(service.http.base_url), timeout=120)
    base = str(service.http.base_url)

    async def probe() -> int:
        async with httpx.AsyncClient(base_url=base, timeout=30) as fresh:
            return (await fresh.get(f"/jobs/{job_id}")).status_code

    async def probe_is(status: int) -> bool:
        return await probe() == status

    assert await probe() == 200
    pollers = [httpx.AsyncClient(base_url=base, timeout=120) for _ in range(2)]

    def long_poll(client: httpx.AsyncClient) -> asyncio.Task[httpx.Response]:
        return asyncio.create_task(client.get(f"/jobs/{job_id}", params={"wait": 60}))

    # Two long polls hold the two connections allowed.
    polls = [long_poll(c) for c in pollers]

    async def held_then_refused() -> bool:
        # A poll that connected while a probe held a slot got the 503 itself and ended:
        # poll again, so that both slots are held when the next probe comes.
        for i, poll in enumerate(polls):
            if poll.done():
                polls[i] = long_poll(pollers[i])
        await asyncio.sleep(0.2)
        return await probe_is(503)

    try:
        await until(held_then_refused, timeout=30, what="a 503 past MAX_CONNECTIONS")
    finally:
        for poll in polls:
            poll.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await poll
        for c in pollers:
            await c.aclose()
    # Their connections closed, requests are served again.
    await until(lambda: probe_is(200), timeout=30, what="a 200 once connections are freed")
