"""A real headless Chromium (Debian's, driven by Playwright) for the web page's tests, with
every request it makes recorded, and screenshots kept under artifacts/web/."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Page, Request, async_playwright

from tests.support.workers import REPO

CHROMIUM = "/usr/bin/chromium"
#: The flags that keep Chromium from calling home (updates, sync, QUIC probes) and run it
#: as root in a container.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "artifacts" / "web"
#: What one step of a test may take in the browser, in milliseconds.
STEP_MS = 30_000


@dataclass
class Browser:
    page: Page
    requests: list[str] = field(default_factory=list)

    def hosts(self) -> set[str]:
        """The hosts every request went to (data: and blob: URLs have none)."""
        return {urlsplit(url).hostname or "" for url in self.requests
                if urlsplit(url).scheme in ("http", "https", "ws", "wss")}

    async def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@asynccontextmanager
async def browser(width: int = 1280, height: int = 900) -> AsyncIterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: scripts/install.sh test installs it as root "
                    "(apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS,
                                                    timeout=STEP_MS)
        try:
            context = await chromium.new_context(viewport={"width": width, "height": height},
                                                 accept_downloads=True)
            context.set_default_timeout(STEP_MS)
            page = await context.new_page()
            recorded = Browser(page)

            def record(request: Request) -> None:
                recorded.requests.append(request.url)

            context.on("request", record)
            yield recorded
        finally:
            await chromium.close()
