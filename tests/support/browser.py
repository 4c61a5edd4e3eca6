"""For browser tests: a local test site served by the test itself, Chromium processes under
a service, and the skip (or, under CI, the failure) when no Chromium is installed."""

from __future__ import annotations

import io
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from app.tools.browser.executable import BrowserUnavailable, choose


def require_chromium() -> None:
    """Skip (fail under CI, which installs it) when no browser can be launched."""
    try:
        choose(None, None)
    except BrowserUnavailable as exc:
        message = f"no Chromium to run browser tests: {exc.message}"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI must install Debian's chromium)")
        pytest.skip(message)


# --- a local site ---------------------------------------------------------------------------

Page = str | tuple[int, dict[str, str], str]  # HTML, or (status, headers, body)


@dataclass
class Site:
    """An HTTP server on 127.0.0.1 that counts every connection and request it receives."""

    pages: Mapping[str, Page | Callable[[str], Page]]
    connections: int = 0
    hits: Counter[str] = field(default_factory=Counter)
    posted: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    def origin(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}"

    def answer(self, path: str) -> tuple[int, dict[str, str], bytes]:
        page = self.pages.get(urlsplit(path).path, "<!doctype html><title>ok</title><p>ok</p>")
        if callable(page):
            page = page(path)
        if isinstance(page, str):
            return 200, {"content-type": "text/html; charset=utf-8"}, page.encode()
        status, headers, body = page
        return status, {"content-type": "text/html; charset=utf-8", **headers}, body.encode()


@contextmanager
def serve_site(pages: Mapping[str, Page | Callable[[str], Page]]) -> Iterator[Site]:
    site = Site(pages)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _reply(self) -> None:
            with site.lock:
                site.hits[urlsplit(self.path).path] += 1
            status, headers, body = site.answer(self.path)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._reply()

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            with site.lock:
                site.posted.append((urlsplit(self.path).path, form))
            self._reply()

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def verify_request(self, request: object, client_address: object) -> bool:
            with site.lock:
                site.connections += 1
            return True

    site.server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=site.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        site.server.shutdown()
        site.server.server_close()


# --- images -------------------------------------------------------------------------------


def png_image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image.convert("RGB")


def pixel(data: bytes, grid_x: int, grid_y: int) -> tuple[int, int, int]:
    """The RGB colour of a PNG at a point given on the 0-999 grid."""
    image = png_image(data)
    x = min(image.width - 1, round(grid_x / 1000 * image.width))
    y = min(image.height - 1, round(grid_y / 1000 * image.height))
    value = image.getpixel((x, y))
    assert isinstance(value, tuple)
    return (int(value[0]), int(value[1]), int(value[2]))


# --- processes ------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1])


def descendants(root: int) -> set[int]:
    """Every live process below `root`."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) and stat[0] != "Z":
            children.setdefault(stat[1], []).append(int(entry.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def is_chromium(pid: int) -> bool:
    try:
        return b"chromium" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def chromium_under(root: int) -> set[int]:
    """The Chromium processes (browser, renderers, GPU, utilities) below `root`."""
    return {pid for pid in descendants(root) if is_chromium(pid)}


def still_running(pids: set[int]) -> set[int]:
    """Those of `pids` that still run (a zombie waiting to be reaped counts as gone)."""
    return {pid for pid in pids if (stat := _stat(pid)) is not None and stat[0] != "Z"}
