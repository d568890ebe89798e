"""Webhooks: the address policy, the signatures (checked with the `standardwebhooks`
package), and deliveries by the notify stage's real worker to a real receiver on
127.0.0.1, in this process. The same through deployed processes, with SIGKILL, is in
tests/system/test_webhooks.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest

from cli.supervisor import parse_workers
from pipeline.addresses import literal, refusal, resolve
from pipeline.errors import AddressRefused
from pipeline.runtime import ObserverWorker
from pipeline.stage import Stage
from pipeline.store import JobStore
from pipeline.types import EventMessage, StageStatus
from stages.notify import NotifyStage, nominal_backoff, sign, webhook_id
from stages.settings import Settings
from stages.table import NOTIFY, TABLE
from tests.support.audio import silent_wav
from tests.support.gateway import serve, submit
from tests.support.option_stages import GATEWAY_STAGES
from tests.support.receiver import SECRET, receiving, refusing
from tests.support.stages import TEST_STAGES, Behaviour, Script
from tests.support.stages import submit as submit_script
from tests.support.workers import running_workers, until
from tests.test_cli import stt

# -- the address policy ---------------------------------------------------------------

REFUSED = {
    "http://127.0.0.1/": "loopback",
    "http://2130706433/": "loopback",  # decimal
    "http://0177.0.0.1/": "loopback",  # octal
    "http://0x7f.0.0.1/": "loopback",  # hex
    "http://127.1/": "loopback",  # short
    "http://localhost:8080/": "loopback",  # a name resolving to one
    "http://[::1]/": "loopback",
    "http://[::ffff:127.0.0.1]/": "loopback",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]/": "loopback",
    "http://[::127.0.0.1]/": "loopback",  # IPv4-compatible
    "http://[2002:7f00:1::]/": "loopback",  # 6to4
    "http://10.1.2.3/": "private",
    "http://172.16.0.1/": "private",
    "http://192.168.0.10/": "private",
    "http://012.1.2.3/": "private",  # octal 10.1.2.3
    "http://[fd12:3456::1]/": "private",
    "http://[::ffff:10.0.0.1]/": "private",
    "http://100.64.0.1/": "reserved",  # shared address space (carrier-grade NAT)
    "http://169.254.1.1/": "link-local",
    "http://[fe80::1]/": "link-local",
    "http://224.0.0.1/": "multicast",
    "http://[ff02::1]/": "multicast",
    "http://0.0.0.0/": "unspecified",
    "http://0/": "unspecified",
    "http://[::]/": "unspecified",
    "http://169.254.169.254/latest/meta-data/": "metadata",
    "http://2852039166/": "metadata",  # decimal 169.254.169.254
    "http://[::ffff:169.254.169.254]/": "metadata",
    "http://[64:ff9b::a9fe:a9fe]/": "metadata",  # NAT64
    "http://[fd00:ec2::254]/": "metadata",
    "http://100.100.100.200/": "metadata",
    "http://168.63.129.16/": "metadata",
}


@pytest.mark.parametrize(("url", "why"), REFUSED.items(), ids=list(REFUSED))
def test_the_address_policy_refuses_every_spelling(url: str, why: str) -> None:
    with pytest.raises(AddressRefused, match=rf"refused: .*{why}.*ALLOW_PRIVATE_URLS"):
        resolve(url)
    # ALLOW_PRIVATE_URLS lifts the check, and the target is the address spelled.
    target = resolve(url, allow_private=True)
    host = url.split("/")[2].rsplit(":", 1)[0] if "[" not in url else url.split("/")[2]
    spelled = literal(host.strip("[]"))
    assert spelled is None or target.address == str(spelled)


@pytest.mark.parametrize("url", ["http://8.8.8.8/x?y=1", "https://[2606:4700::1111]:8443/",
                                 "http://1.1.1.1:80"])
def test_public_addresses_pass_and_are_the_connection_target(url: str) -> None:
    target = resolve(url)
    assert literal(target.address) is not None and refusal(literal(target.address)) is None
    assert target.path.startswith("/")


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://example.com/", "http:// or https://"), ("example.com/hook", "http:// or https://"),
    ("http:///nohost", "no host"), ("http://example.com:99999/", "not a URL")])
def test_malformed_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(AddressRefused, match=message):
        resolve(url, allow_private=True)


# -- signatures and schedule ----------------------------------------------------------


def test_the_signature_verifies_with_standardwebhooks() -> None:
    import standardwebhooks

    settings = Settings.from_env({}, webhook_secret=SECRET)
    assert settings.webhook_key is not None
    body, timestamp = b'{"type":"job.completed"}', int(time.time())
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(timestamp),
               "webhook-signature": sign(settings.webhook_key, "msg_1", timestamp, body)}
    webhook = standardwebhooks.Webhook(SECRET)
    assert webhook.verify(body, headers) == {"type": "job.completed"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        webhook.verify(body + b" ", headers)


def test_the_default_schedule_retries_for_about_a_day() -> None:
    settings = Settings.from_env({})
    waits = [nominal_backoff(n, settings) for n in range(1, settings.webhook_max_attempts)]
    assert waits[0] == settings.webhook_backoff_seconds
    assert waits == sorted(waits)
    assert 20 * 3600 <= sum(waits) <= 30 * 3600


def test_a_malformed_secret_is_refused_at_start() -> None:
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        Settings.from_env({"WEBHOOK_SECRET": "not-base64"})


# -- deliveries -----------------------------------------------------------------------


def webhook_settings(settings: Settings, **overrides: Any) -> Settings:
    return msgspec.structs.replace(settings, **{
        "webhook_secret": SECRET, "allow_private_urls": True,
        "webhook_backoff_seconds": 0.05, "webhook_backoff_max_seconds": 0.2,
        "webhook_timeout_seconds": 5.0, "webhook_concurrency": 4, **overrides})


@asynccontextmanager
async def service(store: JobStore, stages: Mapping[str, type[Stage]] = TEST_STAGES,
                  concurrency: int = 4) -> AsyncIterator[None]:
    """The stages and the real notify worker's consumers, as tasks of this event loop."""
    observers = [ObserverWorker(NotifyStage(), store, consumer=f"notify.{i}")
                 for i in range(concurrency)]
    tasks = [asyncio.create_task(w.run()) for w in observers]
    try:
        async with running_workers(store, stages):
            yield
    finally:
        for w in observers:
            w.request_stop()
        await asyncio.gather(*tasks)


async def delivered(store: JobStore, job_id: str, status: str = "done") -> Any:
    async def settled() -> bool:
        job = await store.get(job_id)
        record = job.observers.get(NOTIFY) if job else None
        return record is not None and record.status == status
    await until(settled, timeout=60, what=f"the webhook of {job_id} to be {status}")
    job = await store.get(job_id)
    assert job is not None
    return job


async def completed(store: JobStore, job_id: str) -> bool:
    job = await store.get(job_id)
    return job is not None and job.status == "completed"


async def test_a_receiver_failing_at_first_gets_the_event_signed_and_with_one_id(
        redis: Any, settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings), TABLE)
    with receiving(fail_first=2) as receiver:
        async with service(store):
            job_id = await submit_script(store, callback_url=receiver.url)
            job = await delivered(store, job_id)
        requests = receiver.got()
    assert job.status == "completed"
    record = job.observers[NOTIFY]
    assert (record.attempts, record.error, record.next_attempt_at) == (3, None, None)
    assert len(requests) == 3 and len({r.id for r in requests}) == 1
    assert requests[0].path == "/hooks/stt?token=t0k3n"
    for request in requests:
        event = request.verified()
        assert event["type"] == "job.completed"
        data = event["data"]
        assert data["job_id"] == job_id and data["status"] == "completed"
        assert data["run"] == 1 and data["error"] is None
        assert data["result_url"].endswith(f"/jobs/{job_id}/runs/1/result")


async def test_stage_events_and_a_failed_job(redis: Any, settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings), TABLE)
    with receiving() as receiver:
        async with service(store):
            ok = await submit_script(store, callback_url=receiver.url, callback_events="stage")
            bad = await submit_script(store, Script(stages={"diarize": Behaviour(
                fail="permanent")}), callback_url=receiver.url)
            await delivered(store, ok)
            failed = await delivered(store, bad)
            await until(lambda: len(receiver.got()) == 5, what="five events")
        events = [r.verified() for r in receiver.got()]
    assert failed.status == "failed" and failed.observers[NOTIFY].event == "failed"
    mine = sorted((e["type"], e["data"]["stage"]) for e in events if e["data"]["job_id"] == ok)
    assert mine == [("job.completed", None), ("job.stage_completed", "decode"),
                    ("job.stage_completed", "diarize"), ("job.stage_completed", "transcribe")]
    [failure] = [e for e in events if e["data"]["job_id"] == bad]
    assert failure["type"] == "job.failed" and failure["data"]["status"] == "failed"
    assert failure["data"]["error"] and failure["data"]["result_url"] is None


async def test_a_receiver_that_stays_down_fails_the_webhook_not_the_job(
        redis: Any, settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings, webhook_max_attempts=3), TABLE)
    with refusing() as down, receiving() as receiver:
        async with service(store):
            lost = await submit_script(store, callback_url=down)
            fine = await submit_script(store, callback_url=receiver.url)
            plain = await submit_script(store)
            job = await delivered(store, lost, status=StageStatus.FAILED)
            await delivered(store, fine)
            await until(lambda: completed(store, plain), what="the plain job")
        assert len(receiver.got()) == 1
    record = job.observers[NOTIFY]
    assert job.status == "completed" and job.error is None
    assert record.attempts == 3 and record.error and "gave up after 3 attempts" in record.error
    other = await store.get(plain)
    assert other is not None and other.status == "completed" and not other.observers


async def test_a_hanging_receiver_delays_no_other_delivery(redis: Any,
                                                          settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings, webhook_timeout_seconds=1.0,
                                             webhook_backoff_seconds=30.0), TABLE)
    hold = threading.Event()
    with receiving(hold=hold) as hanging, receiving() as receiver:
        async with service(store):
            stuck = await submit_script(store, callback_url=hanging.url)
            await until(lambda: len(hanging.got()) == 1, what="the hanging receiver's request")
            # While that attempt hangs, the other jobs' events are delivered.
            fine = [await submit_script(store, callback_url=receiver.url) for _ in range(3)]
            for job_id in fine:
                await delivered(store, job_id)
            assert not hold.is_set()
            await until(lambda: retrying(store, stuck), what="the attempt to time out")
            job = await store.get(stuck)
    assert job is not None
    record = job.observers[NOTIFY]
    assert record.attempts == 1 and "no answer within 1 s" in (record.error or "")
    assert record.next_attempt_at is not None


async def retrying(store: JobStore, job_id: str) -> bool:
    job = await store.get(job_id)
    record = job.observers.get(NOTIFY) if job else None
    return record is not None and record.status == "queued" and record.attempts == 1


async def test_redirects_are_not_followed(redis: Any, settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings, webhook_max_attempts=2), TABLE)
    with receiving() as canary, receiving(fail_first=100, fail_status=302,
                                          location=canary.url) as redirecting:
        async with service(store):
            job = await delivered(store, await submit_script(
                store, callback_url=redirecting.url), status=StageStatus.FAILED)
        assert len(redirecting.got()) == 2 and canary.got() == []
    assert "HTTP 302 (redirects are not followed)" in (job.observers[NOTIFY].error or "")


async def test_410_stops_at_once(redis: Any, settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings), TABLE)
    with receiving(fail_first=100, fail_status=410) as receiver:
        async with service(store):
            job = await delivered(store, await submit_script(store, callback_url=receiver.url),
                                  status=StageStatus.FAILED)
        assert len(receiver.got()) == 1
    assert "410" in (job.observers[NOTIFY].error or "")


async def test_every_attempt_and_worker_uses_the_same_id(redis: Any,
                                                         settings: Settings) -> None:
    store = JobStore(redis, webhook_settings(settings), TABLE)
    with receiving(fail_first=1) as receiver:
        async with service(store):
            job_id = await submit_script(store, callback_url=receiver.url)
            await delivered(store, job_id)
        first, second = receiver.got()
    event = EventMessage(job_id=job_id, event="completed", status="completed", at="",
                         options="{}")
    assert first.id == second.id == webhook_id(event)
    assert first.headers["webhook-timestamp"] <= second.headers["webhook-timestamp"]


# -- submission -----------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "0177.0.0.1", "0x7f.1",
                                  "[::1]", "[::ffff:127.0.0.1]", "localhost", "127.1"])
async def test_a_refused_callback_is_a_readable_400_and_reaches_nothing(
        settings: Settings, host: str) -> None:
    config = msgspec.structs.replace(settings, webhook_secret=SECRET)
    with receiving() as canary:
        async with serve(config) as client:
            url = f"http://{host}:{canary.port}/hook"
            response = await submit(client, callback_url=url)
            assert response.status_code == 400, response.text
            message = response.json()["error"]["message"]
            assert "callback_url" in message and url in message
            assert "loopback address" in message and "ALLOW_PRIVATE_URLS" in message
            job_id = (await submit(client)).json()["job_id"]
            rerun = await client.post(f"/jobs/{job_id}/rerun",
                                      json={"from_stage": "decode", "callback_url": url})
            assert rerun.status_code == 400 and "loopback" in rerun.text
        assert canary.got() == []


@pytest.mark.parametrize(("fields", "message"), [
    ({"callback_url": "ftp://example.com/x"}, "http:// or https://"),
    ({"callback_url": "https://user:pw@example.com/x"}, "no user name or password"),
    ({"callback_events": "stage"}, "needs a callback_url"),
    ({"callback_url": "https://example.com/", "callback_events": "all"}, "callback_events")])
async def test_malformed_callback_fields_are_400(settings: Settings, fields: dict[str, str],
                                                 message: str) -> None:
    async with serve(webhook_settings(settings)) as client:
        response = await submit(client, **fields)
    assert response.status_code == 400 and message in response.text, response.text


async def test_without_a_secret_callbacks_are_refused(settings: Settings) -> None:
    async with serve(settings) as client:
        response = await submit(client, callback_url="https://example.com/hook")
    assert response.status_code == 400 and "WEBHOOK_SECRET" in response.text


async def test_the_job_view_shows_the_webhook(redis: Any, settings: Settings) -> None:
    config = webhook_settings(settings)
    store = JobStore(redis, config, TABLE)
    with receiving(fail_first=1) as receiver:
        async with serve(config) as client:
            response = await submit(client, callback_url=receiver.url)
            assert response.status_code == 202, response.text
            job_id = response.json()["job_id"]
            view = (await client.get(f"/jobs/{job_id}")).json()
            assert view["webhook"] is None  # no event yet
            assert view["options"]["callback_url"] == receiver.url
            async with service(store, GATEWAY_STAGES):
                await delivered(store, job_id)
            view = (await client.get(f"/jobs/{job_id}")).json()
    assert view["webhook"] == {"event": "job.completed", "run": 1, "status": "delivered",
                               "attempts": 2, "last_error": None, "next_attempt_at": None}


async def test_stt_submit_with_a_callback_url(redis: Any, settings: Settings,
                                              tmp_path: Path) -> None:
    config = webhook_settings(settings)
    store = JobStore(redis, config, TABLE)
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    with receiving() as receiver:
        async with serve(config) as client, service(store, GATEWAY_STAGES):
            code, _, err = await stt("submit", str(audio), "--url", str(client.base_url),
                                     "--wait", "--callback-url", receiver.url)
            assert code == 0, err
            job_id = err.split("job ", 1)[1].split()[0]
            await delivered(store, job_id)
        [request] = receiver.got()
    assert request.verified()["data"]["job_id"] == job_id


def test_stt_up_starts_a_notify_worker() -> None:
    assert parse_workers("")[NOTIFY] == 1
    assert parse_workers("notify=2,decode=1")[NOTIFY] == 2
