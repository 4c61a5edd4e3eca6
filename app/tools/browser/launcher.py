"""The browsers of the service: one headless Chromium per browser task, at most
`BIGTHREE_BROWSER_MAX_PAGES` at once (a bulkhead), each with one fresh context and one page.

A task gets its own browser process, not only its own context: nothing (cookies, storage,
cache, service workers, a crashed renderer) is shared between tasks, and when the task ends
— however it ends — closing that browser leaves no Chromium process behind. Launching takes
a few hundred milliseconds (see bench/README.md). Closing is shielded from a second
cancellation, and `aclose()` waits for closes still running at shutdown. If the service
itself is killed, Playwright's driver process loses its pipe and takes the browsers down.

The Playwright driver (a Node process) starts with the first browser task and stops with
the service. Chromium's traffic goes through the session's SOCKS gate (`gate.py`), its
context routes through the navigation guard (`routing.py`); downloads are never accepted
and service workers are blocked (their requests would bypass routing).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import structlog
from playwright.async_api import Browser, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError

from app.core.config import Settings
from app.core.metrics import Metrics
from app.resilience.bulkhead import Bulkhead, BulkheadConfig
from app.resilience.errors import BulkheadFull
from app.tools.browser.executable import BrowserChoice, BrowserUnavailable, choose
from app.tools.browser.gate import ConnectionGate
from app.tools.browser.guard import NavigationGuard, Refusal
from app.tools.browser.routing import GuardedContext
from app.tools.browser.session import BrowserFailed, BrowserSession, SessionConfig
from app.tools.browser.settle import LoadWatch

log = structlog.get_logger(__name__)

CLOSE_TIMEOUT_S = 15.0
MAX_WAITERS = 1000
CHROMIUM_ARGS = (
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-dev-shm-usage",  # containers have a small /dev/shm
    "--disable-domain-reliability",
    "--disable-sync",
    "--no-default-browser-check",
    "--no-first-run",
    "--no-pings",
)

Report = Callable[[Refusal, dict[str, Any]], None]


class BrowserBusy(Exception):
    """Every page slot stayed taken for as long as the task could wait."""

    def __init__(self, limit: int, waited_s: float) -> None:
        super().__init__(
            f"all {limit} browser pages are in use (BIGTHREE_BROWSER_MAX_PAGES) and none "
            f"came free within {waited_s:g}s (BIGTHREE_BROWSER_MAX_WAIT_S)"
        )
        self.limit = limit


class BrowserPool:
    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._bulkhead = Bulkhead(
            "browser",
            BulkheadConfig(
                max_concurrent=settings.browser_max_pages,
                max_wait_s=settings.browser_max_wait_s,
                max_waiters=MAX_WAITERS,
            ),
        )
        self._playwright: Playwright | None = None
        self._choice: BrowserChoice | None = None
        self._start_lock = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()
        metrics.browser_pages_max.set(settings.browser_max_pages)

    @property
    def limit(self) -> int:
        return self._bulkhead.limit

    @property
    def full(self) -> bool:
        return self._bulkhead.in_use >= self._bulkhead.limit

    @contextlib.asynccontextmanager
    async def session(
        self, guard: NavigationGuard, config: SessionConfig, report: Report, *, max_wait_s: float
    ) -> AsyncIterator[BrowserSession]:
        """A fresh browser for one task, closed on exit; `BrowserBusy`, `BrowserUnavailable`."""
        wait = max(0.0, min(max_wait_s, self._settings.browser_max_wait_s))
        try:
            await self._bulkhead.acquire(max_wait_s=wait)
        except BulkheadFull:
            raise BrowserBusy(self.limit, wait) from None
        try:
            holder: list[BrowserSession] = []

            def noted(refusal: Refusal, extra: dict[str, Any]) -> None:
                if holder:
                    holder[0].note_refusal(refusal)
                report(refusal, extra)

            gates = (
                ConnectionGate(guard, lambda refusal: noted(refusal, {})),  # the page's
                ConnectionGate(NavigationGuard(()), None),  # Chromium's own: admits nothing
            )
            guarded = GuardedContext(guard, noted)
            browser: Browser | None = None
            try:
                for gate in gates:
                    await gate.start()
                browser = await self._launch(gates[1].proxy_url)
                self._metrics.browser_pages_open.inc()
                try:
                    context = await browser.new_context(
                        viewport={"width": config.screen.width, "height": config.screen.height},
                        device_scale_factor=1,
                        accept_downloads=False,
                        service_workers="block",
                        proxy={"server": gates[0].proxy_url},
                    )
                    page = await guarded.open_page(context)
                    watch = await LoadWatch.attach(page, guarded.download_refused)
                except PlaywrightError as exc:
                    raise BrowserFailed(f"the browser did not open a page: {exc}") from exc
                holder.append(BrowserSession(page, guarded, guard, config, noted, watch))
                yield holder[0]
            finally:
                await self._close(browser, gates, guarded)
        finally:
            self._bulkhead.release()

    async def aclose(self) -> None:
        """Wait for browsers still closing, then stop the Playwright driver."""
        if self._closing:
            await asyncio.wait(self._closing, timeout=CLOSE_TIMEOUT_S)
        if self._playwright is not None:
            with contextlib.suppress(Exception):
                await self._playwright.stop()
            self._playwright = None

    # --- launching and closing ----------------------------------------------------------

    async def _driver(self) -> tuple[Playwright, BrowserChoice]:
        async with self._start_lock:
            if self._playwright is None:
                try:
                    self._playwright = await async_playwright().start()
                except Exception as exc:
                    raise BrowserUnavailable(f"Playwright did not start: {exc}") from exc
            if self._choice is None:
                configured = self._settings.browser_executable
                self._choice = choose(configured, self._playwright.chromium.executable_path)
                log.info("browser_chosen", browser=self._choice.description)
            return self._playwright, self._choice

    async def _launch(self, proxy_url: str) -> Browser:
        playwright, choice = await self._driver()
        launch = asyncio.ensure_future(
            playwright.chromium.launch(
                executable_path=choice.executable,
                headless=True,
                args=list(CHROMIUM_ARGS),
                proxy={"server": proxy_url},
                timeout=self._settings.browser_action_timeout_s * 1000 * 3,
            )
        )
        try:
            # shielded: a task cancelled mid-launch must still close what gets launched
            return await asyncio.shield(launch)
        except asyncio.CancelledError:
            launch.add_done_callback(self._close_late_launch)
            raise
        except PlaywrightError as exc:
            raise BrowserUnavailable(
                f"{choice.description} did not start: {str(exc).splitlines()[0]}"
            ) from exc

    def _close_late_launch(self, launch: asyncio.Future[Browser]) -> None:
        if not launch.cancelled() and launch.exception() is None:
            self._track(self._close_browser(launch.result()))

    async def _close(
        self,
        browser: Browser | None,
        gates: tuple[ConnectionGate, ...],
        guarded: GuardedContext,
    ) -> None:
        async def close_all() -> None:
            if browser is not None:
                await self._close_browser(browser)
                self._metrics.browser_pages_open.dec()
            await guarded.aclose()
            for gate in gates:
                await gate.aclose()

        closing = self._track(close_all())
        # shielded: a second cancellation must not leave Chromium running
        await asyncio.shield(closing)

    async def _close_browser(self, browser: Browser) -> None:
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await browser.close()
        except (PlaywrightError, TimeoutError) as exc:
            log.warning("browser_close_failed", error=str(exc).splitlines()[0])

    def _track(self, coroutine: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coroutine)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return task
