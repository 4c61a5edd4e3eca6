"""`bigthree providers [breaker NAME open|close|reset|disable]` and `bigthree costs`."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from app.cli import render
from app.cli.common import JsonFlag, connect, out, print_json

providers = typer.Typer(
    help="Provider health: breakers, bulkheads, retry budgets.", invoke_without_command=True
)


class Action(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    RESET = "reset"
    DISABLE = "disable"


# open: reject every call until reset; close/reset: closed with a fresh window; disable: let
# every call through until reset
_ACTIONS = {
    Action.OPEN: "force_open",
    Action.CLOSE: "reset",
    Action.RESET: "reset",
    Action.DISABLE: "disable",
}


@providers.callback()
def show_providers(ctx: typer.Context, as_json: Annotated[bool, JsonFlag] = False) -> None:
    """Each provider: configured?, breaker states, bulkhead use, retry budget."""
    if ctx.invoked_subcommand is not None:
        return
    with connect(ctx) as client:
        found = client.providers()
    if as_json:
        print_json(found)
    else:
        out.print(render.providers_table(found))


@providers.command("breaker")
def breaker(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="the provider: openai, anthropic, gemini")],
    action: Annotated[Action, typer.Argument(help="open, close (= reset), reset or disable")],
    model: Annotated[str | None, typer.Option(help="one model's breaker (per-model)")] = None,
    as_json: Annotated[bool, JsonFlag] = False,
) -> None:
    """Force a provider's breakers open, close (reset) them, or disable them."""
    with connect(ctx) as client:
        changed = client.breaker(name, _ACTIONS[action], model=model)  # type: ignore[arg-type]
    if as_json:
        print_json(changed)
        return
    for b in changed:
        out.print(f"{b.name}: ", render.state(b.state), sep="")


def costs(ctx: typer.Context, as_json: Annotated[bool, JsonFlag] = False) -> None:
    """Tokens and USD per agent and per provider/model, with totals."""
    with connect(ctx) as client:
        report = client.costs()
    if as_json:
        print_json(report)
        return
    for table in render.costs_tables(report):
        out.print(table)


def register(cli: typer.Typer) -> None:
    cli.add_typer(providers, name="providers", rich_help_panel="Client")
    cli.command(rich_help_panel="Client")(costs)
