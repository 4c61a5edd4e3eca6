"""The OpenAPI document and Swagger UI, behind the same authentication as the API.

FastAPI serves both unauthenticated by default. Here `/openapi.json` needs a key once keys are
configured, and the browser UI at `/docs` (which cannot send a bearer header when it loads the
document) is offered only while no keys are set — i.e. on a loopback-only development server.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.core.config import Settings
from app.core.deps import AuthDep


def install_docs(app: FastAPI, settings: Settings) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json", dependencies=[AuthDep])
    async def openapi(request: Request) -> dict[str, Any]:
        return request.app.openapi()  # type: ignore[no-any-return]

    if not settings.auth_enabled:

        @router.get("/docs")
        async def swagger() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    app.include_router(router)
