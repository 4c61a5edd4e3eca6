"""A typed helper for tests and benchmarks to drive a running fake upstream.

    fake = FakeUpstreamClient("http://127.0.0.1:9100")
    fake.script("gpt-4o", [{"status": 429, "headers": {"retry-after": "1"}}, {"text": "hi"}])
    assert len(fake.requests(model="gpt-4o")) == 2
    await fake.areset()

Steps are validated locally (a typo fails in the test, not on the server). Every call opens
a short-lived connection, so the helper holds no resources and needs no closing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from app.fake_upstream.computer_use import ScreenRecord
from app.fake_upstream.records import RecordedRequest
from app.fake_upstream.script import Step

StepLike = Step | Mapping[str, Any]


def _script_body(model: str, steps: Sequence[StepLike]) -> dict[str, Any]:
    validated = [s if isinstance(s, Step) else Step.model_validate(s) for s in steps]
    return {
        "model": model,
        "steps": [s.model_dump(mode="json", exclude_defaults=True) for s in validated],
    }


def _params(model: str | None, path: str | None) -> dict[str, str]:
    params = {"model": model, "path": path}
    return {k: v for k, v in params.items() if v is not None}


def _records(response: httpx.Response) -> list[RecordedRequest]:
    response.raise_for_status()
    return [RecordedRequest.model_validate(item) for item in response.json()["requests"]]


def _queued(response: httpx.Response) -> int:
    response.raise_for_status()
    queued: int = response.json()["queued"]
    return queued


class FakeUpstreamClient:
    """Script, inspect and reset a fake upstream at `base_url` (sync and `a`-prefixed async)."""

    def __init__(self, base_url: str, *, timeout_s: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    def _url(self, path: str) -> str:
        return f"{self.base_url}/_fake/{path}"

    # -- sync --------------------------------------------------------------------------
    def script(self, model: str, steps: Sequence[StepLike]) -> int:
        """Queue `steps` for `model` (`"*"` = any model); returns the queue's length."""
        body = _script_body(model, steps)
        return _queued(httpx.post(self._url("script"), json=body, timeout=self.timeout_s))

    def requests(self, model: str | None = None, path: str | None = None) -> list[RecordedRequest]:
        """Recorded provider requests, oldest first; `path` matches as a prefix."""
        params = _params(model, path)
        return _records(httpx.get(self._url("requests"), params=params, timeout=self.timeout_s))

    def computer_use(self, model: str | None = None) -> list[ScreenRecord]:
        """The checked function responses of computer-use requests, oldest first."""
        response = httpx.get(
            self._url("computer-use"), params=_params(model, None), timeout=self.timeout_s
        )
        response.raise_for_status()
        return [ScreenRecord.model_validate(item) for item in response.json()["responses"]]

    def pending(self) -> dict[str, int]:
        response = httpx.get(self._url("script"), timeout=self.timeout_s)
        response.raise_for_status()
        result: dict[str, int] = response.json()["pending"]
        return result

    def reset(self) -> None:
        httpx.post(self._url("reset"), timeout=self.timeout_s).raise_for_status()

    # -- async -------------------------------------------------------------------------
    async def ascript(self, model: str, steps: Sequence[StepLike]) -> int:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            response = await client.post(self._url("script"), json=_script_body(model, steps))
        return _queued(response)

    async def arequests(
        self, model: str | None = None, path: str | None = None
    ) -> list[RecordedRequest]:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            response = await client.get(self._url("requests"), params=_params(model, path))
        return _records(response)

    async def areset(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            (await client.post(self._url("reset"))).raise_for_status()
