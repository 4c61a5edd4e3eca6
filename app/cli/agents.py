"""`bigthree agents ls|show|create|rm`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli import render
from app.cli.common import JsonFlag, connect, out, print_json

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
    kind: Annotated[str, typer.Option(help="chat, coder or orchestrator")] = "chat",
    provider: Annotated[
        str | None, typer.Option(help="openai, anthropic or gemini (default: the server's)")
    ] = None,
    instructions: Annotated[str, typer.Option(help="the system prompt")] = "",
    fallback: Annotated[
        list[str] | None, typer.Option(help="PROVIDER/MODEL tried when the primary fails")
    ] = None,
    stream: Annotated[bool, typer.Option(help="stream completions as llm.delta events")] = False,
    workspace: Annotated[str | None, typer.Option(help="coder only: its directory")] = None,
    as_json: Annotated[bool, JsonFlag] = False,
) -> None:
    """Create an agent."""
    spec: dict[str, object] = {"kind": kind, "instructions": instructions, "stream": stream}
    if provider:
        spec["provider"] = provider
    if workspace:
        spec["workspace"] = workspace
    if fallback:
        spec["fallbacks"] = [_model_ref(f) for f in fallback]
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


def register(cli: typer.Typer) -> None:
    cli.add_typer(agents, name="agents", rich_help_panel="Client")
