"""httpx MockTransport helpers for provider unit tests: record requests, answer canned ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx

from app.providers.base import ToolSpec

Handler = Callable[[httpx.Request], httpx.Response]

WEATHER = ToolSpec(
    "get_weather",
    "Weather for a city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


def mock_client(handler: Handler, base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=base_url)


class Recorder:
    """A handler that records each request and answers with the canned responses in turn
    (the last one repeats)."""

    def __init__(self, *responses: httpx.Response) -> None:
        self.responses = list(responses)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses[min(len(self.requests), len(self.responses)) - 1]

    @property
    def body(self) -> Any:
        return json.loads(self.requests[-1].content)
