"""`bigthree serve`, `bigthree fake-upstream`, `bigthree check-config`: the server side."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

Host = Annotated[str | None, typer.Option(help="bind address (default BIGTHREE_HOST)")]
Port = Annotated[int | None, typer.Option(help="port (default BIGTHREE_PORT)")]


def serve(host: Host = None, port: Port = None) -> None:
    """Run the API server (uvicorn), with a graceful drain on SIGTERM."""
    from app.core.config import load_settings
    from app.server import run_server

    loaded = load_settings()
    if loaded.settings is None or not loaded.valid:
        # the same lines `bigthree check-config` prints for these problems
        problems = "".join(f"\n  ERROR {line}" for line in loaded.problems)
        print(f"bigthree: invalid configuration:{problems}", file=sys.stderr)
        raise typer.Exit(2)
    settings = loaded.settings
    host = host or settings.host
    port = port or settings.port
    reason = settings.unsafe_bind_reason(host)
    if reason:
        print(f"bigthree: {reason}", file=sys.stderr)
        raise typer.Exit(2)
    raise typer.Exit(run_server(settings, host=host, port=port))


def fake_upstream(
    host: Annotated[str, typer.Option(help="bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port")] = 9100,
) -> None:
    """Run the scriptable fake LLM provider server."""
    import uvicorn

    from app.fake_upstream.app import create_fake_app

    uvicorn.run(
        create_fake_app(),
        host=host,
        port=port,
        log_level="warning",
        ws_max_size=16 * 1024 * 1024,
    )


def check_config(
    env_file: Annotated[str, typer.Option(help="dotenv file to read")] = ".env",
    host: Annotated[str | None, typer.Option(help="the bind address to check")] = None,
    port: Annotated[int | None, typer.Option(help="the port to check")] = None,
) -> None:
    """Validate settings before starting (one line per finding; non-zero on errors)."""
    from app.core.config_check import run_check

    raise typer.Exit(run_check(env_file=env_file, host=host, port=port))


def register(cli: typer.Typer) -> None:
    cli.command(rich_help_panel="Server")(serve)
    cli.command("fake-upstream", rich_help_panel="Server")(fake_upstream)
    cli.command("check-config", rich_help_panel="Server")(check_config)
