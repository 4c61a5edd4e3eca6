"""`bigthree agents ls|show|create|rm`."""

from __future__ import annotations

import re
from typing import Annotated, get_args

import typer

from app.agents.states import AgentKind, PermissionMode
from app.cli import render
from app.cli.common import JsonFlag, connect, out, print_json


def _one_of(choices: object) -> str:
    """A Literal's values in words: `a, b or c`."""
    *rest, last = get_args(choices)
    return f"{', '.join(rest)} or {last}"


agents = typer.Typer(help="List, inspect, create and delete agents.", no_args_is_help=True)


@agents.command("ls")
def list_agents(ctx: typer.Context, as_json: Annotated[bool, JsonFlag] = False) -> None:
    """Every live agent: kind, state, model, queue, running task, cost."""
    with connect(ctx) as client:
        found = client.agents()
    if as_json:
        print_json(found)
    else:
        out.print(render.agents_table(found))


@agents.command("show")
def show_agent(ctx: typer.Context, name: str, as_json: Annotated[bool, JsonFlag] = False) -> None:
    """One agent in full."""
    with connect(ctx) as client:
        agent = client.agent(name)
    if as_json:
        print_json(agent)
    else:
        out.print(render.agent_detail(agent))


@agents.command("create")
def create_agent(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="lowercase letters, digits, '-' and '_'")],
    model: Annotated[str, typer.Option(help="the provider's model name")],
    kind: Annotated[str, typer.Option(help=_one_of(AgentKind))] = "chat",
    provider: Annotated[
        str | None,
        typer.Option(
            help="openai, anthropic or gemini (default: the server's; claude_code: anthropic; "
            "browser: gemini only)"
        ),
    ] = None,
    instructions: Annotated[str | None, typer.Option(help="the system prompt")] = None,
    fallback: Annotated[
        list[str] | None, typer.Option(help="PROVIDER/MODEL tried when the primary fails")
    ] = None,
    stream: Annotated[bool, typer.Option(help="stream completions as llm.delta events")] = False,
    workspace: Annotated[
        str | None, typer.Option(help="coder and claude_code: its directory")
    ] = None,
    allowed_tool: Annotated[
        list[str] | None,
        typer.Option(help="claude_code: a Claude Code tool it may use (repeatable)"),
    ] = None,
    disallowed_tool: Annotated[
        list[str] | None, typer.Option(help="claude_code: a tool it may never use (repeatable)")
    ] = None,
    permission_mode: Annotated[
        str | None, typer.Option(help=f"claude_code: {_one_of(PermissionMode)}")
    ] = None,
    max_turns: Annotated[int | None, typer.Option(help="claude_code: turns per task")] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(help="browser: scheme://host[:port] its page may reach (repeatable)"),
    ] = None,
    start_url: Annotated[str | None, typer.Option(help="browser: the page it opens first")] = None,
    screen: Annotated[
        str | None, typer.Option(help="browser: the viewport, WIDTHxHEIGHT (e.g. 1280x800)")
    ] = None,
    as_json: Annotated[bool, JsonFlag] = False,
) -> None:
    """Create an agent of any kind; only the options given are sent (the server judges them)."""
    given: dict[str, object | None] = {
        "provider": provider,
        "instructions": instructions,
        "fallbacks": [_model_ref(f) for f in fallback] if fallback else None,
        "stream": stream or None,
        "workspace": workspace,
        "allowed_tools": allowed_tool or None,
        "disallowed_tools": disallowed_tool or None,
        "permission_mode": permission_mode,
        "max_turns": max_turns,
        "allowed_origins": allowed_origin or None,
        "start_url": start_url,
        "screen": _screen(screen) if screen is not None else None,
    }
    spec = {"kind": kind, **{field: v for field, v in given.items() if v is not None}}
    with connect(ctx) as client:
        agent = client.create_agent(name, model=model, **spec)
    if as_json:
        print_json(agent)
    else:
        out.print(f"created agent {agent.name} ({agent.kind}, {agent.provider}/{agent.model})")


@agents.command("rm")
def delete_agent(ctx: typer.Context, name: str) -> None:
    """Delete an agent (its queued tasks are cancelled, a running one too)."""
    with connect(ctx) as client:
        client.delete_agent(name)
    out.print(f"deleted agent {name}")


def _model_ref(text: str) -> dict[str, str]:
    provider, sep, model = text.partition("/")
    if not sep or not provider or not model:
        raise typer.BadParameter(f"{text!r}: expected PROVIDER/MODEL", param_hint="--fallback")
    return {"provider": provider, "model": model}


def _screen(text: str) -> dict[str, int]:
    """`1280x800` as the API's `screen` (the server checks the bounds)."""
    match = re.fullmatch(r"(\d+)[xX](\d+)", text.strip(), flags=re.ASCII)
    if match is None:
        raise typer.BadParameter(
            f"{text!r}: expected WIDTHxHEIGHT in pixels, e.g. 1280x800", param_hint="--screen"
        )
    return {"width": int(match[1]), "height": int(match[2])}


def register(cli: typer.Typer) -> None:
    cli.add_typer(agents, name="agents", rich_help_panel="Client")
