"""Which Chromium to launch: `BIGTHREE_BROWSER_EXECUTABLE`, else Playwright's own browser if
it was installed (`playwright install chromium`), else the system's `chromium` (Debian's
package installs `/usr/bin/chromium`). Playwright's download needs its CDN, which is not
always reachable; the distribution's package is the dependable default."""

from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

SYSTEM_CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "install Debian's chromium package (apt-get install chromium)"


@dataclass(frozen=True, slots=True)
class BrowserChoice:
    executable: str | None  # None: let Playwright launch its own browser
    description: str


class BrowserUnavailable(Exception):
    """No browser can be launched; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


def choose(configured: Path | None, playwright_path: str | None) -> BrowserChoice:
    """The browser to launch, or `BrowserUnavailable`."""
    if configured is not None:
        if _executable(configured):
            return BrowserChoice(str(configured), f"{configured} (BIGTHREE_BROWSER_EXECUTABLE)")
        raise BrowserUnavailable(
            f"BIGTHREE_BROWSER_EXECUTABLE={configured} is not an executable file"
        )
    if playwright_path and _executable(Path(playwright_path)):
        return BrowserChoice(None, f"Playwright's Chromium at {playwright_path}")
    found = shutil.which("chromium")
    system = Path(found) if found else SYSTEM_CHROMIUM
    if _executable(system):
        return BrowserChoice(str(system), f"{system} (the system's Chromium)")
    raise BrowserUnavailable(
        "no browser found: BIGTHREE_BROWSER_EXECUTABLE is not set, Playwright's own Chromium "
        f"is not installed and there is no {SYSTEM_CHROMIUM}; {INSTALL_HINT}"
    )


@functools.cache
def playwright_chromium_path() -> str | None:
    """Where Playwright's own Chromium would be (synchronously; for `check-config`). Asking
    starts Playwright's driver (~1 s), so the answer is kept for the process."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            return playwright.chromium.executable_path
    except Exception:  # no driver, no node: then there is no Playwright browser either
        return None
