"""Webhooks through deployed processes: the gateway, the stage workers and the real notify
worker (`stt-worker notify`), delivering to a real receiver on 127.0.0.1 that verifies
every signature with `standardwebhooks`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.receiver import SECRET, receiving, refusing
from tests.support.workers import until
from tests.system.conftest import OPTION_STAGES, Service, submit

pytestmark = pytest.mark.system

STAGE_CLASSES = {**OPTION_STAGES, "notify": "stages.notify:NotifyStage"}


@pytest.fixture
def webhook_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What every process of the deployment reads (they inherit this environment)."""
    for name, value in {"WEBHOOK_SECRET": SECRET, "ALLOW_PRIVATE_URLS": "true",
                        "WEBHOOK_BACKOFF_SECONDS": "3", "WEBHOOK_BACKOFF_MAX_SECONDS": "3",
                        "WEBHOOK_MAX_ATTEMPTS": "4", "WEBHOOK_TIMEOUT_SECONDS": "5",
                        "WEBHOOK_CONCURRENCY": "4"}.items():
        monkeypatch.setenv(name, value)


async def webhook(service: Service, job_id: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        state = (await service.job(job_id)).get("webhook")
        return state is not None and state["status"] == status

    await until(reached, timeout=90, what=f"the webhook of {job_id} to be {status}")
    state: dict[str, Any] = (await service.job(job_id))["webhook"]
    return state


@pytest.mark.usefixtures("webhook_env")
async def test_the_event_survives_sigkill_between_attempts(deploy) -> None:  # type: ignore[no-untyped-def]
    service: Service = await deploy(STAGE_CLASSES)
    notify = service.start_worker("notify", "notify-0")
    with receiving(fail_first=1) as receiver:
        response = await submit(service, callback_url=receiver.url)
        assert response.status_code == 202, response.text
        job_id = response.json()["job_id"]
        retrying = await webhook(service, job_id, "retrying")
        assert retrying["attempts"] == 1 and retrying["last_error"] == "HTTP 500"
        assert retrying["next_attempt_at"] is not None
        # Between the attempts: the event waits in the schedule, no worker holds it.
        notify.kill()
        notify.wait(timeout=30)
        seen_at_kill = len(receiver.got())
        service.start_worker("notify", "notify-1")  # another name: nothing of its own
        state = await webhook(service, job_id, "delivered")
        requests = receiver.got()
    assert len(requests) > seen_at_kill, "the delivery after the kill"
    assert len({r.id for r in requests}) == 1
    assert [r.verified()["data"]["job_id"] for r in requests] == [job_id] * len(requests)
    assert state["attempts"] == len(requests) and state["last_error"] is None
    job = await service.job(job_id)
    assert job["status"] == "completed" and job["error"] is None


@pytest.mark.usefixtures("webhook_env")
async def test_a_receiver_down_past_the_backoff_window(deploy,  # type: ignore[no-untyped-def]
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOK_BACKOFF_SECONDS", "0.2")
    monkeypatch.setenv("WEBHOOK_BACKOFF_MAX_SECONDS", "0.5")
    service: Service = await deploy(STAGE_CLASSES)
    service.start_worker("notify", "notify-0")
    with refusing() as down, receiving() as receiver:
        lost = (await submit(service, callback_url=down)).json()["job_id"]
        fine = (await submit(service, callback_url=receiver.url)).json()["job_id"]
        plain = (await submit(service)).json()["job_id"]
        failed = await webhook(service, lost, "failed")
        await webhook(service, fine, "delivered")
        [request] = receiver.got()
    assert failed["attempts"] == 4 and "gave up after 4 attempts" in failed["last_error"]
    assert request.verified()["data"]["job_id"] == fine
    for job_id in (lost, fine, plain):
        job = await service.wait_finished(job_id)
        assert job["status"] == "completed" and job["error"] is None
    assert (await service.job(plain))["webhook"] is None
    assert (await service.http.get("/health")).status_code == 200
