"""AgentManager: the single owner of agent and task state.

Scheduling: each agent has a FIFO of queued tasks and at most one running task; a global
limit bounds how many tasks run at once across agents (the running itself is
`TaskExecutor`'s job). Every change goes to the store writer as one unit with its event; the
in-memory state (runtimes, the TaskBook) follows in the unit's `on_commit`, before the event
is published, so a client that sees an event can read the matching state back. A change a
client asked for is acknowledged only once stored: when the store cannot take it the client
gets 503 `storage_unavailable` and nothing changed.

Shutdown (`drain`): stop accepting tasks, let running tasks finish for up to the grace
period, then cancel the rest and mark them `interrupted`. Queued tasks stay queued in the
store and run after the next start. Start-up (`start`) applies the crash-recovery rule:
tasks found `queued` are queued again (they never ran); tasks found `running` are marked
`interrupted` (a partial run may have had side effects, so it is not silently repeated).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping

import structlog

from app.agents.executor import TaskExecutor
from app.agents.kinds.base import AgentKindRunner
from app.agents.kinds.claude_code.availability import (
    CLAUDE_CODE_PROVIDER,
    check_claude_code_agent,
)
from app.agents.kinds.coder import open_workspace
from app.agents.llm import LLMClient
from app.agents.repository import AgentRepository, TaskRepository, agent_from_row
from app.agents.runtime import (
    CANCELLED_MESSAGE,
    INTERRUPTED_MESSAGE,
    TASK_ID,
    AgentRuntime,
    TaskBook,
)
from app.agents.schemas import (
    WORKSPACE_KINDS,
    Agent,
    AgentCost,
    AgentCreate,
    AgentState,
    BrowserOptions,
    CostReport,
    ModelCost,
    Task,
    TaskCreate,
    TaskState,
    UsageOut,
)
from app.artifacts.schemas import Artifact
from app.artifacts.service import ArtifactStore
from app.core.config import Settings
from app.core.errors import (
    Conflict,
    Draining,
    InvalidInput,
    NotFound,
    StorageUnavailable,
    TooManyRequests,
)
from app.core.ids import new_id
from app.core.metrics import Metrics
from app.events.service import EventBus
from app.store.backend import RowConflict
from app.store.rows import AgentDeleted, NewAgent, NewTask
from app.store.writer import StoreWriter
from app.tools.browser.guard import NavigationGuard
from app.tools.errors import WorkspaceError
from app.tools.workspace import FileInfo, Workspace, resolve_root

BROWSER_PROVIDER = "gemini"  # computer use is a Gemini feature (see kinds/browser.py)

log = structlog.get_logger(__name__)


class AgentManager:
    def __init__(
        self,
        *,
        settings: Settings,
        agents: AgentRepository,
        tasks: TaskRepository,
        writer: StoreWriter,
        bus: EventBus,
        llm: LLMClient,
        metrics: Metrics,
        runners: Mapping[str, AgentKindRunner],
        replica_id: str | None = None,
        artifacts: ArtifactStore | None = None,
    ) -> None:
        self._settings = settings
        self._artifacts = artifacts
        self._agents = agents
        self._tasks = tasks
        self._writer = writer
        self._book = TaskBook()
        self._creating: set[str] = set()
        self._bus = bus
        self._llm = llm
        self._metrics = metrics
        self._runtimes: dict[str, AgentRuntime] = {}
        self._order = 0
        self._draining = False
        self._stopped = False
        self._executor = TaskExecutor(
            settings=settings,
            tasks=tasks,
            book=self._book,
            writer=writer,
            bus=bus,
            llm=llm,
            metrics=metrics,
            runners=runners,
            draining=lambda: self._draining,
            replica_id=replica_id,
        )

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    async def start(self) -> None:
        for agent in await self._agents.live():  # `busy` is never stored: see TaskExecutor
            self._runtimes[agent.name] = AgentRuntime(agent)
        self._metrics.agents.set(len(self._runtimes))
        self._order = await self._tasks.max_order_key()
        await self._recover()

    async def _recover(self) -> None:
        unfinished = await self._tasks.in_states([TaskState.QUEUED, TaskState.RUNNING])
        for task in unfinished:
            rt = self._runtimes.get(task.agent)
            if task.state == TaskState.RUNNING or rt is None:
                kind = rt.agent.kind if rt else "unknown"
                await self._executor.finish_unstarted(
                    task, kind, TaskState.INTERRUPTED, INTERRUPTED_MESSAGE, {"recovered": True}
                )
                continue
            self._book.put_live(task)
            rt.queue.append(task)
            self._metrics.tasks_queued.inc()
            self._executor.emit_task("task.requeued", task, {"recovered": True})
        for rt in self._runtimes.values():
            self._executor.ensure_worker(rt)
        if unfinished:
            log.info("tasks_recovered", count=len(unfinished))

    async def drain(self, grace_s: float) -> None:
        """Stop accepting work; give running tasks `grace_s`, then interrupt them."""
        if not self._draining:
            self._draining = True
            self._metrics.draining.set(1)
            self._executor.waiters.release_all()  # no held request may outlive the drain
            self._bus.emit("service.draining", payload={"grace_s": grace_s})
            log.info("draining", grace_s=grace_s, running=len(self._jobs()))
        jobs = self._jobs()
        if jobs:
            await asyncio.wait(jobs, timeout=grace_s)
        await self._executor.interrupt(self._runtimes.values())

    async def shutdown(self) -> None:
        if self._stopped:
            return
        await self.drain(0.0)
        workers = [rt.worker for rt in self._runtimes.values() if rt.worker is not None]
        if workers:
            # a worker may be waiting for a store that cannot take its task's outcome: the
            # writer's close decides about that, so do not wait long for it here
            store_up = self._writer.health().available
            await asyncio.wait(workers, timeout=10.0 if store_up else 1.0)
        for worker in workers:
            worker.cancel()
        self._stopped = True

    async def settle(self) -> None:
        """Make reads reflect every change stored before this call. One process sees its
        own changes as they are stored: nothing to do (replicas: SharedAgentManager)."""
        return None

    def _jobs(self) -> list[asyncio.Task[None]]:
        return [
            rt.job for rt in self._runtimes.values() if rt.job is not None and not rt.job.done()
        ]

    # --- agents -------------------------------------------------------------------------

    async def create_agent(self, spec: AgentCreate) -> Agent:
        self._refuse_if_draining()
        if spec.name in self._runtimes or spec.name in self._creating:
            raise Conflict(f"an agent named {spec.name!r} already exists")
        if len(self._runtimes) >= self._settings.max_agents:
            raise TooManyRequests(f"agent limit reached ({self._settings.max_agents})")
        row = self._agent_row(spec)
        agent = agent_from_row(row.as_stored())  # the same mapping as a row read back
        event = self._bus.new_event(
            "agent.created",
            agent=agent.name,
            payload={
                "id": agent.id,
                "kind": agent.kind,
                "provider": agent.provider,
                "model": agent.model,
            },
        )

        def stored(_seqs: list[int]) -> None:
            self._runtimes[agent.name] = AgentRuntime(agent)
            self._metrics.agents.set(len(self._runtimes))

        self._creating.add(spec.name)
        try:
            await self._writer.write(row, event, operation="agent_created", on_commit=stored)
        except RowConflict as exc:
            raise Conflict(f"an agent named {spec.name!r} already exists") from exc
        finally:
            self._creating.discard(spec.name)
        return agent

    def _agent_row(self, spec: AgentCreate) -> NewAgent:
        """The row a valid `spec` makes (provider, kind options and workspace checked)."""
        provider = spec.provider or self._settings.default_provider
        options = None
        if spec.kind == "claude_code":
            provider = spec.provider or CLAUDE_CODE_PROVIDER
            options = check_claude_code_agent(self._settings, spec, provider).model_dump()
        if spec.kind == "browser":
            options = self._browser_options(spec, provider).model_dump(mode="json")
        if provider not in self._llm.provider_names:
            raise InvalidInput(f"provider {provider!r} is not configured")
        workspace = None
        if spec.workspace is not None:
            try:
                workspace = str(resolve_root(spec.workspace, self._settings.workspace_roots))
            except WorkspaceError as exc:
                raise InvalidInput(exc.message) from None
        return NewAgent(
            id=new_id(),
            name=spec.name,
            kind=spec.kind,
            provider=provider,
            model=spec.model,
            instructions=spec.instructions,
            fallbacks=[f.model_dump() for f in spec.fallbacks],
            stream=spec.stream,
            workspace=workspace,
            options=options,
            state=AgentState.IDLE.value,
            created_at=time.time(),
        )

    def _browser_options(self, spec: AgentCreate, provider: str) -> BrowserOptions:
        """A browser agent's options, defaults filled in; 422 for what cannot work."""
        wrong = {provider, *(f.provider for f in spec.fallbacks)} - {BROWSER_PROVIDER}
        if wrong:
            raise InvalidInput(
                "browser agents run Gemini's computer-use model: provider (and every fallback) "
                f"must be {BROWSER_PROVIDER!r}, not {', '.join(sorted(wrong))}"
            )
        origins = spec.allowed_origins
        if origins is None:
            origins = list(self._settings.browser_allowed_origins)
        options = BrowserOptions.model_validate(
            {"allowed_origins": origins, "start_url": spec.start_url, "screen": spec.screen or {}}
        )
        if options.start_url is not None:
            guard = NavigationGuard(options.allowed_origins)
            _, refusal = guard.check_navigate(options.start_url)
            if refusal is not None:
                raise InvalidInput(f"start_url is not allowed: {refusal.reason}")
        return options

    def list_agents(self) -> list[Agent]:
        return [self._view(self._runtimes[name]) for name in sorted(self._runtimes)]

    def get_agent(self, name: str) -> Agent:
        return self._view(self._runtime(name))

    async def delete_agent(self, name: str) -> Agent:
        rt = self._runtime(name)
        if rt.deleting:
            raise NotFound(f"no agent named {name!r}")
        now = time.time()

        def stored(_seqs: list[int]) -> None:
            self._runtimes.pop(name, None)
            self._metrics.agents.set(len(self._runtimes))
            rt.agent = rt.agent.model_copy(update={"state": AgentState.DELETED, "updated_at": now})

        rt.deleting = True  # no new task for it while the delete is being stored
        try:
            await self._writer.write(
                AgentDeleted(rt.agent.id, now),
                self._bus.new_event("agent.deleted", agent=name, payload={"id": rt.agent.id}),
                operation="agent_deleted",
                on_commit=stored,
            )
        except StorageUnavailable:
            rt.deleting = False
            raise
        queued, rt.queue = list(rt.queue), deque()
        for task in queued:
            self._metrics.tasks_queued.dec()
            await self._executor.finish_unstarted(
                task, rt.agent.kind, TaskState.CANCELLED, "agent deleted"
            )
        job = rt.cancel_running(TaskState.CANCELLED)
        if job is not None:
            await asyncio.wait([job], timeout=10.0)
        return rt.agent

    async def list_agent_files(
        self, name: str, glob: str = "**", limit: int = 1000
    ) -> tuple[list[FileInfo], bool]:
        """A coder or claude_code agent's workspace files (and whether the list was cut)."""
        workspace = self._workspace_of(name)
        return await asyncio.to_thread(workspace.list_files, glob, limit)

    async def read_agent_file(self, name: str, path: str) -> str:
        """One text file of a coder or claude_code agent's workspace, through its sandbox."""
        workspace = self._workspace_of(name)
        return await asyncio.to_thread(workspace.read_text, path)

    def _workspace_of(self, name: str) -> Workspace:
        """Raises NotFound for non-coders and `WorkspaceError` for sandbox refusals."""
        agent = self.get_agent(name)
        if agent.kind not in WORKSPACE_KINDS:
            raise NotFound(
                f"{name} is a {agent.kind} agent; only coder and claude_code agents have files"
            )
        return open_workspace(self._settings, agent)

    async def report_costs(self) -> CostReport:
        """Usage and cost per live agent, per provider/model, and in total."""
        agents = self.list_agents()
        by_model = [ModelCost.model_validate(row) for row in await self._llm.usage_totals()]
        return CostReport(
            total_cost_usd=sum(m.cost_usd for m in by_model),
            total_input_tokens=sum(m.input_tokens for m in by_model),
            total_output_tokens=sum(m.output_tokens for m in by_model),
            by_agent=[
                AgentCost(
                    agent=a.name,
                    provider=a.provider,
                    model=a.model,
                    cost_usd=a.cost_usd,
                    usage=a.usage,
                )
                for a in agents
            ],
            by_model=by_model,
        )

    # --- tasks --------------------------------------------------------------------------

    async def submit(self, name: str, spec: TaskCreate, *, wait_s: float = 0.0) -> Task:
        """Queue a task for agent `name`; with `wait_s`, return it once finished or as it is
        after that long (the wait slot is taken first: a refused wait stores nothing)."""
        if wait_s <= 0:
            return await self._submit(name, spec)
        self._check_wait(wait_s)
        async with self._executor.waiters.slot():
            task = await self._submit(name, spec)
            return await self._executor.wait_for(task.id, wait_s, self._read_task)

    async def _submit(self, name: str, spec: TaskCreate) -> Task:
        self._refuse_if_draining()
        rt = self._runtime(name)
        self._order += 1
        row, task = self._task_row(rt.agent, spec, queued=len(rt.queue), order_key=self._order)

        def stored(_seqs: list[int]) -> None:
            self._book.put_live(task)
            rt.agent = rt.agent.model_copy(update={"tasks_total": rt.agent.tasks_total + 1})
            rt.queue.append(task)
            self._metrics.tasks_queued.inc()
            self._metrics.tasks_submitted.labels(rt.agent.kind).inc()
            self._executor.ensure_worker(rt)

        queued = self._executor.task_event(
            "task.queued", task, {"timeout_s": task.timeout_s, "position": len(rt.queue) + 1}
        )
        await self._writer.write(
            row, queued, operation="task_submitted", on_commit=stored, urgent=True
        )
        return task

    def _task_row(
        self, agent: Agent, spec: TaskCreate, *, queued: int, order_key: int
    ) -> tuple[NewTask, Task]:
        """The row and the task a valid `spec` for `agent` (with `queued` tasks) makes."""
        settings = self._settings
        if len(spec.prompt) > settings.max_prompt_chars:
            raise InvalidInput(
                f"prompt is {len(spec.prompt)} characters; the limit is {settings.max_prompt_chars}"
            )
        timeout = spec.timeout_s or settings.default_task_timeout_s
        if timeout > settings.max_task_timeout_s:
            raise InvalidInput(f"timeout_s must be at most {settings.max_task_timeout_s}")
        if spec.new_session and agent.kind != "claude_code":
            # the agent's kind, not the request, is what does not fit: 409, like other
            # requests that conflict with the agent's state
            raise Conflict("new_session is for claude_code agents")
        if queued >= settings.max_queued_tasks_per_agent:
            raise TooManyRequests(
                f"agent {agent.name!r} already has {queued} queued tasks; try again later"
            )
        now = time.time()
        row = NewTask(
            id=new_id(),
            agent_id=agent.id,
            agent_name=agent.name,
            prompt=spec.prompt,
            timeout_s=timeout,
            created_at=now,
            order_key=order_key,
            new_session=spec.new_session,
        )
        task = Task(
            id=row.id,
            agent=agent.name,
            agent_id=row.agent_id,
            state=TaskState.QUEUED,
            prompt=row.prompt,
            usage=UsageOut(),
            cost_usd=0.0,
            attempts=0,
            timeout_s=timeout,
            created_at=now,
            new_session=spec.new_session,
        )
        return row, task

    async def get_task(self, task_id: str, *, wait_s: float = 0.0) -> Task:
        """The task; with `wait_s`, once finished or as it is after that long."""
        if wait_s <= 0:
            return await self.current_task(task_id) or await self._read_task(task_id)
        self._check_wait(wait_s)
        async with self._executor.waiters.slot():
            return await self._executor.wait_for(task_id, wait_s, self._read_task)

    def cached_task(self, task_id: str) -> Task | None:
        """The task when memory holds it as it is now (live or recently finished), else
        None: then only the store knows it (`get_task`)."""
        return self._book.get(task_id)

    async def current_task(self, task_id: str) -> Task | None:
        """The task as memory holds it (None: only the store knows it). Work before status:
        a live task is read only after what already waits on the event loop has run and
        the writes already accepted are committed — the freshest answer, and clients
        polling in a tight loop then poll at the pace of the work instead of starving the
        tasks they wait for (bench/README.md, runs 8 and 9)."""
        task = self.cached_task(task_id)
        if task is None or task.state.finished:
            return task
        await asyncio.sleep(0)
        await self._writer.settled()
        return self.cached_task(task_id)

    async def _read_task(self, task_id: str) -> Task:
        """A live or recently finished task from memory; an older one from the store."""
        task = self.cached_task(task_id)
        if task is None and TASK_ID.fullmatch(task_id):
            # a malformed id names no task: the same 404 as an unknown one, without a query
            task = await self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id[:64]!r}")
        return task

    def _check_wait(self, wait_s: float) -> None:
        if wait_s > self._settings.max_wait_s:
            raise InvalidInput(
                f"wait must be at most {self._settings.max_wait_s:g} seconds (BIGTHREE_MAX_WAIT_S)"
            )

    async def list_tasks(self, name: str, limit: int = 100) -> list[Task]:
        rt = self._runtime(name)
        return await self._tasks.for_agent(rt.agent.id, limit=limit)

    async def recent_tasks(
        self, *, agent: str | None = None, state: TaskState | None = None, limit: int = 100
    ) -> list[Task]:
        """The newest tasks across agents (deleted ones' included), newest first."""
        return await self._tasks.recent(agent_name=agent, state=state, limit=limit)

    async def cancel_task(self, task_id: str) -> Task:
        if not self._writer.health().available:  # refuse before anything changes
            raise StorageUnavailable("the store cannot take writes now; nothing was changed")
        task = await self.get_task(task_id)
        if task.state.finished:
            raise Conflict(f"task {task_id} already finished ({task.state.value})")
        rt = self._runtimes.get(task.agent)
        if rt is None:
            raise NotFound(f"no task with id {task_id!r}")
        queued = next((t for t in rt.queue if t.id == task_id), None)
        if queued is not None:
            rt.queue.remove(queued)
            self._metrics.tasks_queued.dec()
            await self._executor.finish_unstarted(
                queued, rt.agent.kind, TaskState.CANCELLED, CANCELLED_MESSAGE
            )
        elif rt.running is not None and rt.running.id == task_id:
            rt.cancel_running(TaskState.CANCELLED)
            return await self.wait_for_task(task_id, 10.0)
        return await self.get_task(task_id)

    async def wait_for_task(self, task_id: str, timeout_s: float) -> Task:
        """The task once it has finished, or as it is after `timeout_s` seconds (not counted
        against BIGTHREE_MAX_WAITERS: for the service's own callers)."""
        return await self._executor.wait_for(task_id, timeout_s, self._read_task)

    # --- artifacts ----------------------------------------------------------------------

    async def task_artifacts(self, task_id: str) -> list[Artifact]:
        """The artifacts a task produced (404 for an unknown task)."""
        await self.get_task(task_id)
        if self._artifacts is None:
            return []
        return await self._artifacts.for_task(task_id)

    async def task_artifact(self, task_id: str, artifact_id: str) -> tuple[Artifact, bytes]:
        await self.get_task(task_id)
        if self._artifacts is None:
            raise NotFound(f"task {task_id} has no artifact {artifact_id!r}")
        return await self._artifacts.read(task_id, artifact_id)

    async def final_screen(self, task_id: str) -> tuple[Task, Artifact | None]:
        """A task and the last page its browser showed (None: no screenshot stored)."""
        task = await self.get_task(task_id)
        if self._artifacts is None:
            return task, None
        return task, await self._artifacts.final(task_id)

    # --- helpers ------------------------------------------------------------------------

    def _runtime(self, name: str) -> AgentRuntime:
        rt = self._runtimes.get(name)
        if rt is None or rt.deleting:
            raise NotFound(f"no agent named {name!r}")
        return rt

    def _view(self, rt: AgentRuntime) -> Agent:
        return rt.agent.model_copy(
            update={
                "queued_tasks": len(rt.queue),
                "running_task_id": rt.running.id if rt.running else None,
            }
        )

    def _refuse_if_draining(self) -> None:
        if self._draining:
            raise Draining("the service is shutting down and accepts no new work")

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.shutdown()
