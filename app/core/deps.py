"""FastAPI dependencies every domain shares (settings, metrics, auth), and `provided()`.

The composition root (`app/main.py`) puts each long-lived object on `app.state` under a
name; each domain's own `deps.py` reads its objects back with `provided()`, so routes
depend on their domain only and no module needs the whole application's state.
"""

from __future__ import annotations

from typing import Annotated, Any, Protocol, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.requests import HTTPConnection

from app.core.config import Settings
from app.core.metrics import Metrics
from app.core.security import check_request

T = TypeVar("T")


class HasApp(Protocol):
    """A request or WebSocket (or the fast lane's request): anything that knows its app."""

    @property
    def app(self) -> Any: ...


def provided(conn: HasApp, name: str, kind: type[T]) -> T:
    """The object the composition root stored as `app.state.<name>`."""
    value = getattr(conn.app.state, name, None)
    if not isinstance(value, kind):
        raise RuntimeError(f"app.state.{name} is not wired (expected {kind.__name__})")
    return value


async def get_settings(conn: HTTPConnection) -> Settings:
    return provided(conn, "settings", Settings)


async def get_metrics(conn: HTTPConnection) -> Metrics:
    return provided(conn, "metrics", Metrics)


# declared so the OpenAPI document shows the bearer scheme; the check itself is
# `check_request` (the same for every route, and a no-op while no keys are set)
_bearer = HTTPBearer(auto_error=False, description="one of BIGTHREE_API_KEYS")


async def require_auth(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    check_request(await get_settings(request), request)


SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
AuthDep = Depends(require_auth)
