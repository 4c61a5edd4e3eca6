"""Where the service's CPU goes at saturation: py-spy samples, summed by component.

    python -m bench.profile_hot [--seconds 12] [--raw out.txt]

Starts the stub and the service as `bench.hotpath` does, drives 100 closed-loop clients
(one chat agent each, 0 ms upstream), records the service with py-spy (all threads,
idle frames excluded), and prints each component's share of the samples. A sample is
charged to the first rule (in the order below) that matches one of its frames.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.hotpath import hot_service, saturate, start_stub

RULES: list[tuple[str, tuple[str, ...]]] = [
    ("store writer (SQLite commits)", ("sqlite_backend.py", "sqlite3")),
    ("store reads (SQLAlchemy, aiosqlite)", ("sqlalchemy", "aiosqlite")),
    ("provider HTTP client (aiohttp)", ("aiohttp/",)),
    (
        "provider call (resilience, llm client)",
        ("app/resilience/", "app/agents/llm.py", "app/providers/"),
    ),
    (
        "event fan-out and WebSocket sends",
        ("app/events/", "websockets/", "uvicorn/protocols/websockets"),
    ),
    ("store writer loop (event loop side)", ("app/store/",)),
    ("task scheduling (manager, executor)", ("app/agents/",)),
    ("pydantic", ("pydantic",)),
    ("metrics (prometheus_client)", ("prometheus_client",)),
    ("logging (structlog)", ("structlog", "logging/__init__")),
    ("FastAPI/Starlette request handling", ("fastapi/", "starlette/", "app/core/")),
    ("uvicorn HTTP (httptools)", ("uvicorn/",)),
    ("asyncio / uvloop event loop", ("asyncio/", "uvloop")),
]


def categorize(raw: str) -> Counter[str]:
    shares: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        for name, needles in RULES:
            if any(needle in stack for needle in needles):
                shares[name] += int(count)
                break
        else:
            shares["other"] += int(count)
    return shares


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=12)
    parser.add_argument("--raw", type=Path, help="keep py-spy's collapsed stacks here")
    args = parser.parse_args()
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        stub = start_stub(tmp)
        svc = hot_service(tmp, stub.url)
        out = args.raw or tmp / "profile.txt"
        try:
            recorder = subprocess.Popen(
                [
                    spy,
                    "record",
                    "-p",
                    str(svc.popen.pid),
                    "-d",
                    str(args.seconds),
                    "-r",
                    "200",
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "--threads",
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            result = asyncio.run(
                saturate(
                    svc.url,
                    svc.popen.pid,
                    clients=100,
                    seconds=args.seconds,
                    tag="prof",
                    poll_every_s=None,
                )
            )
            recorder.wait(timeout=args.seconds + 60)
        finally:
            svc.stop()
            stub.stop()
        shares = categorize(out.read_text())
    total = sum(shares.values()) or 1
    print(
        f"{result.tasks_per_s:,.0f} tasks/s, {result.cpu_ms_per_task:.2f} ms CPU per task; "
        f"{total} samples"
    )
    print("| component | share of samples |")
    print("|---|---:|")
    for name, count in shares.most_common():
        print(f"| {name} | {count / total:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
