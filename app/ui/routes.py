"""Serve the console's static files at /ui with security headers, and its config.

The console is plain ES modules and CSS (app/ui/static): nothing to build, nothing fetched
from elsewhere. Every /ui response carries a CSP without 'unsafe-inline' (no inline script or
style anywhere in the console), `frame-ancestors 'none'` and `Referrer-Policy: no-referrer`.
`/ui/config.json` tells the page whether to ask for a key and where Grafana is; it holds no
secret, so it needs no key (the page reads it before it has one).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app import __version__
from app.core.config import Settings

STATIC = Path(__file__).parent / "static"
CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",  # CSP3: 'self' covers ws:// and wss:// to the same host
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cache-control", b"no-cache"),
]


class SecurityHeaders:
    """Add SECURITY_HEADERS to every HTTP response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in SECURITY_HEADERS}
                headers = [h for h in message.get("headers", []) if h[0].lower() not in names]
                message["headers"] = headers + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_ui(app: FastAPI, settings: Settings) -> None:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui")
    async def ui_slash() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)

    @router.get("/ui/config.json")
    async def ui_config() -> JSONResponse:
        body = {
            "auth_required": settings.auth_enabled,
            "grafana_url": settings.grafana_url,
            "version": __version__,
        }
        return JSONResponse(body, headers={k.decode(): v.decode() for k, v in SECURITY_HEADERS})

    app.include_router(router)
    app.mount("/ui", SecurityHeaders(StaticFiles(directory=STATIC, html=True)), name="ui")
