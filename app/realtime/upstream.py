"""The upstream OpenAI Realtime WebSocket: where it is, opening it, and reading/writing JSON.

The connect goes through the gateway's resilience policy for provider `openai` (bulkhead,
breaker, retries with backoff, per-attempt bound), so an outage opens the same breaker the
agents see. Handshake failures are translated once into the provider error tree: a 401 is
`AuthenticationFailed` (not retried), a 429 `RateLimited`, a 5xx `ServerError`, a refused or
reset connection `ConnectionFailed`, a slow handshake `ProviderTimeout`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import structlog
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from app.core.config import Settings
from app.providers import errors as pe
from app.resilience.policy import ResiliencePolicy

log = structlog.get_logger(__name__)

PROVIDER = "openai"
OFFICIAL_URL = "wss://api.openai.com/v1/realtime"
OFFICIAL_HOST = "api.openai.com"
MAX_FRAME_BYTES = 16 * 1024 * 1024


def realtime_url(settings: Settings) -> str:
    """BIGTHREE_REALTIME_URL, else the official URL, else OPENAI_BASE_URL as ws(s)://…/realtime;
    with `?model=` added unless the URL names one."""
    if settings.realtime_url:
        base = settings.realtime_url
    else:
        parts = urlsplit(settings.openai_base_url)
        if parts.hostname == OFFICIAL_HOST:
            base = OFFICIAL_URL
        else:
            scheme = "wss" if parts.scheme == "https" else "ws"
            path = parts.path.rstrip("/") + "/realtime"
            base = urlunsplit((scheme, parts.netloc, path, parts.query, ""))
    parts = urlsplit(base)
    if "model=" in parts.query:
        return base
    query = "&".join(q for q in (parts.query, urlencode({"model": settings.realtime_model})) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _is_official(url: str) -> bool:
    return urlsplit(url).hostname == OFFICIAL_HOST


def _status_error(exc: InvalidStatus) -> pe.ProviderError:
    response = exc.response
    status = response.status_code
    body = response.body.decode(errors="replace")[:300] if response.body else ""
    code = None
    with contextlib.suppress(ValueError, AttributeError):
        code = json.loads(body).get("error", {}).get("code")
    cls = pe.error_for_status(status, code=code)
    return cls(
        f"realtime handshake refused: HTTP {status} {body}".strip(),
        provider=PROVIDER,
        status=status,
        request_id=response.headers.get("x-request-id"),
        retry_after_s=pe.parse_retry_after(response.headers),
    )


class Upstream:
    """One open upstream session: JSON events in and out."""

    def __init__(self, ws: ClientConnection, url: str) -> None:
        self._ws = ws
        self.url = url

    async def send(self, event: dict[str, Any]) -> None:
        await self._ws.send(json.dumps(event))

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Server events until the upstream closes (then the iteration just ends)."""
        try:
            async for message in self._ws:
                try:
                    event = json.loads(message)
                except ValueError:
                    log.warning("realtime_upstream_not_json", size=len(message))
                    continue
                if isinstance(event, dict):
                    yield event
        except ConnectionClosed:
            return

    @property
    def close_code(self) -> int | None:
        return self._ws.close_code

    @property
    def close_reason(self) -> str | None:
        return self._ws.close_reason

    async def aclose(self) -> None:
        await self._ws.close()


async def open_upstream(settings: Settings, policy: ResiliencePolicy, url: str) -> Upstream:
    """Connect (retried and guarded by `policy`), sending OPENAI_API_KEY as a bearer token."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    if key is None and _is_official(url):
        raise pe.NotConfigured("OPENAI_API_KEY is not set", provider=PROVIDER)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    connect_timeout = settings.provider_connect_timeout_s

    async def attempt(timeout_s: float | None) -> ClientConnection:
        bound = connect_timeout if timeout_s is None else min(timeout_s, connect_timeout)
        try:
            return await connect(
                url,
                additional_headers=headers,
                open_timeout=bound,
                max_size=MAX_FRAME_BYTES,
                close_timeout=2,
            )
        except InvalidStatus as exc:
            raise _status_error(exc) from None
        except TimeoutError:
            raise pe.ProviderTimeout(
                f"realtime handshake took longer than {bound:g}s", provider=PROVIDER
            ) from None
        except InvalidURI as exc:
            raise pe.InvalidRequest(f"bad realtime URL: {exc}", provider=PROVIDER) from None
        except (InvalidHandshake, OSError) as exc:
            raise pe.ConnectionFailed(
                f"realtime connect failed: {type(exc).__name__}: {exc}", provider=PROVIDER
            ) from None

    return Upstream(await policy.call(attempt), url)
