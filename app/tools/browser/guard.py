"""The navigation guard: which URLs a browser agent's page may reach. Pure logic, no browser.

An agent has a list of allowed origins (`scheme://host[:port]`, http or https). A URL passes
when its scheme, host and port equal one of them exactly:

- Only `http` and `https` reach the network. `file:`, `chrome:`, `data:`, `javascript:`,
  `about:` (but `about:blank`), `blob:`, `view-source:`, `ws:` to other origins and every
  other scheme are refused as a navigation target. (A page's own `data:`/`blob:` images and
  scripts never leave the browser; Playwright does not route them and they need no check.)
- Hosts compare in their ASCII form: lower-case, IDNA (punycode) for Unicode names, IPv6
  without brackets, default ports made explicit. A look-alike (`example.com` spelt with a
  Cyrillic `a`), a different port, a trailing dot or a sub-domain is a different origin.
- Userinfo is not part of the origin: `http://allowed@evil/` is a URL on `evil`.
- `ws:`/`wss:` URLs are checked as their `http:`/`https:` origin.

The model's `navigate` URL is cleaned the way browsers clean typed URLs (surrounding
whitespace and control characters, tabs and newlines inside) and given `https://` when it
has no scheme at all; everything the page then requests is checked again here on the
browser's own, canonical form of the URL (see `routing.py`).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}
WS_SCHEMES = {"ws": "http", "wss": "https"}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_STRIPPED = "".join(chr(c) for c in range(0x21))  # C0 controls and space, as WHATWG strips
_INSIDE = re.compile(r"[\t\n\r]")
_HOST_PORT = re.compile(r"^(localhost|[^/:]*\.[^/:]*):\d+(/|$)", re.IGNORECASE)  # "host:8080/x"

# where a refusal happened: the model's `navigate`; a page navigation (link, form, redirect
# answered in the page, meta refresh, script); a subresource (image, script, fetch, frame...);
# a WebSocket; a popup; a download; a connection at the SOCKS gate
Stage = Literal[
    "navigate", "navigation", "subresource", "websocket", "popup", "download", "connection"
]
STAGES: tuple[Stage, ...] = (
    "navigate",
    "navigation",
    "subresource",
    "websocket",
    "popup",
    "download",
    "connection",
)


class OriginError(ValueError):
    """Not a usable origin; the message says why."""


@dataclass(frozen=True, slots=True, order=True)
class Origin:
    scheme: str  # "http" | "https"
    host: str  # ASCII, lower-case; IPv6 without brackets
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if DEFAULT_PORTS[self.scheme] == self.port:
            return f"{self.scheme}://{host}"
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Refusal:
    url: str
    reason: str
    stage: Stage

    def message(self) -> str:
        return f"refused {self.url}: {self.reason}"


def normalize_host(host: str) -> str:
    """The ASCII form a browser compares: lower-case, punycode, IPv6 compressed."""
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise OriginError("the host is empty")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise OriginError(f"the host {host!r} is not a valid domain name ({exc})") from None
    if not re.fullmatch(r"[a-z0-9.-]+", ascii_host):
        raise OriginError(f"the host {host!r} has characters a domain name cannot have")
    return ascii_host


def parse_origin(text: str) -> Origin:
    """An allowed-origin entry, `scheme://host[:port]` with an optional trailing '/'."""
    raw = text.strip()
    parts = urlsplit(raw)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise OriginError(f"{text!r}: an origin is http:// or https://, then a host")
    if parts.username is not None or parts.password is not None:
        raise OriginError(f"{text!r}: an origin has no user name or password")
    if parts.path not in ("", "/") or parts.query or parts.fragment or raw.endswith(("?", "#")):
        raise OriginError(f"{text!r}: an origin has no path, query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise OriginError(f"{text!r}: the port is not a number from 1 to 65535") from None
    if parts.hostname is None:
        raise OriginError(f"{text!r}: the host is missing")
    return Origin(scheme, normalize_host(parts.hostname), port or DEFAULT_PORTS[scheme])


def origin_of(url: str) -> Origin | None:
    """The origin of an http(s) or ws(s) URL, or None (another scheme, or no valid host)."""
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        scheme = WS_SCHEMES.get(scheme, scheme)
        if scheme not in DEFAULT_PORTS or parts.hostname is None:
            return None
        return Origin(scheme, normalize_host(parts.hostname), parts.port or DEFAULT_PORTS[scheme])
    except (ValueError, OriginError):
        return None


def clean_typed_url(url: str) -> str:
    """What a browser does to a typed URL: strip, drop tabs/newlines, add https:// if bare."""
    cleaned = _INSIDE.sub("", url.strip(_STRIPPED))
    if cleaned.startswith("//"):
        return "https:" + cleaned
    if not _SCHEME.match(cleaned) or _HOST_PORT.match(cleaned):
        return "https://" + cleaned  # "example.com/x" or "example.com:8080/x"
    return cleaned


class NavigationGuard:
    """One agent's allowed origins: `check()` answers None (allowed) or a `Refusal`."""

    def __init__(self, allowed: Iterable[Origin | str]) -> None:
        self.allowed: frozenset[Origin] = frozenset(
            o if isinstance(o, Origin) else parse_origin(o) for o in allowed
        )

    @property
    def endpoints(self) -> frozenset[tuple[str, int]]:
        """(host, port) pairs a connection may go to: what the SOCKS gate admits."""
        return frozenset((o.host, o.port) for o in self.allowed)

    def describe(self) -> str:
        return ", ".join(sorted(str(o) for o in self.allowed)) or "(none)"

    def check(self, url: str, stage: Stage) -> Refusal | None:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        if url == "about:blank":
            return None
        if scheme not in DEFAULT_PORTS and scheme not in WS_SCHEMES:
            return Refusal(
                _shown(url), f"the {scheme or 'unknown'}: scheme is never allowed", stage
            )
        origin = origin_of(url)
        if origin is None:
            return Refusal(_shown(url), "the URL has no valid host", stage)
        if origin not in self.allowed:
            return Refusal(
                _shown(url), f"{origin} is not an allowed origin ({self.describe()})", stage
            )
        return None

    def check_navigate(self, url: str) -> tuple[str, Refusal | None]:
        """The model's `navigate` target, cleaned, and whether it is refused."""
        cleaned = clean_typed_url(url)
        return cleaned, self.check(cleaned, "navigate")

    def check_endpoint(self, host: str, port: int) -> Refusal | None:
        """A connection Chromium opens (SOCKS CONNECT host:port)."""
        try:
            key = (normalize_host(host), port)
        except OriginError:
            key = (host, port)
        if key in self.endpoints:
            return None
        return Refusal(f"{host}:{port}", "no allowed origin is on this host and port", "connection")


def _shown(url: str, limit: int = 500) -> str:
    """A URL as reported in events: bounded, and `data:`/`javascript:` bodies cut short."""
    if url[:11].lower().startswith(("data:", "javascript:")):
        limit = 60
    return url if len(url) <= limit else url[:limit] + "…"
