"""The navigation guard applied to one Playwright browser context — the one place where a
page's traffic is let through or refused (the SOCKS gate in `gate.py` is the backstop).

- Every request the context makes (documents, frames, subresources, fetches, form posts,
  meta refreshes, clicked links, popups) is routed here: refused ones are aborted before
  they leave the browser and reported; allowed ones continue.
- WebSockets are routed too: a refused one is closed without connecting.
- Popups: the computer-use model works in one tab. A script run in every frame before the
  page's own (`ONE_TAB_JS`) makes `window.open` and `target=_blank` links and forms open in
  the same tab, where the navigation is routed like any other. A popup that still opens
  gets its navigation aborted and is closed; when its URL is allowed, the session's page is
  sent there instead (`on_popup`).
- Downloads are refused: the context never accepts them, and each attempt is reported.
- Service workers are blocked (their requests would bypass routing), see `launcher.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable, Coroutine
from typing import Any

import structlog
from playwright.async_api import BrowserContext, Download, Page, Request, Route, WebSocketRoute
from playwright.async_api import Error as PlaywrightError

from app.tools.browser.guard import NavigationGuard, Refusal, Stage

log = structlog.get_logger(__name__)

ONE_TAB_JS = """(() => {
  const sameTab = (url) => { if (url) location.assign(new URL(String(url), location.href)); };
  window.open = function (url) { sameTab(url); return null; };
  const retarget = (event) => {
    const el = event.target && event.target.closest
      && event.target.closest("a[target], area[target], form[target]");
    if (el) el.target = "_self";
  };
  document.addEventListener("click", retarget, true);
  document.addEventListener("submit", retarget, true);
})();"""
ABORT_REASON = "blockedbyclient"  # the page sees net::ERR_BLOCKED_BY_CLIENT
WS_POLICY_VIOLATION = 1008


class GuardedContext:
    """Routes a context's traffic through `guard`; `report` hears every refusal."""

    def __init__(
        self,
        guard: NavigationGuard,
        report: Callable[[Refusal, dict[str, Any]], None],
    ) -> None:
        self._guard = guard
        self._report = report
        self.page: Page | None = None
        self.on_popup: Callable[[str], None] = lambda url: None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._downloads_told: list[str] = []  # reported by one path, to skip on the other

    async def open_page(self, context: BrowserContext) -> Page:
        """Install the routes, then open the session's one page."""
        await context.add_init_script(ONE_TAB_JS)
        await context.route("**/*", self._route)
        await context.route_web_socket(re.compile(r".*"), self._websocket)
        context.on("page", lambda page: self._spawn(self._close_popup(page)))
        page = await context.new_page()
        page.on("download", lambda download: self._spawn(self._refuse_download(download)))
        self.page = page
        return page

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5.0)

    # --- handlers -----------------------------------------------------------------------

    async def _route(self, route: Route) -> None:
        request = route.request
        navigation = request.is_navigation_request()
        if navigation and _page_of(request) is not self.page:
            # a popup's first navigation is issued before its frame exists (no page yet)
            await self._popup_navigation(route, request)
            return
        stage: Stage = "navigation" if navigation else "subresource"
        refusal = self._guard.check(request.url, stage)
        try:
            if refusal is None:
                await route.continue_()
                return
            await route.abort(ABORT_REASON)
        except PlaywrightError:
            return  # the page or context closed meanwhile
        self._report(refusal, {"resource_type": request.resource_type, "method": request.method})

    async def _popup_navigation(self, route: Route, request: Request) -> None:
        with contextlib.suppress(PlaywrightError):
            await route.abort(ABORT_REASON)
        if request.url == "about:blank":
            return
        refusal = self._guard.check(request.url, "popup")
        if refusal is not None:
            self._report(refusal, {"resource_type": request.resource_type})
            return
        self.on_popup(request.url)

    async def _websocket(self, ws: WebSocketRoute) -> None:
        refusal = self._guard.check(ws.url, "websocket")
        if refusal is None:
            ws.connect_to_server()
            return
        with contextlib.suppress(PlaywrightError):
            await ws.close(code=WS_POLICY_VIOLATION, reason="refused by the navigation guard")
        self._report(refusal, {"resource_type": "websocket"})

    async def _close_popup(self, page: Page) -> None:
        with contextlib.suppress(PlaywrightError):
            if await page.opener() is not None:
                await page.close()

    def download_refused(self, url: str, filename: str) -> None:
        """Report a download once, whichever of the two notices comes first: the page's own
        CDP event (in order with its loading, see settle.py) or Playwright's `download`."""
        if url in self._downloads_told:
            self._downloads_told.remove(url)
            return
        self._downloads_told.append(url)
        refusal = Refusal(url, "downloads are refused", "download")
        self._report(refusal, {"filename": filename})

    async def _refuse_download(self, download: Download) -> None:
        self.download_refused(download.url, download.suggested_filename)
        with contextlib.suppress(PlaywrightError):
            await download.cancel()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _page_of(request: Request) -> Page | None:
    try:
        return request.frame.page
    except PlaywrightError:
        return None  # a popup's first request, or a service worker's (they are blocked)
