"""What every client command shares: the connection options, error reporting, JSON output.

Exit codes: 0 success; 1 the task did not succeed (`run`); 2 bad usage; 3 the server refused
the request or could not be reached.

The client (httpx, pydantic, the API shapes) is imported by `connect`, when a command talks to
a server: `bigthree --help` and bad usage never load it, and no CLI module loads the server
(FastAPI, the store, the settings; tests/unit/test_cli_imports.py keeps it so).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pydantic import BaseModel

    from app.client import BigThreeClient

EXIT_TASK_NOT_SUCCEEDED = 1
EXIT_REQUEST_FAILED = 3

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


@dataclass(frozen=True, slots=True)
class ClientOptions:
    url: str
    api_key: str | None


@contextmanager
def connect(ctx: typer.Context) -> Iterator[BigThreeClient]:
    """A client for the command's server; a refused request ends the command with exit 3
    and the server's error type and message on stderr."""
    from app.client import AppError, BigThreeClient

    options: ClientOptions = ctx.obj
    try:
        with BigThreeClient(options.url, options.api_key or "") as client:
            yield client
    except AppError as exc:
        err.print(f"[red]error[/red] ({exc.error_type}): {exc.message}", markup=True)
        fields = exc.details.get("fields")
        if isinstance(fields, list):
            for field in fields:
                err.print(f"  {'.'.join(field.get('loc', []))}: {field.get('message')}")
        raise typer.Exit(EXIT_REQUEST_FAILED) from None


def print_json(value: BaseModel | Sequence[BaseModel] | dict[str, Any]) -> None:
    """One JSON document on stdout, for scripts."""
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif isinstance(value, Sequence):
        data = [item.model_dump(mode="json") for item in value]
    else:
        data = value
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
    sys.stdout.flush()


JsonFlag = typer.Option("--json", help="print JSON instead of a table")
