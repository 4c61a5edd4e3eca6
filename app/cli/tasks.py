"""`bigthree run AGENT PROMPT` and `bigthree tasks ls|show|cancel`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.status import Status

from app.agents.states import TaskState
from app.cli import render
from app.cli.common import EXIT_TASK_NOT_SUCCEEDED, JsonFlag, connect, err, out, print_json

if TYPE_CHECKING:
    from app.agents.schemas import Task
    from app.client import BigThreeClient

tasks = typer.Typer(help="List, inspect and cancel tasks.", no_args_is_help=True)


def run(
    ctx: typer.Context,
    agent: Annotated[str, typer.Argument(help="the agent's name")],
    prompt: Annotated[str, typer.Argument(help="what to ask it")],
    timeout: Annotated[
        float | None, typer.Option(help="the task's deadline in seconds (default: the server's)")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the finished task as JSON, nothing else")
    ] = False,
    detach: Annotated[bool, typer.Option(help="print the task id and return at once")] = False,
) -> None:
    """Give AGENT a task, show its events live and print its result (exit 1 if it fails)."""
    with connect(ctx) as client:
        task = client.submit(agent, prompt, timeout_s=timeout)
        if detach:
            print_json(task) if as_json else out.print(task.id)
            return
        try:
            task = _follow(client, task) if not as_json else client.wait(task.id)
        except KeyboardInterrupt:
            err.print(f"\nstopped watching; task {task.id} goes on (bigthree tasks cancel ID)")
            raise typer.Exit(130) from None
    _report(task, as_json)


def _follow(client: BigThreeClient, task: Task) -> Task:
    """Show the task's events as they arrive (on stderr), then read its final state."""
    with Status(f"task {task.id[:8]} queued", console=err) as status:
        for event in client.task_events(task.id):
            err.print(render.event_line(event))
            status.update(f"{event.type} ({task.agent})")
    return client.task(task.id, wait_s=1)  # its terminal event is out: it is finished


def _report(task: Task, as_json: bool) -> None:
    if as_json:
        print_json(task)
    elif task.state == TaskState.SUCCEEDED:
        out.print(task.result or "", markup=False)
    else:
        message = f"{task.error.type}: {task.error.message}" if task.error else ""
        err.print(f"task {task.id} {task.state.value}: {message}", markup=False)
    if task.state != TaskState.SUCCEEDED:
        raise typer.Exit(EXIT_TASK_NOT_SUCCEEDED)


@tasks.command("ls")
def list_tasks(
    ctx: typer.Context,
    agent: Annotated[str | None, typer.Option(help="only this agent's tasks")] = None,
    state: Annotated[TaskState | None, typer.Option(help="only tasks in this state")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Annotated[bool, JsonFlag] = False,
) -> None:
    """The newest tasks, across agents."""
    with connect(ctx) as client:
        found = client.tasks(agent=agent, state=state, limit=limit)
    if as_json:
        print_json(found)
    else:
        out.print(render.tasks_table(found))


@tasks.command("show")
def show_task(
    ctx: typer.Context,
    task_id: str,
    wait: Annotated[float, typer.Option(help="wait up to this many seconds for it to finish")] = 0,
    as_json: Annotated[bool, JsonFlag] = False,
) -> None:
    """One task: state, result or error, usage, cost, timings."""
    with connect(ctx) as client:
        task = client.wait(task_id, timeout_s=wait) if wait > 0 else client.task(task_id)
    if as_json:
        print_json(task)
    else:
        out.print(render.task_detail(task))


@tasks.command("cancel")
def cancel_task(ctx: typer.Context, task_id: str) -> None:
    """Cancel a queued or running task."""
    with connect(ctx) as client:
        task = client.cancel(task_id)
    out.print(f"task {task.id} {task.state.value}")


def register(cli: typer.Typer) -> None:
    cli.command(rich_help_panel="Client")(run)
    cli.add_typer(tasks, name="tasks", rich_help_panel="Client")
