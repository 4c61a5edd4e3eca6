"""The `bigthree` command: run the service, and talk to a running one.

Each group of subcommands lives in its own module and registers itself on `cli` below; a new
subcommand (or group) is a module with a `register(cli)` function added to `_GROUPS`.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from app.cli import agents, db, events, providers, service, tasks
from app.cli.common import ClientOptions

cli = typer.Typer(
    name="bigthree",
    help="Run the Big Three service, or drive a running one "
    "(BIGTHREE_URL, default http://127.0.0.1:8000; BIGTHREE_API_KEY).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,  # a traceback with locals could print an API key
    context_settings={"help_option_names": ["-h", "--help"]},
)
_GROUPS = (service, db, agents, tasks, events, providers)
for group in _GROUPS:
    group.register(cli)


@cli.callback()
def _root(
    ctx: typer.Context,
    url: str = typer.Option(
        "http://127.0.0.1:8000", envvar="BIGTHREE_URL", help="The server client commands use."
    ),
    api_key: str = typer.Option(
        "", envvar="BIGTHREE_API_KEY", help="Bearer key (BIGTHREE_API_KEY).", show_default=False
    ),
) -> None:
    ctx.obj = ClientOptions(url=url, api_key=api_key or None)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: sys.argv[1:]); return the exit code. Typer
    reports bad usage (exit 2) and an interrupt (exit 1) itself; `run` stopped while it
    watches a task exits 130, `events tail` stopped exits 0."""
    try:
        cli(args=list(argv) if argv is not None else None, prog_name="bigthree")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0
