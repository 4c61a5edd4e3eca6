"""`browser` agents: Gemini's computer-use model working a real headless Chromium.

    open a browser (one per task, see app/tools/browser/launcher.py), at start_url if any
    repeat: ask the model, with the predefined computerUse tool
            no calls       → the task's result is the model's text (final page recorded)
            calls          → run each action in order; answer each with the URL and a PNG
                             screenshot of the page after it (also stored as an artifact)

Per call: the arguments are checked (an unknown action, a value off the 0-999 grid or a
missing argument is answered with an error, not run); an action the model marks
`require_confirmation` runs only with BIGTHREE_BROWSER_SAFETY=allow (then its answer carries
`safety_acknowledgement`), else it is refused and the model told. Every call is a
`browser.action` event; refusals are `browser.navigation_refused` / `browser.safety_refused`.
Screenshots older than the last `KEEP_SCREENSHOT_TURNS` turns are dropped from the context.

Stops: the model's answer (succeeded); `BIGTHREE_BROWSER_MAX_STEPS` model calls (failed,
`step_limit`); the task's cost cap (`cost_limit`); the deadline (timed_out). A turn that
ends `MALFORMED_FUNCTION_CALL` is asked again (it counts as a step).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import time
from typing import Any

from app.agents.kinds.base import RunContext, TaskFailed
from app.agents.kinds.toolloop import check_cost, opening_messages
from app.agents.schemas import Agent, Task
from app.artifacts.service import ArtifactStore
from app.core.config import Settings
from app.core.metrics import Metrics
from app.providers.base import (
    CompletionRequest,
    ComputerUse,
    InlineImage,
    Message,
    ToolCall,
)
from app.resilience.timeouts import current_deadline
from app.tools.browser import actions as a
from app.tools.browser.executable import BrowserUnavailable
from app.tools.browser.guard import NavigationGuard, Refusal
from app.tools.browser.launcher import BrowserBusy, BrowserPool
from app.tools.browser.session import BrowserFailed, BrowserSession, SessionConfig

KEEP_SCREENSHOT_TURNS = 3
MALFORMED = "MALFORMED_FUNCTION_CALL"
PAGE_TEXT_CHARS = 4000
ARG_PREVIEW_CHARS = 500

SYSTEM_PROMPT = """\
You are a browser agent: you do the user's task by working a web browser through your \
computer-use actions, one tab, then answer in plain text without calling an action. {start} \
The browser may only reach these sites: {origins}; anything else is refused and you are \
told so. Each action's answer has the page's URL and a screenshot. When the task is done, \
or cannot be done, reply with the answer and what you saw, without calling an action."""


class _Unsafe(a.ActionError):
    """A `require_confirmation` action the safety policy refused."""


class BrowserRunner:
    def __init__(
        self, settings: Settings, pool: BrowserPool, artifacts: ArtifactStore, metrics: Metrics
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._artifacts = artifacts
        self._metrics = metrics

    async def run(self, agent: Agent, task: Task, ctx: RunContext) -> str:
        options = agent.browser_options()
        guard = NavigationGuard(options.allowed_origins)
        config = SessionConfig(
            screen=a.Screen(options.screen.width, options.screen.height),
            action_timeout_s=self._settings.browser_action_timeout_s,
            home_url=options.start_url,
        )
        run = _Run(self, agent, task, ctx, config)
        if self._pool.full:
            ctx.emit("browser.waiting", {"limit": self._pool.limit})
        deadline = current_deadline()
        wait_s = self._settings.browser_max_wait_s if deadline is None else deadline.remaining()
        try:
            async with self._pool.session(guard, config, run.refused, max_wait_s=wait_s) as page:
                return await run.run(page, guard)
        except BrowserUnavailable as exc:
            raise TaskFailed("browser_unavailable", exc.message) from None
        except BrowserBusy as exc:
            raise TaskFailed("browser_busy", str(exc), limit=exc.limit) from None
        except BrowserFailed as exc:
            raise TaskFailed("browser_failed", str(exc)) from None


class _Run:
    """One task's loop state."""

    def __init__(
        self,
        runner: BrowserRunner,
        agent: Agent,
        task: Task,
        ctx: RunContext,
        config: SessionConfig,
    ) -> None:
        self.settings = runner._settings
        self.artifacts = runner._artifacts
        self.metrics = runner._metrics
        self.agent = agent
        self.task = task
        self.ctx = ctx
        self.config = config
        self.step = 0

    def refused(self, refusal: Refusal, extra: dict[str, Any]) -> None:
        """Every refusal of the guard or the gate: counted and emitted."""
        self.metrics.browser_navigation_refusals.labels(refusal.stage).inc()
        self.ctx.emit(
            "browser.navigation_refused",
            {
                "url": refusal.url,
                "reason": refusal.reason,
                "stage": refusal.stage,
                "step": self.step,
                **extra,
            },
        )

    async def run(self, session: BrowserSession, guard: NavigationGuard) -> str:
        start = self.agent.start_url
        if start is not None:
            with contextlib.suppress(a.ActionError):  # the model sees where it is anyway
                await session.start(start)
        where = f"It starts at {start}." if start else "It starts on a blank page."
        system = SYSTEM_PROMPT.format(start=where, origins=guard.describe())
        messages = await opening_messages(self.agent, self.task, self.ctx, system)
        try:
            return await self._loop(session, messages)
        except (TaskFailed, BrowserFailed):
            await self._record_final(session)
            raise

    async def _loop(self, session: BrowserSession, messages: list[Message]) -> str:
        max_steps = self.settings.browser_max_steps
        agent = self.agent
        for step in range(1, max_steps + 1):
            self.step = step
            completion = await self.ctx.llm.complete(
                agent.provider,
                CompletionRequest(
                    model=agent.model, messages=list(messages), computer_use=ComputerUse()
                ),
                self.ctx.call,
                fallbacks=agent.fallbacks,
                stream=agent.stream,
            )
            if not completion.tool_calls:
                if completion.raw_finish_reason == MALFORMED:
                    self.ctx.emit("browser.malformed_call", {"step": step})
                    continue
                await self._record_final(session)
                return completion.text
            check_cost(self.ctx, self.settings.task_max_cost_usd, step)
            if step == max_steps:
                break
            messages.append(Message("assistant", completion.text or None, completion.tool_calls))
            for call in completion.tool_calls:
                messages.append(await self._act(session, call))
            _keep_recent_screenshots(messages, KEEP_SCREENSHOT_TURNS)
        raise TaskFailed(
            "step_limit",
            f"the model still wanted actions after {max_steps} steps (BIGTHREE_BROWSER_MAX_STEPS)",
            max_steps=max_steps,
        )

    async def _act(self, session: BrowserSession, call: ToolCall) -> Message:
        """Run one call and answer it: {url, error?, safety_acknowledgement?} + screenshot."""
        started = time.perf_counter()
        name = call.name
        outcome, error, args = "ok", None, None
        response: dict[str, Any] = {}
        try:
            if call.arguments_error is not None:
                raise a.ActionError(f"the arguments are not a JSON object ({call.arguments_error})")
            args = a.parse(name, call.arguments)
            if self._needs_confirmation(call):
                response["safety_acknowledgement"] = "true"  # allowed, or _Unsafe was raised
            await session.run(name, args)
        except (a.NavigationRefused, _Unsafe) as exc:
            outcome, error = "refused", str(exc)
        except a.ActionError as exc:
            outcome, error = "error", str(exc)
        observation = await session.observe()
        artifact = await self.artifacts.save_png(
            self.task.id,
            self.agent.name,
            observation.png,
            kind="screenshot",
            step=self.step,
            action=name[:32],
            url=observation.url,
        )
        response = {"url": observation.url, **response}
        if error is not None:
            response["error"] = error
        elif session.refused:
            response["refused"] = [r.message() for r in session.refused]
        label = name if name in a.ACTIONS else a.UNKNOWN_ACTION
        self.metrics.browser_actions.labels(label, outcome).inc()
        self.ctx.emit(
            "browser.action",
            {
                "name": name,
                "call_id": call.id,
                "step": self.step,
                "outcome": outcome,
                "args": _preview(call.arguments),
                "grid": a.grid(args) if args is not None else {},
                "pixels": a.pixels(args, self.config.screen) if args is not None else {},
                "url": observation.url,
                "screenshot": artifact.id,
                "error": error,
                "safety_acknowledged": "safety_acknowledgement" in response,
                "duration_s": round(time.perf_counter() - started, 4),
            },
        )
        return Message(
            "tool",
            json.dumps(response),
            tool_call_id=call.id,
            tool_name=name,
            is_error=error is not None,
            result=response,
            images=(InlineImage("image/png", observation.png),),
        )

    def _needs_confirmation(self, call: ToolCall) -> bool:
        """True for a `require_confirmation` call the policy allows; `_Unsafe` (and a
        `browser.safety_refused` event) when BIGTHREE_BROWSER_SAFETY=deny refuses it."""
        decision = a.safety_decision(call.arguments)
        if decision is None or not decision.needs_confirmation:
            return False
        if self.settings.browser_safety == "allow":
            return True
        self.ctx.emit(
            "browser.safety_refused",
            {
                "name": call.name,
                "call_id": call.id,
                "step": self.step,
                "explanation": decision.explanation[:ARG_PREVIEW_CHARS],
            },
        )
        raise _Unsafe(
            "not done: this action needs the user's confirmation, and this service refuses "
            "such actions (BIGTHREE_BROWSER_SAFETY=deny); find another way, or stop and say "
            "what needs confirming"
        )

    async def _record_final(self, session: BrowserSession) -> None:
        """The page as the task ends: a `final` artifact with its title and text."""
        with contextlib.suppress(BrowserFailed):
            observation = await session.observe()
            title, text = await session.title_and_text(PAGE_TEXT_CHARS)
            await self.artifacts.save_png(
                self.task.id,
                self.agent.name,
                observation.png,
                kind="final",
                step=self.step,
                url=observation.url,
                title=title,
                page_text=text,
            )


def _preview(arguments: Any) -> dict[str, Any]:
    """The call's arguments for an event: long strings cut."""
    if not isinstance(arguments, dict):
        return {}
    return {
        key: value[:ARG_PREVIEW_CHARS] if isinstance(value, str) else value
        for key, value in arguments.items()
    }


def _keep_recent_screenshots(messages: list[Message], turns: int) -> None:
    """Drop the images of tool results older than the last `turns` model turns."""
    seen = 0
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "assistant" and message.tool_calls:
            seen += 1
        elif message.role == "tool" and seen >= turns and message.images:
            messages[index] = dataclasses.replace(message, images=())
