"""The control API a test drives: script steps, read the request log, reset, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import ValidationError

from app.fake_upstream.computer_use import demo_page
from app.fake_upstream.script import ScriptRequest
from app.fake_upstream.serve import FakeState


def control_router(state: FakeState) -> APIRouter:
    router = APIRouter(prefix="/_fake")

    @router.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @router.post("/script", response_model=None)
    async def script(request: Request) -> dict[str, Any] | JSONResponse:
        """Append steps to a model's queue (`*` = the fallback queue); 422 on a bad script."""
        try:
            parsed = ScriptRequest.model_validate_json(await request.body())
        except ValidationError as exc:
            detail = exc.errors(include_url=False, include_context=False)
            return JSONResponse({"detail": detail}, status_code=422)
        queued = state.scripts.push(parsed.model, parsed.steps)
        return {"model": parsed.model, "queued": queued}

    @router.get("/script")
    async def pending() -> dict[str, Any]:
        """Entries still queued per model."""
        return {"pending": state.scripts.pending()}

    @router.get("/requests")
    async def requests(model: str | None = None, path: str | None = None) -> dict[str, Any]:
        """Recorded provider requests, oldest first; `path` matches as a prefix."""
        items = state.log.select(model=model, path=path)
        return {"requests": [item.model_dump() for item in items], "count": len(items)}

    @router.get("/computer-use")
    async def computer_use(model: str | None = None) -> dict[str, Any]:
        """The function responses computer-use requests carried (checked), oldest first."""
        items = [r for r in state.screens if model is None or r.model == model]
        return {"responses": [r.model_dump() for r in items], "count": len(items)}

    @router.get("/demo", response_class=HTMLResponse)
    async def demo(details: int = 0, incident: str | None = None) -> HTMLResponse:
        """The demo page of the browser try-it (see computer_use.py)."""
        return HTMLResponse(demo_page(bool(details), incident))

    @router.post("/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "ok"}

    return router
