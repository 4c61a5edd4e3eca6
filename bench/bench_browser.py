"""Browser agent figures: time per computer-use action and the memory of one open page.

Runs the service's own browser code in this process (`BrowserPool`, `BrowserSession`) on a
real headless Chromium and a local page served on 127.0.0.1, without a model:

- *browser start*: a task's whole browser set-up — SOCKS gates, Chromium launch, context
  (routing, init script), page, CDP load watch — until `BrowserPool.session` yields;
- *screenshot only* (the floor): `page.screenshot(type="png")` of the viewport;
- *click action*: what the runner does per call — `click_at` on a button that changes the
  page, the settle (animation frames, navigations), a screenshot, base64 for the wire;
- *navigate action*: the same with `navigate` to a local page (a full load);
- *memory*: RSS and PSS (`/proc/<pid>/smaps_rollup`) summed over the Chromium processes of
  one task's browser, its page still blank (the floor), then with the test page loaded. PSS
  splits shared pages between processes, so its sum is the truer total.

Used by `bench/run.py` (rows in its table); `python -m bench.bench_browser` prints them alone.
"""

from __future__ import annotations

import asyncio
import base64
import os
import statistics
import time
from pathlib import Path
from typing import Any

from app.core.config import Settings
from app.core.metrics import Metrics
from app.tools.browser import actions as a
from app.tools.browser.guard import NavigationGuard
from app.tools.browser.launcher import BrowserPool
from app.tools.browser.session import BrowserSession, SessionConfig
from tests.support.browser import chromium_under, serve_site

SCREEN = a.Screen(1440, 900)
PAGE = (
    """<!doctype html><title>bench</title><style>
body { margin: 0; font: 20px sans-serif; }
#go { position: absolute; left: 40%; top: 40%; width: 20%; height: 10%; }
</style><p id=n>0</p>
<button id=go onclick="const n = document.getElementById('n');
  n.textContent = Number(n.textContent) + 1;
  document.body.style.background = n.textContent % 2 ? '#eef' : '#fff'">Go</button>
<p>"""
    + "Some text to render. " * 200
    + "</p>"
)


def _pct(samples: list[float], pct: int) -> float:
    if len(samples) < 2:
        return samples[0] if samples else float("nan")
    return statistics.quantiles(samples, n=100, method="inclusive")[pct - 1]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _memory(pids: set[int]) -> tuple[int, int]:
    """(RSS, PSS) in bytes, summed over `pids`."""
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1]) * 1024
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except OSError:
            continue
    return rss, pss


async def _timed(samples: list[float], coroutine: Any) -> None:
    started = time.perf_counter()
    await coroutine
    samples.append(time.perf_counter() - started)


async def _act(session: BrowserSession, name: str, arguments: dict[str, Any]) -> None:
    """One call as the runner answers it: action, settle, screenshot, base64."""
    await session.run(name, a.parse(name, arguments))
    observation = await session.observe()
    base64.b64encode(observation.png)


async def measure(samples: int) -> list[dict[str, str]]:
    settings = Settings(_env_file=None)
    pool = BrowserPool(settings, Metrics())
    rows: list[dict[str, str]] = []
    with serve_site({"/": PAGE, "/other": PAGE}) as site:
        guard = NavigationGuard([site.origin()])
        config = SessionConfig(SCREEN, action_timeout_s=30)
        starts: list[float] = []
        try:
            for _ in range(max(3, samples // 10)):
                started = time.perf_counter()
                async with pool.session(guard, config, lambda r, e: None, max_wait_s=0):
                    starts.append(time.perf_counter() - started)
            async with pool.session(guard, config, lambda r, e: None, max_wait_s=0) as session:
                floor_rss, floor_pss = _memory(chromium_under(os.getpid()))
                await session.start(f"{site.origin()}/")
                rss, pss = _memory(chromium_under(os.getpid()))
                shots: list[float] = []
                clicks: list[float] = []
                navigations: list[float] = []
                for _ in range(3):  # warm-up
                    await _act(session, "click_at", {"x": 500, "y": 450})
                for i in range(samples):
                    await _timed(shots, session.observe())
                    await _timed(clicks, _act(session, "click_at", {"x": 500, "y": 450}))
                    target = f"{site.origin()}/{'other' if i % 2 else ''}"
                    await _timed(navigations, _act(session, "navigate", {"url": target}))
        finally:
            await pool.aclose()
    shot50 = _pct(shots, 50)
    size = f"{SCREEN.width}x{SCREEN.height}"
    for label, values in (
        ("browser start per task (launch + context + page)", starts),
        (f"screenshot only, {size} PNG (floor)", shots),
        ("click_at action: click + settle + screenshot + base64", clicks),
        ("navigate action: load a local page + screenshot + base64", navigations),
    ):
        p50 = _pct(values, 50)
        rows.append(
            {
                "figure": f"browser: {label}",
                "p50": _ms(p50),
                "p99": _ms(_pct(values, 99)),
                "value": f"{p50 / shot50:.1f}x" if "floor" not in label else "1.0x",
                "details": f"n={len(values)}; value = p50 / p50(screenshot only)",
            }
        )
    mib = 1_048_576
    rows += [
        {
            "figure": "browser: one task's Chromium, page still blank (floor)",
            "value": f"{floor_pss / mib:.1f} MiB PSS",
            "details": f"RSS sum {floor_rss / mib:.1f} MiB over its processes",
        },
        {
            "figure": "browser: **one open page** (the test page loaded)",
            "value": f"{pss / mib:.1f} MiB PSS",
            "details": f"RSS sum {rss / mib:.1f} MiB; {pss / max(floor_pss, 1):.2f}x the floor "
            f"(PSS); the page adds {(pss - floor_pss) / mib:.1f} MiB",
        },
    ]
    return rows


def main() -> None:
    rows = asyncio.run(measure(50))
    print("| figure | p50 | p99 | value | details |\n|---|---:|---:|---:|---|")
    for row in rows:
        print(
            f"| {row['figure']} | {row.get('p50', '—')} | {row.get('p99', '—')} | "
            f"{row.get('value', '—')} | {row.get('details', '')} |"
        )


if __name__ == "__main__":
    main()
