"""The `bigthree` command: serve the API, run the fake upstream, check a configuration,
upgrade the database."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.core.config import Settings
    from app.server import run_server

    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"bigthree: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    host = args.host or settings.host
    port = args.port or settings.port
    reason = settings.unsafe_bind_reason(host)
    if reason:
        print(f"bigthree: {reason}", file=sys.stderr)
        return 2
    return run_server(settings, host=host, port=port)


def _fake_upstream(args: argparse.Namespace) -> int:
    import uvicorn

    from app.fake_upstream.app import create_fake_app

    uvicorn.run(
        create_fake_app(),
        host=args.host,
        port=args.port,
        log_level="warning",
        ws_max_size=16 * 1024 * 1024,
    )
    return 0


def _check_config(args: argparse.Namespace) -> int:
    from app.core.config_check import run_check

    return run_check(env_file=args.env_file, host=args.host, port=args.port)


def _db(args: argparse.Namespace) -> int:
    from app.store.commands import db_command

    return db_command(args.action)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigthree", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the API server (uvicorn)")
    serve.add_argument("--host", default=None, help="bind address (default BIGTHREE_HOST)")
    serve.add_argument("--port", type=int, default=None, help="port (default BIGTHREE_PORT)")
    serve.set_defaults(func=_serve)

    fake = sub.add_parser("fake-upstream", help="run the scriptable fake LLM provider server")
    fake.add_argument("--host", default="127.0.0.1")
    fake.add_argument("--port", type=int, default=9100)
    fake.set_defaults(func=_fake_upstream)

    check = sub.add_parser("check-config", help="validate settings before starting")
    check.add_argument("--env-file", default=".env", help="dotenv file to read (default .env)")
    check.add_argument("--host", default=None)
    check.add_argument("--port", type=int, default=None)
    check.set_defaults(func=_check_config)

    db = sub.add_parser("db", help="database schema (BIGTHREE_DATABASE_URL)")
    db.add_argument(
        "action", choices=["upgrade", "current"], help="upgrade: to the newest revision"
    )
    db.set_defaults(func=_db)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
