"""Several real `bigthree serve` replicas on one PostgreSQL database and one Redis, with a
fake upstream, for the scale-out tests and benchmarks."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import ClientConnection

from tests.support.api import open_events
from tests.support.procs import Proc, start_fake_upstream, start_service
from tests.support.servers import postgres_database, redis_prefix


def replica_env(fake_url: str, db_url: str, redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "OPENAI_BASE_URL": f"{fake_url}/v1",
        "GEMINI_BASE_URL": fake_url,  # browser agents' computer-use model
        "BIGTHREE_RETRY_INITIAL_BACKOFF_S": "0.01",
        "BIGTHREE_RETRY_MAX_BACKOFF_S": "0.05",
        "BIGTHREE_DATABASE_URL": db_url,
        "BIGTHREE_REDIS_URL": redis_url,
        "BIGTHREE_REDIS_PREFIX": prefix,
        "BIGTHREE_CHAT_HISTORY_TURNS": "0",  # each request carries just its own prompt
        "BIGTHREE_LOG_LEVEL": "WARNING",
        "BIGTHREE_RETRY_BUDGET_MIN_PER_S": "1000",
    }


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    fake: Proc
    replicas: list[Proc] = field(default_factory=list)

    def start(self, count: int, extra_env: Mapping[str, str] | None = None) -> list[Proc]:
        """Start `count` replicas together (they migrate once between them)."""
        env = {**self.env, **(extra_env or {})}
        started = [
            start_service(
                self.tmp,
                env=env,
                data_dir=self.tmp / f"replica-{len(self.replicas) + n}",
                wait=False,
            )
            for n in range(count)
        ]
        for proc in started:
            proc.wait_healthy(timeout=90)
        self.replicas.extend(started)
        return started

    def stop(self) -> None:
        for proc in self.replicas:
            proc.stop()


@contextmanager
def running_cluster(
    tmp: Path,
    count: int,
    *,
    env: Mapping[str, str] | None = None,
    db_server: str | None = None,
    redis_url: str | None = None,
) -> Iterator[Cluster]:
    """A fake upstream and `count` replicas on a fresh database and Redis key prefix."""
    with ExitStack() as stack:
        db_url = stack.enter_context(postgres_database(db_server))
        redis, prefix = stack.enter_context(redis_prefix(redis_url))
        fake = start_fake_upstream(tmp)
        stack.callback(fake.stop)
        cluster = Cluster(
            tmp, {**replica_env(fake.url, db_url, redis, prefix), **(env or {})}, fake
        )
        stack.callback(cluster.stop)
        cluster.start(count)
        yield cluster


class Subscriber:
    """A WebSocket event subscriber on one replica, reading in a thread until closed."""

    def __init__(self, base_url: str, **params: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self._ws: ClientConnection = open_events(base_url, **params).__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            while True:
                self.events.append(json.loads(self._ws.recv()))
        except Exception:  # closed
            return

    def seqs(self) -> list[int]:
        return [event["seq"] for event in self.events]

    def close(self) -> None:
        self._ws.__exit__(None, None, None)
        self._thread.join(timeout=10)


def stored_events(base_url: str, after_seq: int = 0) -> list[dict[str, Any]]:
    """Every stored event after `after_seq`, paged through GET /v1/events."""
    found: list[dict[str, Any]] = []
    with httpx.Client(base_url=base_url, timeout=30) as http:
        while True:
            page = http.get("/v1/events", params={"after_seq": after_seq, "limit": 1000}).json()
            found.extend(page["events"])
            if not page["events"]:
                return found
            after_seq = page["next_after_seq"]
