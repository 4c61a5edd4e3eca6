"""Rich renderings of the service's objects for the terminal."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # the shapes are loaded by the client, only when a command talks to a server
    from app.agents.schemas import Agent, CostReport, Task
    from app.client import ProviderStatus
    from app.events.schemas import Event

STATE_STYLES = {
    "succeeded": "green",
    "failed": "red",
    "timed_out": "red",
    "cancelled": "yellow",
    "interrupted": "yellow",
    "running": "cyan",
    "queued": "blue",
    "busy": "cyan",
    "idle": "green",
    "closed": "green",
    "open": "red",
    "forced_open": "red",
    "half_open": "yellow",
    "disabled": "dim",
}


def state(value: str) -> Text:
    return Text(value, style=STATE_STYLES.get(value, ""))


def _money(usd: float) -> str:
    return f"${usd:.6f}".rstrip("0").rstrip(".") if usd else "$0"


def agents_table(agents: list[Agent]) -> Table:
    table = Table("name", "kind", "state", "provider/model", "queued", "running", "tasks", "cost")
    for a in agents:
        table.add_row(
            a.name,
            a.kind,
            state(a.state.value),
            f"{a.provider}/{a.model}",
            str(a.queued_tasks),
            a.running_task_id or "",
            str(a.tasks_total),
            _money(a.cost_usd),
        )
    return table


def agent_detail(a: Agent) -> Table:
    table = Table.grid(padding=(0, 2))
    rows = {
        "name": a.name,
        "kind": a.kind,
        "state": a.state.value,
        "provider": a.provider,
        "model": a.model,
        "fallbacks": ", ".join(f"{f.provider}/{f.model}" for f in a.fallbacks) or "-",
        "stream": str(a.stream).lower(),
        "workspace": a.workspace or "-",
        **_kind_rows(a),
        "queued tasks": str(a.queued_tasks),
        "running task": a.running_task_id or "-",
        "tasks": str(a.tasks_total),
        "tokens in/out": f"{a.usage.input_tokens}/{a.usage.output_tokens}",
        "cost": _money(a.cost_usd),
        "instructions": a.instructions or "-",
    }
    for key, value in rows.items():
        table.add_row(Text(key, style="bold"), state(value) if key == "state" else value)
    return table


def _kind_rows(a: Agent) -> dict[str, str]:
    """The claude_code or browser options an agent has (None for other kinds: no row)."""
    lists = {
        "allowed tools": a.allowed_tools,
        "disallowed tools": a.disallowed_tools,
        "allowed origins": a.allowed_origins,
    }
    rows = {key: ", ".join(v) or "none" for key, v in lists.items() if v is not None}
    others = {
        "permission mode": a.permission_mode,
        "max turns": a.max_turns,
        "start url": a.start_url,
        "screen": a.screen and f"{a.screen.width}x{a.screen.height}",
    }
    rows.update({key: str(v) for key, v in others.items() if v is not None})
    return rows


def tasks_table(tasks: list[Task]) -> Table:
    table = Table("id", "agent", "state", "created", "run s", "cost", "prompt")
    for t in tasks:
        table.add_row(
            t.id,
            t.agent,
            state(t.state.value),
            _time(t.created_at),
            "" if t.run_s is None else f"{t.run_s:.2f}",
            _money(t.cost_usd),
            _short(t.prompt, 40),
        )
    return table


def task_detail(t: Task) -> Table:
    table = Table.grid(padding=(0, 2))
    rows = {
        "id": t.id,
        "agent": t.agent,
        "state": t.state.value,
        "prompt": t.prompt,
        "created": _time(t.created_at),
        "queue wait s": "-" if t.queue_wait_s is None else f"{t.queue_wait_s:.3f}",
        "run s": "-" if t.run_s is None else f"{t.run_s:.3f}",
        "attempts": str(t.attempts),
        "tokens in/out": f"{t.usage.input_tokens}/{t.usage.output_tokens}",
        "cost": _money(t.cost_usd),
        "files changed": ", ".join(t.files_changed) or "-",
        "error": f"{t.error.type}: {t.error.message}" if t.error else "-",
        "result": t.result if t.result is not None else "-",
    }
    for key, value in rows.items():
        table.add_row(Text(key, style="bold"), state(value) if key == "state" else value)
    return table


def event_line(e: Event) -> Text:
    """One event on one line: seq, time, type, agent, task and a short payload."""
    line = Text()
    line.append(f"{e.seq:>7} ", style="dim")
    line.append(_time(e.ts) + " ", style="dim")
    line.append(f"{e.type:<18} ", style=_event_style(e.type))
    if e.agent:
        line.append(f"{e.agent} ")
    if e.task_id:
        line.append(f"{e.task_id[:8]} ", style="dim")
    summary = event_summary(e)
    if summary:
        line.append(summary)
    return line


def event_summary(e: Event) -> str:
    """The interesting part of an event's payload, in a few words."""
    p = e.payload
    if e.type.startswith("llm.") and "model" in p:
        text = f"{p.get('provider', '')}/{p['model']}"
        reason = p.get("reason") or p.get("type")
        return f"{text} {reason}" if e.type == "llm.error" and reason else text
    if e.type in ("tool.call", "tool.result"):
        return str(p.get("name") or p.get("tool") or "")
    if "error" in p and isinstance(p["error"], dict):
        return f"{p['error'].get('type')}: {_short(str(p['error'].get('message')), 60)}"
    if "result" in p:
        return _short(str(p["result"]), 60)
    return ""


def _event_style(type_: str) -> str:
    if type_.endswith((".failed", ".error", ".timed_out")):
        return "red"
    if type_.endswith((".succeeded", ".created")):
        return "green"
    if type_.endswith((".cancelled", ".interrupted", ".retry", ".fallback")):
        return "yellow"
    return "cyan"


def providers_table(providers: list[ProviderStatus]) -> Table:
    table = Table(
        "provider", "configured", "breaker", "state", "fail %", "calls", "bulkhead", "retry budget"
    )
    for p in providers:
        bulkhead = f"{p.bulkhead.in_use}/{p.bulkhead.limit} ({p.bulkhead.waiting} waiting)"
        budget = f"{p.retry_budget.available:.1f} left"
        breakers = p.breakers or []
        if not breakers:
            table.add_row(p.name, str(p.configured).lower(), "-", "-", "-", "-", bulkhead, budget)
        for b in breakers:
            rate = "-" if b.failure_rate is None else f"{b.failure_rate:.0f}"
            table.add_row(
                p.name,
                str(p.configured).lower(),
                b.name,
                state(b.state),
                rate,
                str(b.calls),
                bulkhead,
                budget,
            )
    return table


def costs_tables(report: CostReport) -> tuple[Table, Table]:
    by_agent = Table("agent", "provider/model", "tokens in", "tokens out", "cost", title="by agent")
    for a in report.by_agent:
        by_agent.add_row(
            a.agent,
            f"{a.provider}/{a.model}",
            str(a.usage.input_tokens),
            str(a.usage.output_tokens),
            _money(a.cost_usd),
        )
    by_model = Table(
        "provider/model", "calls", "tokens in", "tokens out", "cost", title="by provider/model"
    )
    for m in report.by_model:
        by_model.add_row(
            f"{m.provider}/{m.model}",
            str(m.calls),
            str(m.input_tokens),
            str(m.output_tokens),
            _money(m.cost_usd),
        )
    by_model.add_section()
    by_model.add_row(
        "total",
        "",
        str(report.total_input_tokens),
        str(report.total_output_tokens),
        _money(report.total_cost_usd),
    )
    return by_agent, by_model


def _time(ts: float | str | None) -> str:
    if ts is None:
        return "-"
    if isinstance(ts, str):
        ts = datetime.fromisoformat(ts).timestamp()
    return datetime.fromtimestamp(ts).strftime("%H:%M:%S")


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
