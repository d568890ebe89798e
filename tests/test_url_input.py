"""Audio by URL: jobs submitted with `url` instead of `file`, downloaded by the real decode
stage from a real HTTP origin on 127.0.0.1 (the later stages are the fast option stages),
and the address policy on every hop: without ALLOW_PRIVATE_URLS every refused spelling is
refused and a canary server sees no request."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec
import pytest
from redis.asyncio import Redis

from pipeline.addresses import Target, resolve
from pipeline.errors import AddressRefused, PermanentError, TransientError
from pipeline.stage import Stage
from pipeline.store import JobStore
from stages.decode import DecodeStage
from stages.fetch import MAX_REDIRECTS, download, policy
from stages.settings import Settings
from stages.table import TABLE
from tests.support.audio import silent_wav
from tests.support.gateway import finished, serve
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.receiver import local_server
from tests.support.workers import running_workers
from tests.test_cli import stt

#: The real decode stage, which downloads; the option stages after it.
STAGES: dict[str, type[Stage]] = {**GATEWAY_STAGES, "decode": DecodeStage}
AUDIO = silent_wav(2.0)


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    length: bool = True  # send Content-Length (else the body ends with the connection)


@dataclass
class Origin:
    """An HTTP server on 127.0.0.1 answering GETs from its routes (404 for others), and
    the paths it was asked for."""

    port: int
    routes: dict[str, Route]
    hold: threading.Event | None = None  # set: requests wait for it before any answer
    asked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/talk.wav", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def got(self) -> list[str]:
        with self.lock:
            return list(self.asked)


@contextmanager
def origin(routes: dict[str, Route] | None = None,
           hold: threading.Event | None = None) -> Iterator[Origin]:
    served: Origin

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            with served.lock:
                served.asked.append(self.path)
            if served.hold is not None:
                served.hold.wait(timeout=30)
                return
            route = served.routes.get(urlsplit(self.path).path, Route(404, b"not here"))
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.length:
                self.send_header("content-length", str(len(route.body)))
            else:
                self.send_header("connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    with local_server(Handler, hold) as port:
        served = Origin(port, routes or {"/talk.wav": Route(body=AUDIO)}, hold)
        yield served


def private(settings: Settings, **overrides: Any) -> Settings:
    return msgspec.structs.replace(settings, allow_private_urls=True, **overrides)


async def submit_url(client: httpx.AsyncClient, url: str, path: str = "/jobs",
                     **fields: str) -> httpx.Response:
    return await client.post(path, files={"url": (None, url)}, data=fields)


async def run_job(redis: Redis, settings: Settings, url: str) -> tuple[dict[str, Any], Path]:
    """A job for ``url`` through the gateway and the stages; its view once finished, and
    its folder."""
    store = JobStore(redis, settings, TABLE)
    async with serve(settings) as client, running_workers(store, STAGES):
        response = await submit_url(client, url, language="en")
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        view = await finished(client, job_id)
    return view, store.files(job_id).root


# -- jobs -----------------------------------------------------------------------------


async def test_a_url_job_downloads_decodes_and_completes(
        redis: Redis, settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with origin() as server:
        url = server.url("/talk.wav?X-Signature=s3cr3t")
        view, folder = await run_job(redis, private(settings), url)
        assert server.got() == ["/talk.wav?X-Signature=s3cr3t"]
    # Logged where it came from, never the query (a signed URL's token).
    assert any(f"downloading http://127.0.0.1:{server.port}/talk.wav" in r.getMessage()
               for r in caplog.records)
    assert not any("s3cr3t" in r.getMessage() for r in caplog.records)
    assert view["status"] == "completed", view["error"]
    assert view["input_name"] == url  # where the audio came from
    store = JobStore(redis, settings, TABLE)
    files = store.files(view["id"])
    assert files.input.read_bytes() == AUDIO and files.audio.stat().st_size > 0
    assert not list(folder.glob("*.part"))


async def test_transcribe_and_the_openai_endpoint_take_a_url(redis: Redis,
                                                             settings: Settings) -> None:
    config = private(settings)
    store = JobStore(redis, config, TABLE)
    with origin() as server:
        async with serve(config) as client, running_workers(store, STAGES):
            waited = await submit_url(client, server.url(), "/transcribe")
            assert waited.status_code == 200, waited.text
            assert waited.json()["status"] == "completed"
            openai = await submit_url(client, server.url(), "/v1/audio/transcriptions",
                                      model="whisper-1", response_format="text")
            assert openai.status_code == 200, openai.text
            assert "Hello there." in openai.text
        assert len(server.got()) == 2


async def test_an_origin_404_fails_the_job_readably(redis: Redis, settings: Settings) -> None:
    with origin() as server:
        view, _ = await run_job(redis, private(settings), server.url("/missing.mp3"))
    assert view["status"] == "failed"
    assert "the origin answered HTTP 404" in view["error"]
    assert f"http://127.0.0.1:{server.port}/missing.mp3" in view["error"]


@pytest.mark.parametrize("length", [True, False], ids=["content-length", "no-length"])
async def test_a_download_over_the_limit_fails_and_leaves_no_file(
        redis: Redis, settings: Settings, length: bool) -> None:
    big = silent_wav(1.0)
    with origin({"/big.wav": Route(body=big, length=length)}) as server:
        limit = len(big) // 2
        view, folder = await run_job(redis, private(settings, max_upload_bytes=limit),
                                     server.url("/big.wav"))
    assert view["status"] == "failed"
    assert f"download larger than the limit of {limit} bytes" in view["error"]
    assert not (folder / "input").exists() and not list(folder.rglob("*.part"))


async def test_the_duration_limit_holds_for_a_download(redis: Redis,
                                                       settings: Settings) -> None:
    with origin() as server:
        view, _ = await run_job(redis, private(settings, max_audio_seconds=1.0),
                                server.url())
    assert view["status"] == "failed" and "longer than" in view["error"]


async def test_the_job_limit_of_transcribe_holds_for_a_download(redis: Redis,
                                                                settings: Settings) -> None:
    config = private(settings, sync_max_seconds=1.0)
    store = JobStore(redis, config, TABLE)
    with origin() as server:
        async with serve(config) as client, running_workers(store, STAGES):
            response = await submit_url(client, server.url(), "/transcribe")
    assert response.status_code == 422, response.text
    assert "longer than this job's limit of 1 s" in response.text


# -- the address policy ---------------------------------------------------------------

#: Spellings of refused addresses, ``{port}`` the canary's: refused at submission (400).
LITERALS = ["127.0.0.1:{port}", "[::1]:{port}", "[::ffff:127.0.0.1]:{port}",
            "2130706433:{port}", "0177.0.0.1:{port}", "0x7f.1:{port}", "127.1:{port}",
            "169.254.169.254", "10.0.0.1", "[fd00:ec2::254]", "0.0.0.0:{port}"]


@pytest.mark.parametrize("host", LITERALS)
async def test_a_refused_address_is_a_400_and_reaches_nothing(settings: Settings,
                                                              host: str) -> None:
    with origin() as canary:
        async with serve(settings) as client:
            url = f"http://{host.format(port=canary.port)}/talk.wav"
            response = await submit_url(client, url)
            assert response.status_code == 400, response.text
            error = response.json()["error"]
            assert error["field"] == "url"
            assert "refused:" in error["message"] and "ALLOW_PRIVATE_URLS" in error["message"]
        assert canary.got() == []


async def test_a_name_resolving_to_loopback_fails_the_job_and_reaches_nothing(
        redis: Redis, settings: Settings) -> None:
    with origin() as canary:
        view, _ = await run_job(redis, settings, canary.url(host="localhost"))
        assert canary.got() == []
    assert view["status"] == "failed"
    assert "refused: localhost (127.0.0.1) is a loopback address" in view["error"]


def trusting(port: int) -> Any:
    """The address policy, but trusting one origin on 127.0.0.1 (by its port): the seam
    that makes a first hop allowed and its redirect refused while every server of the
    test is on loopback."""
    def check(url: str) -> Target:
        return resolve(url, allow_private=urlsplit(url).port == port)
    return check


@pytest.mark.parametrize("target", ["http://127.0.0.1:{port}/talk.wav",
                                    "http://localhost:{port}/talk.wav",
                                    "http://[::ffff:7f00:1]:{port}/talk.wav"])
def test_a_redirect_to_a_private_address_is_refused(tmp_path: Path, target: str) -> None:
    with origin() as canary:
        location = target.format(port=canary.port)
        with origin({"/talk.wav": Route(302, headers={"location": location})}) as first:
            with pytest.raises(AddressRefused, match=r"redirected to .*refused: .*loopback"):
                download(first.url(), tmp_path / "input", max_bytes=10**6, timeout=5,
                         resolver=trusting(first.port))
            assert first.got() == ["/talk.wav"]
        assert canary.got() == []
    assert not list(tmp_path.iterdir())


def test_redirects_are_followed_and_counted(tmp_path: Path) -> None:
    hops = {f"/hop{n}": Route(307, headers={"location": f"/hop{n + 1}"})
            for n in range(MAX_REDIRECTS + 1)}
    with origin({**hops, f"/hop{MAX_REDIRECTS}": Route(body=AUDIO)}) as server:
        size = download(server.url("/hop0"), tmp_path / "input", max_bytes=10**6,
                        timeout=5, resolver=policy(True))
        assert size == len(AUDIO) and (tmp_path / "input").read_bytes() == AUDIO
        assert len(server.got()) == MAX_REDIRECTS + 1
    with origin(hops) as server, pytest.raises(PermanentError, match="more than 5 redirects"):
        download(server.url("/hop0"), tmp_path / "other", max_bytes=10**6, timeout=5,
                 resolver=policy(True))


def test_an_origin_that_sends_nothing_times_out(tmp_path: Path) -> None:
    with origin(hold=threading.Event()) as server, pytest.raises(
            TransientError, match=r"sent nothing for 0.5 s \(FETCH_TIMEOUT_SECONDS\)"):
        download(server.url(), tmp_path / "input", max_bytes=10**6, timeout=0.5,
                 resolver=policy(True))
    assert not list(tmp_path.iterdir())


def test_an_origin_error_worth_retrying_is_transient(tmp_path: Path) -> None:
    with origin({"/talk.wav": Route(503)}) as server, pytest.raises(
            TransientError, match="the origin answered HTTP 503"):
        download(server.url(), tmp_path / "input", max_bytes=10**6, timeout=5,
                 resolver=policy(True))


# -- submission -----------------------------------------------------------------------


@pytest.mark.parametrize(("fields", "message"), [
    ({"url": "ftp://example.com/a.mp3"}, "http:// or https://"),
    ({"url": "https://user:hunter2@example.com/a.mp3"}, "no user name or password"),
    ({"url": "example.com/a.mp3"}, "http:// or https://"),
    ({}, "no audio: send either the audio in the multipart field 'file'")])
async def test_a_bad_url_is_a_400(settings: Settings, fields: dict[str, str],
                                  message: str) -> None:
    async with serve(settings) as client:
        response = await client.post("/jobs", files={k: (None, v) for k, v in fields.items()}
                                     or {"language": (None, "en")})
    assert response.status_code == 400 and message in response.text, response.text
    assert "hunter2" not in response.text


async def test_a_file_and_a_url_together_are_a_400_naming_both(settings: Settings) -> None:
    async with serve(settings) as client:
        response = await client.post("/jobs", files={
            "file": ("talk.wav", AUDIO, "audio/wav"),
            "url": (None, "https://example.com/a.mp3")})
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert "both a file and a url" in message and "'file'" in message and "'url'" in message


async def test_stt_submit_url(redis: Redis, settings: Settings) -> None:
    config = private(settings)
    store = JobStore(redis, config, TABLE)
    with origin() as server:
        async with serve(config) as client, running_workers(store, STAGES):
            code, out, err = await stt("submit", server.url(), "--url", str(client.base_url),
                                       "--wait", "--format", "txt")
            assert code == 0, err
            job_id = err.split("job ", 1)[1].split()[0]
            view = (await client.get(f"/jobs/{job_id}")).json()
        assert server.got() == ["/talk.wav"]
    assert "Hello there." in out
    assert view["status"] == "completed" and view["input_name"] == server.url()


async def test_an_idempotency_key_repeats_a_url_job(settings: Settings) -> None:
    async with serve(settings) as client:
        headers = {"Idempotency-Key": "url-1"}

        async def post(url: str) -> httpx.Response:
            return await client.post("/jobs", files={"url": (None, url)}, headers=headers)

        first = await post("https://example.com/a.mp3")
        again = await post("https://example.com/a.mp3")
        other = await post("https://example.com/b.mp3")
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["job_id"] == again.json()["job_id"]
    assert other.status_code == 422, other.text
