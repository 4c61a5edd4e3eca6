"""The OpenAPI document and Swagger UI, behind the same authentication as the API.

FastAPI serves both unauthenticated by default. Here `/openapi.json` needs a key once keys are
configured, and the browser UI at `/docs` (which cannot send a bearer header when it loads the
document) is offered only while no keys are set — i.e. on a loopback-only development server.

The document states this deployment's limits where they are settings (the longest prompt,
the longest task deadline and `wait`, whether a coder may name a workspace), so a client
reading it knows exactly what the service refuses.
"""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

from app.agents.kinds.claude_code.availability import unavailable_reason
from app.core.config import Settings
from app.core.deps import AuthDep


def _state_limits(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """`schema` with the settings-dependent limits filled in."""
    task = schema["components"]["schemas"]["TaskCreate"]["properties"]
    task["prompt"]["maxLength"] = settings.max_prompt_chars
    for branch in task["timeout_s"]["anyOf"]:
        if branch.get("type") == "number":
            branch["maximum"] = settings.max_task_timeout_s
    for path in schema["paths"].values():
        for operation in path.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "wait" and parameter["in"] == "query":
                    parameter["schema"]["maximum"] = settings.max_wait_s
    agent = schema["components"]["schemas"]["AgentCreate"]["properties"]
    if unavailable_reason(settings) is not None:  # no Claude Code here: not a kind offered
        agent["kind"]["enum"] = [k for k in agent["kind"]["enum"] if k != "claude_code"]
        rules = schema["components"]["schemas"]["AgentCreate"]["anyOf"]
        rules[:] = [r for r in rules if r["properties"]["kind"].get("const") != "claude_code"]
    if os.geteuid() == 0:  # Claude Code refuses bypassPermissions as root
        for branch in agent["permission_mode"]["anyOf"]:
            if "enum" in branch:
                branch["enum"] = [m for m in branch["enum"] if m != "bypassPermissions"]
    if not settings.workspace_roots:  # then every coder works in its default workspace
        agent["workspace"] = {
            "type": "null",
            "description": "not accepted here: BIGTHREE_WORKSPACE_ROOTS is empty",
        }
    return schema


def install_docs(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi

    def openapi_with_limits() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _state_limits(generate(), settings)
        return app.openapi_schema

    app.openapi = openapi_with_limits  # type: ignore[method-assign]
    router = APIRouter(include_in_schema=False)

    @router.get("/openapi.json", dependencies=[AuthDep])
    async def openapi(request: Request) -> dict[str, Any]:
        return request.app.openapi()  # type: ignore[no-any-return]

    if not settings.auth_enabled:

        @router.get("/docs")
        async def swagger() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} API")

    app.include_router(router)
