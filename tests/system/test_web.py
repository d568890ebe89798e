"""The web page and the API docs in a real headless Chromium, against a real deployment:
upload, follow the stages, read, hear and fix the transcript, download, delete; with API
keys; and the docs with no request leaving this machine."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Dialog, Page, expect

from stages.table import STAGES, TABLE
from tests.support.audio import sample_wav, silent_wav
from tests.support.browser import browser
from tests.system.conftest import Service

pytestmark = pytest.mark.system

TERMINAL = ("completed", "failed", "cancelled")
REAL_STAGES = {stage: TABLE.spec(stage).stage for stage in STAGES}


#: Drops a file (name, base64 bytes) on the page's drop zone, as a user's drag does.
DROP = """([name, data]) => {
    const bytes = Uint8Array.from(atob(data), c => c.charCodeAt(0));
    const transfer = new DataTransfer();
    transfer.items.add(new File([bytes], name, {type: "audio/wav"}));
    const zone = document.getElementById("drop");
    for (const type of ["dragenter", "dragover", "drop"]) {
        zone.dispatchEvent(new DragEvent(type, {dataTransfer: transfer, bubbles: true,
                                                cancelable: true}));
    }
}"""


def base_url(service: Service) -> str:
    return f"http://127.0.0.1:{service.settings.port}"


async def accept(dialog: Dialog) -> None:
    await dialog.accept()


async def upload(page: Page, audio: Path, dropped: bool = False) -> str:
    """Submits ``audio`` through the form, chosen with the file picker or ``dropped`` on
    it; the id of the job the page then shows."""
    if dropped:
        await page.evaluate(DROP, [audio.name, base64.b64encode(audio.read_bytes()).decode()])
    else:
        await page.get_by_label("Audio or video file").set_input_files(str(audio))
    assert await page.evaluate("document.getElementById('file').files[0].name") == audio.name
    await page.get_by_role("button", name="Transcribe").click()
    await page.wait_for_url("**/#job=*")
    return page.url.rpartition("=")[2]


async def bar_values(page: Page) -> dict[str, float]:
    values: dict[str, float] = await page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('.stage progress')]"
        ".map(bar => [bar.id, bar.value]))")
    return values


async def downloaded(page: Page, format: str) -> str:  # noqa: A002 - the API's name
    async with page.expect_download() as download:
        await page.get_by_role("button", name=f"Download {format}").click()
    return Path(await (await download.value).path()).read_text()


async def rename_and_delete(page: Page, service: Service, job_id: str, label: str,
                            name: str, headers: dict[str, str] | None = None) -> None:
    """Renames a speaker inline, finds the name in the SRT, deletes the job."""
    box = page.get_by_label(f"Name of {label}")
    await box.fill(name)
    await box.press("Enter")
    await expect(page.locator("#transcript .who", has_text=name).first).to_be_visible()
    assert f"{name}: " in await downloaded(page, "srt")
    assert '"speakers"' in await downloaded(page, "json")
    page.once("dialog", accept)
    await page.get_by_role("button", name="Delete job").click()
    await expect(page.locator("#job")).to_be_hidden()
    await expect(page.locator(f"#jobs a[href='#job={job_id}']")).to_have_count(0)
    assert (await service.http.get(f"/jobs/{job_id}", headers=headers)).status_code == 404


@pytest.mark.models
async def test_a_conversation_through_the_page(deploy: Any, tmp_path: Path) -> None:
    service: Service = await deploy(stage_classes=REAL_STAGES)
    started = time.monotonic()
    async with browser() as chrome:
        page = chrome.page
        await page.goto(base_url(service))
        job_id = await upload(page, sample_wav())
        await expect(page.locator("#jobs a", has_text="sample.wav")).to_be_visible()

        # The bars follow the stages as they run: some seen part-way, all full at the end.
        seen: set[float] = set()
        while not (await page.locator("#job-status").inner_text()).startswith(TERMINAL):
            seen |= set((await bar_values(page)).values())
            assert time.monotonic() - started < 600, "the job took more than 10 minutes"
            await asyncio.sleep(0.1)
        assert await page.locator("#job-status").text_content() == "completed"
        assert any(0 < value < 100 for value in seen), seen
        assert set((await bar_values(page)).values()) == {100}
        await expect(page.locator(".stage[data-status=done]")).to_have_count(3)
        await expect(page.locator("#jobs li", has_text="sample.wav")).to_contain_text(
            "completed")

        # Two speakers, each with paragraphs in its colour and spans on the timeline.
        await expect(page.locator("#speakers li")).to_have_count(2)
        assert await page.locator("#transcript p").count() > 2
        assert await page.locator("#timeline rect").count() > 2
        await chrome.screenshot("conversation")

        # A word clicked: the player goes there and the word is marked.
        word = page.locator(".word[data-start]").nth(40)
        start = float(await word.get_attribute("data-start") or "nan")
        assert start > 5
        await word.click()
        at, marked = await page.evaluate(
            "(() => { const player = document.getElementById('player'); player.pause();"
            " return [player.currentTime,"
            " Number(document.querySelector('.word.current').dataset.start)]; })()")
        assert start - 0.01 <= at < start + 1.0, (start, at)
        assert start <= marked <= at + 0.01, (start, marked, at)

        # Named with "remember" ticked: the voice is known to the next job that asks.
        await page.get_by_label("Remember the voices I name").check()
        await rename_and_delete(page, service, job_id, "SPEAKER_00", "Alice")
        known = (await service.http.get("/speakers")).json()
        assert [v["name"] for v in known] == ["Alice"], known
        await page.get_by_label("Name known voices").check()
        job_id = await upload(page, sample_wav())
        await expect(page.locator("#job-status")).to_have_text("completed", timeout=600_000)
        await expect(page.get_by_label("Name of SPEAKER_00")).to_have_value("Alice")
        assert chrome.hosts() == {"127.0.0.1"}, chrome.requests


async def test_the_page_asks_for_the_key_at_phone_width(deploy: Any, tmp_path: Path) -> None:
    service: Service = await deploy(api_keys="key-one,key-two")
    key = {"Authorization": "Bearer key-one"}
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav(3.0))
    async with browser(width=390, height=844) as chrome:
        page = chrome.page
        await page.goto(base_url(service))
        await expect(page.get_by_role("dialog")).to_be_visible()
        await page.get_by_label("Key", exact=True).fill("key-one")
        await page.get_by_role("button", name="Use this key").click()
        job_id = await upload(page, audio, dropped=True)
        await expect(page.locator("#job-status")).to_have_text("completed")
        await expect(page.locator("#speakers li")).to_have_count(2)
        # The audio came as a blob (a player cannot send the key), seekable all the same.
        await page.wait_for_function(
            "document.getElementById('player').readyState >= 1")
        assert (await page.locator("#player").get_attribute("src") or "").startswith("blob:")
        await page.locator(".word[data-start]").first.click()
        assert await page.evaluate("document.getElementById('player').currentTime") < 1
        # Readable at phone width: nothing wider than the screen.
        wide = await page.evaluate(
            "[...document.querySelectorAll('body *')].filter(e => "
            "e.getBoundingClientRect().right > window.innerWidth + 1).map(e => e.id || e.tagName)")
        assert not wide, wide
        await chrome.screenshot("phone")
        # A rerun with another speaker count: a second run, followed to its end.
        await page.get_by_label("Rerun with").fill("3")
        await page.get_by_role("button", name="Rerun").click()
        await expect(page.locator("#job-status")).to_have_text("completed (run 2)")
        job = (await service.http.get(f"/jobs/{job_id}", headers=key)).json()
        assert job["run"] == 2 and job["options"]["num_speakers"] == 3
        # The key stays in this tab only; another key does not see the job.
        assert await page.evaluate("sessionStorage.getItem('stt-api-key')") == "key-one"
        other = await service.http.get(f"/jobs/{job_id}",
                                       headers={"Authorization": "Bearer key-two"})
        assert other.status_code == 404
        await rename_and_delete(page, service, job_id, "SPEAKER_01", "Bob", key)


async def test_the_api_docs_work_offline(deploy: Any, tmp_path: Path) -> None:
    service: Service = await deploy()
    audio = tmp_path / "talk.wav"
    audio.write_bytes(silent_wav())
    async with browser() as chrome:
        page = chrome.page
        for path in ("/schema", "/docs"):
            await page.goto(base_url(service) + path)
            await expect(page.locator(".opblock").first).to_be_visible()
        assert await page.locator(".opblock").count() > 15

        # Try it out: POST /jobs with a file from the form Swagger UI builds from the schema.
        operation = page.locator("#operations-default-JobsCreateJob")
        await operation.locator(".opblock-summary").click()
        await operation.get_by_role("button", name="Try it out").click()
        await operation.locator("input[type=file]").set_input_files(str(audio))
        await operation.get_by_role("button", name="Execute").click()
        answer = operation.locator(".live-responses-table tbody tr")
        await expect(answer.locator(".response-col_status")).to_have_text("202")
        assert '"job_id"' in await answer.locator(".response-col_description").inner_text()
        await chrome.screenshot("docs")
    assert chrome.hosts() == {"127.0.0.1"}, chrome.requests
    listed = (await service.http.get("/jobs")).json()["jobs"]
    assert [job["input_name"] for job in listed] == ["talk.wav"]
