"""`bigthree events tail`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from app.cli import render
from app.cli.common import connect, out

events = typer.Typer(help="Watch the event stream.", no_args_is_help=True)


@events.command("tail")
def tail(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help="only this agent's events")] = None,
    type: Annotated[
        str | None, typer.Option("--type", help="an event type; 'task.*' matches a prefix")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="only this task's events")] = None,
    after_seq: Annotated[
        int, typer.Option(min=0, help="start after this seq (0: every stored event)")
    ] = 0,
    count: Annotated[int | None, typer.Option(min=1, help="stop after this many events")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON event per line")] = False,
) -> None:
    """Stored events after --after-seq, then live ones, reconnecting (without loss or
    repeats) when the server restarts. Ctrl-C stops."""
    seen = 0
    with connect(ctx) as client:
        try:
            for event in client.stream_events(
                after_seq=after_seq, agent=agent, type=type, task_id=task
            ):
                if as_json:
                    sys.stdout.write(event.model_dump_json() + "\n")
                    sys.stdout.flush()
                else:
                    out.print(render.event_line(event))
                seen += 1
                if count is not None and seen >= count:
                    return
        except KeyboardInterrupt:
            return


def register(cli: typer.Typer) -> None:
    cli.add_typer(events, name="events", rich_help_panel="Client")
