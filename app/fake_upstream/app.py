"""The fake upstream application: the three providers' endpoints plus the control API.

Run it with `bigthree fake-upstream --port 9100`; point a provider's base URL at it
(OpenAI `http://127.0.0.1:9100/v1`, Anthropic and Gemini `http://127.0.0.1:9100`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response

from app.fake_upstream.anthropic import AnthropicDialect
from app.fake_upstream.control import control_router
from app.fake_upstream.dialect import dumps
from app.fake_upstream.faults import WireResponse
from app.fake_upstream.gemini import GeminiDialect
from app.fake_upstream.openai import OpenAIDialect
from app.fake_upstream.realtime import realtime_router
from app.fake_upstream.script import ErrorSpec
from app.fake_upstream.serve import FakeState, serve

GEMINI_ACTIONS = {"generateContent": False, "streamGenerateContent": True}


def provider_router(state: FakeState) -> APIRouter:
    router = APIRouter()
    openai, anthropic, gemini = OpenAIDialect(), AnthropicDialect(), GeminiDialect()

    @router.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        return await serve(request, state, openai, model=None, stream=None)

    @router.post("/v1/messages")
    async def messages(request: Request) -> Response:
        return await serve(request, state, anthropic, model=None, stream=None)

    @router.post("/v1beta/models/{model_action:path}")
    @router.post("/v1/models/{model_action:path}")
    async def generate_content(request: Request, model_action: str) -> Response:
        model, _, action = model_action.rpartition(":")
        if not model or action not in GEMINI_ACTIONS:
            request_id = gemini.request_id()
            problem = ErrorSpec(message=f"Unknown method: {model_action}")
            body = dumps(gemini.error_body(404, problem, None, request_id))
            return WireResponse([body], status_code=404, content_length=True)
        return await serve(request, state, gemini, model=model, stream=GEMINI_ACTIONS[action])

    return router


def create_fake_app() -> FastAPI:
    """A fresh fake with empty scripts and an empty request log."""
    state = FakeState()
    app = FastAPI(title="Big Three fake upstream", openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(control_router(state))
    app.include_router(provider_router(state))
    app.include_router(realtime_router())
    return app
