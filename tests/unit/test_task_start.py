"""A task starts in the step that stored it (app/agents/executor.py with app/core/eager.py):
its run has begun before that step ends — before the commit's events are even published,
so ahead of everything else queued on the loop (in a burst, the other requests and their
`202`s)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from app.agents.kinds.base import RunContext
from app.agents.schemas import Agent, AgentCreate, Task, TaskCreate, TaskState
from app.core.config import Settings
from app.events.hub import Hub
from app.events.schemas import EventFilter, LiveEvent
from app.store.engine import create_engine
from app.store.writer import URGENT_BATCH
from tests.support.manager import running_manager


class RecordingRunner:
    """Notes each run as it begins, then waits for `gate`."""

    def __init__(self) -> None:
        self.began: list[str] = []
        self.gate = asyncio.Event()

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        self.began.append(task.id)
        await self.gate.wait()
        return f"did: {task.prompt}"


async def test_a_task_has_begun_when_its_queued_event_is_published(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path)
    runner = RecordingRunner()
    hub = Hub(100)
    began_at_publish: dict[str, bool] = {}

    def at_publish(events: Sequence[LiveEvent]) -> bool:
        # called inside the writer's commit step, right after the commit's callbacks
        for event in events:
            assert event.task_id is not None
            began_at_publish[event.task_id] = event.task_id in runner.began
        return True

    hub.subscribe(EventFilter(type="task.queued")).deliver_to(at_publish)
    async with running_manager(
        settings, create_engine(settings.resolved_database_url), {"chat": runner}, hub=hub
    ) as manager:
        for name in ("a", "b", "c"):
            await manager.create_agent(AgentCreate(name=name, model="m"))
        tasks = await asyncio.gather(
            *(manager.submit(name, TaskCreate(prompt=name)) for name in ("a", "b", "c"))
        )
        assert began_at_publish == {task.id: True for task in tasks}
        runner.gate.set()
        for task in tasks:
            assert (await manager.wait_for_task(task.id, 10)).state == TaskState.SUCCEEDED


async def test_a_burst_of_submits_starts_before_it_is_acknowledged(tmp_path: Path) -> None:
    """URGENT_BATCH submits read in one pass are committed in the last one's step and have
    begun to run before the writer's turn: before any of them is answered or its
    `task.queued` event published (app/store/writer.py, urgent writes)."""
    settings = Settings(_env_file=None, data_dir=tmp_path)
    runner = RecordingRunner()
    hub = Hub(100)
    published: list[str] = []
    hub.subscribe(EventFilter(type="task.queued")).deliver_to(
        lambda events: published.extend(event.type for event in events) is None
    )
    names = [f"a{i}" for i in range(URGENT_BATCH)]
    async with running_manager(
        settings, create_engine(settings.resolved_database_url), {"chat": runner}, hub=hub
    ) as manager:
        for name in names:
            await manager.create_agent(AgentCreate(name=name, model="m"))
        submits = [
            asyncio.create_task(manager.submit(name, TaskCreate(prompt=name))) for name in names
        ]
        at_check: list[tuple[int, int, int]] = []
        asyncio.get_running_loop().call_soon(
            lambda: at_check.append(
                (len(runner.began), len(published), sum(s.done() for s in submits))
            )
        )
        tasks = await asyncio.gather(*submits)
        assert at_check == [(URGENT_BATCH, 0, 0)]
        assert sorted(runner.began) == sorted(task.id for task in tasks)
        runner.gate.set()
        for task in tasks:
            assert (await manager.wait_for_task(task.id, 10)).state == TaskState.SUCCEEDED
