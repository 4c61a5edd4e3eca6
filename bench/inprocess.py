"""CPU per task with no sockets between the client and the service: the steadiest figure
on a shared machine, for comparing two trees of the code.

    python -m bench.inprocess [--rounds 10] [--profile tottime]

Builds the service's app in this process (uvloop, SQLite in a temporary directory, the
bench stub as the upstream, `bench.hotpath`'s settings), creates 50 chat agents and
drives rounds of 50 task submits at once through the app's ASGI interface, each round
until every task has succeeded. Three rounds warm up (provider connections, history,
caches); for each measured round it takes the process's CPU time per task — the request
handling, the store, the provider call over loopback and the events, without uvicorn's
socket handling or a load generator. Prints the least and the median round; `--profile`
also prints `cProfile`'s view of the measured rounds, sorted by that key.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from bench.hotpath import hot_env, start_stub

AGENTS = 50
WARM_UP_ROUNDS = 3


def _settings_env(stub_url: str, data_dir: Path) -> dict[str, str]:
    """`bench.hotpath`'s service settings, plus what `bigthree serve` would get from the
    test harness: a data directory, open routes, a provider key that is not real."""
    return {
        **hot_env(stub_url),
        "OPENAI_API_KEY": "sk-bench-not-a-real-key",
        "BIGTHREE_DATA_DIR": str(data_dir),
        "BIGTHREE_API_KEYS": "",
    }


async def _submit(app: Any, state: dict[str, Any], agent: str) -> str:
    """POST /v1/agents/{agent}/tasks through the ASGI interface; the task's id.

    The request is built by hand rather than sent with `httpx.ASGITransport`: the figure is
    this process's CPU time, and a client's own work (request and response objects, header
    handling) would be counted in it."""
    path = f"/v1/agents/{agent}/tasks"
    raw = b'{"prompt": "bench"}'
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": dict(state),
        "extensions": {},
    }
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        if read:  # nothing more: the client stays connected
            await asyncio.Event().wait()
        read = True
        return {"type": "http.request", "body": raw, "more_body": False}

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    if sent[0]["status"] != 202:
        raise RuntimeError(f"submit answered {sent[0]['status']}")
    task_id: str = json.loads(b"".join(m.get("body", b"") for m in sent[1:]))["id"]
    return task_id


async def measure(rounds: int, profile: cProfile.Profile | None) -> list[float]:
    # imported here: the settings are read from the environment set up by main()
    from app.agents.schemas import AgentCreate
    from app.core.config import Settings
    from app.main import create_app

    app = create_app(Settings())
    async with app.router.lifespan_context(app) as state:
        manager = app.state.manager
        agents = [f"inproc-{i}" for i in range(AGENTS)]
        for name in agents:
            spec = AgentCreate(name=name, kind="chat", provider="openai", model="lat-0")
            await manager.create_agent(spec)
        per_task_us: list[float] = []
        for round_ in range(WARM_UP_ROUNDS + rounds):
            measured = round_ >= WARM_UP_ROUNDS
            if profile is not None and measured:
                profile.enable()
            started = time.process_time()
            ids = await asyncio.gather(*(_submit(app, dict(state or {}), a) for a in agents))
            for task_id in ids:
                task = await manager.get_task(task_id, wait_s=30)
                if task.state.value != "succeeded":
                    raise RuntimeError(f"task {task_id} ended {task.state.value}")
            spent = time.process_time() - started
            if profile is not None:
                profile.disable()
            if measured:
                per_task_us.append(spent / AGENTS * 1e6)
    return per_task_us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--profile", metavar="SORT_KEY", help="e.g. tottime or cumtime")
    args = parser.parse_args()
    from app.core.logging import configure_logging

    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        stub = start_stub(tmp)
        try:
            os.environ.update(_settings_env(stub.url, tmp / "data"))
            configure_logging("json", "WARNING")
            profile = cProfile.Profile() if args.profile else None
            figures = sorted(uvloop.run(measure(args.rounds, profile)))
        finally:
            stub.stop()
    print(
        f"CPU per task, rounds of {AGENTS} submits at once (0 ms upstream): "
        f"least {figures[0]:.0f} µs, median {figures[len(figures) // 2]:.0f} µs "
        f"over {len(figures)} rounds"
    )
    if profile is not None:
        pstats.Stats(profile, stream=sys.stdout).sort_stats(args.profile).print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
