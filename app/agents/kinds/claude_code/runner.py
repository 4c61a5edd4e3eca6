"""`claude_code` agents' runner: each task is one Claude Code turn in the agent's workspace.

Around the run (`session.py`):
- **Breaker.** The anthropic breaker gives a permit before the CLI starts (an open breaker
  fails the task at once: the CLI never starts) and records the run's outcome: an API error
  429/5xx/529 is a failure, a success a success (its slowness judged by the mean API call
  time), anything else — a cancel, a deadline, a bad request — is not recorded.
- **No stacked retries.** The CLI retries a failed API call itself, `CLAUDE_CODE_MAX_RETRIES`
  times (BIGTHREE_CLAUDE_CODE_MAX_RETRIES, default 1; it honours Retry-After); the service
  adds none (a whole turn is not safe to repeat) — the task fails with a typed error.
- **Sessions.** The agent's Claude Code session id is stored with it as soon as a run
  reports it; the next task resumes it (its transcript lives in the agent's private HOME,
  `<data_dir>/claude_code/agents/<agent id>`), unless the task asks for `new_session`.
- **Stopping.** Cancel, drain and the deadline interrupt the turn; after
  BIGTHREE_CLAUDE_CODE_STOP_GRACE_S the process group is killed. The task's own end waits for
  that, so a task recorded as finished has no process left.
- **Limits.** `max_turns` (default BIGTHREE_TOOL_LOOP_MAX_STEPS) and BIGTHREE_TASK_MAX_COST_USD
  (Claude Code's `max_budget_usd`) are enforced by Claude Code itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

import structlog

from app.agents.kinds.base import RunContext, TaskFailed
from app.agents.kinds.claude_code.availability import (
    CLAUDE_CODE_PROVIDER,
    cli_path,
    unavailable_reason,
)
from app.agents.kinds.claude_code.outcome import RunResult
from app.agents.kinds.claude_code.policy import ToolPolicy
from app.agents.kinds.claude_code.processes import ClaudeProcesses
from app.agents.kinds.claude_code.translate import RunRecorder
from app.agents.kinds.coder import open_workspace
from app.agents.schemas import Agent, Task
from app.agents.telemetry import call_scope
from app.core.config import Settings
from app.events.external import emit_external
from app.events.schemas import EventIn
from app.events.service import EventBus
from app.providers.registry import default_base_url
from app.resilience.breaker import CircuitBreaker, Permit
from app.resilience.timeouts import current_deadline
from app.tools.errors import WorkspaceError

if TYPE_CHECKING:
    from app.agents.kinds.claude_code.session import ClaudeCodeSession, SessionOutcome

log = structlog.get_logger(__name__)

SESSION_MODULE = "app.agents.kinds.claude_code.session"  # imports the SDK

SYSTEM_APPEND = """\
You are running as a Big Three `claude_code` agent. Your working directory {cwd} is your \
workspace: the service refuses file tools outside it{bash}."""


def cli_api_key(settings: Settings) -> str | None:
    """ANTHROPIC_API_KEY; a placeholder for a custom ANTHROPIC_BASE_URL that takes no key
    (the fake upstream, a local gateway); None when the official API has no key."""
    if settings.anthropic_api_key is not None:
        return settings.anthropic_api_key.get_secret_value()
    if settings.anthropic_base_url != default_base_url(CLAUDE_CODE_PROVIDER).rstrip("/"):
        return "no-key-needed"
    return None


def cli_env(settings: Settings, home: str, api_key: str) -> dict[str, str]:
    """The CLI's environment, on top of what the launcher lets through (see processes.py)."""
    return {
        "HOME": home,
        "ANTHROPIC_BASE_URL": settings.anthropic_base_url,
        "ANTHROPIC_API_KEY": api_key,
        "CLAUDE_CODE_MAX_RETRIES": str(settings.claude_code_max_retries),
        # no telemetry, update checks or other calls besides the Messages API
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }


class ClaudeCodeRunner:
    def __init__(self, settings: Settings, bus: EventBus) -> None:
        self._settings = settings
        self._bus = bus
        # absolute: the CLI runs in the workspace, and BIGTHREE_DATA_DIR may be relative
        self._base = settings.data_dir.absolute() / "claude_code"
        self.processes = ClaudeProcesses(self._base)
        self._sessions: dict[asyncio.Task[Any], ClaudeCodeSession] = {}

    def start(self) -> int:
        """At service start: kill CLI processes a crash left behind; how many were killed."""
        return self.processes.reap_leftovers()

    async def aclose(self) -> None:
        """Stop every run still going and wait (bounded) for their processes to end."""
        for session in self._sessions.values():
            session.request_stop()
        if self._sessions:
            await asyncio.wait(list(self._sessions), timeout=self._stop_wait_s())

    def _stop_wait_s(self) -> float:
        return self._settings.claude_code_stop_grace_s * 2 + 5.0

    # --- one task --------------------------------------------------------------------------

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        settings = self._settings
        reason = unavailable_reason(settings)
        if reason is not None:
            raise TaskFailed("claude_code_unavailable", reason)
        if cli_api_key(settings) is None:
            raise TaskFailed("not_configured", "claude_code agents need ANTHROPIC_API_KEY")
        try:
            workspace = open_workspace(settings, agent).root
        except (WorkspaceError, OSError) as exc:
            message = f"the workspace cannot be used: {exc}"
            raise TaskFailed("workspace_unavailable", message) from exc
        options = agent.claude_code_options()
        policy = ToolPolicy.for_agent(
            options, workspace, allow_bash=settings.claude_code_allow_bash
        )
        # the SDK takes a second or more to import: not on the event loop's thread
        module = await asyncio.to_thread(importlib.import_module, SESSION_MODULE)
        session = self._session(module, agent, task, ctx, policy, options.max_turns)
        breaker = ctx.llm.gateway.policy_for(CLAUDE_CODE_PROVIDER, agent.model).breaker
        with call_scope(ctx.call):
            permit = breaker.acquire() if breaker is not None else None  # open: fails here
        try:
            outcome = await self._wait(agent, ctx, session)
        except BaseException:
            if breaker is not None and permit is not None:
                breaker.release(permit)  # a cancel says nothing about the upstream
            raise
        self._account(agent, ctx, session, outcome)
        if breaker is not None and permit is not None:
            self._settle(breaker, permit, outcome)
        return self._result(agent, session, outcome)

    def _session(
        self,
        module: ModuleType,
        agent: Agent,
        task: Task,
        ctx: RunContext,
        policy: ToolPolicy,
        max_turns: int | None,
    ) -> ClaudeCodeSession:
        settings = self._settings
        home = self._base / "agents" / agent.id
        home.mkdir(parents=True, exist_ok=True)
        self.processes.prepare()
        cli = cli_path(settings)
        assert cli is not None  # unavailable_reason() said it exists
        api_key = cli_api_key(settings) or ""
        env = cli_env(settings, str(home), api_key)
        env |= self.processes.env(task.id, cli, keep=list(env))
        deadline = current_deadline()
        bash = " (Bash commands are not path-checked)" if "Bash" in policy.tools else ""
        append = SYSTEM_APPEND.format(cwd=policy.workspace, bash=bash)
        if agent.instructions:
            append += "\n\n" + agent.instructions
        spec = module.RunSpec(
            run_id=task.id,
            prompt=task.prompt,
            model=agent.model,
            cwd=policy.workspace,
            launcher=self.processes.launcher,
            env=env,
            tools=policy.tools,
            disallowed_tools=tuple(agent.disallowed_tools or ()),
            permission_mode=agent.permission_mode or "default",
            max_turns=max_turns or settings.tool_loop_max_steps,
            max_budget_usd=settings.task_max_cost_usd or None,
            system_append=append,
            resume=None if task.new_session else agent.session_id,
            stop_grace_s=settings.claude_code_stop_grace_s,
            deadline_s=None if deadline is None else deadline.remaining(),
            secrets=(api_key,),
        )
        recorder = RunRecorder(
            agent=agent.name,
            task_id=task.id,
            policy=policy,
            emit=ctx.emit,
            emit_hook=self._emit_hook,
            emit_delta=(lambda t, p: ctx.llm.emit(t, ctx.call, p)) if agent.stream else None,
            files_changed=ctx.files_changed,
        )
        session: ClaudeCodeSession = module.ClaudeCodeSession(
            spec,
            recorder=recorder,
            processes=self.processes,
            emit=ctx.emit,
            remember_session=ctx.remember_session,
        )
        return session

    def _emit_hook(self, body: EventIn) -> None:
        emit_external(self._bus, body)

    async def _wait(
        self, agent: Agent, ctx: RunContext, session: ClaudeCodeSession
    ) -> SessionOutcome:
        """The run's outcome. Cancelled (cancel, drain, the deadline's backstop): stop the
        run and wait — bounded — for its process to be gone and its usage counted before
        passing the cancel on."""
        job = asyncio.create_task(session.run(), name=f"claude-code-{session.spec.run_id}")
        self._sessions[job] = session
        job.add_done_callback(lambda done: self._sessions.pop(done, None))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            session.request_stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([job], timeout=self._stop_wait_s())
            if job.done() and not job.cancelled():
                self._account(agent, ctx, session, job.result())
            raise

    @staticmethod
    def _settle(breaker: CircuitBreaker, permit: Permit, outcome: SessionOutcome) -> None:
        """Record an API error (429/5xx/529 count as failures) or a success on the breaker;
        leave anything else (a stop, max_turns, the budget, a CLI crash) unrecorded."""
        result = outcome.result
        if result is None or outcome.stopped is not None:
            breaker.release(permit)
            return
        error = result.api_error
        if error is None and result.is_error:
            breaker.release(permit)
            return
        breaker.record(permit, error, duration_s=result.mean_call_s())

    def _result(self, agent: Agent, session: ClaudeCodeSession, outcome: SessionOutcome) -> str:
        """The task's result text, or the exception that ends it."""
        if outcome.stopped == "deadline":
            raise TimeoutError("the task deadline stopped the Claude Code run")
        if outcome.error is not None:
            tail = session.stderr_tail()
            said = tail.splitlines()[-1] if tail else str(outcome.error).splitlines()[0]
            raise TaskFailed(
                "claude_code_failed",
                f"Claude Code failed: {said}"[:1000],
                stderr=tail or None,
            ) from outcome.error
        if outcome.result is None:
            raise TaskFailed("claude_code_failed", "Claude Code ended without a result")
        return outcome.result.text(
            max_turns=agent.max_turns or self._settings.tool_loop_max_steps,
            max_cost_usd=self._settings.task_max_cost_usd,
        )

    @staticmethod
    def _account(
        agent: Agent, ctx: RunContext, session: ClaudeCodeSession, outcome: SessionOutcome
    ) -> None:
        """The run's usage and cost on the task, the metrics and the per-model totals;
        its turns as the task's attempts."""
        result: RunResult | None = outcome.result
        if result is not None:
            spent = result.spend(agent.model)
            ctx.call.attempts = result.num_turns
            ctx.emit("claude_code.result", result.summary())
        else:  # killed before its result: what the streams reported, priced from the table
            spent = outcome.streamed.spend(agent.model)
            ctx.call.attempts = session.recorder.steps
        for item in spent:
            ctx.llm.account(
                CLAUDE_CODE_PROVIDER, item.model, item.usage, ctx.call, cost_usd=item.cost_usd
            )
