"""When has the page finished reacting to an action? Before the screenshot, that is.

Playwright's raw mouse and keyboard do not wait for what a click or a key starts, and a
navigation begins in Chromium's browser process some time after the input event was
handled. So the session watches the main frame over its own CDP session:

1. it waits for two animation frames, evaluated over that same CDP session: the renderer
   reports every navigation it requested while handling the input
   (`Page.frameRequestedNavigation`) before this evaluation answers, so none is missed;
2. a requested navigation that has not started loading gets `START_S` to start (a link to
   a fragment of the same page never does);
3. while the main frame loads — a new document, or Chromium's error page for a navigation
   the guard refused — it waits for it to stop (`Page.frameStoppedLoading`);
4. a navigation that stopped without a new document may have become a download, which
   Chromium announces only after that (`Page.downloadWillBegin`): it gets `START_S` to.
The caller bounds the whole wait by the action timeout. Downloads are reported to
`on_download` from here, in order with the rest (they are refused; see routing.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from playwright.async_api import CDPSession, Page
from playwright.async_api import Error as PlaywrightError

FRAMES_JS = "new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"
FRAMES_S = 1.0  # a page that never paints (busy, hidden) must not hold the action
START_S = 2.0


OnDownload = Callable[[str, str], None]  # (url, suggested file name)


class LoadWatch:
    def __init__(self, cdp: CDPSession, main_frame: str, on_download: OnDownload) -> None:
        self._cdp = cdp
        self._main = main_frame
        self._on_download = on_download
        self._requested = asyncio.Event()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._stopped.set()
        self._committed = False
        self._downloaded = asyncio.Event()
        cdp.on("Page.frameRequestedNavigation", self._on_requested)
        cdp.on("Page.frameStartedLoading", self._on_started)
        cdp.on("Page.frameStoppedLoading", self._on_stopped)
        cdp.on("Page.frameNavigated", self._on_navigated)
        cdp.on("Page.downloadWillBegin", self._on_download_event)

    @classmethod
    async def attach(cls, page: Page, on_download: OnDownload) -> LoadWatch:
        cdp = await page.context.new_cdp_session(page)
        await cdp.send("Page.enable")
        tree = await cdp.send("Page.getFrameTree")
        return cls(cdp, str(tree["frameTree"]["frame"]["id"]), on_download)

    def begin(self) -> None:
        """Forget navigations requested before this action."""
        self._requested.clear()
        self._started.clear()
        self._downloaded.clear()
        self._committed = False

    async def settle(self) -> None:
        with contextlib.suppress(TimeoutError, PlaywrightError):
            async with asyncio.timeout(FRAMES_S):
                await self._cdp.send(
                    "Runtime.evaluate", {"expression": FRAMES_JS, "awaitPromise": True}
                )
        if self._requested.is_set() and not self._started.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(START_S):
                    await self._started.wait()
        await self._stopped.wait()
        if self._started.is_set() and not self._committed and not self._downloaded.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(START_S):
                    await self._downloaded.wait()

    async def aclose(self) -> None:
        with contextlib.suppress(PlaywrightError):
            await self._cdp.detach()

    def _on_requested(self, event: dict[str, Any]) -> None:
        if event.get("frameId") == self._main and event.get("disposition") == "currentTab":
            self._requested.set()

    def _on_started(self, event: dict[str, Any]) -> None:
        if event.get("frameId") == self._main:
            self._started.set()
            self._stopped.clear()

    def _on_stopped(self, event: dict[str, Any]) -> None:
        if event.get("frameId") == self._main:
            self._stopped.set()

    def _on_navigated(self, event: dict[str, Any]) -> None:
        frame = event.get("frame") or {}
        if frame.get("id") == self._main:
            self._committed = True

    def _on_download_event(self, event: dict[str, Any]) -> None:
        self._downloaded.set()
        self._on_download(str(event.get("url") or ""), str(event.get("suggestedFilename") or ""))
