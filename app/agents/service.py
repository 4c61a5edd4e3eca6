"""AgentManager: the single owner of agent and task state.

Scheduling: each agent has a FIFO of queued tasks and at most one running task; a global
semaphore bounds how many tasks run at once across agents. Every task runs inside a deadline
(`asyncio.timeout` plus a `Deadline` that provider calls read). Every transition is written
to the store first and then emitted as an event, so a client that sees an event can read the
matching state back.

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
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from app.agents.kinds.base import AgentKindRunner, RunContext, TaskFailed
from app.agents.llm import CallContext, LLMClient
from app.agents.repository import AgentRepository, TaskRepository
from app.agents.schemas import (
    Agent,
    AgentCost,
    AgentCreate,
    AgentState,
    CostReport,
    ModelCost,
    Task,
    TaskCreate,
    TaskError,
    TaskState,
    UsageOut,
)
from app.core.config import Settings
from app.core.errors import Conflict, Draining, InvalidInput, NotFound, TooManyRequests
from app.core.metrics import Metrics
from app.events.service import EventBus
from app.providers.errors import ProviderError
from app.resilience.errors import DeadlineExceeded, ResilienceError
from app.resilience.timeouts import Deadline, deadline_scope
from app.tools.errors import WorkspaceError
from app.tools.workspace import resolve_root

log = structlog.get_logger(__name__)

INTERRUPTED_MESSAGE = (
    "the service stopped while this task was running; it was not restarted because a partial "
    "run may already have had effects — submit it again if that is safe"
)


@dataclass(eq=False)
class AgentRuntime:
    agent: Agent
    queue: deque[Task] = field(default_factory=deque)
    worker: asyncio.Task[None] | None = None
    job: asyncio.Task[None] | None = None
    running: Task | None = None
    cancel_as: dict[str, TaskState] = field(default_factory=dict)
    history: deque[Task] | None = None  # recent succeeded tasks; None until first needed


def _new_id() -> str:
    return uuid.uuid4().hex


class AgentManager:
    def __init__(
        self,
        *,
        settings: Settings,
        agents: AgentRepository,
        tasks: TaskRepository,
        bus: EventBus,
        llm: LLMClient,
        metrics: Metrics,
        runners: Mapping[str, AgentKindRunner],
    ) -> None:
        self._settings = settings
        self._agents = agents
        self._tasks = tasks
        self._bus = bus
        self._llm = llm
        self._metrics = metrics
        self._runners = runners
        self._runtimes: dict[str, AgentRuntime] = {}
        self._slots = asyncio.Semaphore(settings.max_concurrent_tasks)
        self._order = 0
        self._draining = False
        self._stopped = False
        self._finish_signals: dict[str, asyncio.Event] = {}

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def draining(self) -> bool:
        return self._draining

    async def start(self) -> None:
        for agent in await self._agents.live():
            if agent.state == AgentState.BUSY:
                agent = agent.model_copy(update={"state": AgentState.IDLE})
                await self._agents.update(agent.id, state=AgentState.IDLE)
            self._runtimes[agent.name] = AgentRuntime(agent)
        self._metrics.agents.set(len(self._runtimes))
        self._order = await self._tasks.max_order_key()
        await self._recover()

    async def _recover(self) -> None:
        now = time.time()
        unfinished = await self._tasks.in_states([TaskState.QUEUED, TaskState.RUNNING])
        for task in unfinished:
            rt = self._runtimes.get(task.agent)
            if task.state == TaskState.RUNNING or rt is None:
                error = TaskError(type="interrupted", message=INTERRUPTED_MESSAGE)
                await self._tasks.update(
                    task.id, state=TaskState.INTERRUPTED, error=error.model_dump(), finished_at=now
                )
                self._emit_task(
                    "task.interrupted", task, {"error": error.model_dump(), "recovered": True}
                )
                continue
            rt.queue.append(task)
            self._metrics.tasks_queued.inc()
            self._emit_task("task.requeued", task, {"recovered": True})
        for rt in self._runtimes.values():
            self._ensure_worker(rt)
        if unfinished:
            log.info("tasks_recovered", count=len(unfinished))

    async def drain(self, grace_s: float) -> None:
        """Stop accepting work; give running tasks `grace_s`, then interrupt them."""
        if not self._draining:
            self._draining = True
            self._metrics.draining.set(1)
            self._bus.emit("service.draining", payload={"grace_s": grace_s})
            log.info("draining", grace_s=grace_s, running=len(self._jobs()))
        jobs = self._jobs()
        if jobs:
            await asyncio.wait(jobs, timeout=grace_s)
        await self._interrupt_running()

    async def shutdown(self) -> None:
        if self._stopped:
            return
        await self.drain(0.0)
        workers = [rt.worker for rt in self._runtimes.values() if rt.worker is not None]
        if workers:
            await asyncio.wait(workers, timeout=10.0)
        for worker in workers:
            worker.cancel()
        self._stopped = True

    def _jobs(self) -> list[asyncio.Task[None]]:
        return [
            rt.job for rt in self._runtimes.values() if rt.job is not None and not rt.job.done()
        ]

    async def _interrupt_running(self) -> None:
        jobs = []
        for rt in self._runtimes.values():
            if rt.job is not None and not rt.job.done() and rt.running is not None:
                rt.cancel_as[rt.running.id] = TaskState.INTERRUPTED
                rt.job.cancel()
                jobs.append(rt.job)
        if jobs:
            await asyncio.wait(jobs, timeout=10.0)

    # --- agents -------------------------------------------------------------------------

    async def create_agent(self, spec: AgentCreate) -> Agent:
        self._refuse_if_draining()
        if spec.name in self._runtimes:
            raise Conflict(f"an agent named {spec.name!r} already exists")
        if len(self._runtimes) >= self._settings.max_agents:
            raise TooManyRequests(f"agent limit reached ({self._settings.max_agents})")
        provider = spec.provider or self._settings.default_provider
        if provider not in self._llm.provider_names:
            raise InvalidInput(f"provider {provider!r} is not configured")
        workspace = None
        if spec.workspace is not None:
            try:
                workspace = str(resolve_root(spec.workspace, self._settings.workspace_roots))
            except WorkspaceError as exc:
                raise InvalidInput(exc.message) from None
        now = time.time()
        agent = await self._agents.insert(
            {
                "id": _new_id(),
                "name": spec.name,
                "kind": spec.kind,
                "provider": provider,
                "model": spec.model,
                "instructions": spec.instructions,
                "fallbacks": [f.model_dump() for f in spec.fallbacks],
                "stream": spec.stream,
                "workspace": workspace,
                "state": AgentState.IDLE,
                "created_at": now,
                "updated_at": now,
                "input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
                "tasks_total": 0,
            }
        )
        self._runtimes[agent.name] = AgentRuntime(agent)
        self._metrics.agents.set(len(self._runtimes))
        self._bus.emit(
            "agent.created",
            agent=agent.name,
            payload={
                "id": agent.id,
                "kind": agent.kind,
                "provider": agent.provider,
                "model": agent.model,
            },
        )
        return agent

    def list_agents(self) -> list[Agent]:
        return [self._view(self._runtimes[name]) for name in sorted(self._runtimes)]

    def get_agent(self, name: str) -> Agent:
        return self._view(self._runtime(name))

    async def delete_agent(self, name: str) -> Agent:
        rt = self._runtime(name)
        del self._runtimes[name]
        self._metrics.agents.set(len(self._runtimes))
        queued, rt.queue = list(rt.queue), deque()
        for task in queued:
            self._metrics.tasks_queued.dec()
            await self._finish_unstarted(task, TaskState.CANCELLED, "agent deleted")
        if rt.job is not None and not rt.job.done() and rt.running is not None:
            rt.cancel_as[rt.running.id] = TaskState.CANCELLED
            rt.job.cancel()
            await asyncio.wait([rt.job], timeout=10.0)
        now = time.time()
        await self._agents.update(rt.agent.id, state=AgentState.DELETED, updated_at=now)
        rt.agent = rt.agent.model_copy(update={"state": AgentState.DELETED, "updated_at": now})
        self._bus.emit("agent.deleted", agent=name, payload={"id": rt.agent.id})
        return rt.agent

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

    async def submit(self, name: str, spec: TaskCreate) -> Task:
        self._refuse_if_draining()
        rt = self._runtime(name)
        settings = self._settings
        if len(spec.prompt) > settings.max_prompt_chars:
            raise InvalidInput(
                f"prompt is {len(spec.prompt)} characters; the limit is {settings.max_prompt_chars}"
            )
        timeout = spec.timeout_s or settings.default_task_timeout_s
        if timeout > settings.max_task_timeout_s:
            raise InvalidInput(f"timeout_s must be at most {settings.max_task_timeout_s}")
        if len(rt.queue) >= settings.max_queued_tasks_per_agent:
            raise TooManyRequests(
                f"agent {name!r} already has {len(rt.queue)} queued tasks; try again later"
            )
        self._order += 1
        task = await self._tasks.insert(
            {
                "id": _new_id(),
                "agent_id": rt.agent.id,
                "agent_name": name,
                "state": TaskState.QUEUED,
                "prompt": spec.prompt,
                "result": None,
                "error": None,
                "input_tokens": 0,
                "output_tokens": 0,
                "cached_input_tokens": 0,
                "cost_usd": 0.0,
                "attempts": 0,
                "timeout_s": timeout,
                "created_at": time.time(),
                "started_at": None,
                "finished_at": None,
                "order_key": self._order,
            }
        )
        rt.agent = rt.agent.model_copy(update={"tasks_total": rt.agent.tasks_total + 1})
        rt.queue.append(task)
        self._metrics.tasks_queued.inc()
        self._metrics.tasks_submitted.labels(rt.agent.kind).inc()
        self._emit_task("task.queued", task, {"timeout_s": timeout, "position": len(rt.queue)})
        self._ensure_worker(rt)
        return task

    async def get_task(self, task_id: str) -> Task:
        task = await self._tasks.get(task_id)
        if task is None:
            raise NotFound(f"no task with id {task_id!r}")
        return task

    async def list_tasks(self, name: str, limit: int = 100) -> list[Task]:
        rt = self._runtime(name)
        return await self._tasks.for_agent(rt.agent.id, limit=limit)

    async def cancel_task(self, task_id: str) -> Task:
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
            await self._finish_unstarted(queued, TaskState.CANCELLED, "cancelled by request")
        elif rt.running is not None and rt.running.id == task_id and rt.job is not None:
            rt.cancel_as[task_id] = TaskState.CANCELLED
            rt.job.cancel()
            return await self.wait_for_task(task_id, 10.0)
        return await self.get_task(task_id)

    async def wait_for_task(self, task_id: str, timeout_s: float) -> Task:
        """The task once it has finished, or as it is after `timeout_s` seconds."""
        signal = self._finish_signals.setdefault(task_id, asyncio.Event())
        task = await self.get_task(task_id)
        if not task.state.finished:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout_s):
                    await signal.wait()
            task = await self.get_task(task_id)
        if task.state.finished:
            self._finish_signals.pop(task_id, None)
        return task

    def _signal_finished(self, task_id: str) -> None:
        signal = self._finish_signals.pop(task_id, None)
        if signal is not None:
            signal.set()

    # --- running ------------------------------------------------------------------------

    def _ensure_worker(self, rt: AgentRuntime) -> None:
        if rt.queue and rt.worker is None and not self._draining:
            rt.worker = asyncio.create_task(self._work(rt), name=f"agent-{rt.agent.name}")

    async def _work(self, rt: AgentRuntime) -> None:
        try:
            while rt.queue and not self._draining:
                head = rt.queue[0]
                async with self._slots:
                    if self._draining or not rt.queue or rt.queue[0] is not head:
                        continue
                    rt.queue.popleft()
                    self._metrics.tasks_queued.dec()
                    rt.running = head
                    rt.job = asyncio.create_task(self._execute(rt, head), name=f"task-{head.id}")
                    try:
                        await asyncio.shield(rt.job)
                    except asyncio.CancelledError:
                        if not rt.job.done():
                            raise
                    finally:
                        rt.running = None
                    if rt.job.cancelled():  # cancelled before _execute could record it
                        state = rt.cancel_as.pop(head.id, TaskState.CANCELLED)
                        cancelled = state == TaskState.CANCELLED
                        reason = "cancelled by request" if cancelled else INTERRUPTED_MESSAGE
                        await self._finish_unstarted(head, state, reason)
        finally:
            rt.worker = None

    async def _execute(self, rt: AgentRuntime, task: Task) -> None:
        agent = rt.agent
        started = time.time()
        self._metrics.tasks_running.inc()
        self._metrics.task_queue_wait.labels(agent.kind).observe(
            max(0.0, started - task.created_at)
        )
        await self._tasks.update(task.id, state=TaskState.RUNNING, started_at=started)
        # busy is shown from memory only: after a restart nothing is running, so the store
        # never needs to hold it (one write fewer per task)
        rt.agent = rt.agent.model_copy(update={"state": AgentState.BUSY})
        self._emit_task("task.running", task, {})
        call = CallContext(agent=agent.name, task_id=task.id)
        deadline = Deadline.after(task.timeout_s)
        result: str | None = None
        error: TaskError | None = None
        ctx = RunContext(self._llm, call, lambda: self._history(rt), emit=self._task_emitter(task))
        with structlog.contextvars.bound_contextvars(agent=agent.name, task_id=task.id):
            try:
                async with asyncio.timeout(task.timeout_s):
                    with deadline_scope(deadline):
                        result = await self._runners[agent.kind].run(agent, task, ctx)
                state = TaskState.SUCCEEDED
            except asyncio.CancelledError:
                state = rt.cancel_as.pop(task.id, TaskState.CANCELLED)
                error = TaskError(
                    type=state.value,
                    message=INTERRUPTED_MESSAGE
                    if state == TaskState.INTERRUPTED
                    else "cancelled by request",
                )
            except Exception as exc:
                state, error = self._classify_failure(exc, deadline, task.timeout_s)
            finally:
                self._metrics.tasks_running.dec()
            await self._record_finish(
                rt, task, state, result, error, call, started, files_changed=ctx.files_changed
            )

    def _classify_failure(
        self, exc: Exception, deadline: Deadline, timeout_s: float
    ) -> tuple[TaskState, TaskError]:
        # DeadlineExceeded: the task's deadline cut a provider call off (asyncio may fire that
        # timer a hair before `deadline.expired` turns true, so the type decides, not the clock)
        if isinstance(exc, TimeoutError | DeadlineExceeded) or deadline.expired:
            return TaskState.TIMED_OUT, TaskError(
                type="timed_out",
                message=f"the task did not finish within its {timeout_s:g}s deadline",
            )
        if isinstance(exc, ProviderError):
            details = exc.describe()
            return TaskState.FAILED, TaskError(
                type=exc.reason, message=exc.message, details=details
            )
        if isinstance(exc, ResilienceError):
            return TaskState.FAILED, TaskError(type=exc.reason, message=str(exc))
        if isinstance(exc, TaskFailed):
            return TaskState.FAILED, TaskError(
                type=exc.type, message=exc.message, details=exc.details
            )
        log.exception("task_crashed")
        return TaskState.FAILED, TaskError(
            type="internal_error", message=f"the agent loop failed: {type(exc).__name__}"
        )

    async def _record_finish(
        self,
        rt: AgentRuntime,
        task: Task,
        state: TaskState,
        result: str | None,
        error: TaskError | None,
        call: CallContext,
        started: float,
        *,
        files_changed: list[str],
    ) -> None:
        now = time.time()
        usage = call.usage
        a = rt.agent
        agent_state = a.state
        if a.state != AgentState.DELETED:
            failed = state in {TaskState.FAILED, TaskState.TIMED_OUT}
            agent_state = AgentState.FAILED if failed else AgentState.IDLE
        # the task's outcome and the agent's totals change together, in one transaction
        await self._tasks.finish(
            task.id,
            {
                "state": state,
                "result": result,
                "error": error.model_dump() if error else None,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "cached_input_tokens": usage.cached_input_tokens,
                "cost_usd": call.cost_usd,
                "attempts": call.attempts,
                "finished_at": now,
                "files_changed": files_changed,
            },
            agent_id=a.id,
            agent_state=agent_state,
            usage=usage,
            cost_usd=call.cost_usd,
        )
        a = rt.agent  # re-read: a submit may have replaced it while we awaited the store
        rt.agent = a.model_copy(
            update={
                "state": agent_state if a.state != AgentState.DELETED else a.state,
                "updated_at": now,
                "usage": UsageOut(
                    input_tokens=a.usage.input_tokens + usage.input_tokens,
                    output_tokens=a.usage.output_tokens + usage.output_tokens,
                    total_tokens=a.usage.total_tokens + usage.total_tokens,
                ),
                "cost_usd": a.cost_usd + call.cost_usd,
            }
        )
        if state == TaskState.SUCCEEDED and rt.history is not None:
            rt.history.append(task.model_copy(update={"state": state, "result": result}))
        self._metrics.tasks_finished.labels(a.kind, state.value).inc()
        self._metrics.task_duration.labels(a.kind, state.value).observe(now - started)
        payload: dict[str, Any] = {
            "usage": usage.as_dict(),
            "cost_usd": call.cost_usd,
            "attempts": call.attempts,
            "run_s": round(now - started, 4),
        }
        if result is not None:
            payload["result"] = result
        if error is not None:
            payload["error"] = error.model_dump()
        if files_changed:
            payload["files_changed"] = files_changed
        self._signal_finished(task.id)
        self._emit_task(f"task.{state.value}", task, payload)
        log.info(
            "task_finished",
            state=state.value,
            run_s=payload["run_s"],
            attempts=call.attempts,
            error_type=error.type if error else None,
        )

    async def _finish_unstarted(self, task: Task, state: TaskState, reason: str) -> None:
        error = TaskError(type=state.value, message=reason)
        await self._tasks.update(
            task.id, state=state, error=error.model_dump(), finished_at=time.time()
        )
        kind = self._runtimes[task.agent].agent.kind if task.agent in self._runtimes else "chat"
        self._metrics.tasks_finished.labels(kind, state.value).inc()
        self._signal_finished(task.id)
        self._emit_task(f"task.{state.value}", task, {"error": error.model_dump()})

    async def _history(self, rt: AgentRuntime) -> list[Task]:
        """The agent's last succeeded tasks, oldest first: read from the store once, then
        kept in memory as tasks succeed."""
        turns = self._settings.chat_history_turns
        if turns == 0:
            return []
        if rt.history is None:
            done = await self._tasks.for_agent(rt.agent.id, limit=turns, state=TaskState.SUCCEEDED)
            rt.history = deque(reversed(done), maxlen=turns)
        return list(rt.history)

    # --- helpers ------------------------------------------------------------------------

    def _runtime(self, name: str) -> AgentRuntime:
        rt = self._runtimes.get(name)
        if rt is None:
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

    def _task_emitter(self, task: Task) -> Callable[[str, dict[str, Any]], None]:
        """Emit events about `task` from inside its run (tool calls, results)."""

        def emit(type_: str, payload: dict[str, Any]) -> None:
            self._bus.emit(
                type_, source="agent", agent=task.agent, task_id=task.id, payload=payload
            )

        return emit

    def _emit_task(self, type_: str, task: Task, payload: dict[str, Any]) -> None:
        self._bus.emit(type_, agent=task.agent, task_id=task.id, payload=payload)

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.shutdown()
