"""`bigthree db upgrade|current`: the database schema (BIGTHREE_DATABASE_URL)."""

from __future__ import annotations

import typer

db = typer.Typer(help="The database schema (BIGTHREE_DATABASE_URL).", no_args_is_help=True)


@db.command()
def upgrade() -> None:
    """Upgrade the database to the newest revision (one migrator at a time)."""
    from app.store.commands import db_command

    raise typer.Exit(db_command("upgrade"))


@db.command()
def current() -> None:
    """Print the database's revision; exit 3 when it is behind the newest."""
    from app.store.commands import db_command

    raise typer.Exit(db_command("current"))


def register(cli: typer.Typer) -> None:
    cli.add_typer(db, name="db", rich_help_panel="Server")
