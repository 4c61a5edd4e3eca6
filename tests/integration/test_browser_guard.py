"""The navigation guard against a real headless Chromium: the attack corpus.

A local allowed site (`http://localhost:<A>`) and a refused one (`127.0.0.1:<E>`), both
served by the test. Each case either asks the session to `navigate` somewhere, or opens an
allowed page that tries to reach the refused origin (a clicked link, a redirect chain, a
meta refresh, `window.open`, a form posting elsewhere, subresources, a WebSocket). Every
case must be refused and reported, and the refused origin's server must never receive a
single connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from app.core.config import Settings
from app.core.metrics import Metrics
from app.resilience.errors import BulkheadFull
from app.tools.browser import actions as a
from app.tools.browser.guard import NavigationGuard, Refusal
from app.tools.browser.launcher import BrowserBusy, BrowserPool
from app.tools.browser.session import BrowserSession, SessionConfig
from tests.support.browser import Site, require_chromium, serve_site

pytestmark = pytest.mark.usefixtures("chromium")

LOOKALIKE = "l\u043ecalhost"  # "localhost" with a Cyrillic small o


@pytest.fixture(scope="module")
def chromium() -> None:
    require_chromium()


def full_screen(tag: str) -> str:
    """An element covering the whole viewport, so a click anywhere hits it."""
    style = "position:fixed;left:0;top:0;width:100vw;height:100vh;display:block;border:0"
    return tag.replace("STYLE", style)


def corpus_pages(evil: str) -> dict[str, Any]:
    return {
        "/": "<!doctype html><title>home</title><p>home</p>",
        "/whoami": "<!doctype html><title>whoami</title><p>who</p>",
        "/link": full_screen(f"<a href='{evil}/link' style='STYLE'>evil</a>"),
        "/userinfo-link": full_screen(
            f"<a href='http://localhost@{evil.removeprefix('http://')}/u' style='STYLE'>u</a>"
        ),
        "/relative-link": full_screen(
            f"<a href='//{evil.removeprefix('http://')}/rel' style='STYLE'>r</a>"
        ),
        "/upper-link": full_screen(
            f"<a href='HTTP://{evil.removeprefix('http://').upper()}/UP' style='STYLE'>U</a>"
        ),
        "/popup": full_screen(
            f"<button onclick=\"window.open('{evil}/popup')\" style='STYLE'>p</button>"
        ),
        "/popup-allowed": full_screen(
            "<button onclick=\"window.open('/whoami')\" style='STYLE'>p</button>"
        ),
        "/form-elsewhere": full_screen(
            f"<form method=post action='{evil}/form'><input type=hidden name=secret value=1>"
            "<button style='STYLE'>send</button></form>"
        ),
        "/download": full_screen("<a href='/file.bin' style='STYLE'>get</a>"),
        "/file.bin": (
            200,
            {
                "content-type": "application/octet-stream",
                "content-disposition": "attachment; filename=file.bin",
            },
            "binary",
        ),
        "/redirect": (302, {"location": f"{evil}/redirected"}, ""),
        "/chain": (302, {"location": "/chain2"}, ""),
        "/chain2": (302, {"location": f"{evil}/chained"}, ""),
        "/meta": f"<meta http-equiv=refresh content='0;url={evil}/meta'><p>meta</p>",
        "/script-location": f"<script>location.href = '{evil}/js'</script><p>js</p>",
        "/subresources": (
            f"<img src='{evil}/img.png'><script src='{evil}/s.js'></script>"
            f"<iframe src='{evil}/frame'></iframe>"
            f"<script>fetch('{evil}/fetch').catch(() => 0);"
            f"try {{ new WebSocket('{evil.replace('http', 'ws')}/ws') }} catch (e) {{}}</script>"
            "<p>subresources</p>"
        ),
    }


@dataclass
class Case:
    name: str
    action: str  # "navigate": the URL is the model's; "click": open `url`, click the page
    url: str
    stages: set[str]


def corpus(allowed: str, evil: str) -> list[Case]:
    e = evil.removeprefix("http://")
    port = allowed.rsplit(":", 1)[1]
    punycode = LOOKALIKE.encode("idna").decode()
    nav = {"navigate"}
    return [
        # the model's navigate: refused before the browser makes any request
        Case("upper-case scheme and host", "navigate", f"HTTP://{e.upper()}/x", nav),
        Case("userinfo naming the allowed host", "navigate", f"http://localhost:{port}@{e}/", nav),
        Case("IDN look-alike", "navigate", f"http://{LOOKALIKE}:{port}/", nav),
        Case("its punycode form", "navigate", f"http://{punycode}:{port}/", nav),
        Case("the allowed port on another host", "navigate", f"http://127.0.0.1:{port}/", nav),
        Case("protocol-relative //evil", "navigate", f"//{e}/pr", nav),
        Case("bare host:port", "navigate", f"{e}/bare", nav),
        Case("javascript:", "navigate", "javascript:alert(1)", nav),
        Case("JaVaScRiPt: mixed case", "navigate", "JaVaScRiPt:alert(1)", nav),
        Case("javascript: with a tab inside", "navigate", "java\tscript:alert(1)", nav),
        Case("javascript: after spaces", "navigate", "  javascript:alert(1)", nav),
        Case("data: top-level", "navigate", "data:text/html,<h1>x</h1>", nav),
        Case("file:", "navigate", "file:///etc/passwd", nav),
        Case("chrome:", "navigate", "chrome://version", nav),
        Case("view-source:", "navigate", f"view-source:{allowed}/", nav),
        # the page itself tries
        Case("a clicked link", "click", f"{allowed}/link", {"navigation"}),
        Case("a link with userinfo", "click", f"{allowed}/userinfo-link", {"navigation"}),
        Case("a //evil relative link", "click", f"{allowed}/relative-link", {"navigation"}),
        Case("an upper-case link", "click", f"{allowed}/upper-link", {"navigation"}),
        Case("window.open", "click", f"{allowed}/popup", {"navigation", "popup"}),
        Case("a form posting elsewhere", "click", f"{allowed}/form-elsewhere", {"navigation"}),
        Case("a download", "click", f"{allowed}/download", {"download"}),
        Case("a redirect", "navigate", f"{allowed}/redirect", {"connection"}),
        Case("a redirect chain", "navigate", f"{allowed}/chain", {"connection"}),
        Case("a meta refresh", "navigate", f"{allowed}/meta", {"navigation"}),
        Case("a script setting location", "navigate", f"{allowed}/script-location", {"navigation"}),
        Case(
            "images, scripts, frames, fetch, WebSocket",
            "navigate",
            f"{allowed}/subresources",
            {"subresource", "websocket", "navigation"},  # an iframe's document navigates
        ),
    ]


@pytest.fixture(scope="module")
def evil() -> Iterator[Site]:
    with serve_site({}) as site:
        yield site


@pytest.fixture(scope="module")
def allowed(evil: Site) -> Iterator[Site]:
    with serve_site(corpus_pages(evil.origin())) as site:
        yield site


@pytest.fixture
async def session(allowed: Site) -> AsyncIterator[tuple[BrowserSession, list[Refusal]]]:
    settings = Settings(_env_file=None, browser_action_timeout_s=10)
    pool = BrowserPool(settings, Metrics())
    refusals: list[Refusal] = []
    guard = NavigationGuard([allowed.origin("localhost")])
    config = SessionConfig(a.Screen(800, 600), action_timeout_s=10)
    try:
        async with pool.session(
            guard, config, lambda r, extra: refusals.append(r), max_wait_s=0
        ) as page:
            yield page, refusals
    finally:
        await pool.aclose()


async def run(session: BrowserSession, name: str, **arguments: Any) -> str | None:
    """Run an action; the error the model would read, or None."""
    try:
        await session.run(name, a.parse(name, arguments))
    except a.ActionError as exc:
        return str(exc)
    return None


async def test_attack_corpus_is_refused_and_never_reaches_the_refused_origin(
    session: tuple[BrowserSession, list[Refusal]], allowed: Site, evil: Site
) -> None:
    """Every corpus case is refused at the expected stage, the page is left on an allowed
    page, and the refused origin's server sees no connection at all."""
    page, refusals = session
    home = allowed.origin("localhost")
    problems = []
    for case in corpus(home, evil.origin()):
        assert await run(page, "navigate", url=f"{home}/") is None
        refusals.clear()
        if case.action == "navigate":
            await run(page, "navigate", url=case.url)
        else:
            assert await run(page, "navigate", url=case.url) is None
            await run(page, "click_at", x=500, y=500)
        # Chromium preconnects to a link's origin on mouse-down, before any request: that
        # connection is refused at the SOCKS gate ("connection"), which is fine to see too
        stages = {r.stage for r in refusals}
        if not case.stages & stages or not stages <= case.stages | {"connection"}:
            problems.append(f"{case.name}: refusals {refusals}, expected stages {case.stages}")
        if not page.url.startswith(home):
            problems.append(f"{case.name}: the page was left at {page.url}")
    assert not problems, "\n".join(problems)
    assert evil.connections == 0, evil.hits
    assert allowed.hits["/file.bin"] == 1  # the download was asked for, then refused


async def test_allowed_navigation_passes(
    session: tuple[BrowserSession, list[Refusal]], allowed: Site
) -> None:
    """Upper-case scheme and host to the allowed origin pass, and a popup to an allowed URL
    opens in the session's one page."""
    page, refusals = session
    home = allowed.origin("localhost")
    assert await run(page, "navigate", url=f"HTTP://LOCALHOST:{allowed.port}/whoami") is None
    assert page.url == f"{home}/whoami"
    assert await run(page, "navigate", url=f"{home}/popup-allowed") is None
    assert await run(page, "click_at", x=500, y=500) is None
    assert page.url == f"{home}/whoami"
    assert len(page.page.context.pages) == 1
    assert refusals == []


async def test_full_bulkhead_fails_fast_without_waiting(allowed: Site) -> None:
    """With MAX_PAGES=1 and no wait, a second session is refused with BrowserBusy while the
    first is open, and gets the page once it closed."""
    settings = Settings(_env_file=None, browser_max_pages=1, browser_max_wait_s=0)
    metrics = Metrics()
    pool = BrowserPool(settings, metrics)
    guard = NavigationGuard([allowed.origin("localhost")])
    config = SessionConfig(a.Screen(640, 480), action_timeout_s=10)
    try:
        async with pool.session(guard, config, lambda r, e: None, max_wait_s=5):
            assert metrics.browser_pages_open._value.get() == 1
            with pytest.raises(BrowserBusy):
                async with pool.session(guard, config, lambda r, e: None, max_wait_s=5):
                    pass
        assert metrics.browser_pages_open._value.get() == 0
        async with pool.session(guard, config, lambda r, e: None, max_wait_s=0):
            assert metrics.browser_pages_open._value.get() == 1
    finally:
        await pool.aclose()
    assert issubclass(BrowserBusy, Exception) and not issubclass(BrowserBusy, BulkheadFull)
