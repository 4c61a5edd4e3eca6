"""One task's page: run a computer-use action on it, then observe it (url + screenshot).

An action is bounded by the action timeout, which includes the page settling after it
(`settle.py`: any navigation the action started, loaded or failed), so the screenshot shows
the result. A navigation the guard refused leaves Chromium on its error page; the session
goes back to the page the model was on, and the refusal is in `refused`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page

from app.tools.browser import actions as a
from app.tools.browser.guard import NavigationGuard, Refusal
from app.tools.browser.routing import GuardedContext
from app.tools.browser.settle import LoadWatch

PAGE_TEXT_JS = "() => document.body ? document.body.innerText : ''"
ERROR_PAGE = "chrome-error://"


class BrowserFailed(Exception):
    """The page no longer answers (crashed, closed, hung): the task cannot go on."""


@dataclass(frozen=True, slots=True)
class Observation:
    url: str
    png: bytes = field(repr=False)


@dataclass(slots=True)
class SessionConfig:
    screen: a.Screen
    action_timeout_s: float
    wait_s: float = 5.0  # what `wait_5_seconds` waits
    home_url: str | None = None  # where `search` goes (the agent's start_url)


class BrowserSession:
    def __init__(
        self,
        page: Page,
        guarded: GuardedContext,
        guard: NavigationGuard,
        config: SessionConfig,
        report: Callable[[Refusal, dict[str, Any]], None],
        watch: LoadWatch,
    ) -> None:
        self.page = page
        self.guard = guard
        self._report = report
        self.config = config
        self.refused: list[Refusal] = []  # since the last action began
        self._watch = watch
        self._followups: set[asyncio.Task[Any]] = set()
        guarded.on_popup = self._follow_popup
        page.set_default_timeout(config.action_timeout_s * 1000)

    @property
    def url(self) -> str:
        return self.page.url

    def note_refusal(self, refusal: Refusal) -> None:
        self.refused.append(refusal)

    # --- running actions ----------------------------------------------------------------

    async def start(self, url: str) -> None:
        """Open `url` (the agent's start_url) before the model's first turn."""
        await self._act(lambda: self._navigate(url))

    async def run(self, name: str, args: a.BaseArgs) -> None:
        """Run one action and let the page settle; `ActionError` if it cannot be done."""
        self.refused.clear()
        await self._act(lambda: self._dispatch(name, args))

    async def _act(self, action: Callable[[], Awaitable[None]]) -> None:
        timeout = self.config.action_timeout_s
        error: a.ActionError | None = None
        self._watch.begin()
        try:
            async with asyncio.timeout(timeout):
                try:
                    await action()
                except a.ActionError as exc:
                    error = exc
                except PlaywrightError as exc:
                    error = a.ActionError(f"the browser could not do it: {_first_line(exc)}")
                await self._settle()
        except TimeoutError:
            error = error or a.ActionError(f"the action did not finish within {timeout:g}s")
        await self._leave_error_page()
        if error is not None:
            raise error

    async def observe(self) -> Observation:
        """The page now: its URL and a PNG of the viewport (exactly screen-sized)."""
        try:
            async with asyncio.timeout(self.config.action_timeout_s):
                png = await self.page.screenshot(type="png")
        except (PlaywrightError, TimeoutError) as exc:
            raise BrowserFailed(f"the page did not give a screenshot: {_first_line(exc)}") from exc
        return Observation(self.page.url, png)

    async def title_and_text(self, limit: int) -> tuple[str, str]:
        """The page's title and visible text (first `limit` characters), best effort."""
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout(self.config.action_timeout_s):
                title = await self.page.title()
                text = str(await self.page.evaluate(PAGE_TEXT_JS))
                return title, text[:limit]
        return "", ""

    # --- the actions --------------------------------------------------------------------

    async def _dispatch(self, name: str, args: a.BaseArgs) -> None:
        page, screen = self.page, self.config.screen
        mouse, keyboard = page.mouse, page.keyboard
        match args:
            case a.TypeTextAt():
                await mouse.click(screen.x(args.x), screen.y(args.y))
                if args.clear_before_typing:
                    await keyboard.press("ControlOrMeta+A")
                    await keyboard.press("Delete")
                await keyboard.type(args.text)
                if args.press_enter:
                    await keyboard.press("Enter")
            case a.ScrollAt():
                await mouse.move(screen.x(args.x), screen.y(args.y))
                await self._wheel(args.direction, args.magnitude)
            case a.DragAndDrop():
                await mouse.move(screen.x(args.x), screen.y(args.y))
                await mouse.down()
                await mouse.move(
                    screen.x(args.destination_x), screen.y(args.destination_y), steps=10
                )
                await mouse.up()
            case a.Point() if name == "hover_at":
                await mouse.move(screen.x(args.x), screen.y(args.y))
            case a.Point():
                await mouse.click(screen.x(args.x), screen.y(args.y))
            case a.KeyCombination():
                await keyboard.press(a.playwright_keys(args.keys))
            case a.Navigate():
                await self._navigate(args.url)
            case a.ScrollDocument():
                await mouse.move(screen.width // 2, screen.height // 2)
                await self._wheel(args.direction, a.DEFAULT_SCROLL_MAGNITUDE)
            case _:
                await self._no_argument_action(name)

    async def _no_argument_action(self, name: str) -> None:
        if name == "wait_5_seconds":
            await asyncio.sleep(self.config.wait_s)
        elif name == "go_back":
            await self.page.go_back()
        elif name == "go_forward":
            await self.page.go_forward()
        elif name == "search":
            if self.config.home_url is None:
                raise a.ActionError(
                    "this agent has no search page (no start_url); use navigate with a URL"
                )
            await self._navigate(self.config.home_url)
        # open_web_browser: the browser is already open; the observation answers it

    async def _navigate(self, url: str) -> None:
        cleaned, refusal = self.guard.check_navigate(url)
        if refusal is not None:
            self._report(refusal, {})  # notes it here too (see BrowserPool.session)
            raise a.NavigationRefused(refusal)
        await self.page.goto(cleaned)

    async def _wheel(self, direction: str, magnitude: int) -> None:
        screen = self.config.screen
        if direction in ("up", "down"):
            amount = magnitude / a.GRID * screen.height
            await self.page.mouse.wheel(0, amount if direction == "down" else -amount)
        else:
            amount = magnitude / a.GRID * screen.width
            await self.page.mouse.wheel(amount if direction == "right" else -amount, 0)

    # --- settling -----------------------------------------------------------------------

    async def _settle(self) -> None:
        """Wait for what the action started: navigations (settle.py), popups followed."""
        await self._watch.settle()
        if self._followups:
            await asyncio.wait(self._followups)
            await self._watch.settle()

    async def _leave_error_page(self) -> None:
        """From Chromium's error page (a refused or failed navigation), go back."""
        if not self.page.url.startswith(ERROR_PAGE):
            return
        with contextlib.suppress(PlaywrightError, TimeoutError):
            async with asyncio.timeout(self.config.action_timeout_s):
                await self.page.go_back()

    def _follow_popup(self, url: str) -> None:
        """A popup to an allowed URL: open it in this page instead (one tab only)."""
        task = asyncio.ensure_future(self._goto_quietly(url))
        self._followups.add(task)
        task.add_done_callback(self._followups.discard)

    async def _goto_quietly(self, url: str) -> None:
        with contextlib.suppress(PlaywrightError):
            await self.page.goto(url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
