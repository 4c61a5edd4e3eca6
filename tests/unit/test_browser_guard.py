"""The navigation guard's rules and the computer-use actions' arguments, without a browser."""

from __future__ import annotations

import pytest

from app.core.metrics import BROWSER_ACTIONS, BROWSER_REFUSAL_STAGES
from app.tools.browser import actions as a
from app.tools.browser.guard import (
    STAGES,
    NavigationGuard,
    OriginError,
    clean_typed_url,
    parse_origin,
)

GUARD = NavigationGuard(["http://localhost:8088", "https://shop.example"])


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("http://localhost:8088", "http://localhost:8088"),
        ("HTTPS://Shop.Example:443/", "https://shop.example"),
        ("http://127.0.0.1:80", "http://127.0.0.1"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("https://b\u00fccher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_origins_are_normalized(text: str, normal: str) -> None:
    """Scheme and host lower-case, Unicode hosts as punycode, default ports dropped."""
    assert str(parse_origin(text)) == normal


@pytest.mark.parametrize(
    "text",
    [
        "ftp://example.com",
        "example.com",
        "http://example.com/path",
        "http://example.com?q=1",
        "http://example.com#top",
        "http://user:pass@example.com",
        "http://example.com:99999",
        "http://",
        "javascript:alert(1)",
        "http://exa mple.com",
    ],
)
def test_non_origins_are_rejected(text: str) -> None:
    with pytest.raises(OriginError):
        parse_origin(text)


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8088/",
        "http://localhost:8088/a/b?c#d",
        "HTTP://LOCALHOST:8088/x",
        "https://shop.example/cart",
        "https://shop.example:443/cart",
        "ws://localhost:8088/socket",
        "wss://shop.example/live",
        "about:blank",
    ],
)
def test_allowed_urls_pass(url: str) -> None:
    assert GUARD.check(url, "navigation") is None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8089/",  # another port
        "https://localhost:8088/",  # another scheme
        "http://127.0.0.1:8088/",  # the same machine under another name
        "http://shop.example/",  # http, not https
        "https://www.shop.example/",  # a sub-domain
        "https://shop.example.evil.test/",  # a suffix
        "https://shop.example./",  # a trailing dot
        "http://localhost:8088@evil.test/",  # userinfo: the host is evil.test
        "http://l\u043ecalhost:8088/",  # a Cyrillic look-alike
        "http://xn--lcalhost-nbh:8088/",  # its punycode
        "file:///etc/passwd",
        "FILE:///etc/passwd",
        "data:text/html,<h1>x</h1>",
        "javascript:alert(1)",
        "chrome://settings",
        "view-source:http://localhost:8088/",
        "blob:http://localhost:8088/uuid",
        "about:srcdoc",
        "ftp://localhost:8088/",
        "ws://evil.test/socket",
        "http:///nohost",
    ],
)
def test_refused_urls_are_refused(url: str) -> None:
    refusal = GUARD.check(url, "navigation")
    assert refusal is not None and refusal.stage == "navigation"


@pytest.mark.parametrize(
    ("typed", "cleaned"),
    [
        ("  http://localhost:8088/  ", "http://localhost:8088/"),
        ("ht\ttp://localhost:8088/", "http://localhost:8088/"),
        ("java\nscript:alert(1)", "javascript:alert(1)"),
        ("//evil.test/x", "https://evil.test/x"),
        ("shop.example/cart", "https://shop.example/cart"),
        ("localhost:8088/x", "https://localhost:8088/x"),
        ("JavaScript:alert(1)", "JavaScript:alert(1)"),
    ],
)
def test_typed_urls_are_cleaned_as_browsers_do(typed: str, cleaned: str) -> None:
    assert clean_typed_url(typed) == cleaned


@pytest.mark.parametrize(
    "typed",
    ["//evil.test/", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:x", "evil.test"],
)
def test_navigate_refuses_what_the_cleaning_reveals(typed: str) -> None:
    _, refusal = GUARD.check_navigate(typed)
    assert refusal is not None and refusal.stage == "navigate"


def test_connection_endpoints() -> None:
    """The SOCKS gate admits the allowed hosts and ports only (names compared normalized)."""
    assert GUARD.check_endpoint("localhost", 8088) is None
    assert GUARD.check_endpoint("LOCALHOST", 8088) is None
    assert GUARD.check_endpoint("shop.example", 443) is None
    assert GUARD.check_endpoint("shop.example", 80) is not None
    assert GUARD.check_endpoint("127.0.0.1", 8088) is not None
    refusal = NavigationGuard([]).check_endpoint("localhost", 8088)
    assert refusal is not None and refusal.stage == "connection"


def test_an_empty_guard_refuses_everything() -> None:
    assert NavigationGuard([]).check("http://localhost:8088/", "navigate") is not None
    assert NavigationGuard([]).describe() == "(none)"


# --- actions ------------------------------------------------------------------------------


def test_grid_to_pixels() -> None:
    """pixel = round(v / 1000 * size), kept on the screen."""
    screen = a.Screen(1440, 900)
    assert (screen.x(0), screen.y(0)) == (0, 0)
    assert (screen.x(500), screen.y(500)) == (720, 450)
    assert (screen.x(999), screen.y(999)) == (1439, 899)
    args = a.parse("drag_and_drop", {"x": 100, "y": 200, "destination_x": 900, "destination_y": 50})
    assert a.pixels(args, screen) == {
        "x": 144,
        "y": 180,
        "destination_x": 1296,
        "destination_y": 45,
    }
    assert a.grid(args) == {"x": 100, "y": 200, "destination_x": 900, "destination_y": 50}


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("teleport", {}, "unknown action 'teleport'; available: open_web_browser"),
        ("click_at", {"x": 1000, "y": 1}, "x: must be an integer on the 0-999 grid"),
        ("click_at", {"x": -1, "y": 1}, "x: must be an integer on the 0-999 grid"),
        ("click_at", {"x": 1}, "y: Field required"),
        ("click_at", {"x": 1.5, "y": 1}, "x: Input should be a valid integer"),
        ("scroll_document", {"direction": "sideways"}, "direction: Input should be"),
        ("navigate", {}, "url: Field required"),
    ],
)
def test_bad_calls_say_what_is_wrong(name: str, arguments: dict[str, object], message: str) -> None:
    with pytest.raises(a.ActionError) as caught:
        a.parse(name, arguments)
    assert message in str(caught.value)


def test_defaults_and_extra_arguments() -> None:
    """type_text_at clears first by default; scroll_at's magnitude defaults to 800; a
    safety_decision rides along without being an argument."""
    decision = {"decision": "require_confirmation", "explanation": "pays"}
    typed = a.parse("type_text_at", {"x": 1, "y": 2, "text": "hi", "safety_decision": decision})
    assert isinstance(typed, a.TypeTextAt)
    assert typed.clear_before_typing and not typed.press_enter
    scroll = a.parse("scroll_at", {"x": 1, "y": 2, "direction": "down"})
    assert isinstance(scroll, a.ScrollAt) and scroll.magnitude == 800
    safety = a.safety_decision({"safety_decision": decision})
    assert safety is not None and safety.needs_confirmation and safety.explanation == "pays"
    assert a.safety_decision({}) is None


@pytest.mark.parametrize(
    ("keys", "playwright"),
    [
        ("Control+A", "Control+A"),
        ("control+a", "Control+a"),
        ("ctrl + shift + t", "Control+Shift+t"),
        ("cmd+Enter", "Meta+Enter"),
        ("esc", "Escape"),
        ("PageDown", "PageDown"),
        ("f5", "F5"),
    ],
)
def test_key_names(keys: str, playwright: str) -> None:
    assert a.playwright_keys(keys) == playwright


def test_metric_labels_match_the_actions_and_stages() -> None:
    """The metrics' closed label sets are the actions (+ unknown) and the refusal stages."""
    assert (*a.ACTION_NAMES, a.UNKNOWN_ACTION) == BROWSER_ACTIONS
    assert STAGES == BROWSER_REFUSAL_STAGES
    assert len(a.ACTION_NAMES) == 13
