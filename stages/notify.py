"""The notify stage: delivers a job's events to its ``callback_url`` as signed webhooks.

An observer of the jobs (see the stage table): the runtime gives it an entry when a job
with a callback URL completes or fails, and with ``callback_events=stage`` when each stage
finishes. One call of :meth:`NotifyStage.handle` is one attempt: one POST of the event,
signed per the Standard Webhooks specification (https://www.standardwebhooks.com): headers
``webhook-id`` (the same for every attempt at one event, so receivers can de-duplicate),
``webhook-timestamp`` (of the attempt, in seconds) and ``webhook-signature`` (``v1,`` and
the base64 HMAC-SHA256 of ``id.timestamp.body`` under WEBHOOK_SECRET's key).

A 2xx answer delivers the event; 410 Gone stops (the receiver asked to); anything else, a
redirect included (redirects are not followed), a timeout or a refused connection is
retried with exponential backoff and jitter until WEBHOOK_MAX_ATTEMPTS. The host is
resolved and checked against the address policy (:mod:`pipeline.addresses`) at every
attempt, and the connection goes to the checked address. Response bodies are not read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import http.client
import random
import socket
import threading
import time
from urllib.parse import urlsplit

import msgspec

from pipeline.addresses import Target, connection, resolve
from pipeline.errors import PermanentError, RetryLater, TransientError
from pipeline.stage import EventContext, Observer
from pipeline.types import COMPLETED, FAILED, EventMessage
from stages.options import JobOptions
from stages.settings import Settings

USER_AGENT = "stt-pipeline-webhooks/1"


class EventData(msgspec.Struct, frozen=True, kw_only=True):
    job_id: str
    status: str  # the job's status when the event happened
    run: int
    stage: str | None  # the stage that finished (job.stage_completed events)
    error: str | None  # why the job failed (job.failed)
    result_url: str | None  # the run's result (job.completed)


class WebhookEvent(msgspec.Struct, frozen=True, kw_only=True):
    """The body of a webhook: the Standard Webhooks payload shape."""

    type: str  # job.completed, job.failed or job.stage_completed
    timestamp: str  # when it happened (ISO 8601)
    data: EventData


def event_body(event: EventMessage, settings: Settings) -> WebhookEvent:
    """What an entry reports, as the webhook's body: the same at every attempt."""
    ended = event.event in (COMPLETED, FAILED)
    result = (f"{settings.result_base_url}/jobs/{event.job_id}/runs/{event.run}/result"
              if event.event == COMPLETED else None)
    return WebhookEvent(
        type=f"job.{event.event}" if ended else "job.stage_completed",
        timestamp=event.at,
        data=EventData(job_id=event.job_id, status=event.status, run=event.run,
                       stage=None if ended else event.event, error=event.error,
                       result_url=result))


def webhook_id(event: EventMessage) -> str:
    """The event's id: derived from what it is, so every attempt, whichever worker makes
    it, carries the same one."""
    return f"msg_{event.job_id}_{event.run}_{event.event}"


def sign(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def nominal_backoff(attempt: int, settings: Settings) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1, 2, ...), before jitter:
    doubling from WEBHOOK_BACKOFF_SECONDS up to WEBHOOK_BACKOFF_MAX_SECONDS."""
    return min(settings.webhook_backoff_seconds * 2.0 ** min(attempt - 1, 60),
               settings.webhook_backoff_max_seconds)


def backoff(attempt: int, settings: Settings) -> float:
    """The nominal wait varied by up to a quarter, so that the events of receivers that
    were down together are not all retried at once."""
    return nominal_backoff(attempt, settings) * random.uniform(0.75, 1.25)


def post(target: Target, body: bytes, headers: dict[str, str], timeout: float) -> int:
    """POST ``body`` to the checked target; the answer's status. The whole attempt takes at
    most ``timeout`` seconds: a receiver that answers slowly, byte by byte, is cut off."""
    conn = connection(target, timeout)
    expired = threading.Event()

    def cut_off() -> None:
        expired.set()
        if conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, cut_off)
    timer.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        return conn.getresponse().status  # the body is not read: it is not stored
    except (OSError, http.client.HTTPException) as exc:
        # The socket's own timeout (one read of `timeout` s) can fire before the timer
        # thread runs: the same failure, told the same way.
        if expired.is_set() or isinstance(exc, TimeoutError):
            raise TimeoutError(f"no answer within {timeout:g} s") from None
        raise exc
    finally:
        timer.cancel()
        conn.close()


class NotifyStage(Observer[Settings]):
    name = "notify"

    def handle(self, ctx: EventContext[Settings]) -> None:
        settings, event = ctx.settings, ctx.event
        key = settings.webhook_key
        if key is None:
            raise PermanentError("WEBHOOK_SECRET is not set on the notify worker: events "
                                 "cannot be signed")
        options = msgspec.json.decode(event.options, type=JobOptions)
        if options.callback_url is None:
            return
        body = msgspec.json.encode(event_body(event, settings))
        message_id = webhook_id(event)
        try:
            target = resolve(options.callback_url, allow_private=settings.allow_private_urls)
            timestamp = int(time.time())
            status = post(target, body, {
                "Content-Type": "application/json", "User-Agent": USER_AGENT,
                "webhook-id": message_id, "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(key, message_id, timestamp, body),
            }, settings.webhook_timeout_seconds)
        except (OSError, http.client.HTTPException, TransientError) as exc:
            self._failed(ctx, f"{target_name(options.callback_url)}: {exc}")
            return
        if 200 <= status < 300:
            ctx.log.info("%s delivered (attempt %d, HTTP %d)", message_id, event.attempt,
                         status)
            return
        if status == 410:
            raise PermanentError("the receiver answered 410 Gone: no more attempts")
        reason = f"HTTP {status}" + (" (redirects are not followed)"
                                     if 300 <= status < 400 else "")
        self._failed(ctx, reason)

    @staticmethod
    def _failed(ctx: EventContext[Settings], reason: str) -> None:
        attempt, settings = ctx.event.attempt, ctx.settings
        if attempt >= settings.webhook_max_attempts:
            raise PermanentError(f"gave up after {attempt} attempts; the last: {reason}")
        raise RetryLater(reason, backoff(attempt, settings))


def target_name(url: str) -> str:
    """The URL's host and port, for messages and logs: never its path or query, which may
    carry a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")
